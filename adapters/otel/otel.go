// Package otel sets up OpenTelemetry tracing: an OTLP/gRPC exporter to a
// collector such as Grafana Tempo, W3C trace-context propagation and the
// global tracer provider that the RPC adapter's interceptor uses.
package otel

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

// Config selects the collector.
type Config struct {
	// Endpoint is host:port or a URL of an OTLP/gRPC collector; empty turns
	// tracing off (spans are still propagated).
	Endpoint    string
	ServiceName string
	Version     string
	// SampleRatio is the fraction of root traces kept.
	SampleRatio float64
}

// Setup installs the global tracer provider and propagator. The returned
// shutdown flushes pending spans; call it last.
func Setup(ctx context.Context, cfg Config) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if cfg.Endpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	opts := []otlptracegrpc.Option{}
	switch {
	case strings.HasPrefix(cfg.Endpoint, "http://"):
		opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint), otlptracegrpc.WithInsecure())
	case strings.HasPrefix(cfg.Endpoint, "https://"):
		opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
	default:
		opts = append(opts, otlptracegrpc.WithEndpoint(cfg.Endpoint), otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	// Schemaless: merging with the SDK default must not trip over two
	// semconv schema versions.
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(cfg.ServiceName), semconv.ServiceVersion(cfg.Version)))
	if err != nil {
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	ratio := cfg.SampleRatio
	if ratio <= 0 || ratio > 1 {
		ratio = 1
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}
