package lnd

import (
	"context"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// liquidity measures the node's inbound liquidity for lnmux's route hints
// (docs/route-hints.md) while the session lasts: at once, every
// BalanceInterval, and whenever lnd reports a channel opened, closed,
// activated or deactivated. It never ends the session: a failed
// measurement reports the liquidity as unknown (the node then keeps its
// hint), and an lnd that does not serve the calls is simply not measured.
func (n *Node) liquidity(ctx context.Context, conn grpc.ClientConnInterface, sink ports.NodeSink) {
	ln := lnrpc.NewLightningClient(conn)
	if n.chanInactive == nil {
		n.chanInactive = map[string]time.Time{}
	}
	kick := make(chan struct{}, 1)
	go n.channelEvents(ctx, ln, kick)
	t := time.NewTicker(n.cfg.BalanceInterval)
	defer t.Stop()
	for {
		inbound, err := n.inboundLiquidity(ctx, ln)
		switch {
		case ctx.Err() != nil:
			return
		case status.Code(err) == codes.Unimplemented:
			n.log.WarnContext(ctx, "lnd does not list channels: inbound liquidity unknown", "err", err)
			n.setStatus(sink, func(s *ports.NodeStatus) { s.InboundKnown = false })
			return
		case err != nil:
			n.log.WarnContext(ctx, "inbound liquidity not measured", "err", err)
			n.setStatus(sink, func(s *ports.NodeStatus) { s.InboundKnown = false })
		default:
			n.setStatus(sink, func(s *ports.NodeStatus) { s.Inbound, s.InboundKnown = inbound, true })
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
	}
}

// inboundLiquidity is what the node's channels can receive: each peer's
// balance above the reserve it must keep (lnrpc Channel remote_balance and
// remote_constraints.chan_reserve_sat; the reserve's owner may not dip
// below it, channeldb.ChannelStateBounds). HTLCs in flight are already out
// of the balances of the node's commitment.
//
// An inactive channel (its peer offline) can receive nothing, but like a
// node it counts while it is briefly away: for InactiveChannelGrace from
// the first measurement that found it inactive. lnd deactivates every
// channel when it shuts down (each link's loop reports its channel
// inactive as it stops, htlcswitch/link.go, and the channel events wake
// this loop while lnd still answers), so a node's last measurement before
// a restart would otherwise be zero, and right after one its channels are
// inactive until the peers reconnect (docs/route-hints.md). The channel
// events make that first measurement prompt; the grace's end is noticed
// at the next measurement (BalanceInterval at the latest).
func (n *Node) inboundLiquidity(ctx context.Context, ln lnrpc.LightningClient) (domain.Msat, error) {
	res, err := ln.ListChannels(ctx, &lnrpc.ListChannelsRequest{})
	if err != nil {
		return 0, err
	}
	now := n.cfg.Now()
	open := make(map[string]bool, len(res.Channels))
	var sat int64
	for _, c := range res.Channels {
		open[c.ChannelPoint] = true
		if c.Active {
			delete(n.chanInactive, c.ChannelPoint)
		} else {
			since, known := n.chanInactive[c.ChannelPoint]
			if !known {
				since = now
				n.chanInactive[c.ChannelPoint] = now
			}
			if now.Sub(since) >= n.cfg.InactiveChannelGrace {
				continue
			}
		}
		reserve := int64(c.GetRemoteConstraints().GetChanReserveSat()) //nolint:gosec // a reserve is below the channel's capacity
		sat += max(c.RemoteBalance-reserve, 0)
	}
	for cp := range n.chanInactive {
		if !open[cp] {
			delete(n.chanInactive, cp) // closed
		}
	}
	return domain.Msat(sat) * 1000, nil
}

// channelEvents kicks a measurement for every channel event that changes
// what the node can receive. It ends with ctx or when the stream fails (the
// periodic measurement goes on).
func (n *Node) channelEvents(ctx context.Context, ln lnrpc.LightningClient, kick chan<- struct{}) {
	stream, err := ln.SubscribeChannelEvents(ctx, &lnrpc.ChannelEventSubscription{})
	if err != nil {
		return
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			if ctx.Err() == nil {
				n.log.DebugContext(ctx, "channel events ended", "err", err)
			}
			return
		}
		switch ev.Type {
		case lnrpc.ChannelEventUpdate_OPEN_CHANNEL, lnrpc.ChannelEventUpdate_CLOSED_CHANNEL,
			lnrpc.ChannelEventUpdate_ACTIVE_CHANNEL, lnrpc.ChannelEventUpdate_INACTIVE_CHANNEL:
			select {
			case kick <- struct{}{}:
			default:
			}
		default:
		}
	}
}
