package wiring

import (
	"context"
	"testing"

	"github.com/lnmux/lnmux/adapters/lnd"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// recordingSink counts what reaches the multiplexer.
type recordingSink struct {
	ports.NodeSink
	htlcs    int
	statuses int
}

func (s *recordingSink) HTLCIntercepted(context.Context, ports.InterceptedHTLC) { s.htlcs++ }
func (s *recordingSink) NodeStatusChanged(context.Context, ports.NodeStatus)    { s.statuses++ }

func TestGateDrainLeavesHTLCsWithLnd(t *testing.T) {
	g := NewGate(nil)
	sink := &recordingSink{}
	gs := gateSink{NodeSink: sink, g: g}
	gs.HTLCIntercepted(t.Context(), ports.InterceptedHTLC{})
	g.Drain()
	gs.HTLCIntercepted(t.Context(), ports.InterceptedHTLC{})
	gs.NodeStatusChanged(t.Context(), ports.NodeStatus{})
	if sink.htlcs != 1 {
		t.Errorf("HTLCs handed to the multiplexer: %d, want 1 (none once draining)", sink.htlcs)
	}
	if sink.statuses != 1 {
		t.Errorf("statuses handed on while draining: %d, want 1", sink.statuses)
	}
}

func TestGateTellsWhenEveryNodeIntercepts(t *testing.T) {
	nodes := make([]*lnd.Node, 2)
	g := NewGate(nodes)
	a, b := domain.NodeKey{1}, domain.NodeKey{2}
	isClosed := func() bool {
		select {
		case <-g.Intercepting():
			return true
		default:
			return false
		}
	}
	g.observe(ports.NodeStatus{Node: a, Connected: true, InterceptorActive: true})
	g.observe(ports.NodeStatus{Node: b, Connected: true})
	if isClosed() {
		t.Fatal("intercepting closed with one node of two intercepting")
	}
	g.observe(ports.NodeStatus{Node: b, Connected: true, InterceptorActive: true})
	if !isClosed() {
		t.Fatal("intercepting still open with both nodes intercepting")
	}
	g.observe(ports.NodeStatus{Node: a}) // must not panic on a second close
	if !isClosed() {
		t.Fatal("intercepting reopened")
	}
}
