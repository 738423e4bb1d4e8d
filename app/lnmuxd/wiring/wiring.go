// Package wiring assembles lnmux's HTLC path as lnmuxd runs it: the lnd
// adapters, each behind the hand-over gate, feeding the multiplexer, with
// the store and the settlements traced and the metrics fed. lnmuxd uses it,
// and so do the wire benchmarks (adapters/lnd/lndfake, cmd/htlcload), so
// that what they measure is what runs (docs/benchmarks.md).
package wiring

import (
	"errors"
	"log/slog"

	lnmuxotel "github.com/lnmux/lnmux/adapters/otel"
	lnmuxprom "github.com/lnmux/lnmux/adapters/prometheus"

	"github.com/lnmux/lnmux/adapters/lnd"
	"github.com/lnmux/lnmux/app"
	"github.com/lnmux/lnmux/ports"
)

// Options is what NewMux assembles.
type Options struct {
	// App configures the multiplexer; its Metrics and Tracer are set by
	// NewMux.
	App app.Config
	// Nodes are the cluster's lnd adapters; each runs behind the gate.
	Nodes []*lnd.Node
	// Store is the invoice store; NewMux traces its calls.
	Store ports.InvoiceStore
	// Metrics receives the multiplexer's counts and serves its stats.
	Metrics *lnmuxprom.Metrics
	// Clock defaults to the system clock.
	Clock ports.Clock
	Log   *slog.Logger
}

// NewMux builds the multiplexer over the nodes, each behind the returned
// gate.
func NewMux(o Options) (*app.Mux, *Gate, error) {
	if o.Metrics == nil {
		return nil, nil, errors.New("wiring: metrics are required")
	}
	if o.Clock == nil {
		o.Clock = app.SystemClock{}
	}
	gate := NewGate(o.Nodes)
	nodes := make([]ports.Node, len(o.Nodes))
	for i, n := range o.Nodes {
		nodes[i] = gate.Wrap(n)
	}
	cfg := o.App
	cfg.Metrics = o.Metrics
	cfg.Tracer = lnmuxotel.Settlements{}
	mux, err := app.New(cfg, nodes, lnmuxotel.Store(o.Store), o.Clock, o.Log)
	if err != nil {
		return nil, nil, err
	}
	o.Metrics.SetStats(mux.Stats)
	return mux, gate, nil
}
