package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ardanlabs/conf/v3"
	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/lnmux/lnmux/app/lnmuxd/config"
)

// The commands of lnmuxd as run() starts them, and the helpers of this
// package's tests; the configuration's own tests are in package config.

// Secrets used by the tests; each assertion that a secret is absent looks
// for these exact strings.
const (
	testKey  = "3f9d2c6b8e1a4f7d0c5b9e2a6d1f8c4b7a0e3d6c9b2f5a8e1d4c7b0a3f6e9d2c"
	otherKey = "5a1b9c3d7e2f6a0b4c8d1e5f9a3b7c2d6e0f4a8b1c5d9e3f7a2b6c0d4e8f1a5b"
	testPass = "hunter2-Sup3rSecret"
	testDSN  = "postgres://lnmux:" + testPass + "@db.internal:5432/lnmux?sslmode=disable"
	// unreachableDSN is a loopback port nothing listens on: the tests never
	// send a packet, not even a DNS query, off this machine.
	unreachableDSN = "postgres://lnmux:" + testPass + "@127.0.0.1:1/lnmux?sslmode=disable&connect_timeout=2"
)

// nodeKey returns a valid compressed public key derived from seed.
func nodeKey(t *testing.T, seed byte) string {
	t.Helper()
	b := bytes.Repeat([]byte{seed}, 32)
	_, pub := btcec.PrivKeyFromBytes(b)
	return hex.EncodeToString(pub.SerializeCompressed())
}

// cleanEnv unsets every LNMUX_ variable for the test and points HOME at a
// temporary directory, so defaults under ~ are predictable.
func cleanEnv(t *testing.T) string {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "LNMUX_") {
			t.Setenv(name, "") // restores the value after the test
			if err := os.Unsetenv(name); err != nil {
				t.Fatal(err)
			}
		}
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	return home
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, args ...string) *config.Config {
	t.Helper()
	cfg, _, err := config.Load(args, conf.Version{})
	if err != nil {
		t.Fatalf("Load(%q): %v", args, err)
	}
	return cfg
}

// validConfig is a loaded default config with an identity key, for the
// validation table to break one setting at a time.
func validConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := load(t)
	cfg.IdentityKey = testKey
	if err := cfg.Validate(); err != nil {
		t.Fatalf("baseline config invalid: %v", err)
	}
	return cfg
}

// TestHelp: every way of asking prints lnmuxd's commands and the usage of
// every setting (config.TestUsage checks its content), and no secret.
func TestHelp(t *testing.T) {
	cleanEnv(t)
	// Secrets in the environment and the file must not reach the help.
	t.Setenv("LNMUX_IDENTITY_KEY", testKey)
	t.Setenv("LNMUX_PERSISTENCE_POSTGRES_DSN", testDSN)
	path := writeFile(t, "lnmux.yml", "identityKey: "+otherKey+"\n")
	usage, err := config.Usage(load(t))
	if err != nil {
		t.Fatal(err)
	}
	_, settings, _ := strings.Cut(usage, "\n\n") // after conf's usage line

	for _, args := range [][]string{{"--help"}, {"-h"}, {"-c", path, "--help"}, {"help"}, {"-c", path, "run", "--help"}} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), args, &stdout, &stderr); err != nil {
			t.Fatalf("run %q: %v", args, err)
		}
		out := stdout.String()
		for _, want := range []string{
			"run", "migrate init", "migrate up", "migrate status", "check-config", "version",
			settings, "-c, --config", "LNMUX_CONFIG", "--identity-key", "LNMUX_IDENTITY_KEY", "(default: regtest)",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("help (%q) lacks %q", args, want)
			}
		}
		for _, secret := range []string{testKey, otherKey, testPass} {
			if strings.Contains(out+stderr.String(), secret) {
				t.Errorf("help (%q) shows a secret", args)
			}
		}
	}
}

func runCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	err = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), err
}

