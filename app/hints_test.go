package app

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// Keys ordered a < b < c, so that ties are easy to read.
var (
	keyA = domain.NodeKey{2, 0xa}
	keyB = domain.NodeKey{2, 0xb}
	keyC = domain.NodeKey{2, 0xc}
)

func keyName(k domain.NodeKey) string {
	switch k {
	case keyA:
		return "A"
	case keyB:
		return "B"
	case keyC:
		return "C"
	}
	return k.String()
}

func names(keys []domain.NodeKey) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(keyName(k))
	}
	return b.String()
}

// TestPlanHints is the policy, amount by amount.
func TestPlanHints(t *testing.T) {
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	const grace = 5 * time.Minute
	up := func(k domain.NodeKey, inbound domain.Msat) hintNode {
		return hintNode{key: k, reachable: true, inbound: inbound, inboundKnown: true}
	}
	upUnknown := func(k domain.NodeKey) hintNode { return hintNode{key: k, reachable: true} }
	down := func(k domain.NodeKey, ago time.Duration, inbound domain.Msat) hintNode {
		return hintNode{key: k, downSince: now.Add(-ago), inbound: inbound, inboundKnown: true}
	}
	type want struct {
		amt   domain.Msat
		hints string
	}
	tests := []struct {
		name   string
		nodes  []hintNode
		want   []want
		status string // per node in input order: I(ncluded) U(nreachable) N(o inbound) F(allback)
		next   time.Duration
	}{
		{
			name:   "liquidity unknown: every node, in the configured order",
			nodes:  []hintNode{upUnknown(keyB), upUnknown(keyA)},
			want:   []want{{0, "BA"}, {1, "BA"}, {math.MaxInt64, "BA"}},
			status: "II",
		},
		{
			name:  "most inbound first; a node that cannot take the amount alone is left out",
			nodes: []hintNode{up(keyA, 100), up(keyB, 300)},
			want: []want{
				{0, "BA"}, {1, "BA"}, {100, "BA"}, // both cover it
				{101, "B"}, {300, "B"}, // only B covers it
				{301, "BA"}, {400, "BA"}, // neither alone, the sum does: multi-part
				{401, "BA"}, {math.MaxInt64, "BA"}, // nobody can: every node
			},
			status: "II",
		},
		{
			name:  "three nodes: the sum counts only when no node covers the amount",
			nodes: []hintNode{up(keyA, 100), up(keyB, 300), up(keyC, 200)},
			want: []want{
				{100, "BCA"}, {150, "BC"}, {250, "B"}, {301, "BCA"}, {600, "BCA"}, {601, "BCA"},
			},
			status: "III",
		},
		{
			name:   "unreachable past the grace: left out",
			nodes:  []hintNode{down(keyA, grace, 1000), up(keyB, 300)},
			want:   []want{{1, "B"}, {300, "B"}, {301, "BA"}}, // above B's inbound nobody qualifies: all, healthy first
			status: "UI",
		},
		{
			name:   "unreachable within the grace: kept, with its last known inbound",
			nodes:  []hintNode{down(keyA, grace-time.Second, 1000), up(keyB, 300)},
			want:   []want{{1, "AB"}, {300, "AB"}, {301, "A"}, {1000, "A"}, {1001, "AB"}},
			status: "II",
			next:   time.Second,
		},
		{
			name:   "the earliest grace end is next",
			nodes:  []hintNode{down(keyA, time.Minute, 1), down(keyB, 2*time.Minute, 1), down(keyC, time.Hour, 1)},
			want:   []want{{1, "AB"}, {2, "AB"}, {3, "ABC"}},
			status: "IIU",
			next:   3 * time.Minute,
		},
		{
			name:   "no inbound: left out",
			nodes:  []hintNode{up(keyA, 0), up(keyB, 300)},
			want:   []want{{0, "B"}, {300, "B"}, {301, "BA"}},
			status: "NI",
		},
		{
			name:   "no node qualifies: every node, healthy first",
			nodes:  []hintNode{down(keyA, time.Hour, 500), up(keyB, 0), down(keyC, 2*time.Hour, 0)},
			want:   []want{{0, "BAC"}, {1000, "BAC"}},
			status: "FFF",
		},
		{
			name:   "unknown liquidity always qualifies, after the known",
			nodes:  []hintNode{upUnknown(keyA), up(keyB, 300), up(keyC, 0)},
			want:   []want{{1, "BA"}, {300, "BA"}, {301, "A"}, {math.MaxInt64, "A"}},
			status: "IIN",
		},
		{
			name:   "no node configured",
			nodes:  nil,
			want:   []want{{1, ""}},
			status: "",
		},
	}
	letter := map[ports.HintStatus]byte{ports.HintIncluded: 'I', ports.HintUnreachable: 'U', ports.HintNoInbound: 'N', ports.HintFallback: 'F'}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := planHints(tt.nodes, now, grace)
			for _, w := range tt.want {
				if got := names(plan.bands[plan.forAmount(w.amt)].nodes); got != w.hints {
					t.Errorf("amount %d: hints %q, want %q", w.amt, got, w.hints)
				}
			}
			var st []byte
			for _, s := range plan.status {
				st = append(st, letter[s])
			}
			if string(st) != tt.status {
				t.Errorf("status %q, want %q", st, tt.status)
			}
			var next time.Duration
			if !plan.next.IsZero() {
				next = plan.next.Sub(now)
			}
			if next != tt.next {
				t.Errorf("next in %s, want %s", next, tt.next)
			}
			checkBands(t, plan)
		})
	}
}

