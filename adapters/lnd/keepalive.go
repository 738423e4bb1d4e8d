package lnd

import (
	"context"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc"
)

// keepaliveWarnAbove is the longest grpc.server-ping-time +
// grpc.server-ping-timeout lnmux accepts without a warning. lnd keeps the
// interceptor of an lnmuxd whose host vanished registered until its gRPC
// server keepalive gives up on the connection: meanwhile it holds the
// node's new HTLCs for it and refuses the successor's interceptor, so that
// sum bounds a takeover (docs/high-availability.md, "Partitions"; lnd's
// defaults are 1 min + 20 s).
const keepaliveWarnAbove = 10 * time.Second

// keepaliveAdvice reads lnd's gRPC server keepalive from GetDebugInfo's
// configuration and tells whether it is too lax for a quick takeover.
func keepaliveAdvice(config map[string]string) (pingTime, pingTimeout time.Duration, lax, known bool) {
	t, err1 := time.ParseDuration(config["grpc.server-ping-time"])
	o, err2 := time.ParseDuration(config["grpc.server-ping-timeout"])
	if err1 != nil || err2 != nil {
		return 0, 0, false, false
	}
	return t, o, t+o > keepaliveWarnAbove, true
}

// checkKeepalive warns when the node's gRPC server keepalive lets a
// vanished interceptor stay registered for long. GetDebugInfo needs info,
// offchain, onchain and peers read; a macaroon without them gets a hint to
// check by hand. It never refuses the node.
func (n *Node) checkKeepalive(ctx context.Context, conn grpc.ClientConnInterface) {
	kctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := lnrpc.NewLightningClient(conn).GetDebugInfo(kctx, &lnrpc.GetDebugInfoRequest{})
	if err != nil {
		n.log.InfoContext(ctx, "cannot read lnd's gRPC keepalive (GetDebugInfo): make sure grpc.server-ping-time + grpc.server-ping-timeout is a few seconds (docs/high-availability.md)",
			"err", err)
		return
	}
	t, o, lax, known := keepaliveAdvice(res.GetConfig())
	if known && lax {
		n.log.WarnContext(ctx, "lnd's gRPC keepalive is lax: if this lnmuxd's host is cut off, lnd keeps its interceptor registered (holding new HTLCs, refusing a standby's) until grpc.server-ping-time + grpc.server-ping-timeout have passed; set them to 1s and 3s (docs/high-availability.md)",
			"server_ping_time", t, "server_ping_timeout", o)
	}
}
