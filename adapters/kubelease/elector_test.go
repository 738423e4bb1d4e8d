package kubelease_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	typedcoordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/lnmux/lnmux/adapters/kubelease"
)

const (
	testNamespace = "lnmux"
	testLease     = "lnmux-leader"
	// bound turns a hang into a failure; nothing is asserted about how
	// long anything takes.
	bound = time.Minute
)

// longLease never expires within a test: a candidate that takes over can
// only have been handed the Lease by a release.
func longLease(id string) kubelease.Config {
	return kubelease.Config{
		Namespace: testNamespace, Name: testLease, ID: id,
		LeaseDuration: time.Hour, RenewDeadline: 30 * time.Minute, RetryPeriod: 20 * time.Millisecond,
	}
}

// shortLease expires soon after its holder stops renewing.
func shortLease(id string) kubelease.Config {
	return kubelease.Config{
		Namespace: testNamespace, Name: testLease, ID: id,
		LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 100 * time.Millisecond,
	}
}

// partitionable is a client whose Lease calls fail while cut, as if the
// pod had lost its connection to the API server.
type partitionable struct {
	kubernetes.Interface
	cut *atomic.Bool
}

func newPartitionable(c kubernetes.Interface) partitionable {
	return partitionable{Interface: c, cut: new(atomic.Bool)}
}

func (p partitionable) CoordinationV1() typedcoordinationv1.CoordinationV1Interface {
	return coordination{CoordinationV1Interface: p.Interface.CoordinationV1(), cut: p.cut}
}

type coordination struct {
	typedcoordinationv1.CoordinationV1Interface
	cut *atomic.Bool
}

func (c coordination) Leases(ns string) typedcoordinationv1.LeaseInterface {
	return leases{LeaseInterface: c.CoordinationV1Interface.Leases(ns), cut: c.cut}
}

type leases struct {
	typedcoordinationv1.LeaseInterface
	cut *atomic.Bool
}

var errPartitioned = errors.New("test: no route to the API server")

func (l leases) Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error) {
	if l.cut.Load() {
		return nil, errPartitioned
	}
	return l.LeaseInterface.Get(ctx, name, opts)
}

func (l leases) Create(ctx context.Context, lease *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error) {
	if l.cut.Load() {
		return nil, errPartitioned
	}
	return l.LeaseInterface.Create(ctx, lease, opts)
}

func (l leases) Update(ctx context.Context, lease *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	if l.cut.Load() {
		return nil, errPartitioned
	}
	return l.LeaseInterface.Update(ctx, lease, opts)
}

func newElector(t *testing.T, cfg kubelease.Config, client kubernetes.Interface) *kubelease.Elector {
	t.Helper()
	e, err := kubelease.NewWithClient(cfg, client)
	if err != nil {
		t.Fatalf("new elector %s: %v", cfg.ID, err)
	}
	return e
}

type acquired struct {
	lost    <-chan struct{}
	release func()
	err     error
}

// acquireAsync runs Acquire in the background; the test cancels it at its
// end if it is still waiting, and releases what it acquired.
func acquireAsync(t *testing.T, l interface {
	Acquire(context.Context) (<-chan struct{}, func(), error)
}) <-chan acquired {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan acquired, 1)
	finished := make(chan acquired, 1)
	go func() {
		lost, release, err := l.Acquire(ctx)
		a := acquired{lost: lost, release: release, err: err}
		finished <- a
		out <- a
	}()
	t.Cleanup(func() {
		cancel()
		if a := <-finished; a.err == nil {
			a.release()
		}
	})
	return out
}

func waitAcquired(t *testing.T, who string, c <-chan acquired) acquired {
	t.Helper()
	select {
	case a := <-c:
		if a.err != nil {
			t.Fatalf("%s: acquire: %v", who, a.err)
		}
		return a
	case <-time.After(bound):
		t.Fatalf("%s: still not leading after %s", who, bound)
	}
	return acquired{}
}

