package regtest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnrpc"
)

// OpenChannels has Carol open one more channel to peer per capacity (sat, all
// funds on Carol's side), mines six blocks and waits until Carol sees every
// new channel active and can route over it. It returns the new channels'
// ids in the order of sats. Carol may hold several channels with one peer;
// WaitChannelsActive still counts one per peer, so tests that open more
// pin their payments to a channel (OutgoingChanIds or their own routes).
func (c *Cluster) OpenChannels(ctx context.Context, peer *Node, sats ...int64) ([]uint64, error) {
	if err := c.Connect(ctx, c.Carol, peer); err != nil {
		return nil, err
	}
	peerKey, err := hex.DecodeString(peer.PubKey)
	if err != nil {
		return nil, fmt.Errorf("open channel carol→%s: identity key %q: %w", peer.Name, peer.PubKey, err)
	}
	points := make([]string, 0, len(sats))
	for _, sat := range sats {
		cp, err := c.Carol.Client.OpenChannelSync(ctx, &lnrpc.OpenChannelRequest{
			NodePubkey:         peerKey,
			LocalFundingAmount: sat,
			Private:            c.opts.PrivateChannels,
			SatPerVbyte:        2,
		})
		if err != nil {
			return nil, fmt.Errorf("open channel carol→%s: %w", peer.Name, err)
		}
		p, err := channelPoint(cp)
		if err != nil {
			return nil, err
		}
		points = append(points, p)
	}
	if _, err := c.MineBlocks(ctx, 6); err != nil {
		return nil, err
	}
	ids := make([]uint64, len(points))
	err = c.Carol.proc.waitFor(ctx, fmt.Sprintf("%d new active channels to %s", len(points), peer.Name), func(ctx context.Context) error {
		res, err := c.Carol.Client.ListChannels(ctx, &lnrpc.ListChannelsRequest{ActiveOnly: true})
		if err != nil {
			return err
		}
		for i, p := range points {
			j := slices.IndexFunc(res.Channels, func(ch *lnrpc.Channel) bool { return ch.ChannelPoint == p })
			if j < 0 {
				return fmt.Errorf("channel %s not active yet", p)
			}
			ids[i] = res.Channels[j].ChanId
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Active is not yet usable (WaitChannelsActive): ask pathfinding to use
	// each new channel.
	for _, id := range ids {
		err := c.Carol.proc.waitFor(ctx, fmt.Sprintf("channel %d usable", id), func(ctx context.Context) error {
			_, err := c.Carol.Client.QueryRoutes(ctx, &lnrpc.QueryRoutesRequest{PubKey: peer.PubKey, Amt: 1000, OutgoingChanIds: []uint64{id}})
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// ForceClose has node n force-close its channel chanID (n broadcasts its
// commitment) and returns the commitment's txid once lnd has published it.
// Nothing is mined.
func (c *Cluster) ForceClose(ctx context.Context, n *Node, chanID uint64) (string, error) {
	res, err := n.Client.ListChannels(ctx, &lnrpc.ListChannelsRequest{})
	if err != nil {
		return "", err
	}
	i := slices.IndexFunc(res.Channels, func(ch *lnrpc.Channel) bool { return ch.ChanId == chanID })
	if i < 0 {
		return "", fmt.Errorf("%s has no channel %d", n.Name, chanID)
	}
	cp, err := parseChannelPoint(res.Channels[i].ChannelPoint)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the stream goes on until the close confirms: not waited for
	stream, err := n.Client.CloseChannel(ctx, &lnrpc.CloseChannelRequest{ChannelPoint: cp, Force: true})
	if err != nil {
		return "", fmt.Errorf("force-close %d: %w", chanID, err)
	}
	for {
		up, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("force-close %d: stream ended before the close was published", chanID)
		}
		if err != nil {
			return "", fmt.Errorf("force-close %d: %w", chanID, err)
		}
		if p := up.GetClosePending(); p != nil {
			h, err := chainhash.NewHash(p.Txid)
			if err != nil {
				return "", fmt.Errorf("force-close %d: txid: %w", chanID, err)
			}
			return h.String(), nil
		}
	}
}

// Mempool lists the txids in btcd's mempool.
func (c *Cluster) Mempool() ([]string, error) {
	hs, err := c.btcd.client.GetRawMempool()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out, nil
}

// channelPoint renders lnd's ChannelPoint as "txid:index", the form
// ListChannels reports.
func channelPoint(cp *lnrpc.ChannelPoint) (string, error) {
	var txid string
	switch f := cp.FundingTxid.(type) {
	case *lnrpc.ChannelPoint_FundingTxidStr:
		txid = f.FundingTxidStr
	case *lnrpc.ChannelPoint_FundingTxidBytes:
		h, err := chainhash.NewHash(f.FundingTxidBytes)
		if err != nil {
			return "", err
		}
		txid = h.String()
	default:
		return "", fmt.Errorf("channel point without funding txid")
	}
	return fmt.Sprintf("%s:%d", txid, cp.OutputIndex), nil
}

func parseChannelPoint(s string) (*lnrpc.ChannelPoint, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return nil, fmt.Errorf("channel point %q: want txid:index", s)
	}
	idx, err := strconv.ParseUint(s[i+1:], 10, 32)
	if err != nil {
		return nil, fmt.Errorf("channel point %q: %w", s, err)
	}
	return &lnrpc.ChannelPoint{FundingTxid: &lnrpc.ChannelPoint_FundingTxidStr{FundingTxidStr: s[:i]}, OutputIndex: uint32(idx)}, nil
}