func TestRunCommands(t *testing.T) {
	cleanEnv(t)

	out, _, err := runCmd(t, "version")
	if err != nil || !strings.HasPrefix(out, "lnmuxd ") {
		t.Errorf("version: %q %v", out, err)
	}
	out, _, err = runCmd(t, "--version")
	if err != nil || !strings.Contains(out, "Version: ") {
		t.Errorf("--version: %q %v", out, err)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no command"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"migrate"}, "init, up or status"},
		{[]string{"migrate", "down"}, `"down"`},
		{[]string{"migrate", "up", "--auto-settle"}, "options go before the command"},
		{[]string{"version", "x"}, "unexpected argument"},
		{[]string{"run"}, "identityKey"},
		{[]string{"--lnd-network=bitcoin", "migrate", "up"}, "lnd.network"},
	} {
		if _, _, err := runCmd(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run %q: %v, want %q", c.args, err, c.want)
		}
	}

	// Valid configurations reach the commands, which cannot reach the
	// database (a closed loopback port), and log the configuration with its
	// secrets masked; the connection error names the database, not the
	// password.
	t.Setenv("LNMUX_IDENTITY_KEY", testKey)
	t.Setenv("LNMUX_PERSISTENCE_POSTGRES_DSN", unreachableDSN)
	t.Setenv("LNMUX_IDENTITYKEY", "typo")
	for _, args := range [][]string{{"run"}, {"migrate", "init"}, {"migrate", "up"}, {"migrate", "status"}} {
		_, logs, err := runCmd(t, args...)
		if err == nil || !strings.Contains(err.Error(), "cannot reach postgres") || strings.Contains(err.Error(), testPass) {
			t.Errorf("run %q: %v", args, err)
		}
		if !strings.Contains(logs, "starting lnmuxd") || !strings.Contains(logs, "config.identity-key=xxxxxx") {
			t.Errorf("run %q: no masked startup line:\n%s", args, logs)
		}
		if !strings.Contains(logs, "LNMUX_IDENTITYKEY") {
			t.Errorf("run %q: unknown env var not reported:\n%s", args, logs)
		}
		if strings.Contains(logs, testKey) || strings.Contains(logs, testPass) {
			t.Errorf("run %q: secret in logs:\n%s", args, logs)
		}
	}

	// A bad identity key stops run with an error that does not show it.
	bad := "g" + testKey[1:]
	t.Setenv("LNMUX_IDENTITY_KEY", bad)
	_, logs, err := runCmd(t, "run")
	if err == nil || !strings.Contains(err.Error(), "identityKey") || strings.Contains(err.Error()+logs, bad) {
		t.Errorf("bad key: %v", err)
	}
}

func TestRedactedErrorKeepsChain(t *testing.T) {
	base := errors.New("connect " + testDSN)
	err := redactError(fmt.Errorf("open store: %w", base), newRedactor(testDSN))
	if strings.Contains(err.Error(), testPass) || !errors.Is(err, base) {
		t.Errorf("redactError: %v (is base: %v)", err, errors.Is(err, base))
	}
	if plain := errors.New("plain"); redactError(plain, newRedactor(testDSN)) != plain { //nolint:errorlint // unchanged means the very error
		t.Error("an error without secrets should pass unchanged")
	}
}

// TestRunOriginalConfig starts the commands with a file of the original
// lnmux: they get as far as the database (a closed port here) and log each
// warning once.
func TestRunOriginalConfig(t *testing.T) {
	cleanEnv(t)
	file := writeFile(t, "lnmux.yml", strings.NewReplacer("PUB", nodeKey(t, 7), "KEY", testKey).Replace(
		"lnd:\n  nodes:\n    - {tlsCertPath: /t, macaroonPath: /m, lndUrl: 127.0.0.1:10009, pubKey: PUB, priority: 2}\n  timeout: 10s\n"+
			"identityKey: KEY\ndb:\n  dsn: postgres://u@h/db\n  poolSize: 5\nlogging:\n  level: fatal\n  grpcLogging: true\n"))
	t.Setenv("LNMUX_PERSISTENCE_POSTGRES_DSN", unreachableDSN)
	t.Setenv("LNMUX_LOGGING_LEVEL", "info") // the file's "fatal" would hide warnings
	for _, args := range [][]string{{"migrate", "up"}, {"run"}} {
		// The node's files must exist for run.
		dir := t.TempDir()
		for _, f := range []string{"t", "m"} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.NewReplacer("tlsCertPath: /t", "tlsCertPath: "+filepath.Join(dir, "t"), "macaroonPath: /m", "macaroonPath: "+filepath.Join(dir, "m")).Replace(string(data))
		_, logs, err := runCmd(t, append([]string{"-c", writeFile(t, "lnmux.yml", s)}, args...)...)
		if err == nil || !strings.Contains(err.Error(), "cannot reach postgres") {
			t.Errorf("%q: %v", args, err)
		}
		if n := strings.Count(logs, "key=lnd.timeout "); n != 1 {
			t.Errorf("%q: lnd.timeout warned %d times:\n%s", args, n, logs)
		}
		if strings.Contains(logs, testPass) || strings.Contains(logs, testKey) {
			t.Errorf("%q: secret in logs", args)
		}
	}
}
