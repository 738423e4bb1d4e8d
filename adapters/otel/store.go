package otel

import (
	"context"
	"encoding/hex"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

var tracer = otel.Tracer("github.com/lnmux/lnmux/adapters/otel")

// Store wraps an invoice store so that its writes get spans
// ("lnmux.store.request_settle", "lnmux.store.update",
// "lnmux.store.record_cancel") in the caller's trace: the settlement's
// commit, each final resolution's update and each recorded cancel. Reads
// are not traced. Methods added to ports.InvoiceStore later pass through
// untraced until they are added here.
func Store(s ports.InvoiceStore) ports.InvoiceStore { return &store{InvoiceStore: s} }

type store struct{ ports.InvoiceStore }

var _ ports.InvoiceStore = (*store)(nil)

func startStore(ctx context.Context, name string, hash domain.PaymentHash, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	attrs = append(attrs, attribute.String("lnmux.payment_hash", hex.EncodeToString(hash[:])))
	return tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

func endStore(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "store write failed")
	}
	span.End()
}

// RequestSettle implements ports.InvoiceStore.
func (s *store) RequestSettle(ctx context.Context, inv domain.Invoice) (out domain.Invoice, err error) {
	ctx, span := startStore(ctx, "lnmux.store.request_settle", inv.Hash,
		attribute.String("lnmux.set_id", hex.EncodeToString(inv.SetID[:])),
		attribute.Int("lnmux.htlcs", len(inv.HTLCs)))
	defer func() { endStore(span, err) }()
	return s.InvoiceStore.RequestSettle(ctx, inv)
}

// Update implements ports.InvoiceStore.
func (s *store) Update(ctx context.Context, hash domain.PaymentHash, fn func(*domain.Invoice) error) (out domain.Invoice, err error) {
	ctx, span := startStore(ctx, "lnmux.store.update", hash)
	defer func() {
		if err == nil {
			span.SetAttributes(attribute.String("lnmux.status", out.Status.String()))
		}
		endStore(span, err)
	}()
	return s.InvoiceStore.Update(ctx, hash, fn)
}

// RecordCancel implements ports.InvoiceStore with a span named
// "lnmux.store.record_cancel".
func (s *store) RecordCancel(ctx context.Context, c domain.CancelRecord) (err error) {
	ctx, span := startStore(ctx, "lnmux.store.record_cancel", c.Hash,
		attribute.String("lnmux.set_id", hex.EncodeToString(c.SetID[:])),
		attribute.Int("lnmux.htlcs", len(c.HTLCs)),
		attribute.Bool("lnmux.permanent", c.Permanent))
	defer func() { endStore(span, err) }()
	return s.InvoiceStore.RecordCancel(ctx, c)
}

// Settlements implements ports.Tracer with spans named "lnmux.settle".
type Settlements struct{}

var _ ports.Tracer = Settlements{}

// Settlement implements ports.Tracer.
func (Settlements) Settlement(ctx context.Context, hash domain.PaymentHash, setID domain.SetID, htlcs int) (context.Context, func(error)) {
	ctx, span := tracer.Start(ctx, "lnmux.settle", trace.WithAttributes(
		attribute.String("lnmux.payment_hash", hex.EncodeToString(hash[:])),
		attribute.String("lnmux.set_id", hex.EncodeToString(setID[:])),
		attribute.Int("lnmux.htlcs", htlcs)))
	return ctx, func(err error) { endStore(span, err) }
}

var _ ports.InvoiceEventLog = (*store)(nil)

// ListEvents implements ports.InvoiceEventLog, untraced, when the wrapped
// store keeps the event log.
func (s *store) ListEvents(ctx context.Context, after uint64, limit int) ([]ports.InvoiceEvent, error) {
	log, ok := s.InvoiceStore.(ports.InvoiceEventLog)
	if !ok {
		return nil, ports.ErrNoEventLog
	}
	return log.ListEvents(ctx, after, limit)
}
