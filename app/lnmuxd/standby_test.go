package main

import (
	"context"
	"net/http"
	"net/http/httptest"
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
	g := newNodeGate(nil)
	sink := &recordingSink{}
	gs := gateSink{NodeSink: sink, g: g}
	gs.HTLCIntercepted(t.Context(), ports.InterceptedHTLC{})
	g.drain()
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
	g := newNodeGate(nodes)
	a, b := domain.NodeKey{1}, domain.NodeKey{2}
	isClosed := func() bool {
		select {
		case <-g.intercepting():
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

func TestReadinessFollowsTheRole(t *testing.T) {
	r := newRole(nil)
	probe := func(h http.Handler) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		return rec.Code
	}
	tests := []struct {
		name          string
		leading       bool
		ready, health int
	}{
		{name: "standby", leading: false, ready: http.StatusServiceUnavailable, health: http.StatusOK},
		{name: "leader", leading: true, ready: http.StatusOK, health: http.StatusOK},
	}
	for _, tt := range tests {
		r.setLeading(tt.leading)
		if got := probe(r.readyz()); got != tt.ready {
			t.Errorf("%s: /readyz = %d, want %d", tt.name, got, tt.ready)
		}
		if got := probe(livez()); got != tt.health {
			t.Errorf("%s: /livez = %d, want %d", tt.name, got, tt.health)
		}
	}
}
