package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/adapters/sqlstore/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestWatchLeadershipOrder: on a lost lock interception stops first, and the
// error that ends the daemon comes only once the multiplexer has returned.
func TestWatchLeadershipOrder(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	lost := make(chan struct{})
	muxCtx, stopMux := context.WithCancel(context.Background())
	muxDone := make(chan struct{})
	var muxStopped atomic.Bool
	go func() {
		<-muxCtx.Done()
		// The multiplexer takes a while to let go of its streams.
		time.Sleep(50 * time.Millisecond)
		muxStopped.Store(true)
		close(muxDone)
	}()
	errc := make(chan error, 1)
	go func() { errc <- watchLeadership(t.Context(), log, lost, stopMux, muxDone) }()
	close(lost)
	err := <-errc
	if !errors.Is(err, errLeaderLost) {
		t.Fatalf("watch: got %v, want errLeaderLost", err)
	}
	if !muxStopped.Load() {
		t.Fatal("watch returned before the multiplexer stopped")
	}

	// Shutdown without a lost lock, and no lock at all, end quietly.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := watchLeadership(ctx, log, make(chan struct{}), func() { t.Error("stopped the mux on shutdown") }, nil); err != nil {
		t.Fatalf("watch on shutdown: %v", err)
	}
	if err := watchLeadership(ctx, log, nil, func() { t.Error("stopped the mux without a lock") }, nil); err != nil {
		t.Fatalf("watch without a lock: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the daemon's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunExitsOnLeaderLoss runs lnmuxd on a real Postgres, kills the
// session holding its leader lock, and expects run to fail (so that main
// exits 1) after interception stopped.
func TestRunExitsOnLeaderLoss(t *testing.T) {
	cleanEnv(t)
	dsn := pgtest.NewDatabase(t)
	t.Setenv("LNMUX_PERSISTENCE_POSTGRES_DSN", dsn)
	t.Setenv("LNMUX_IDENTITY_KEY", testKey)
	for _, sub := range []string{"init", "up"} {
		if _, logs, err := runCmd(t, "migrate", sub); err != nil {
			t.Fatalf("migrate %s: %v\n%s", sub, err, logs)
		}
	}
	// listenAddress refuses port 0: take a free port (another test may grab
	// it in between, which fails this run loudly, never silently).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	var logs syncBuffer
	errc := make(chan error, 1)
	go func() {
		errc <- run(t.Context(), []string{"--listen-address=" + addr, "run"}, io.Discard, &logs)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(logs.String(), "lnmuxd running") {
		select {
		case err := <-errc:
			t.Fatalf("run ended before serving: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("lnmuxd not running:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(t.Context(),
		"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
		sqlstore.LeaderApplicationName).Scan(&n)
	if err != nil || n != 1 {
		t.Fatalf("terminate the leader's session: %d sessions, %v", n, err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, errLeaderLost) {
			t.Fatalf("run after losing the lock: got %v, want errLeaderLost\n%s", err, logs.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("run still going after the leader lock was lost:\n%s", logs.String())
	}
	out := logs.String()
	stop, exit := strings.Index(out, "stopping interception"), strings.Index(out, "interception stopped")
	if stop < 0 || exit < stop {
		t.Fatalf("logs do not show interception stopping before the exit:\n%s", out)
	}
}
