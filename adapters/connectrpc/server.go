// Package connectrpc serves lnmux's API (proto/lnmux) over ports.Service with
// connect-go: Connect, gRPC and gRPC-Web on one listener (HTTP/1.1 and
// cleartext HTTP/2), plus gRPC reflection, gRPC health, CORS for browsers and
// OpenTelemetry. It is the only package that maps domain errors onto RPC
// status codes.
package connectrpc

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	connectcors "connectrpc.com/cors"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"connectrpc.com/otelconnect"
	"github.com/rs/cors"

	"github.com/lnmux/lnmux/ports"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// maxRequestBytes bounds a request message. lnmux's requests are tiny (the
// largest, a full BatchAddInvoice with the longest descriptions, is about
// 65 KB); the limit keeps a client from making the server buffer megabytes.
const maxRequestBytes = 128 << 10

// compressMinBytes is the smallest response worth compressing. connect-go
// compresses every response a client accepts gzip for (connect-go clients
// do by default) unless told otherwise: for AddInvoice's ~500 bytes, gzip
// spent more CPU than the signature (docs/benchmarks.md) and saved nothing
// on the wire. Large ListInvoices pages are still compressed.
const compressMinBytes = 4 << 10

// Option configures NewHandler.
type Option func(*config)

type config struct {
	origins      []string
	interceptors []connect.Interceptor
	checker      grpchealth.Checker
	telemetry    bool
	trustParent  bool
	auth         *authInterceptor
	limits       StreamLimits
	bodyTimeout  time.Duration
}

// WithAllowedOrigins lets browsers on these origins (e.g.
// "https://shop.example") call the API with Connect or gRPC-Web. "*" allows
// every origin. Without it no cross-origin request is allowed.
func WithAllowedOrigins(origins ...string) Option {
	return func(c *config) { c.origins = append(c.origins, origins...) }
}

// WithInterceptors adds interceptors to the lnmux service, inside the
// telemetry interceptor (authentication, for example).
func WithInterceptors(interceptors ...connect.Interceptor) Option {
	return func(c *config) { c.interceptors = append(c.interceptors, interceptors...) }
}

// WithHealthChecker answers gRPC health checks with checker instead of the
// default static checker, which reports lnmux.Service and "" as SERVING
// until Drain. A grpchealth.StaticChecker lets the caller flip the status at
// runtime (e.g. NOT_SERVING until the leader lock is held).
func WithHealthChecker(checker grpchealth.Checker) Option {
	return func(c *config) { c.checker = checker }
}

// WithoutTelemetry leaves out the OpenTelemetry interceptor: no spans. With
// WithTrustedTraceContext the caller's traceparent still reaches the call's
// context (for log lines), without otelconnect's cost.
func WithoutTelemetry() Option {
	return func(c *config) { c.telemetry = false }
}

// WithTrustedTraceContext makes each call's span a child of the caller's
// W3C traceparent, so that a trace started by a client continues through
// lnmux. Without it the call starts a trace of its own, linked to the
// caller's span (otelconnect's default for untrusted callers). With
// WithAuthorizer only callers that sent a valid credential are trusted:
// an anonymous caller's trace headers are dropped (principal.go).
func WithTrustedTraceContext() Option {
	return func(c *config) { c.trustParent = true }
}

// Handler serves the API. It implements http.Handler for the paths Paths
// lists and answers 404 to anything else.
type Handler struct {
	next http.Handler
	// static is the default health checker, nil with WithHealthChecker.
	static *grpchealth.StaticChecker
	// draining is cancelled by Drain; every long-lived call ends with it.
	draining context.Context
	drain    context.CancelFunc

	log         *slog.Logger
	limiter     *limiter
	anonLimiter *limiter
	slowDropped atomic.Uint64
	health      http.Handler
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.next.ServeHTTP(w, r) }

