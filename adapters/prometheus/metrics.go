// Package prometheus exports lnmux's metrics in the Prometheus text format:
// counters fed by the application through ports.Metrics and gauges read from
// its state at each scrape.
package prometheus

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// Metrics implements ports.Metrics on a Prometheus registry of its own.
type Metrics struct {
	reg       *prometheus.Registry
	htlcs     *prometheus.CounterVec
	held      prometheus.Counter
	accepted  prometheus.Counter
	parts     prometheus.Histogram
	settles   prometheus.Counter
	finals    *prometheus.CounterVec
	partials  prometheus.Counter
	collector *stateCollector
}

var _ ports.Metrics = (*Metrics)(nil)

// New registers lnmux's metrics, with Go runtime and process metrics, on a
// registry of its own. Gauges of the application's state appear once
// SetStats names their source.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		htlcs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lnmux_htlcs_resolved_total",
			Help: "Answers sent to the nodes for intercepted HTLCs, by action and failure reason.",
		}, []string{"action", "reason"}),
		held: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lnmux_htlcs_held_total",
			Help: "HTLCs that joined an incomplete multi-part set.",
		}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lnmux_sets_accepted_total",
			Help: "Complete HTLC sets published as accepted.",
		}),
		parts: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lnmux_set_parts",
			Help:    "Number of HTLCs in accepted sets.",
			Buckets: []float64{1, 2, 3, 4, 6, 8, 12, 16},
		}),
		settles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lnmux_settle_requests_total",
			Help: "Settlements committed to the database.",
		}),
		finals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lnmux_invoices_final_total",
			Help: "Invoices that reached their final state as reported by lnd.",
		}, []string{"status"}),
		partials: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lnmux_partial_settlements_total",
			Help: "Failed invoices of which some HTLCs were settled: the payer lost funds the merchant only partly received. Alert on any increase.",
		}),
		collector: &stateCollector{},
	}
	m.reg.MustRegister(m.htlcs, m.held, m.accepted, m.parts, m.settles, m.finals, m.partials, m.collector,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SetStats sets the source of the gauges.
func (m *Metrics) SetStats(stats func() ports.Stats) { m.collector.stats = stats }

// Handler serves the metrics (mount it at /metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// HTLCResolved implements ports.Metrics.
func (m *Metrics) HTLCResolved(action ports.Action, reason domain.FailureReason) {
	r := ""
	if action == ports.ActionFail {
		r = reason.String()
	}
	m.htlcs.WithLabelValues(action.String(), r).Inc()
}

// HTLCHeld implements ports.Metrics.
func (m *Metrics) HTLCHeld() { m.held.Inc() }

// SetAccepted implements ports.Metrics.
func (m *Metrics) SetAccepted(parts int) {
	m.accepted.Inc()
	m.parts.Observe(float64(parts))
}

// SettleRequested implements ports.Metrics.
func (m *Metrics) SettleRequested() { m.settles.Inc() }

// InvoiceFinal implements ports.Metrics.
func (m *Metrics) InvoiceFinal(status domain.InvoiceStatus, partial bool) {
	m.finals.WithLabelValues(status.String()).Inc()
	if partial {
		m.partials.Inc()
	}
}

// stateCollector turns the application's state into gauges at scrape time.
type stateCollector struct {
	stats func() ports.Stats
}

var (
	setsDesc    = prometheus.NewDesc("lnmux_sets_in_memory", "HTLC sets held in memory (collecting or accepted).", nil, nil)
	pendingDesc = prometheus.NewDesc("lnmux_pending_settle_htlcs", "HTLCs of settle-requested invoices whose final outcome lnd has not reported.", nil, nil)
	connDesc    = prometheus.NewDesc("lnmux_node_connected", "1 if lnmux is connected to the node.", []string{"node"}, nil)
	interDesc   = prometheus.NewDesc("lnmux_node_interceptor_active", "1 if the node's HTLC interceptor stream is up.", []string{"node"}, nil)
	heightDesc  = prometheus.NewDesc("lnmux_node_block_height", "Best block height reported by the node.", []string{"node"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{setsDesc, pendingDesc, connDesc, interDesc, heightDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.stats == nil {
		return
	}
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(setsDesc, prometheus.GaugeValue, float64(st.Sets))
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(st.PendingSettleHTLCs))
	for _, n := range st.Nodes {
		node := n.Node.String()
		ch <- prometheus.MustNewConstMetric(connDesc, prometheus.GaugeValue, boolFloat(n.Connected), node)
		ch <- prometheus.MustNewConstMetric(interDesc, prometheus.GaugeValue, boolFloat(n.InterceptorActive), node)
		ch <- prometheus.MustNewConstMetric(heightDesc, prometheus.GaugeValue, float64(n.Height), node)
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
