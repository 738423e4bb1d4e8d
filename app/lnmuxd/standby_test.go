package main

import (
	"context"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lnmux/lnmux/adapters/memstore"
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
