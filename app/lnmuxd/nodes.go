package main

import (
	"log/slog"

	"github.com/lnmux/lnmux/adapters/lnd"
	"github.com/lnmux/lnmux/app/lnmuxd/config"
)

// newNodes builds one LND adapter per configured node. Connecting happens
// when the standby phase or the multiplexer runs them.
func newNodes(cfg *config.Config, log *slog.Logger) ([]*lnd.Node, error) {
	keys, err := cfg.NodeKeys()
	if err != nil {
		return nil, err
	}
	nodes := make([]*lnd.Node, 0, len(keys))
	for i, nc := range cfg.LND.Nodes {
		n, err := lnd.New(lnd.Config{
			PubKey:       keys[i],
			URL:          nc.URL,
			TLSCertPath:  nc.TLSCertPath, // ~ expanded by Config.normalize
			MacaroonPath: nc.MacaroonPath,
			Network:      cfg.LND.Network,
			// Refused below lnd v0.21.1 unless the operator accepts the risk.
			AllowUnsafeVersion: cfg.LND.AllowUnsafeVersion,
			Logger:             log, // the adapter adds node= (and lnd=) itself
			// A briefly inactive channel counts as a briefly away node does.
			InactiveChannelGrace: cfg.Invoice.RouteHintGrace,
		})
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}
