package otel

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// cancelStore records the cancels it is given and fails with err.
type cancelStore struct {
	ports.InvoiceStore
	got []domain.CancelRecord
	err error
}

func (s *cancelStore) RecordCancel(_ context.Context, c domain.CancelRecord) error {
	s.got = append(s.got, c)
	return s.err
}

// TestStoreRecordCancelSpan: RecordCancel passes through with a span that
// names the hash and whether the cancel is permanent, and marks a failure.
func TestStoreRecordCancelSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	// The package's tracer delegates to the first global provider only:
	// replace it for the test.
	prev := tracer
	tracer = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")
	t.Cleanup(func() { tracer = prev })

	inner := &cancelStore{}
	st := Store(inner)
	c := domain.CancelRecord{Hash: domain.PaymentHash{1}, SetID: domain.SetID{2}, Permanent: true}
	if err := st.RecordCancel(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	inner.err = domain.ErrSettleRequested
	if err := st.RecordCancel(t.Context(), c); !errors.Is(err, domain.ErrSettleRequested) {
		t.Fatalf("got %v, want the inner store's error", err)
	}
	if len(inner.got) != 2 || inner.got[0].Hash != c.Hash || !inner.got[1].Permanent {
		t.Fatalf("inner store got %+v", inner.got)
	}
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	for i, sp := range spans {
		if sp.Name() != "lnmux.store.record_cancel" {
			t.Fatalf("span %d named %q", i, sp.Name())
		}
		attrs := map[attribute.Key]attribute.Value{}
		for _, kv := range sp.Attributes() {
			attrs[kv.Key] = kv.Value
		}
		if !attrs["lnmux.permanent"].AsBool() || attrs["lnmux.payment_hash"].AsString() != c.Hash.String() {
			t.Fatalf("span %d attributes %v", i, sp.Attributes())
		}
	}
	if spans[0].Status().Code == codes.Error || spans[1].Status().Code != codes.Error {
		t.Fatalf("statuses %v, %v: want ok, then error", spans[0].Status(), spans[1].Status())
	}
}
