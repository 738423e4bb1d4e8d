// Package regtest runs a throwaway Lightning cluster on bitcoin regtest for
// tests and for the developer command: btcd, Alice and Bob (the nodes lnmux
// multiplexes, started with --requireinterceptor and
// --store-final-htlc-resolutions) and Carol (the payer) with channels
// Carol→Alice and Carol→Bob. Everything listens on free loopback ports and
// lives in a temporary directory; the daemons are killed when the cluster is
// closed or its context ends.
package regtest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lnrpc"
	"golang.org/x/sync/errgroup"
)

// shutdownGrace is how long a daemon may take to stop before it is killed.
const shutdownGrace = 15 * time.Second

// Options configure a cluster. The zero value is a working default.
type Options struct {
	// Dir is where the cluster's temporary directory is created
	// (default os.TempDir()).
	Dir string
	// BinDir holds btcd, btcctl, lnd and lncli. Default: Binaries().
	BinDir string
	// AliceChannelSat and BobChannelSat are the capacities of the channels
	// Carol opens to Alice and Bob (default 1,000,000 sat each; at most
	// 16,777,215). All funds are on Carol's side. Make one small to force
	// a multi-part payment.
	AliceChannelSat int64
	BobChannelSat   int64
	// PrivateChannels opens unannounced channels.
	PrivateChannels bool
	// ExtraArgs adds lnd flags per node name ("alice", "bob", "carol").
	ExtraArgs map[string][]string
	// Logf receives progress lines (e.g. t.Logf); nil is silent.
	Logf func(format string, args ...any)
	// KeepDir keeps the temporary directory after Close.
	KeepDir bool
}

// Cluster is a running regtest cluster.
type Cluster struct {
	// Dir holds every daemon's data and logs.
	Dir    string
	BinDir string
	// Alice and Bob are the multiplexed nodes, Carol is the payer.
	Alice, Bob, Carol *Node

	opts      Options
	btcd      *btcd
	closeOnce sync.Once
	closeErr  error
	stopCtx   func() bool
}

// Nodes returns Alice, Bob and Carol.
func (c *Cluster) Nodes() []*Node { return []*Node{c.Alice, c.Bob, c.Carol} }

