package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lnmux/lnmux/app/lnmuxd/config"
)

func TestDistributedLockDefaults(t *testing.T) {
	cleanEnv(t)
	t.Setenv("POD_NAME", "lnmux-7f9c")
	d := load(t).DistributedLock
	if !d.Enabled.On() || d.Type != config.LockDatabase || d.ID != "lnmux-7f9c" ||
		d.LeaseDuration != 15*time.Second || d.RenewDeadline != 10*time.Second || d.RetryPeriod != 2*time.Second {
		t.Errorf("defaults: got %+v, want enabled, type database, id from POD_NAME, lease 15s, renew 10s, retry 2s", d)
	}
}

func TestDistributedLockValidation(t *testing.T) {
	cleanEnv(t)
	tests := []struct {
		name    string
		change  func(*config.DistributedLockConfig)
		wantKey string // "" means valid
	}{
		{name: "database lock needs nothing more", change: func(*config.DistributedLockConfig) {}},
		{name: "unknown type", change: func(d *config.DistributedLockConfig) { d.Type = "etcd" }, wantKey: "distributedLock.type"},
		{name: "kubernetes without namespace", change: func(d *config.DistributedLockConfig) { d.Type, d.Name = config.LockKubernetes, "l" }, wantKey: "distributedLock.namespace"},
		{name: "kubernetes without name", change: func(d *config.DistributedLockConfig) { d.Type, d.Namespace = config.LockKubernetes, "ns" }, wantKey: "distributedLock.name"},
		{name: "kubernetes lease not above renew deadline", change: func(d *config.DistributedLockConfig) {
			d.Type, d.Namespace, d.Name, d.LeaseDuration = config.LockKubernetes, "ns", "l", 10*time.Second
		}, wantKey: "distributedLock.leaseDuration"},
		{name: "kubernetes renew deadline within the retry jitter", change: func(d *config.DistributedLockConfig) {
			d.Type, d.Namespace, d.Name, d.RetryPeriod = config.LockKubernetes, "ns", "l", 9*time.Second
		}, wantKey: "distributedLock.renewDeadline"},
		{name: "kubernetes complete", change: func(d *config.DistributedLockConfig) { d.Type, d.Namespace, d.Name = config.LockKubernetes, "ns", "l" }},
		{name: "kubernetes keys unchecked with the lock off", change: func(d *config.DistributedLockConfig) {
			d.Type = config.LockKubernetes
			_ = d.Enabled.UnmarshalText([]byte("false"))
		}},
	}
	for _, tt := range tests {
		cfg := validConfig(t)
		tt.change(&cfg.DistributedLock)
		err := cfg.Validate()
		switch {
		case tt.wantKey == "" && err != nil:
			t.Errorf("%s: got %v, want valid", tt.name, err)
		case tt.wantKey != "" && (err == nil || !strings.Contains(err.Error(), tt.wantKey)):
			t.Errorf("%s: got %v, want an error naming %s", tt.name, err, tt.wantKey)
		}
	}
}

func TestKubernetesLockBuildsTheElector(t *testing.T) {
	cleanEnv(t)
	cfg := validConfig(t)
	cfg.DistributedLock.Type = config.LockKubernetes
	cfg.DistributedLock.Namespace, cfg.DistributedLock.Name, cfg.DistributedLock.ID = "lnmux", "lnmux-leader", "pod-a"

	cfg.DistributedLock.DevKubeConfig = filepath.Join(t.TempDir(), "missing")
	if _, err := newLeader(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "kubernetes lock") {
		t.Errorf("newLeader(kubernetes, missing kubeconfig): got %v, want an error naming the kubernetes lock", err)
	}

	// A kubeconfig naming an unreachable server: building the elector does
	// not connect, so it succeeds; the Lease is only asked for in Acquire.
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	const text = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(kubeconfig, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.DistributedLock.DevKubeConfig = kubeconfig
	leader, err := newLeader(cfg, nil, nil)
	if err != nil || leader == nil {
		t.Fatalf("newLeader(kubernetes, valid kubeconfig): got (%v, %v), want a leader and no error", leader, err)
	}
}
