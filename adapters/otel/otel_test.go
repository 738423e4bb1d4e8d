package otel

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
)

func TestSetupOff(t *testing.T) {
	shutdown, err := Setup(context.Background(), Config{ServiceName: "lnmuxd"})
	if err != nil {
		t.Fatal(err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestSetupExporter(t *testing.T) {
	for _, ep := range []string{"127.0.0.1:4317", "http://127.0.0.1:4317"} {
		shutdown, err := Setup(context.Background(), Config{Endpoint: ep, ServiceName: "lnmuxd", Version: "test", SampleRatio: 1})
		if err != nil {
			t.Fatalf("%s: %v", ep, err)
		}
		_, span := otel.Tracer("test").Start(context.Background(), "span")
		if !span.SpanContext().IsValid() {
			t.Fatal("no recording span with tracing on")
		}
		span.End()
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // nothing listens: do not wait for the flush
		_ = shutdown(ctx)
	}
}
