package lnd

import (
	"context"
	"encoding/hex"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/lnmux/lnmux/ports"
)

// tracer names the spans of HTLC handling; it follows the global provider,
// so spans go wherever lnmuxd's telemetry configuration sends them.
var tracer = otel.Tracer("github.com/lnmux/lnmux/adapters/lnd")

// traceHTLC starts the span of one intercepted HTLC: everything the
// application does for it (and logs, with the trace id) happens inside.
func traceHTLC(ctx context.Context, h ports.InterceptedHTLC) (context.Context, trace.Span) {
	return tracer.Start(ctx, "lnmux.htlc", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.String("lnmux.node", h.Circuit.Node.String()),
		attribute.Int64("lnmux.chan_id", int64(h.Circuit.Chan)),
		attribute.Int64("lnmux.htlc_id", int64(h.Circuit.HTLC)),
		attribute.String("lnmux.payment_hash", hex.EncodeToString(h.Hash[:])),
		attribute.Int64("lnmux.amount_msat", int64(h.Forward.OutgoingAmount)),
	))
}

// traceResolution records an answer on the HTLC's span, if the call comes
// from within it (held HTLCs are answered later, outside).
func traceResolution(ctx context.Context, r ports.Resolution, err error) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{attribute.String("lnmux.action", r.Action.String())}
	if r.FailureCode != 0 {
		attrs = append(attrs, attribute.Int("lnmux.failure_code", int(r.FailureCode)))
	}
	span.AddEvent("resolution sent", trace.WithAttributes(attrs...))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "resolution not delivered")
	}
}
