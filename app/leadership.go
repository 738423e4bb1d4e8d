package app

import (
	"context"
	"sync"
)

// Leadership ends in one of three ways: the leader lock is lost (lnmuxd
// notices it), this process hands over on SIGTERM, or a write is fenced
// (ErrNotLeader: another process took the lock). From that moment another
// lnmux may be deciding on the same HTLCs, so this one sends no answer of
// any kind: not a settle, not a cancel's or a timer's FAIL, not a RESUME.
// lnd keeps every HTLC it offered and offers it again to the next leader's
// interceptor. A FAIL needs no database write, so fencing alone cannot stop
// it; this gate does (docs/design.md, I5; review scenario 5).

// Depose ends this process's leadership: from its return on, no answer
// leaves it, settle and cancel calls are refused as not ready, and nothing
// is judged or written. It waits for answers already being sent, until ctx
// ends. lnmuxd calls it when the leader lock is lost and before it releases
// the lock in a hand-over.
func (m *Mux) Depose(ctx context.Context) error {
	m.stopping.Store(true)
	m.log.InfoContext(ctx, "leadership ended: no answer leaves this process any more")
	return m.answers.closeAndWait(ctx)
}

// answerGate counts the answers being sent and, once closed, lets none
// through. It holds no lock while an answer is sent.
type answerGate struct {
	mu       sync.Mutex
	closed   bool
	inFlight int
	idle     chan struct{} // closed when closed and inFlight reaches 0
}

// enter reports whether an answer may be sent; if so, leave must follow.
func (g *answerGate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.inFlight++
	return true
}

func (g *answerGate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight--
	if g.closed && g.inFlight == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

// close lets no answer through from now on.
func (g *answerGate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// closeAndWait closes the gate and waits until no answer is being sent.
func (g *answerGate) closeAndWait(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	if g.inFlight == 0 {
		g.mu.Unlock()
		return nil
	}
	if g.idle == nil {
		g.idle = make(chan struct{})
	}
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
