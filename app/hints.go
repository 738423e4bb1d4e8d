package app

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// Route hints that follow node health (docs/route-hints.md).
//
// The policy (planHints) is a pure function of the nodes' reachability and
// inbound liquidity and of the time. Its answer depends on the invoice's
// amount only through thresholds (each node's inbound and their sum), so it
// is a short list of amount bands, each with its ordered nodes. The hint
// book keeps one BOLT11 template per band and recomputes them when a node's
// state changes or a grace period ends: AddInvoice only picks its band.

// hintNode is the policy's view of one node.
type hintNode struct {
	key domain.NodeKey
	// reachable: lnmux is connected to the node. The interceptor is not
	// asked for: in a session it comes up right after the connection and
	// a failing one ends the session, and a standby lnmux (which answers
	// AddInvoice too) connects without intercepting.
	reachable bool
	// downSince is when the node was last seen becoming unreachable (or
	// when lnmux started, for a node not yet reached); zero if reachable.
	downSince time.Time
	// inbound is meaningful when inboundKnown.
	inbound      domain.Msat
	inboundKnown bool
}

// hintBand: invoices of an amount up to upTo (and above the previous
// band's) hint nodes, in this order.
type hintBand struct {
	upTo  domain.Msat
	nodes []domain.NodeKey
}

// hintPlan is the policy's answer at one instant.
type hintPlan struct {
	// bands cover every amount, in increasing upTo; the last one's upTo
	// is math.MaxInt64. Never empty, and no band has no node (unless no
	// node is configured).
	bands []hintBand
	// status is each node's amount-independent status, in the order of
	// the input.
	status []ports.HintStatus
	// next is when the answer changes by time alone (a grace ends); zero
	// when it does not.
	next time.Time
}

// forAmount returns the band of an amount (any-amount invoices count as 1
// msat: a node with no inbound can take nothing).
func (p *hintPlan) forAmount(amt domain.Msat) int {
	amt = max(amt, 1)
	for i, b := range p.bands {
		if amt <= b.upTo {
			return i
		}
	}
	return len(p.bands) - 1
}

