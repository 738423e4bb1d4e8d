package main

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lnmux/lnmux/adapters/memstore"
	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/app"
	"github.com/lnmux/lnmux/app/lnmuxd/wiring"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

func TestReadinessFollowsTheRole(t *testing.T) {
	r := newRole(nil)
	probe := func(h http.Handler) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		return rec.Code
	}
	tests := []struct {
		name          string
		leading       bool
		ready, health int
	}{
		{name: "standby", leading: false, ready: http.StatusServiceUnavailable, health: http.StatusOK},
		{name: "leader", leading: true, ready: http.StatusOK, health: http.StatusOK},
	}
	for _, tt := range tests {
		r.setLeading(tt.leading)
		if got := probe(r.readyz()); got != tt.ready {
			t.Errorf("%s: /readyz = %d, want %d", tt.name, got, tt.ready)
		}
		if got := probe(livez()); got != tt.health {
			t.Errorf("%s: /livez = %d, want %d", tt.name, got, tt.health)
		}
	}
}

// blockingPending is a store whose ListPending waits until its caller gives
// up, as a slow database does while the operator stops lnmuxd.
type blockingPending struct {
	ports.InvoiceStore
	entered chan struct{}
}

func (s *blockingPending) ListPending(ctx context.Context) ([]domain.Invoice, error) {
	close(s.entered)
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestStopDuringRecoveryIsClean: a shutdown (SIGTERM, a hand-over) that
// arrives while the new leader still loads the store is a clean stop, not
// a failure: nothing was intercepted yet, and lnmuxd must exit 0.
func TestStopDuringRecoveryIsClean(t *testing.T) {
	key, err := hex.DecodeString(testKey)
	if err != nil {
		t.Fatal(err)
	}
	store := &blockingPending{InvoiceStore: memstore.New(), entered: make(chan struct{})}
	log := slog.New(slog.DiscardHandler)
	mux, err := app.New(app.Config{IdentityKey: key}, nil, store, app.SystemClock{}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- lead(ctx, leadDeps{log: log, mux: mux, gate: wiring.NewGate(nil), role: newRole(nil)})
	}()
	<-store.entered
	stop()
	if err := <-done; err != nil {
		t.Fatalf("lead after a stop during recovery: %v, want nil", err)
	}
}

// fakeLock is a leader lock granted at once, lost when the test says.
type fakeLock struct {
	lost    chan struct{}
	freedBy func() time.Time
}

func (l fakeLock) Acquire(context.Context) (heldLock, error) {
	return heldLock{lost: l.lost, release: func() {}, freedBy: l.freedBy}, nil
}

// fakeRows is a leader row nobody else writes.
type fakeRows struct{}

func (fakeRows) LeaderRow(context.Context) (sqlstore.LeaderRow, error) {
	return sqlstore.LeaderRow{Epoch: 1, Holder: "me"}, nil
}
func (fakeRows) MarkIntercepting(context.Context, uint64) error { return nil }
func (fakeRows) StandbyWaiting(context.Context) (bool, error)   { return false, nil }

// orderMux records when the leader was deposed and when its streams
// (Run's context) ended.
type orderMux struct {
	running  chan struct{}
	mu       sync.Mutex
	events   []string
	deposed  time.Time
	streamed time.Time // when Run's context ended: the streams close
}

func (m *orderMux) Recover(context.Context) error { return nil }
func (m *orderMux) Run(ctx context.Context) error {
	close(m.running)
	<-ctx.Done()
	m.mu.Lock()
	m.events = append(m.events, "streams closed")
	m.streamed = time.Now()
	m.mu.Unlock()
	return nil
}

func (m *orderMux) Depose(context.Context) error {
	m.mu.Lock()
	m.events = append(m.events, "deposed")
	m.deposed = time.Now()
	m.mu.Unlock()
	return nil
}
func (m *orderMux) NodeStatusChanged(context.Context, ports.NodeStatus) {}

// TestSilentlyLostLockKeepsStreamsOpenAndSilent: a leader whose lock is
// lost silently (its database cut off) is deposed at once (no answer
// leaves it from then on) but keeps its interceptor streams open until the
// lock's freedBy time, so that lnd holds new HTLCs for the successor rather
// than refusing them while no interceptor can register; then it closes
// them and lead ends with errLeaderLost. A lock lost with no such time
// closes them right after the deposition.
func TestSilentlyLostLockKeepsStreamsOpenAndSilent(t *testing.T) {
	for _, silent := range []bool{true, false} {
		var freedAt time.Time
		lock := fakeLock{lost: make(chan struct{})}
		if silent {
			lock.freedBy = func() time.Time { return freedAt }
		}
		mux := &orderMux{running: make(chan struct{})}
		log := slog.New(slog.DiscardHandler)
		done := make(chan error, 1)
		go func() {
			done <- lead(t.Context(), leadDeps{log: log, rows: fakeRows{}, leader: lock, mux: mux,
				gate: wiring.NewGate(nil), role: newRole(fakeRows{})})
		}()
		<-mux.running
		freedAt = time.Now().Add(100 * time.Millisecond)
		close(lock.lost)
		if err := <-done; !errors.Is(err, errLeaderLost) {
			t.Fatalf("silent=%v: lead after a lost lock: %v, want errLeaderLost", silent, err)
		}
		mux.mu.Lock()
		if want := []string{"deposed", "streams closed"}; !slices.Equal(mux.events, want) {
			t.Errorf("silent=%v: events %v, want %v", silent, mux.events, want)
		}
		// Timers never fire early: with a freedBy time the streams
		// cannot have closed before it.
		if silent && mux.streamed.Before(freedAt) {
			t.Errorf("streams closed %s before the lock's freedBy time", freedAt.Sub(mux.streamed))
		}
		mux.mu.Unlock()
	}
}
