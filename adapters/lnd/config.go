// Package lnd connects lnmux to the LND nodes of its cluster: it implements
// ports.Node over lnd's gRPC API (routerrpc HtlcInterceptor and
// SubscribeHtlcEvents, chainrpc block epochs, lnrpc GetInfo,
// LookupHtlcResolution, ListChannels and SubscribeChannelEvents). It is the
// only package that talks to lnd.
package lnd

import (
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/lnmux/lnmux/domain"
)

// Config describes one cluster node.
type Config struct {
	// PubKey is the node's identity key; lnmux refuses a node that reports
	// another one.
	PubKey domain.NodeKey
	// URL is lnd's gRPC host:port (lnmux.yml lndUrl).
	URL string
	// TLSCertPath is lnd's tls.cert; MacaroonPath a macaroon that may read
	// info and offchain data and use the router (admin.macaroon does).
	TLSCertPath  string
	MacaroonPath string
	// Network is lnd's network as lnmux.yml names it: mainnet, testnet,
	// testnet4, signet, regtest or simnet.
	Network string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the delay between reconnection
	// attempts (defaults 500 ms and 30 s; it doubles after each failure).
	MinBackoff, MaxBackoff time.Duration
	// Now defaults to time.Now; it only stamps status changes.
	Now func() time.Time
	// AllowUnsafeVersion accepts an lnd from v0.16.0 that predates
	// v0.21.1, whose interceptor cannot settle an HTLC on chain, logging
	// an error at every connect; without it such a node is refused
	// (ErrMisconfigured).
	AllowUnsafeVersion bool
	// DecodeWorkers is the number of goroutines that peel HTLC onions
	// ahead of the node's ordered delivery (queue.go); 0 means GOMAXPROCS,
	// a negative number none (each onion is peeled on the delivery
	// goroutine, one at a time).
	DecodeWorkers int
	// BalanceInterval is how often the node's inbound liquidity is
	// measured for the route hints, besides on channel events (default
	// 30 s; liquidity.go).
	BalanceInterval time.Duration
	// InactiveChannelGrace: an inactive channel's inbound still counts
	// this long after it was first measured inactive (default 5 minutes,
	// as lnmux's route hint grace; liquidity.go).
	InactiveChannelGrace time.Duration
}

// minVersion is the oldest lnd lnmux trusts: before v0.21.1 lnd's
// interceptor could not settle an HTLC on chain (lnd issue 10892, fixed by
// PR 10895; docs/lnd-behaviour.md, "lnd versions").
var minVersion = [3]int{0, 21, 1}

// minUnsafeVersion is the oldest lnd AllowUnsafeVersion accepts: the
// interceptor's auto_fail_height and the final HTLC resolutions lnmux
// relies on appeared in v0.16.0.
var minUnsafeVersion = [3]int{0, 16, 0}

// networks maps each network name of lnmux.yml (lnd.network) to the chain
// parameters of its invoices, in the order NetworkNames lists them. It is
// the one table of network names: lnmuxd validates lnd.network with it.
var networks = []struct {
	name   string
	params *chaincfg.Params
}{
	{"mainnet", &chaincfg.MainNetParams},
	{"testnet", &chaincfg.TestNet3Params},
	{"testnet4", &chaincfg.TestNet4Params},
	{"signet", &chaincfg.SigNetParams},
	{"regtest", &chaincfg.RegressionNetParams},
	{"simnet", &chaincfg.SimNetParams},
}

// ChainParams returns the chain parameters of a network named as in
// lnmux.yml, and false for an unknown name.
func ChainParams(network string) (*chaincfg.Params, bool) {
	for _, n := range networks {
		if n.name == network {
			return n.params, true
		}
	}
	return nil, false
}

// NetworkNames lists the network names ChainParams knows.
func NetworkNames() []string {
	names := make([]string, len(networks))
	for i, n := range networks {
		names[i] = n.name
	}
	return names
}

func (c *Config) validate() error {
	if c.PubKey == (domain.NodeKey{}) {
		return fmt.Errorf("%w: lnd node: pubKey is required", domain.ErrInvalidArgument)
	}
	if _, _, err := net.SplitHostPort(c.URL); err != nil {
		return fmt.Errorf("%w: lnd node %s: lndUrl %q is not host:port", domain.ErrInvalidArgument, c.PubKey, c.URL)
	}
	if c.TLSCertPath == "" || c.MacaroonPath == "" {
		return fmt.Errorf("%w: lnd node %s: tlsCertPath and macaroonPath are required", domain.ErrInvalidArgument, c.PubKey)
	}
	if _, ok := ChainParams(c.Network); !ok {
		return fmt.Errorf("%w: lnd node %s: unknown network %q", domain.ErrInvalidArgument, c.PubKey, c.Network)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(30*time.Second, c.MinBackoff)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.BalanceInterval <= 0 {
		c.BalanceInterval = 30 * time.Second
	}
	if c.InactiveChannelGrace <= 0 {
		c.InactiveChannelGrace = 5 * time.Minute
	}
	if c.DecodeWorkers == 0 {
		c.DecodeWorkers = runtime.GOMAXPROCS(0)
	}
	c.DecodeWorkers = max(c.DecodeWorkers, 0)
	return nil
}
