package prometheus

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestMetricsExported(t *testing.T) {
	m := New()
	node := domain.NodeKey{2, 1}
	m.SetStats(func() ports.Stats {
		return ports.Stats{Sets: 3, PendingSettleHTLCs: 2,
			Nodes: []ports.NodeStatus{{Node: node, Connected: true, InterceptorActive: true, Height: 812}}}
	})
	m.HTLCResolved(ports.ActionResume, domain.FailNone)
	m.HTLCResolved(ports.ActionFail, domain.FailMPPTimeout)
	m.HTLCResolved(ports.ActionFail, domain.FailMPPTimeout)
	m.HTLCHeld()
	m.SetAccepted(2)
	m.SettleRequested()
	m.InvoiceFinal(domain.StatusSettled, false)
	m.InvoiceFinal(domain.StatusFailed, true)

	out := scrape(t, m)
	for _, want := range []string{
		`lnmux_htlcs_resolved_total{action="resume",reason=""} 1`,
		`lnmux_htlcs_resolved_total{action="fail",reason="mpp timeout"} 2`,
		`lnmux_htlcs_held_total 1`,
		`lnmux_sets_accepted_total 1`,
		`lnmux_set_parts_count 1`,
		`lnmux_settle_requests_total 1`,
		`lnmux_invoices_final_total{status="settled"} 1`,
		`lnmux_invoices_final_total{status="failed"} 1`,
		`lnmux_partial_settlements_total 1`,
		`lnmux_sets_in_memory 3`,
		`lnmux_pending_settle_htlcs 2`,
		`lnmux_node_connected{node="` + node.String() + `"} 1`,
		`lnmux_node_block_height{node="` + node.String() + `"} 812`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}