// Start builds or locates the binaries, starts btcd and the three lnd nodes,
// funds Carol and opens the two channels, and returns once both channels are
// active on both sides. Cancelling ctx later kills the cluster; call Close
// in any case.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if opts.AliceChannelSat == 0 {
		opts.AliceChannelSat = 1_000_000
	}
	if opts.BobChannelSat == 0 {
		opts.BobChannelSat = 1_000_000
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	began := time.Now()
	binDir := opts.BinDir
	if binDir == "" {
		if binDir, err = Binaries(ctx, logf); err != nil {
			return nil, err
		}
	} else if err := checkBinaries(binDir); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(opts.Dir, "lnmux-regtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, BinDir: binDir, opts: opts}
	c.stopCtx = context.AfterFunc(ctx, func() { _ = c.Close() })
	defer func() {
		if err != nil {
			logf("regtest: start failed; logs:\n%s", c.LogPaths())
			c.opts.KeepDir = true
			_ = c.Close()
		}
	}()

	ports, err := freePorts(7)
	if err != nil {
		return nil, err
	}
	if c.btcd, err = newBtcd(filepath.Join(binDir, "btcd"), filepath.Join(dir, "btcd"), ports[0]); err != nil {
		return nil, err
	}
	lnd := filepath.Join(binDir, "lnd")
	c.Alice = newNode("alice", lnd, filepath.Join(dir, "alice"), ports[1], ports[2], c.btcd,
		append(append([]string{}, ClusterFlags...), opts.ExtraArgs["alice"]...))
	c.Bob = newNode("bob", lnd, filepath.Join(dir, "bob"), ports[3], ports[4], c.btcd,
		append(append([]string{}, ClusterFlags...), opts.ExtraArgs["bob"]...))
	c.Carol = newNode("carol", lnd, filepath.Join(dir, "carol"), ports[5], ports[6], c.btcd,
		opts.ExtraArgs["carol"])

	if err := c.btcd.start(ctx); err != nil {
		return nil, err
	}
	// Mine past segwit activation while the nodes start. Bounded: a node
	// whose RPC never answers (seen once with several clusters starting at
	// once on a loaded machine) fails the start instead of hanging it;
	// StartT then tries once more on fresh ports.
	startCtx, cancelStart := context.WithTimeout(ctx, startTimeout)
	defer cancelStart()
	g, gctx := errgroup.WithContext(startCtx)
	g.Go(func() error {
		_, err := c.btcd.mine(segwitHeight)
		return err
	})
	for _, n := range c.Nodes() {
		g.Go(func() error { return n.start(gctx) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	logf("regtest: btcd and lnd up after %s", time.Since(began).Round(time.Millisecond))

	// Fund Carol with several coins so both channels can be opened at once.
	addr, err := c.Carol.Client.NewAddress(ctx, &lnrpc.NewAddressRequest{Type: lnrpc.AddressType_WITNESS_PUBKEY_HASH})
	if err != nil {
		return nil, fmt.Errorf("carol new address: %w", err)
	}
	carolAddr, err := btcutil.DecodeAddress(addr.Address, &chaincfg.RegressionNetParams)
	if err != nil {
		return nil, err
	}
	for range 4 {
		if _, err := c.btcd.send(map[btcutil.Address]btcutil.Amount{carolAddr: btcutil.SatoshiPerBitcoin}); err != nil {
			return nil, err
		}
	}
	if _, err := c.MineBlocks(ctx, 1); err != nil {
		return nil, err
	}
	if err := c.Carol.proc.waitFor(ctx, "confirmed balance", func(ctx context.Context) error {
		bal, err := c.Carol.Client.WalletBalance(ctx, &lnrpc.WalletBalanceRequest{})
		if err != nil {
			return err
		}
		if bal.ConfirmedBalance < 4*btcutil.SatoshiPerBitcoin {
			return fmt.Errorf("confirmed balance %d", bal.ConfirmedBalance)
		}
		return nil
	}); err != nil {
		return nil, err
	}

	for _, ch := range []struct {
		peer *Node
		sat  int64
	}{{c.Alice, opts.AliceChannelSat}, {c.Bob, opts.BobChannelSat}} {
		if err := c.Connect(ctx, c.Carol, ch.peer); err != nil {
			return nil, err
		}
		peerKey, err := hex.DecodeString(ch.peer.PubKey)
		if err != nil {
			return nil, fmt.Errorf("open channel carol→%s: identity key %q: %w", ch.peer.Name, ch.peer.PubKey, err)
		}
		if _, err := c.Carol.Client.OpenChannelSync(ctx, &lnrpc.OpenChannelRequest{
			NodePubkey:         peerKey,
			LocalFundingAmount: ch.sat,
			Private:            opts.PrivateChannels,
			SatPerVbyte:        2,
		}); err != nil {
			return nil, fmt.Errorf("open channel carol→%s: %w", ch.peer.Name, err)
		}
	}
	if _, err := c.MineBlocks(ctx, 6); err != nil {
		return nil, err
	}
	if err := c.WaitChannelsActive(ctx); err != nil {
		return nil, err
	}
	logf("regtest: cluster ready in %s (dir %s)", time.Since(began).Round(time.Millisecond), dir)
	return c, nil
}

// TB is the part of testing.TB that StartT needs.
type TB interface {
	Helper()
	Context() context.Context
	Cleanup(func())
	Failed() bool
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// startTimeout bounds how long btcd and the lnd nodes may take to answer
// their RPC when a cluster starts.
const startTimeout = 4 * time.Minute

// StartT starts a cluster for a test and closes it in t.Cleanup. When the
// test failed, the directory is kept and the log paths are printed.
func StartT(t TB, opts Options) *Cluster {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	// The cluster must outlive t.Context(), which ends before cleanups
	// run; Close stops it.
	c, err := Start(context.WithoutCancel(t.Context()), opts)
	if err != nil {
		t.Logf("regtest cluster: %v; starting again on fresh ports", err)
		c, err = Start(context.WithoutCancel(t.Context()), opts)
	}
	if err != nil {
		t.Fatalf("regtest cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.opts.KeepDir = true
			t.Logf("regtest: test failed; cluster dir %s kept, logs:\n%s", c.Dir, c.LogPaths())
		}
		if err := c.Close(); err != nil {
			t.Logf("regtest: close: %v", err)
		}
	})
	return c
}

// LogPaths lists every daemon's log file, one per line.
func (c *Cluster) LogPaths() string {
	var b strings.Builder
	if c.btcd != nil {
		fmt.Fprintf(&b, "  btcd:  %s\n", c.btcd.proc.logPath)
	}
	for _, n := range c.Nodes() {
		if n != nil {
			fmt.Fprintf(&b, "  %-6s %s\n", n.Name+":", n.LogPath)
		}
	}
	return b.String()
}

// Close stops every daemon (SIGINT, then SIGKILL of its process group) and
// removes the directory unless KeepDir. It is safe to call more than once.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		if c.stopCtx != nil {
			c.stopCtx()
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i, n := range c.Nodes() {
			if n == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = n.close()
			}()
		}
		wg.Wait()
		if c.btcd != nil {
			errs[3] = c.btcd.stop()
		}
		c.closeErr = errors.Join(errs...)
		if !c.opts.KeepDir {
			c.closeErr = errors.Join(c.closeErr, os.RemoveAll(c.Dir))
		}
	})
	return c.closeErr
}

