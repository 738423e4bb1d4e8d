package lnd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc"

	"github.com/lnmux/lnmux/ports"
)

// standbyCheckEvery is how often a standby asks a node for GetInfo to keep
// its connection known good (gRPC keepalives keep it open in between).
const standbyCheckEvery = 5 * time.Second

// readyConn is a connection a standby opened and checked, handed to the
// first session of Run so that a new leader starts intercepting without
// dialling or checking again.
type readyConn struct {
	conn *grpc.ClientConn
	info *lnrpc.GetInfoResponse
}

// connectChecked dials the node and runs the checks of a session: identity,
// network, version, flags and build.
func (n *Node) connectChecked(ctx context.Context) (*grpc.ClientConn, *lnrpc.GetInfoResponse, error) {
	conn, err := n.dial()
	if err != nil {
		return nil, nil, err
	}
	info, err := n.check(ctx, conn)
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, info, nil
}

// check asks GetInfo and the build of an open connection and refuses a
// node lnmux may not use.
func (n *Node) check(ctx context.Context, conn *grpc.ClientConn) (*lnrpc.GetInfoResponse, error) {
	ictx, cancel := context.WithTimeout(ctx, 15*time.Second)
	info, err := lnrpc.NewLightningClient(conn).GetInfo(ictx, &lnrpc.GetInfoRequest{})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("getinfo: %w", err)
	}
	if err := n.checkInfo(ctx, info); err != nil {
		return nil, err
	}
	bctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = checkBuild(bctx, conn, n.cfg.PubKey.String())
	cancel()
	if err != nil {
		return nil, err
	}
	n.checkKeepalive(ctx, conn)
	return info, nil
}

// Standby connects to the node and checks it as Run does, without
// intercepting, and keeps that connection open and checked (GetInfo every
// few seconds, reconnecting with backoff) until ctx is done. The connection
// it holds then is taken by the next Run, which starts intercepting on it at
// once. report receives the node's status (connected, never intercepting)
// on every change. Standby returns an ErrMisconfigured error when lnd
// answers but may not be used, and nil when ctx ends. It must not run
// concurrently with Run.
func (n *Node) Standby(ctx context.Context, report func(ports.NodeStatus)) error {
	status := func(connected bool, lastErr string) {
		n.mu.Lock()
		changed := n.status.Connected != connected || n.status.InterceptorActive || n.status.LastError != lastErr
		n.status.Connected, n.status.InterceptorActive, n.status.LastError = connected, false, lastErr
		if changed {
			n.status.Since = n.cfg.Now()
		}
		s := n.status
		n.mu.Unlock()
		if changed {
			report(s)
		}
	}
	backoff := n.cfg.MinBackoff
	for {
		conn, info, err := n.connectChecked(ctx)
		if err == nil {
			n.mu.Lock()
			n.status.Height = info.BlockHeight
			n.mu.Unlock()
			n.setReady(&readyConn{conn: conn, info: info})
			n.log.InfoContext(ctx, "lnd node connected and checked (standby)", "version", info.Version, "height", info.BlockHeight)
			status(true, "")
			backoff = n.cfg.MinBackoff
			err = n.keepChecked(ctx, conn)
			if ctx.Err() != nil {
				return nil // the connection stays for Run
			}
			n.dropReady(conn)
		}
		if ctx.Err() != nil {
			return nil
		}
		status(false, err.Error())
		if errors.Is(err, ErrMisconfigured) {
			n.log.ErrorContext(ctx, "lnd node refused", "err", err)
			return err
		}
		n.log.WarnContext(ctx, "lnd node unreachable (standby)", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, n.cfg.MaxBackoff)
	}
}

// keepChecked repeats GetInfo on conn until it fails or ctx ends.
func (n *Node) keepChecked(ctx context.Context, conn *grpc.ClientConn) error {
	t := time.NewTicker(standbyCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if _, err := n.check(ctx, conn); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}

func (n *Node) setReady(r *readyConn) {
	n.mu.Lock()
	old := n.ready
	n.ready = r
	n.mu.Unlock()
	if old != nil && old.conn != r.conn {
		_ = old.conn.Close()
	}
}

func (n *Node) dropReady(conn *grpc.ClientConn) {
	n.mu.Lock()
	if n.ready != nil && n.ready.conn == conn {
		n.ready = nil
	}
	n.mu.Unlock()
	_ = conn.Close()
}

// takeReady hands the standby's connection to a session, once.
func (n *Node) takeReady() *readyConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := n.ready
	n.ready = nil
	return r
}