// checkBands: the bands cover every amount in order, none is empty when a
// node exists, and neighbours differ (merged).
func checkBands(t *testing.T, plan hintPlan) {
	t.Helper()
	if len(plan.bands) == 0 || plan.bands[len(plan.bands)-1].upTo != math.MaxInt64 {
		t.Fatalf("bands %+v do not cover every amount", plan.bands)
	}
	for i, b := range plan.bands {
		if len(plan.status) > 0 && len(b.nodes) == 0 {
			t.Errorf("band %d has no hint", i)
		}
		if i > 0 && (b.upTo <= plan.bands[i-1].upTo || slices.Equal(b.nodes, plan.bands[i-1].nodes)) {
			t.Errorf("bands %d and %d out of order or not merged: %+v", i-1, i, plan.bands)
		}
	}
}

// TestPlanHintsExhaustive compares the bands with the rule applied to every
// small amount directly, over all combinations of small liquidities and
// health of three nodes.
func TestPlanHintsExhaustive(t *testing.T) {
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	const grace = time.Minute
	inbounds := []domain.Msat{-1, 0, 1, 2, 5} // -1: unknown
	keys := []domain.NodeKey{keyA, keyB, keyC}
	for combo := range 1000 {
		c := combo
		nodes := make([]hintNode, 3)
		for i := range nodes {
			inb := inbounds[c%5]
			c /= 5
			health := c % 2 // 0 healthy, 1 down past grace
			c /= 2
			nodes[i] = hintNode{key: keys[i], reachable: health == 0, inbound: max(inb, 0), inboundKnown: inb >= 0}
			if health == 1 {
				nodes[i].downSince = now.Add(-grace)
			}
		}
		if c > 0 {
			break
		}
		plan := planHints(nodes, now, grace)
		checkBands(t, plan)
		for amt := domain.Msat(0); amt <= 20; amt++ {
			got := names(plan.bands[plan.forAmount(amt)].nodes)
			if want := names(directRule(nodes, amt)); got != want {
				t.Fatalf("nodes %+v amount %d: hints %q, want %q", nodes, amt, got, want)
			}
		}
	}
}

// directRule is the policy written out for one amount, as the docs state it.
func directRule(nodes []hintNode, amt domain.Msat) []domain.NodeKey {
	amt = max(amt, 1)
	var healthy, unknown []hintNode
	var sum domain.Msat
	coversAlone := false
	for _, n := range nodes {
		if !n.reachable {
			continue // every down node in this test is past its grace
		}
		healthy = append(healthy, n)
		if !n.inboundKnown {
			unknown = append(unknown, n)
			continue
		}
		sum += n.inbound
		coversAlone = coversAlone || n.inbound >= amt
	}
	var q []hintNode
	q = append(q, unknown...)
	for _, n := range healthy {
		if n.inboundKnown && ((coversAlone && n.inbound >= amt) || (!coversAlone && sum >= amt && n.inbound > 0)) {
			q = append(q, n)
		}
	}
	if len(q) == 0 {
		q = nodes
	}
	rank := func(n hintNode) (int, int, domain.Msat) {
		h := 0
		if !n.reachable {
			h = 1
		}
		switch {
		case !n.inboundKnown:
			return h, 1, 0
		case n.inbound > 0:
			return h, 0, -n.inbound
		}
		return h, 2, 0
	}
	q = slices.Clone(q)
	slices.SortStableFunc(q, func(a, b hintNode) int {
		ha, ca, ia := rank(a)
		hb, cb, ib := rank(b)
		if ha != hb {
			return ha - hb
		}
		if ca != cb {
			return ca - cb
		}
		if ia != ib {
			if ia < ib {
				return -1
			}
			return 1
		}
		return 0 // configured order: the input's
	})
	keys := make([]domain.NodeKey, len(q))
	for i, n := range q {
		keys[i] = n.key
	}
	return keys
}