// Height returns btcd's best height.
func (c *Cluster) Height() (int64, error) { return c.btcd.height() }

// MineBlocks mines n blocks and waits until every running node is synced to
// the new height, which it returns.
func (c *Cluster) MineBlocks(ctx context.Context, n uint32) (int64, error) {
	h, err := c.btcd.mine(n)
	if err != nil {
		return 0, err
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, node := range c.Nodes() {
		if node.Running() {
			g.Go(func() error { return node.waitSynced(gctx, h) })
		}
	}
	return h, g.Wait()
}

// Stop shuts a node down gracefully; its data is kept for Start.
func (c *Cluster) Stop(n *Node) error { return n.proc.stop(shutdownGrace) }

// restartTimeout bounds how long Start waits for a restarted node to be
// synced and its channels usable: a hang becomes an error naming the log.
const restartTimeout = 2 * time.Minute

// Start restarts a stopped node with its data and waits until it is synced
// and its channels are active again.
func (c *Cluster) Start(ctx context.Context, n *Node) error {
	ctx, cancel := context.WithTimeout(ctx, restartTimeout)
	defer cancel()
	if err := n.start(ctx); err != nil {
		return err
	}
	h, err := c.btcd.height()
	if err != nil {
		return err
	}
	if err := n.waitSynced(ctx, h); err != nil {
		return err
	}
	// Carol would reconnect by herself, but only after lnd's reconnection
	// backoff, which grows with each failed attempt while the node was
	// down: reconnect now.
	if n != c.Carol && c.Carol.Running() {
		if err := c.Connect(ctx, c.Carol, n); err != nil {
			return err
		}
	} else if n == c.Carol {
		for _, peer := range []*Node{c.Alice, c.Bob} {
			if peer.Running() {
				if err := c.Connect(ctx, c.Carol, peer); err != nil {
					return err
				}
			}
		}
	}
	return c.WaitChannelsActive(ctx)
}

// Connect makes from a peer of to (idempotent).
func (c *Cluster) Connect(ctx context.Context, from, to *Node) error {
	_, err := from.Client.ConnectPeer(ctx, &lnrpc.ConnectPeerRequest{
		Addr: &lnrpc.LightningAddress{Pubkey: to.PubKey, Host: to.P2PAddr},
		Perm: false,
	})
	if err != nil && !strings.Contains(err.Error(), "already") {
		return fmt.Errorf("connect %s→%s: %w", from.Name, to.Name, err)
	}
	return nil
}

// WaitChannelsActive waits until every running node sees all its channels
// active (Carol two, Alice and Bob one each) and Carol can route over them.
func (c *Cluster) WaitChannelsActive(ctx context.Context) error {
	want := map[*Node]int{c.Alice: 1, c.Bob: 1, c.Carol: 0}
	if c.Alice.Running() {
		want[c.Carol]++
	}
	if c.Bob.Running() {
		want[c.Carol]++
	}
	g, gctx := errgroup.WithContext(ctx)
	for n, count := range want {
		if !n.Running() {
			continue
		}
		g.Go(func() error {
			return n.proc.waitFor(gctx, fmt.Sprintf("%d active channels", count), func(ctx context.Context) error {
				res, err := n.Client.ListChannels(ctx, &lnrpc.ListChannelsRequest{ActiveOnly: true})
				if err != nil {
					return err
				}
				if len(res.Channels) < count {
					return fmt.Errorf("%d of %d channels active", len(res.Channels), count)
				}
				return nil
			})
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// An active channel is not yet usable: Carol's link becomes eligible to
	// forward a moment later. Pathfinding with her link bandwidths tells.
	for _, peer := range []*Node{c.Alice, c.Bob} {
		if !peer.Running() || !c.Carol.Running() {
			continue
		}
		err := c.Carol.proc.waitFor(ctx, "a usable channel to "+peer.Name, func(ctx context.Context) error {
			_, err := c.Carol.Client.QueryRoutes(ctx, &lnrpc.QueryRoutesRequest{PubKey: peer.PubKey, Amt: 1000})
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Channel returns the channel between Carol and peer as Carol sees it.
func (c *Cluster) Channel(ctx context.Context, peer *Node) (*lnrpc.Channel, error) {
	res, err := c.Carol.Client.ListChannels(ctx, &lnrpc.ListChannelsRequest{})
	if err != nil {
		return nil, err
	}
	for _, ch := range res.Channels {
		if ch.RemotePubkey == peer.PubKey {
			return ch, nil
		}
	}
	return nil, fmt.Errorf("carol has no channel with %s", peer.Name)
}

// freePorts reserves n distinct loopback ports. They are released before
// return, so another process could take one; on loopback in a test that is
// rare enough.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
