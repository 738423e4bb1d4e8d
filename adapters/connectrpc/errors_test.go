package connectrpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/lnmux/lnmux/domain"
)

func TestCodeOf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		code connect.Code
		ok   bool
	}{
		{domain.ErrInvalidArgument, connect.CodeInvalidArgument, true},
		{fmt.Errorf("decode: %w", domain.ErrInvalidArgument), connect.CodeInvalidArgument, true},
		{domain.ErrInvoiceNotFound, connect.CodeNotFound, true},
		{domain.ErrSetNotFound, connect.CodeNotFound, true},
		{domain.ErrSettleRequested, connect.CodeFailedPrecondition, true},
		{domain.ErrInvalidTransition, connect.CodeFailedPrecondition, true},
		{fmt.Errorf("store: %w", domain.ErrConflict), connect.CodeFailedPrecondition, true},
		{domain.ErrNotReady, connect.CodeUnavailable, true},
		{context.Canceled, connect.CodeCanceled, true},
		{fmt.Errorf("wait: %w", context.DeadlineExceeded), connect.CodeDeadlineExceeded, true},
		// A cancelled call reports Canceled even if the service wrapped it.
		{errors.Join(domain.ErrNotReady, context.Canceled), connect.CodeCanceled, true},
		{domain.ErrUnknownPaymentAddr, 0, false},
		{errors.New("disk on fire"), 0, false},
	}
	for _, tc := range cases {
		code, ok := codeOf(tc.err)
		if code != tc.code || ok != tc.ok {
			t.Errorf("codeOf(%v) = %v, %v; want %v, %v", tc.err, code, ok, tc.code, tc.ok)
		}
	}
}

func TestToConnect(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	draining, drain := context.WithCancel(context.Background())
	s := &service{log: slog.New(slog.NewTextHandler(logs, nil)), draining: draining}
	ctx := t.Context()

	if err := s.toConnect(ctx, "/p", nil); err != nil {
		t.Errorf("nil → %v", err)
	}
	sendErr := connect.NewError(connect.CodeUnavailable, errors.New("client gone"))
	if err := s.toConnect(ctx, "/p", fmt.Errorf("send: %w", sendErr)); err != sendErr { //nolint:errorlint // the very error must pass through, not a wrapper
		t.Errorf("connect error not passed through: %v", err)
	}
	err := s.toConnect(ctx, "/p", fmt.Errorf("%w: htlc x", domain.ErrSetNotFound))
	if connect.CodeOf(err) != connect.CodeNotFound || !strings.Contains(err.Error(), "htlc set not found: htlc x") {
		t.Errorf("domain error → %v", err)
	}
	err = s.toConnect(ctx, "/p", errors.New("dsn postgres://secret@db"))
	var cerr *connect.Error
	if !errors.As(err, &cerr) || cerr.Code() != connect.CodeInternal || !strings.HasPrefix(cerr.Message(), "internal error (error id ") ||
		strings.Contains(cerr.Message(), "secret") {
		t.Errorf("unexpected error → %v", err)
	}
	if !strings.Contains(logs.String(), "secret@db") || !strings.Contains(logs.String(), "procedure=/p") {
		t.Errorf("unexpected error not logged:\n%s", logs)
	}
	// A cancellation inside lnmux, while the client's context is alive.
	if err := s.toConnect(ctx, "/p", context.Canceled); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Errorf("canceled inside lnmux → %v", err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if err := s.toConnect(cctx, "/p", fmt.Errorf("store: %w", context.Canceled)); connect.CodeOf(err) != connect.CodeCanceled {
		t.Errorf("canceled by the client → %v", err)
	}
	drain()
	if err := s.toConnect(ctx, "/p", context.Canceled); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Errorf("canceled while draining → %v", err)
	}
}
