package lnd_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/lnmux/lnmux/adapters/lnd"
	"github.com/lnmux/lnmux/adapters/lnd/lndfake"
)

// syncBuffer is a log destination safe for the node's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestRefusesLndBeforeOnChainSettlementWorks: an lnd older than v0.21.1
// cannot settle an HTLC on chain (lnd issue 10892); the node refuses it at
// connect, saying why, and never intercepts. With AllowUnsafeVersion it
// intercepts, and says at error level why it should not.
func TestRefusesLndBeforeOnChainSettlementWorks(t *testing.T) {
	srv, err := lndfake.Start(lndfake.Options{Dir: t.TempDir(), Height: 500, Version: "0.21.0-beta commit=v0.21.0-beta"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), waitLong) // only a hang fails
	defer cancel()

	strict := srv.Config()
	strict.Logger = testLogger()
	node, err := lnd.New(strict)
	if err != nil {
		t.Fatal(err)
	}
	s := newSink()
	err = node.Run(ctx, s)
	if !errors.Is(err, lnd.ErrMisconfigured) || !strings.Contains(err.Error(), "10892") ||
		!strings.Contains(err.Error(), "v0.21.1") || !strings.Contains(err.Error(), "allowUnsafeVersion") {
		t.Fatalf("Run against lnd 0.21.0 = %v; want ErrMisconfigured naming v0.21.1, lnd issue 10892 and the switch", err)
	}
	if st := s.lastStatus(); st.InterceptorActive || !strings.Contains(st.LastError, "10892") {
		t.Errorf("status %+v", st)
	}

	var logs syncBuffer
	cfg := srv.Config()
	cfg.AllowUnsafeVersion = true
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	unsafe, err := lnd.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- unsafe.Run(rctx, newSink()) }()
	if err := srv.WaitInterceptor(ctx); err != nil {
		t.Fatalf("allowUnsafeVersion: %v", err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("allowUnsafeVersion: Run = %v", err)
	}
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "UNSAFE lnd version") || !strings.Contains(out, "10892") {
		t.Errorf("no error-level warning about the unsafe version in the log:\n%s", out)
	}
}
