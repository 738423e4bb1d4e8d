package app

import (
	"bytes"
	"slices"
	"sync"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// pendingIndex maps the HTLCs of settle-requested invoices that lnd has not
// finalised to their preimage, so that replays are settled again (I2)
// without a database read.
type pendingIndex struct {
	mu        sync.RWMutex
	byCircuit map[domain.CircuitKey]pendingHTLC
}

type pendingHTLC struct {
	hash     domain.PaymentHash
	preimage domain.Preimage
}

func (p *pendingIndex) add(inv domain.Invoice) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range inv.HTLCs {
		if !h.Status.IsFinal() {
			p.byCircuit[h.Circuit] = pendingHTLC{hash: inv.Hash, preimage: inv.Preimage}
		}
	}
}

func (p *pendingIndex) get(c domain.CircuitKey) (pendingHTLC, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	v, ok := p.byCircuit[c]
	return v, ok
}

func (p *pendingIndex) remove(c domain.CircuitKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.byCircuit, c)
}

func (p *pendingIndex) forNode(node domain.NodeKey) []domain.CircuitKey {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []domain.CircuitKey
	for c := range p.byCircuit {
		if c.Node == node {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, domain.CircuitKey.Compare)
	return out
}

// paidIndex holds the hashes of stored invoices that have not expired: a new
// HTLC paying one of them must be refused, and knowing it in memory keeps
// the database off the HTLC path.
type paidIndex struct {
	mu     sync.RWMutex
	byHash map[domain.PaymentHash]time.Time
}

func (p *paidIndex) add(h domain.PaymentHash, expiry time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.byHash[h] = expiry
}

func (p *paidIndex) has(h domain.PaymentHash) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	_, ok := p.byHash[h]
	return ok
}

// prune forgets invoices that expired: their HTLCs are refused as expired.
func (p *paidIndex) prune(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for h, exp := range p.byHash {
		if !now.Before(exp) {
			delete(p.byHash, h)
		}
	}
}

func sortNodes(ns []ports.NodeStatus) {
	slices.SortFunc(ns, func(a, b ports.NodeStatus) int { return bytes.Compare(a.Node[:], b.Node[:]) })
}
