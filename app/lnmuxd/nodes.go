package main

import (
	"errors"
	"log/slog"

	"github.com/lnmux/lnmux/ports"
)

// newNodes builds one LND adapter per configured node.
func newNodes(cfg *Config, log *slog.Logger) ([]ports.Node, error) {
	_ = log
	if len(cfg.LND.Nodes) > 0 {
		return nil, errors.New("lnd nodes are configured but the lnd adapter is not wired yet")
	}
	return nil, nil
}
