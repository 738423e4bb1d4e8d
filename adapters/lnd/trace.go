package lnd

import (
	"context"
	"encoding/hex"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// tracer names the spans of HTLC handling; it follows the global provider,
// so spans go wherever lnmuxd's telemetry configuration sends them.
var tracer = otel.Tracer("github.com/lnmux/lnmux/adapters/lnd")

// Span names and attribute keys, shared with the trace checks of the
// end-to-end tests and docs/tracing.md.
const (
	spanHTLC    = "lnmux.htlc"
	spanResolve = "lnmux.htlc.resolve"
	spanFinal   = "lnmux.htlc.final"
)

func circuitAttrs(c domain.CircuitKey, hash domain.PaymentHash) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("lnmux.node", c.Node.String()),
		attribute.Int64("lnmux.chan_id", int64(c.Chan)), //nolint:gosec // a span attribute: the bit pattern identifies the channel
		attribute.Int64("lnmux.htlc_id", int64(c.HTLC)), //nolint:gosec // a span attribute: the bit pattern identifies the HTLC
		attribute.String("lnmux.payment_hash", hex.EncodeToString(hash[:])),
	}
}

// traceHTLC starts the span of one intercepted HTLC: everything the
// application does for it (and logs, with the trace id) happens inside. The
// span's context is remembered so that a later answer (settle, cancel,
// timeout) and lnd's final resolution link back to it.
func (n *Node) traceHTLC(ctx context.Context, h ports.InterceptedHTLC) (context.Context, trace.Span) {
	attrs := append(circuitAttrs(h.Circuit, h.Hash), attribute.Int64("lnmux.amount_msat", int64(h.Forward.OutgoingAmount)))
	ctx, span := tracer.Start(ctx, spanHTLC, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
	n.spans.put(h.Circuit, htlcTrace{hash: h.Hash, htlc: span.SpanContext()})
	return ctx, span
}

// endHTLC ends the HTLC's span; an HTLC not answered within it is held.
func (n *Node) endHTLC(h ports.InterceptedHTLC, span trace.Span) {
	if t, ok := n.spans.get(h.Circuit); ok && !t.answered {
		span.SetAttributes(attribute.Bool("lnmux.held", true))
	}
	span.End()
}

// traceResolution records an answer. Within the HTLC's span (an answer
// given at once) it goes on that span; a later answer gets a span of its
// own in the caller's trace (e.g. the settlement's) linked to the HTLC's,
// and the caller's span is linked to the HTLC's too, so that a settlement's
// span points at every part it settled.
func (n *Node) traceResolution(ctx context.Context, r ports.Resolution) (context.Context, func(error)) {
	attrs := []attribute.KeyValue{attribute.String("lnmux.action", r.Action.String())}
	if r.FailureCode != 0 {
		attrs = append(attrs, attribute.Int("lnmux.failure_code", int(r.FailureCode)))
	}
	if len(r.FailureMessage) > 0 {
		attrs = append(attrs, attribute.Bool("lnmux.failure_encrypted", true))
	}
	t, known := n.spans.answer(r.Circuit, r.Action)
	cur := trace.SpanFromContext(ctx)
	if known && cur.SpanContext().SpanID() == t.htlc.SpanID() {
		cur.SetAttributes(attrs...)
		return ctx, func(err error) { recordErr(cur, err) }
	}
	var hash domain.PaymentHash
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}
	if known {
		hash = t.hash
		link := trace.Link{SpanContext: t.htlc}
		opts = append(opts, trace.WithLinks(link))
		if cur.IsRecording() {
			cur.AddLink(link)
		}
	}
	ctx, span := tracer.Start(ctx, spanResolve, append(opts, trace.WithAttributes(append(circuitAttrs(r.Circuit, hash), attrs...)...))...)
	if known {
		n.spans.resolvedIn(r.Circuit, span.SpanContext())
	}
	return ctx, func(err error) {
		recordErr(span, err)
		span.End()
	}
}

func recordErr(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "resolution not delivered")
	}
}

// traceFinal starts the span of lnd's final word on an HTLC, in the trace
// of the answer that settled or failed it when lnmux sent one, linked to
// the HTLC's span.
func (n *Node) traceFinal(ctx context.Context, r ports.FinalResolution) (context.Context, trace.Span) {
	t, known := n.spans.take(r.Circuit)
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	var hash domain.PaymentHash
	if known {
		hash = t.hash
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: t.htlc}))
		if t.resolve.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, t.resolve)
		}
	}
	attrs := append(circuitAttrs(r.Circuit, hash), attribute.Bool("lnmux.settled", r.Settled))
	return tracer.Start(ctx, spanFinal, append(opts, trace.WithAttributes(attrs...))...)
}

// htlcTrace is what the node remembers of an HTLC's trace until lnd's final
// word on it.
type htlcTrace struct {
	hash     domain.PaymentHash
	htlc     trace.SpanContext // the HTLC's own span
	resolve  trace.SpanContext // the span of the answer sent later, if any
	answered bool
}

// maxTracedHTLCs bounds the memory spent on trace links; past it new HTLCs
// are traced without links (lnd holds at most 483 HTLCs per channel).
const maxTracedHTLCs = 100_000

type htlcSpans struct {
	mu sync.Mutex
	m  map[domain.CircuitKey]htlcTrace
}

func (s *htlcSpans) put(c domain.CircuitKey, t htlcTrace) {
	if !t.htlc.IsValid() {
		return // tracing off
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[domain.CircuitKey]htlcTrace{}
	}
	if len(s.m) < maxTracedHTLCs {
		s.m[c] = t
	}
}

func (s *htlcSpans) get(c domain.CircuitKey) (htlcTrace, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[c]
	return t, ok
}

// answer marks the HTLC answered. A resumed HTLC is not lnmux's: it is
// forgotten at once (its final event is lnd's business).
func (s *htlcSpans) answer(c domain.CircuitKey, a ports.Action) (htlcTrace, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[c]
	if !ok {
		return t, false
	}
	if a == ports.ActionResume {
		delete(s.m, c)
		return t, true
	}
	t.answered = true
	s.m[c] = t
	return t, true
}

func (s *htlcSpans) resolvedIn(c domain.CircuitKey, sc trace.SpanContext) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.m[c]; ok {
		t.resolve = sc
		s.m[c] = t
	}
}

func (s *htlcSpans) take(c domain.CircuitKey) (htlcTrace, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[c]
	delete(s.m, c)
	return t, ok
}

// forget drops what is remembered when the interceptor stream ends: lnd
// offers the held HTLCs again, with new spans.
func (s *htlcSpans) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c, t := range s.m {
		if !t.answered {
			delete(s.m, c)
		}
	}
}
