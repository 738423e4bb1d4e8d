package connectrpc

import (
	"context"
	"net/http"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// traceContext continues the caller's W3C trace context without making
// spans: it extracts the traceparent (with the global propagator, as
// otelconnect does) into the call's context, so that log lines carry the
// caller's trace id. It stands in for otelconnect when tracing is off
// (WithoutTelemetry with WithTrustedTraceContext): with no tracer provider
// every otelconnect span is a no-op carrying that same context, yet it
// builds attribute sets on every call (docs/benchmarks.md).
type traceContext struct{}

func extractTrace(ctx context.Context, h http.Header) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(h))
}

func (traceContext) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		return next(extractTrace(ctx, req.Header()), req)
	}
}

func (traceContext) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (traceContext) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(extractTrace(ctx, conn.RequestHeader()), conn)
	}
}