// hintedNodes decodes an invoice's route hints, in order.
func hintedNodes(t *testing.T, payreq string, h *harness) string {
	t.Helper()
	dec, err := zpay32.Decode(payreq, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, rh := range dec.RouteHints {
		if len(rh) != 1 {
			t.Fatalf("hint with %d hops", len(rh))
		}
		var k domain.NodeKey
		copy(k[:], rh[0].NodeID.SerializeCompressed())
		if rh[0].ChannelID != domain.VirtualChannelID(k) {
			t.Fatalf("hint through channel %d", rh[0].ChannelID)
		}
		for i, n := range h.nodes {
			if n.key == k {
				fmt.Fprintf(&b, "%d", i)
			}
		}
	}
	return b.String()
}

// TestHintsFollowNodeHealth drives the Mux through node status reports and
// its clock: a node away for less than the grace keeps its hint, one away
// longer loses it until it is back, and inbound liquidity orders and
// filters the hints. GetInfo (Info) reports each node's status.
func TestHintsFollowNodeHealth(t *testing.T) {
	const grace = 2 * time.Minute
	h := newHarness(t, 2, func(c *Config) { c.HintGrace = grace })
	n0, n1 := h.nodes[0].key, h.nodes[1].key
	report := func(k domain.NodeKey, up bool, inbound domain.Msat) {
		h.mux.NodeStatusChanged(ctx, ports.NodeStatus{Node: k, Connected: up, InterceptorActive: up, Inbound: inbound, InboundKnown: inbound >= 0})
	}
	hints := func(amt domain.Msat) string { return hintedNodes(t, h.invoice(amt, time.Hour).PaymentRequest, h) }
	status := func() string {
		var out []string
		for _, n := range h.mux.Info(ctx).Nodes {
			i := slices.IndexFunc(h.nodes, func(f *fakeNode) bool { return f.key == n.Node })
			out = append(out, fmt.Sprintf("%d:%s", i, n.Hint))
		}
		slices.Sort(out)
		return strings.Join(out, " ")
	}
	expect := func(step string, amt domain.Msat, wantHints, wantStatus string) {
		t.Helper()
		if got := hints(amt); got != wantHints {
			t.Errorf("%s: hints %q, want %q", step, got, wantHints)
		}
		if got := status(); got != wantStatus {
			t.Errorf("%s: status %q, want %q", step, got, wantStatus)
		}
	}
	// Fee of the virtual channel (harness: 1000 msat + 100 ppm) on top.
	fee := h.cfg.Policy.Fee

	// Not reached yet: both hinted during the grace after start, in the
	// configured order.
	expect("start", 1000, "01", "0:included 1:included")

	report(n0, true, 50_000)
	report(n1, true, 80_000)
	expect("both up", 10_000, "10", "0:included 1:included")
	expect("above node 0's inbound", 60_000, "1", "0:included 1:included")
	// 80,000 plus the fee is more than node 1 has: the sum must take it.
	if fee(80_000) <= 0 {
		t.Fatal("the harness's policy charges no fee")
	}
	expect("fee counts", 80_000, "10", "0:included 1:included")
	expect("above the sum", 200_000, "10", "0:included 1:included")

	// Node 1 away for less than the grace: kept.
	report(n1, false, 80_000)
	h.clock.Advance(grace - time.Second)
	expect("node 1 briefly away", 10_000, "10", "0:included 1:included")
	report(n1, true, 80_000)
	h.clock.Advance(time.Hour)
	expect("node 1 back before the grace", 10_000, "10", "0:included 1:included")

	// Node 1 away past the grace: left out, by the timer alone.
	report(n1, false, 80_000)
	h.clock.Advance(grace)
	expect("node 1 away past the grace", 10_000, "0", "0:included 1:unreachable")
	expect("node 1 away, amount only it could take", 70_000, "01", "0:included 1:unreachable")
	report(n1, true, 80_000)
	expect("node 1 back", 10_000, "10", "0:included 1:included")

	// No inbound on node 0.
	report(n0, true, 0)
	expect("node 0 without inbound", 10_000, "1", "0:no_inbound 1:included")

	// Node 1 gone too: every node.
	report(n1, false, 80_000)
	h.clock.Advance(grace)
	expect("nothing qualifies", 10_000, "01", "0:fallback 1:fallback")

	// Liquidity unknown again (a failed measurement): qualifies.
	report(n0, true, -1)
	expect("node 0 unknown", 10_000, "0", "0:included 1:unreachable")
}

// TestHintsDoNotRebuildWithoutChange: a report that changes neither
// reachability nor liquidity leaves the table (and AddInvoice) untouched.
func TestHintsDoNotRebuildWithoutChange(t *testing.T) {
	h := newHarness(t, 2, nil)
	s := ports.NodeStatus{Node: h.nodes[0].key, Connected: true, InterceptorActive: true, Inbound: 5, InboundKnown: true}
	h.mux.NodeStatusChanged(ctx, s)
	before := h.mux.invoice.hints.table.Load()
	s.Height, s.LastError = 7, "x"
	h.mux.NodeStatusChanged(ctx, s)
	if h.mux.invoice.hints.table.Load() != before {
		t.Fatal("table rebuilt for a report without a change")
	}
	s.Inbound = 6
	h.mux.NodeStatusChanged(ctx, s)
	if h.mux.invoice.hints.table.Load() == before {
		t.Fatal("table not rebuilt for a new inbound liquidity")
	}
}

// BenchmarkAddInvoiceWithLiquidity is BenchmarkAddInvoice with both nodes
// reporting liquidity, so that the hint table has several amount bands and
// AddInvoice picks one per call (compare with BenchmarkAddInvoice).
func BenchmarkAddInvoiceWithLiquidity(b *testing.B) {
	h := newHarness(b, 2, nil)
	for i, n := range h.nodes {
		h.mux.NodeStatusChanged(ctx, ports.NodeStatus{Node: n.key, Connected: true, InterceptorActive: true,
			Inbound: domain.Msat(i+1) * 10_000_000, InboundKnown: true})
	}
	if n := len(h.mux.invoice.hints.table.Load().templates); n < 3 {
		b.Fatalf("%d bands", n)
	}
	amounts := []domain.Msat{20_000, 15_000_000, 25_000_000, 40_000_000}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		req := ports.AddInvoiceRequest{Amount: amounts[i%len(amounts)], Expiry: 10 * time.Minute, Description: "coffee"}
		i++
		if _, err := h.mux.AddInvoice(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHintsRecompute is what one node status change costs: the plan
// and a template per band, off the AddInvoice path.
func BenchmarkHintsRecompute(b *testing.B) {
	h := newHarness(b, 3, nil)
	s := ports.NodeStatus{Node: h.nodes[0].key, Connected: true, InterceptorActive: true, InboundKnown: true}
	b.ReportAllocs()
	for b.Loop() {
		s.Inbound++
		h.mux.NodeStatusChanged(ctx, s)
	}
}

// BenchmarkHintTemplatePick is all AddInvoice does for the route hints per
// call: the fee, one atomic load and a scan of the bands.
func BenchmarkHintTemplatePick(b *testing.B) {
	h := newHarness(b, 3, nil)
	for i, n := range h.nodes {
		h.mux.NodeStatusChanged(ctx, ports.NodeStatus{Node: n.key, Connected: true, InterceptorActive: true,
			Inbound: domain.Msat(i+1) * 10_000_000, InboundKnown: true})
	}
	amounts := []domain.Msat{20_000, 15_000_000, 25_000_000, 45_000_000, 70_000_000}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if h.mux.invoice.hints.template(amounts[i%len(amounts)]) == nil {
			b.Fatal("no template")
		}
		i++
	}
}
