// Package kubelease elects the active lnmuxd with a Kubernetes Lease
// (client-go's leaderelection with a LeaseLock): the DistributedLock of
// type kubernetes. A Lease alone cannot stop a leader that lost it without
// noticing (a paused process, a partition from the API server) from
// writing, so lnmuxd combines it with the database's fencing epoch
// (Fenced; docs/kubernetes.md).
package kubelease

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/lnmux/lnmux/ports"
)

var _ ports.Leader = (*Elector)(nil)

// Defaults of the durations, those of Kubernetes' own components.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// Config names the Lease and this candidate.
type Config struct {
	// Namespace and Name locate the Lease (coordination.k8s.io/v1).
	Namespace, Name string
	// ID is this candidate's holder identity, unique per process: the pod
	// name.
	ID string
	// KubeConfig is a kubeconfig file for development; empty uses the
	// pod's service account (rest.InClusterConfig).
	KubeConfig string
	// LeaseDuration is how long the other candidates wait after the last
	// renewal they saw before they take over; RenewDeadline how long the
	// leader keeps trying to renew before it gives up (it must be shorter,
	// so that a leader stops before anyone else starts, clocks allowing);
	// RetryPeriod the pause between tries. Zero takes the defaults above.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// withDefaults fills zero durations and checks every field, naming the bad
// ones.
func (c Config) withDefaults() (Config, error) {
	if c.LeaseDuration == 0 {
		c.LeaseDuration = DefaultLeaseDuration
	}
	if c.RenewDeadline == 0 {
		c.RenewDeadline = DefaultRenewDeadline
	}
	if c.RetryPeriod == 0 {
		c.RetryPeriod = DefaultRetryPeriod
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("kubernetes lease: "+format, a...)) }
	if msgs := validation.IsDNS1123Label(c.Namespace); len(msgs) > 0 {
		bad("Namespace %q is not a namespace name: %s", c.Namespace, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1123Subdomain(c.Name); len(msgs) > 0 {
		bad("Name %q is not a Lease name: %s", c.Name, strings.Join(msgs, "; "))
	}
	if strings.TrimSpace(c.ID) == "" {
		bad("ID is empty: each candidate needs an identity of its own (the pod name)")
	}
	// The Lease records whole seconds, and the other candidates wait
	// what it records: a fraction would be cut off and they would take
	// over before this leader has given up.
	if c.LeaseDuration < time.Second || c.LeaseDuration%time.Second != 0 {
		bad("LeaseDuration %s must be a whole number of seconds, at least 1s", c.LeaseDuration)
	}
	if c.RetryPeriod <= 0 {
		bad("RetryPeriod %s must be positive", c.RetryPeriod)
	}
	if c.RenewDeadline >= c.LeaseDuration {
		bad("RenewDeadline %s must be below LeaseDuration %s, or the leader may still act after another took over", c.RenewDeadline, c.LeaseDuration)
	}
	if minRenew := time.Duration(leaderelection.JitterFactor * float64(c.RetryPeriod)); c.RenewDeadline <= minRenew {
		bad("RenewDeadline %s must be above %s (%g × RetryPeriod %s) to leave room for a retry", c.RenewDeadline, minRenew, leaderelection.JitterFactor, c.RetryPeriod)
	}
	return c, errors.Join(errs...)
}

// Elector is a candidate for the Lease. It implements ports.Leader; each
// Acquire runs an election of its own.
type Elector struct {
	cfg    Config
	client kubernetes.Interface
}

// New validates cfg and connects with the pod's service account, or with
// cfg.KubeConfig. It does not contact the API server yet.
func New(cfg Config) (*Elector, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var rc *rest.Config
	if cfg.KubeConfig == "" {
		rc, err = rest.InClusterConfig()
	} else {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.KubeConfig)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes lease: credentials: %w", err)
	}
	// Bound every call: a request hanging on a dead connection must not
	// outlast the renew deadline.
	rc.Timeout = cfg.RenewDeadline
	rc.UserAgent = "lnmuxd"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes lease: client: %w", err)
	}
	return &Elector{cfg: cfg, client: client}, nil
}

// NewWithClient is New with a given client (tests: the fake clientset).
func NewWithClient(cfg Config, client kubernetes.Interface) (*Elector, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if client == nil {
		return nil, errors.New("kubernetes lease: nil client")
	}
	return &Elector{cfg: cfg, client: client}, nil
}

// describe names the Lease for errors and logs.
func (e *Elector) describe() string { return e.cfg.Namespace + "/" + e.cfg.Name }

// Acquire implements ports.Leader: it blocks until this candidate holds
// the Lease or ctx is done. lost closes when the leader could not renew
// within RenewDeadline (or the election otherwise ended without release):
// the process must stop acting as leader. release gives the Lease up at
// once (an update that empties its holder, so that a standby takes over at
// its next retry instead of after LeaseDuration) and returns when that is
// done, or after RenewDeadline; it does not close lost, and it is
// idempotent.
func (e *Elector) Acquire(ctx context.Context) (<-chan struct{}, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("waiting for the kubernetes lease %s: %w", e.describe(), err)
	}
	var released atomic.Bool
	started := make(chan struct{})
	lost := make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: e.cfg.Namespace, Name: e.cfg.Name},
			Client:     e.client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: e.cfg.ID},
		},
		LeaseDuration:   e.cfg.LeaseDuration,
		RenewDeadline:   e.cfg.RenewDeadline,
		RetryPeriod:     e.cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            e.cfg.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { close(started) },
			// Called whenever Run returns, also after a release or
			// without having led; lost matters only after started.
			OnStoppedLeading: func() {
				if !released.Load() {
					close(lost)
				}
			},
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes lease %s: %w", e.describe(), err)
	}

	// The election outlives ctx, which bounds the wait only.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		le.Run(runCtx)
	}()
	stop := func() {
		released.Store(true)
		cancel()
		t := time.NewTimer(e.cfg.RenewDeadline + e.cfg.RetryPeriod)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			// The API server does not answer: the Lease expires on
			// its own after LeaseDuration.
		}
	}

	select {
	case <-started:
		return lost, sync.OnceFunc(stop), nil
	case <-done:
		cancel()
		return nil, nil, fmt.Errorf("kubernetes lease %s: lost right after it was acquired", e.describe())
	case <-ctx.Done():
		stop()
		return nil, nil, fmt.Errorf("waiting for the kubernetes lease %s: %w", e.describe(), ctx.Err())
	}
}
