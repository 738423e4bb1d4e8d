package lnd

import (
	"context"
	"fmt"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// finals reports lnd's final word on HTLCs without a gap (docs/design.md, I3):
// subscribe to HTLC events and wait until lnd confirms the subscription,
// then look up every HTLC the application still waits for, then forward
// each FinalHtlcEvent. An HTLC that ends between the lookup and the event
// is reported twice; the sink treats HTLCFinal idempotently.
//
// lnd sends a FinalHtlcEvent for every incoming HTLC of the node, including
// ordinary forwards and its own invoices; the sink ignores unknown circuits.
func (n *Node) finals(ctx context.Context, conn grpc.ClientConnInterface, sink ports.NodeSink, q *queue) error {
	stream, err := routerrpc.NewRouterClient(conn).SubscribeHtlcEvents(ctx, &routerrpc.SubscribeHtlcEventsRequest{})
	if err != nil {
		return fmt.Errorf("htlc events: %w", err)
	}
	first, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("htlc events: %w", err)
	}
	if first.GetSubscribedEvent() == nil {
		return fmt.Errorf("htlc events: expected the subscribed event first, got %T", first.Event)
	}

	ln := lnrpc.NewLightningClient(conn)
	for _, c := range sink.PendingCircuits(ctx, n.cfg.PubKey) {
		res, err := ln.LookupHtlcResolution(ctx, &lnrpc.LookupHtlcResolutionRequest{ChanId: c.Chan, HtlcIndex: c.HTLC})
		if status.Code(err) == codes.NotFound {
			continue // not final yet: its event will come
		}
		if err != nil {
			return fmt.Errorf("lookup htlc resolution %s: %w", c, err)
		}
		r := ports.FinalResolution{Circuit: c, Settled: res.Settled}
		q.push(func(ctx context.Context) { n.final(ctx, sink, r) })
	}

	for {
		ev, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("htlc events: %w", err)
		}
		final := ev.GetFinalHtlcEvent()
		if final == nil {
			continue
		}
		r := ports.FinalResolution{
			Circuit: domain.CircuitKey{Node: n.cfg.PubKey, Chan: ev.IncomingChannelId, HTLC: ev.IncomingHtlcId},
			Settled: final.Settled,
		}
		q.push(func(ctx context.Context) { n.final(ctx, sink, r) })
	}
}

// final hands lnd's final word to the sink inside its span.
func (n *Node) final(ctx context.Context, sink ports.NodeSink, r ports.FinalResolution) {
	ctx, span := n.traceFinal(ctx, r)
	defer span.End()
	sink.HTLCFinal(ctx, r)
}