// planHints applies the policy:
//
//   - a node unreachable for grace or longer is left out; one away for less
//     keeps its hint (an invoice outlives short outages);
//   - of the others (the healthy), a node whose known inbound liquidity
//     covers the amount qualifies; when none covers it alone but their sum
//     does (a multi-part payment across nodes), every healthy node with
//     some inbound qualifies; a node whose liquidity is unknown always
//     qualifies (lnmux cannot tell);
//   - the qualified nodes are ordered by inbound liquidity, most first
//     (unknown after known, ties in the configured order);
//   - when no node qualifies, every node is hinted (healthy first): an
//     invoice never goes out without a route hint.
func planHints(nodes []hintNode, now time.Time, grace time.Duration) hintPlan {
	var plan hintPlan
	healthy := make([]bool, len(nodes))
	var sum domain.Msat
	var cuts []domain.Msat
	for i, n := range nodes {
		healthy[i] = n.reachable || now.Sub(n.downSince) < grace
		if !n.reachable {
			if end := n.downSince.Add(grace); end.After(now) && (plan.next.IsZero() || end.Before(plan.next)) {
				plan.next = end
			}
		}
		if healthy[i] && n.inboundKnown && n.inbound > 0 {
			sum = addMsat(sum, n.inbound)
			cuts = append(cuts, n.inbound)
		}
	}
	if sum > 0 {
		cuts = append(cuts, sum)
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)

	// order sorts the indexes of nodes as hints are listed.
	order := func(idx []int) {
		class := func(i int) int {
			switch n := nodes[i]; {
			case !n.inboundKnown:
				return 1
			case n.inbound > 0:
				return 0
			}
			return 2
		}
		slices.SortFunc(idx, func(a, b int) int {
			if healthy[a] != healthy[b] {
				if healthy[a] {
					return -1
				}
				return 1
			}
			if ca, cb := class(a), class(b); ca != cb {
				return ca - cb
			}
			if ia, ib := nodes[a].inbound, nodes[b].inbound; ia != ib && nodes[a].inboundKnown {
				if ia > ib {
					return -1
				}
				return 1
			}
			return a - b // configured order
		})
	}
	qualified := func(amt domain.Msat) []domain.NodeKey {
		var idx []int
		covers := false
		for i, n := range nodes {
			if healthy[i] && n.inboundKnown && n.inbound >= amt {
				covers = true
			}
		}
		for i, n := range nodes {
			switch {
			case !healthy[i]:
			case !n.inboundKnown:
				idx = append(idx, i)
			case covers && n.inbound >= amt, !covers && sum >= amt && n.inbound > 0:
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			idx = make([]int, len(nodes))
			for i := range idx {
				idx[i] = i
			}
		}
		order(idx)
		keys := make([]domain.NodeKey, len(idx))
		for j, i := range idx {
			keys[j] = nodes[i].key
		}
		return keys
	}
	add := func(upTo domain.Msat, keys []domain.NodeKey) {
		if last := len(plan.bands) - 1; last >= 0 && slices.Equal(plan.bands[last].nodes, keys) {
			plan.bands[last].upTo = upTo
			return
		}
		plan.bands = append(plan.bands, hintBand{upTo: upTo, nodes: keys})
	}
	// The answer is constant between consecutive cuts: evaluate it at
	// each band's upper end, and above the last cut.
	for _, c := range cuts {
		add(c, qualified(c))
	}
	top := domain.Msat(1)
	if len(cuts) > 0 {
		top = addMsat(cuts[len(cuts)-1], 1)
	}
	add(math.MaxInt64, qualified(top))

	plan.status = make([]ports.HintStatus, len(nodes))
	anyIncluded := false
	for i, n := range nodes {
		switch {
		case !healthy[i]:
			plan.status[i] = ports.HintUnreachable
		case n.inboundKnown && n.inbound <= 0:
			plan.status[i] = ports.HintNoInbound
		default:
			plan.status[i] = ports.HintIncluded
			anyIncluded = true
		}
	}
	if !anyIncluded {
		for i := range plan.status {
			plan.status[i] = ports.HintFallback
		}
	}
	return plan
}

// addMsat adds without overflowing.
func addMsat(a, b domain.Msat) domain.Msat {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// hintTable is what AddInvoice reads: one template per band.
type hintTable struct {
	plan      hintPlan
	templates []*domain.BOLT11Template // one per plan band
	status    map[domain.NodeKey]ports.HintStatus
}

// template returns the template for an invoice of amt.
func (t *hintTable) template(amt domain.Msat) *domain.BOLT11Template {
	return t.templates[t.plan.forAmount(amt)]
}

// nodes returns the nodes hinted for an invoice of amt, in order.
func (t *hintTable) nodes(amt domain.Msat) []domain.NodeKey {
	return t.plan.bands[t.plan.forAmount(amt)].nodes
}

// hintBook follows the nodes' state and keeps the current hint table.
// AddInvoice reads the table without a lock; updates are serialised by mu
// and rebuild the table (pure computation: no I/O under mu).
type hintBook struct {
	clock ports.Clock
	grace time.Duration
	// fee is the virtual channel's fee: a node receives the amount plus
	// it, so its inbound must cover both.
	fee   func(domain.Msat) domain.Msat
	build func([]domain.NodeKey) (*domain.BOLT11Template, error)

	mu    sync.Mutex
	nodes []hintNode
	timer ports.Timer

	table atomic.Pointer[hintTable]
}

// newHintBook starts with every node not yet reached, as of now: each
// keeps its hint for grace while lnmux connects.
func newHintBook(keys []domain.NodeKey, clock ports.Clock, grace time.Duration, fee func(domain.Msat) domain.Msat,
	build func([]domain.NodeKey) (*domain.BOLT11Template, error)) (*hintBook, error) {

	b := &hintBook{clock: clock, grace: grace, fee: fee, build: build}
	now := clock.Now()
	for _, k := range keys {
		b.nodes = append(b.nodes, hintNode{key: k, downSince: now})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.recompute(); err != nil {
		return nil, err
	}
	return b, nil
}

// template returns the template for a new invoice of amt.
func (b *hintBook) template(amt domain.Msat) *domain.BOLT11Template {
	return b.table.Load().template(addMsat(amt, b.fee(amt)))
}

// nodesFor returns the nodes a new invoice of amt hints, in order: a blinded
// invoice has a path through each (docs/blinded.md).
func (b *hintBook) nodesFor(amt domain.Msat) []domain.NodeKey {
	return b.table.Load().nodes(addMsat(amt, b.fee(amt)))
}

// status returns each node's hint status.
func (b *hintBook) status(node domain.NodeKey) ports.HintStatus {
	return b.table.Load().status[node]
}

// update takes a node's new status; the table is rebuilt only when the
// node's reachability or inbound liquidity changed.
func (b *hintBook) update(s ports.NodeStatus) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.IndexFunc(b.nodes, func(n hintNode) bool { return n.key == s.Node })
	if i < 0 {
		return nil
	}
	n := &b.nodes[i]
	before := *n
	if reachable := s.Connected; reachable != n.reachable {
		n.reachable = reachable
		n.downSince = time.Time{}
		if !reachable {
			n.downSince = b.clock.Now()
		}
	}
	n.inbound, n.inboundKnown = s.Inbound, s.InboundKnown
	if *n == before {
		return nil
	}
	return b.recompute()
}

// recompute builds the table for the nodes' state now and arms the timer
// for the next change time alone brings. Callers hold mu.
func (b *hintBook) recompute() error {
	now := b.clock.Now()
	plan := planHints(b.nodes, now, b.grace)
	t := &hintTable{plan: plan, status: make(map[domain.NodeKey]ports.HintStatus, len(b.nodes))}
	for _, band := range plan.bands {
		tmpl, err := b.build(band.nodes)
		if err != nil {
			return err
		}
		t.templates = append(t.templates, tmpl)
	}
	for i, n := range b.nodes {
		t.status[n.key] = plan.status[i]
	}
	b.table.Store(t)
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if !plan.next.IsZero() {
		b.timer = b.clock.AfterFunc(plan.next.Sub(now), b.expire)
	}
	return nil
}

// expire runs when a grace period ends.
func (b *hintBook) expire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	// The templates were built from the same keys before: this cannot
	// fail. Should it, the previous table stays.
	_ = b.recompute()
}