// NewHandler builds the API handler over svc. Serve it with NewHTTPServer, or
// with any http.Server that speaks cleartext HTTP/2 (gRPC needs it).
//
// The telemetry interceptor uses the global OpenTelemetry providers, so set
// them before calling NewHandler if possible (the global delegates pick up
// providers set later).
func NewHandler(svc ports.Service, log *slog.Logger, opts ...Option) (*Handler, error) {
	cfg := config{telemetry: true, limits: DefaultStreamLimits, bodyTimeout: DefaultBodyReadTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	var static *grpchealth.StaticChecker
	if cfg.checker == nil {
		static = grpchealth.NewStaticChecker(lnmuxpbconnect.ServiceName)
		cfg.checker = static
	}

	recoverOpt := connect.WithRecover(func(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
		id := newErrorID()
		log.ErrorContext(ctx, "rpc panicked", "procedure", spec.Procedure, "error_id", id, "panic", p)
		return connect.NewError(connect.CodeInternal, fmt.Errorf("%w (error id %s)", errInternal, id))
	})
	// Authentication first, so that an anonymous client takes no stream
	// slot and cannot name the trace of its call (principal.go); the
	// others see only authorised calls.
	var interceptors []connect.Interceptor
	if cfg.auth != nil {
		cfg.auth.log = log
		interceptors = append(interceptors, cfg.auth, untrustedTrace{})
	}
	if cfg.telemetry {
		// Spans only: lnmux's RPC metrics are Prometheus's
		// (adapters/prometheus) and no OpenTelemetry meter provider is ever
		// installed, so otelconnect's metrics went nowhere, yet built their
		// attribute sets on every call (~3% of lnmuxd's CPU under
		// AddInvoice load, docs/benchmarks.md).
		otelOpts := []otelconnect.Option{otelconnect.WithoutMetrics()}
		if cfg.trustParent {
			otelOpts = append(otelOpts, otelconnect.WithTrustRemote())
		}
		otel, err := otelconnect.NewInterceptor(otelOpts...)
		if err != nil {
			return nil, fmt.Errorf("connectrpc: telemetry interceptor: %w", err)
		}
		interceptors = append(interceptors, otel)
	} else if cfg.trustParent {
		interceptors = append(interceptors, traceContext{})
	}
	lim := newLimiter(cfg.limits, log)
	interceptors = append(interceptors, lim)
	interceptors = append(interceptors, cfg.interceptors...)
	// Health and reflection need no macaroon: their streams count against
	// a cap of their own, so that anonymous callers never take the API's
	// slots.
	anonLim := newAnonymousLimiter(cfg.limits, log)
	limited := connect.WithInterceptors(anonLim)

	draining, drain := context.WithCancel(context.Background())
	h := &Handler{static: static, draining: draining, drain: drain, log: log, limiter: lim, anonLimiter: anonLim}

	mux := http.NewServeMux()
	svcPath, svcHandler := lnmuxpbconnect.NewServiceHandler(
		&service{svc: svc, log: log, draining: draining},
		recoverOpt,
		connect.WithInterceptors(interceptors...),
		connect.WithReadMaxBytes(maxRequestBytes),
		connect.WithCompressMinBytes(compressMinBytes),
	)
	// The service ends its own long-lived calls on Drain (see untilDrained).
	mux.Handle(svcPath, svcHandler)

	healthPath, healthHandler := grpchealth.NewHandler(cfg.checker, recoverOpt, limited)
	healthMux := http.NewServeMux()
	healthMux.Handle(healthPath, healthHandler)
	healthMux.Handle(healthPath+"Watch", h.drainable(healthHandler))
	h.health = bodyDeadline(h.slowReaders(healthMux, cfg.limits.SlowReaderTimeout), cfg.bodyTimeout)
	mux.Handle(healthPath, healthMux)

	reflector := grpcreflect.NewStaticReflector(lnmuxpbconnect.ServiceName, grpchealth.HealthV1ServiceName)
	mux.Handle(h.drainablePath(grpcreflect.NewHandlerV1(reflector, recoverOpt, limited)))
	// grpcurl and many other tools still ask the v1alpha service.
	mux.Handle(h.drainablePath(grpcreflect.NewHandlerV1Alpha(reflector, recoverOpt, limited)))

	h.next = h.slowReaders(mux, cfg.limits.SlowReaderTimeout)
	if len(cfg.origins) > 0 {
		h.next = cors.New(cors.Options{
			AllowedOrigins: cfg.origins,
			AllowedMethods: connectcors.AllowedMethods(),
			// Browsers may send the credential (see auth.go).
			AllowedHeaders: append(connectcors.AllowedHeaders(), macaroonHeader, authorizationHeader),
			ExposedHeaders: connectcors.ExposedHeaders(),
			MaxAge:         7200,
		}).Handler(h.next)
	}
	h.next = bodyDeadline(h.next, cfg.bodyTimeout)
	return h, nil
}

// Health serves only the gRPC health service, for a second listener (the
// instrumentation port) that must not expose the API.
func (h *Handler) Health() http.Handler { return h.health }

// HealthPath is the URL path prefix Health serves.
func HealthPath() string { return "/" + grpchealth.HealthV1ServiceName + "/" }

// drainable ends the requests it serves when the handler drains, for the
// long-lived calls of handlers lnmux does not implement.
func (h *Handler) drainable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(h.draining, cancel)()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (h *Handler) drainablePath(path string, next http.Handler) (string, http.Handler) {
	return path, h.drainable(next)
}

// Paths lists the URL path prefixes the handler serves, for mounting it on
// a mux shared with other handlers.
func (h *Handler) Paths() []string {
	return []string{
		"/" + lnmuxpbconnect.ServiceName + "/",
		"/" + grpchealth.HealthV1ServiceName + "/",
		"/" + grpcreflect.ReflectV1ServiceName + "/",
		"/" + grpcreflect.ReflectV1AlphaServiceName + "/",
	}
}

// Drain ends every long-lived call (the subscriptions,
// WaitForInvoiceFinalStatus, health Watch, reflection streams) and makes new
// ones fail at once, with UNAVAILABLE where lnmux answers, so that clients
// retry elsewhere and http.Server.Shutdown, which waits for active requests,
// does not wait for calls that may never end. Other unary calls are not
// affected. With the default health checker, health checks report
// NOT_SERVING from then on. NewHTTPServer registers Drain with
// RegisterOnShutdown.
func (h *Handler) Drain() {
	if h.static != nil {
		h.static.SetStatus("", grpchealth.StatusNotServing)
		h.static.SetStatus(lnmuxpbconnect.ServiceName, grpchealth.StatusNotServing)
	}
	h.drain()
}

// NewHTTPServer returns a server for h on addr that speaks HTTP/1.1 and
// cleartext HTTP/2 (h2c, prior knowledge), as gRPC clients need. It has no
// write timeout, since server streams last as long as the subscription, and
// pings idle HTTP/2 connections so dead subscribers are noticed. Shutdown
// drains the handler (see Drain). Serve TLS in front of it (or with
// ServeTLS) where the network is not trusted.
func NewHTTPServer(addr string, h *Handler) *http.Server {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: time.Minute,
			PingTimeout:     20 * time.Second,
		},
	}
	srv.RegisterOnShutdown(h.Drain)
	return srv
}