func holder(t *testing.T, client kubernetes.Interface) string {
	t.Helper()
	l, err := client.CoordinationV1().Leases(testNamespace).Get(t.Context(), testLease, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get the lease: %v", err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// waitRenewals waits until the holder has renewed the Lease n more times.
func waitRenewals(t *testing.T, client kubernetes.Interface, n int) {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.Now().Add(bound)
	for len(seen) <= n {
		l, err := client.CoordinationV1().Leases(testNamespace).Get(t.Context(), testLease, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get the lease: %v", err)
		}
		if l.Spec.RenewTime != nil {
			seen[l.Spec.RenewTime.Format(time.RFC3339Nano)] = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lease was renewed %d times in %s, want %d", len(seen)-1, bound, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOneLeaderWhileTheHolderRenews(t *testing.T) {
	client := fake.NewClientset()
	first := acquireAsync(t, newElector(t, longLease("a"), client))
	a := waitAcquired(t, "a", first)
	second := acquireAsync(t, newElector(t, longLease("b"), client))

	// b keeps trying every RetryPeriod while a renews: it must not win.
	waitRenewals(t, client, 5)
	select {
	case r := <-second:
		t.Fatalf("b acquired (err %v) while a held and renewed the lease", r.err)
	default:
	}
	if got := holder(t, client); got != "a" {
		t.Fatalf("lease holder %q, want a", got)
	}
	select {
	case <-a.lost:
		t.Fatal("a lost the lease while renewing it")
	default:
	}
}

func TestReleaseHandsOverBeforeTheLeaseExpires(t *testing.T) {
	client := fake.NewClientset()
	a := waitAcquired(t, "a", acquireAsync(t, newElector(t, longLease("a"), client)))
	second := acquireAsync(t, newElector(t, longLease("b"), client))
	a.release()
	// The lease lasts an hour: b can only lead now because a gave it up.
	b := waitAcquired(t, "b", second)
	if got := holder(t, client); got != "b" {
		t.Fatalf("lease holder %q after the hand-over, want b", got)
	}
	select {
	case <-a.lost:
		t.Fatal("release closed lost: want lost to mean an unplanned loss only")
	default:
	}
	a.release() // idempotent
	select {
	case <-b.lost:
		t.Fatal("b lost the lease it was handed")
	default:
	}
}

func TestTakeoverWhenTheLeaderStopsRenewing(t *testing.T) {
	fakeClient := fake.NewClientset()
	clientA := newPartitionable(fakeClient)
	a := waitAcquired(t, "a", acquireAsync(t, newElector(t, shortLease("a"), clientA)))
	second := acquireAsync(t, newElector(t, shortLease("b"), fakeClient))

	clientA.cut.Store(true) // a can no longer renew (nor release)
	b := waitAcquired(t, "b", second)
	if got := holder(t, fakeClient); got != "b" {
		t.Fatalf("lease holder %q after the takeover, want b", got)
	}
	select {
	case <-a.lost:
	case <-time.After(bound):
		t.Fatalf("a's lost not closed %s after it stopped renewing", bound)
	}
	select {
	case <-b.lost:
		t.Fatal("b lost the lease it took over")
	default:
	}
}

func TestAcquireEndsWithItsContext(t *testing.T) {
	client := fake.NewClientset()
	a := waitAcquired(t, "a", acquireAsync(t, newElector(t, longLease("a"), client)))
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, _, err := newElector(t, longLease("b"), client).Acquire(ctx)
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled acquire: got %v, want context.Canceled", err)
		}
	case <-time.After(bound):
		t.Fatal("acquire did not return after its context was cancelled")
	}
	if got := holder(t, client); got != "a" {
		t.Fatalf("lease holder %q after a cancelled candidate, want a", got)
	}
	select {
	case <-a.lost:
		t.Fatal("the holder lost the lease to a cancelled candidate")
	default:
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	valid := shortLease("pod-0")
	for _, tc := range []struct {
		name   string
		change func(*kubelease.Config)
		field  string
	}{
		{name: "no namespace", change: func(c *kubelease.Config) { c.Namespace = "" }, field: "Namespace"},
		{name: "bad lease name", change: func(c *kubelease.Config) { c.Name = "Not A Name" }, field: "Name"},
		{name: "no id", change: func(c *kubelease.Config) { c.ID = " " }, field: "ID"},
		{name: "fractional lease", change: func(c *kubelease.Config) { c.LeaseDuration = 2500 * time.Millisecond }, field: "LeaseDuration"},
		{name: "renew not below lease", change: func(c *kubelease.Config) { c.RenewDeadline = c.LeaseDuration }, field: "RenewDeadline"},
		{name: "retry too long", change: func(c *kubelease.Config) { c.RetryPeriod = c.RenewDeadline }, field: "RenewDeadline"},
		{name: "negative retry", change: func(c *kubelease.Config) { c.RetryPeriod = -time.Second }, field: "RetryPeriod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.change(&cfg)
			_, err := kubelease.NewWithClient(cfg, fake.NewClientset())
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("got %v, want an error naming %s", err, tc.field)
			}
			if _, err := kubelease.New(cfg); err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("New: got %v, want an error naming %s", err, tc.field)
			}
		})
	}
	t.Run("zero durations take the defaults", func(t *testing.T) {
		cfg := kubelease.Config{Namespace: testNamespace, Name: testLease, ID: "pod-0"}
		if _, err := kubelease.NewWithClient(cfg, fake.NewClientset()); err != nil {
			t.Fatalf("got %v, want the defaults accepted", err)
		}
	})
	t.Run("no cluster credentials", func(t *testing.T) {
		t.Setenv("KUBERNETES_SERVICE_HOST", "")
		if _, err := kubelease.New(valid); err == nil || !strings.Contains(err.Error(), "credentials") {
			t.Fatalf("New outside a cluster: got %v, want a credentials error", err)
		}
	})
}
