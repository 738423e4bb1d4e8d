package app

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// followInvoice subscribes to an invoice whose set is accepted. The first
// update is the current status, so receiving it proves the subscription is
// registered before anything else happens.
func (h *harness) followInvoice(t *testing.T, hash domain.PaymentHash) (<-chan ports.InvoiceUpdate, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	updates := make(chan ports.InvoiceUpdate, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(updates)
		_ = h.mux.SubscribeInvoice(ctx, hash, func(u ports.InvoiceUpdate) error { updates <- u; return nil })
	}()
	t.Cleanup(func() { cancel(); <-done })
	if u := nextUpdate(t, updates); u.Status != domain.StatusAccepted {
		t.Fatalf("first update %s, want accepted (the current status)", u.Status)
	}
	return updates, cancel
}

func nextUpdate(t *testing.T, ch <-chan ports.InvoiceUpdate) ports.InvoiceUpdate {
	t.Helper()
	select {
	case u, ok := <-ch:
		if !ok {
			t.Fatal("invoice subscription ended; want another update")
		}
		return u
	case <-time.After(10 * time.Second):
		t.Fatal("no invoice update within 10s")
	}
	return ports.InvoiceUpdate{}
}

// settleThenLndReports settles the set and has lnd report its HTLC final:
// settled or failed.
func settleThenLndReports(settled bool) func(*testing.T, *harness, ports.AddInvoiceResult, domain.SetID) {
	return func(t *testing.T, h *harness, inv ports.AddInvoiceResult, setID domain.SetID) {
		t.Helper()
		if err := h.mux.SettleInvoice(ctx, inv.Hash, setID); err != nil {
			t.Fatalf("SettleInvoice: %v", err)
		}
		r := h.nodes[0].next(t)
		h.mux.HTLCFinal(ctx, ports.FinalResolution{Circuit: r.Circuit, Settled: settled})
	}
}

// TestEveryLifecycleStateReachesSubscribers drives an accepted set to each
// of its ends and checks what SubscribeSingleInvoice reports: every status
// the API can show (docs/design.md, "Lifecycle") is produced here. A set no
// one decided on in time is expired, one someone cancelled is cancelled.
func TestEveryLifecycleStateReachesSubscribers(t *testing.T) {
	tests := []struct {
		name string
		// autoFail is the HTLC's auto-fail height above the harness's.
		autoFail uint32
		// end ends the accepted set.
		end  func(t *testing.T, h *harness, inv ports.AddInvoiceResult, setID domain.SetID)
		want []domain.InvoiceStatus // after accepted
	}{
		{
			name: "settled",
			end:  settleThenLndReports(true),
			want: []domain.InvoiceStatus{domain.StatusSettleRequested, domain.StatusSettled},
		},
		{
			name: "failed by lnd after the settle request",
			end:  settleThenLndReports(false),
			want: []domain.InvoiceStatus{domain.StatusSettleRequested, domain.StatusFailed},
		},
		{
			name: "cancelled by the application",
			end: func(t *testing.T, h *harness, inv ports.AddInvoiceResult, setID domain.SetID) {
				if err := h.mux.CancelInvoice(ctx, inv.Hash, setID); err != nil {
					t.Fatalf("CancelInvoice: %v", err)
				}
			},
			want: []domain.InvoiceStatus{domain.StatusCancelled},
		},
		{
			name: "expired: no decision within the accept timeout",
			end: func(t *testing.T, h *harness, _ ports.AddInvoiceResult, _ domain.SetID) {
				h.clock.Advance(h.mux.cfg.AcceptTimeout + time.Second)
			},
			want: []domain.InvoiceStatus{domain.StatusExpired},
		},
		{
			name:     "expired: lnd's auto-fail height draws near",
			autoFail: 50,
			end: func(t *testing.T, h *harness, _ ports.AddInvoiceResult, _ domain.SetID) {
				h.mux.BlockHeight(ctx, h.nodes[0].key, h.height+40)
			},
			want: []domain.InvoiceStatus{domain.StatusExpired},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 1, nil)
			acc := h.subscribe()
			inv := h.invoice(10000, time.Hour)
			p := part{node: h.nodes[0], amount: 10000}
			if tt.autoFail != 0 {
				p.autoFail = h.height + tt.autoFail
			}
			h.send(h.build(inv, p))
			ev := nextAccepted(t, acc)
			updates, _ := h.followInvoice(t, inv.Hash)

			tt.end(t, h, inv, ev.SetID)
			var got []domain.InvoiceStatus
			for range tt.want {
				u := nextUpdate(t, updates)
				if u.SetID != ev.SetID {
					t.Errorf("update %s is about set %s, want set %s", u.Status, u.SetID, ev.SetID)
				}
				got = append(got, u.Status)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("updates after accepted: got %v, want %v", got, tt.want)
			}
		})
	}
}
