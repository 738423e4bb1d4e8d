package connectrpc

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/lnmux/lnmux/ports"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// spanRecorder is the fake service, remembering the span context its Info
// call saw.
type spanRecorder struct {
	*fakeService
	mu   sync.Mutex
	seen trace.SpanContext
}

func (s *spanRecorder) Info(ctx context.Context) ports.Info {
	s.mu.Lock()
	s.seen = trace.SpanContextFromContext(ctx)
	s.mu.Unlock()
	return s.fakeService.Info(ctx)
}

// TestTraceContextWithoutTelemetry: with tracing off (no otelconnect) a
// trusted caller's traceparent still reaches the call's context, so that
// lnmuxd's log lines carry the caller's trace id; untrusted, it does not.
func TestTraceContextWithoutTelemetry(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{}) // as adapters/otel's Setup does
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		spanID  = "00f067aa0ba902b7"
	)
	for _, tc := range []struct {
		name  string
		opts  []Option
		trust bool
	}{
		{"trusted", []Option{WithoutTelemetry(), WithTrustedTraceContext()}, true},
		{"untrusted", []Option{WithoutTelemetry()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &spanRecorder{fakeService: newFake()}
			srv := newTestServer(t, svc, tc.opts...)
			client := lnmuxpbconnect.NewServiceClient(http.DefaultClient, srv.URL)
			req := connect.NewRequest(&lnmuxpb.GetInfoRequest{})
			req.Header().Set("traceparent", "00-"+traceID+"-"+spanID+"-01")
			if _, err := client.GetInfo(t.Context(), req); err != nil {
				t.Fatal(err)
			}
			svc.mu.Lock()
			seen := svc.seen
			svc.mu.Unlock()
			if !tc.trust {
				if seen.IsValid() {
					t.Fatalf("untrusted traceparent reached the call: %v", seen.TraceID())
				}
				return
			}
			if seen.TraceID().String() != traceID || seen.SpanID().String() != spanID || !seen.IsRemote() {
				t.Fatalf("call saw trace %s span %s remote %v, want %s %s remote", seen.TraceID(), seen.SpanID(), seen.IsRemote(), traceID, spanID)
			}
		})
	}
}
