package e2e

import (
	"context"
	"encoding/hex"
	"net"
	"sync"
	"testing"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// collector is an OTLP/gRPC trace receiver on loopback, standing in for
// Grafana Tempo: lnmuxd exports to it exactly as it would to Tempo.
type collector struct {
	collectorpb.UnimplementedTraceServiceServer
	addr string

	mu    sync.Mutex
	spans []span
}

type span struct {
	name  string
	attrs map[string]string
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{addr: l.Addr().String()}
	srv := grpc.NewServer()
	collectorpb.RegisterTraceServiceServer(srv, c)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return c
}

// Export implements the OTLP trace service.
func (c *collector) Export(_ context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				sp := span{name: s.Name, attrs: map[string]string{}}
				for _, a := range s.Attributes {
					sp.attrs[a.Key] = a.Value.GetStringValue()
				}
				c.spans = append(c.spans, sp)
			}
		}
	}
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

// find reports whether a span with this name (and, if set, this payment
// hash) was received.
func (c *collector) find(name string, hash []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.spans {
		if s.name == name && (hash == nil || s.attrs["lnmux.payment_hash"] == hex.EncodeToString(hash)) {
			return true
		}
	}
	return false
}
