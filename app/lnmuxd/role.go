package main

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/grpchealth"

	"github.com/lnmux/lnmux/adapters/connectrpc"
	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// role is whether this lnmuxd leads (docs/high-availability.md). It feeds
// the API's standby guard and the readiness checks a load balancer uses:
// the gRPC health service answers SERVING for lnmux.Service only on the
// leader and for "" (the process) on every healthy instance; /readyz and
// /livez on the instrumentation port say the same over plain HTTP.
type role struct {
	leading atomic.Bool
	health  *grpchealth.StaticChecker
	rows    leaderRowReader

	mu     sync.Mutex
	leader string // who leads, from the leader row; "" if unknown
}

var _ connectrpc.Role = (*role)(nil)

// leaderRowReader reads who leads (sqlstore.Store).
type leaderRowReader interface {
	LeaderRow(ctx context.Context) (sqlstore.LeaderRow, error)
}

func newRole(rows leaderRowReader) *role {
	r := &role{health: grpchealth.NewStaticChecker(lnmuxpbconnect.ServiceName), rows: rows}
	r.setLeading(false)
	return r
}

// Leading implements connectrpc.Role.
func (r *role) Leading() bool { return r.leading.Load() }

// Leader implements connectrpc.Role.
func (r *role) Leader() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leader
}

func (r *role) setLeading(on bool) {
	r.leading.Store(on)
	st := grpchealth.StatusNotServing
	if on {
		st = grpchealth.StatusServing
	}
	r.health.SetStatus(lnmuxpbconnect.ServiceName, st)
	r.health.SetStatus("", grpchealth.StatusServing)
}

// stopping reports NOT_SERVING everywhere: the process is going away.
func (r *role) stopping() {
	r.leading.Store(false)
	r.health.SetStatus(lnmuxpbconnect.ServiceName, grpchealth.StatusNotServing)
	r.health.SetStatus("", grpchealth.StatusNotServing)
}

// refreshLeader reads who leads from the leader row now and then, until
// ctx is done, for the standby's refusals.
func (r *role) refreshLeader(ctx context.Context, every time.Duration) {
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		row, err := r.rows.LeaderRow(qctx)
		cancel()
		if err == nil {
			r.mu.Lock()
			r.leader = row.Holder
			r.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// readyz answers 200 on the leader and 503 on a standby: for a load
// balancer or a Kubernetes readiness probe that must send the leader-only
// calls to the leader.
func (r *role) readyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.Leading() {
			_, _ = w.Write([]byte("leader\n"))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("standby\n"))
	})
}

// livez answers 200 while the process serves, leader or standby: a
// liveness probe must not restart a healthy standby.
func livez() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
}
