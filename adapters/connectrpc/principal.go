package connectrpc

import (
	"context"
	"net/http"

	"connectrpc.com/connect"

	"github.com/lnmux/lnmux/ports"
)

// What a caller may see besides what its call needs (docs/authentication.md,
// "What each scope sees"): preimages only with settlements:write (the
// admin scope), the nodes' connection errors only with invoices:read
// (readonly and admin), a traceparent only from an authenticated caller.

// principal is what authentication learned about a call's caller. The
// authentication interceptor puts it in the call's context; without one
// (no authorizer configured) the embedder trusts every caller.
type principal struct {
	// anonymous: no credential, let through because macaroons are
	// optional (the API listens on loopback only).
	anonymous bool
	cred      []byte
	auth      ports.Authorizer
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p *principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

func principalFrom(ctx context.Context) *principal {
	p, _ := ctx.Value(principalKey{}).(*principal)
	return p
}

// grants reports whether the credential also grants perm. The authorizer
// remembers credentials that verified, so asking again costs a hash and a
// lookup.
func (p *principal) grants(ctx context.Context, perm ports.Permission) bool {
	return p.cred != nil && p.auth.Authorize(ctx, p.cred, perm) == nil
}

// seesPreimages: a preimage lets whoever holds it claim the payment
// upstream, so only a caller that may settle (settlements:write) sees
// one. Anonymous callers, let through only where macaroons are optional
// (loopback), may settle too, and are the original lnmux's clients, which
// send no credential and read AddInvoice's preimage (docs/compatibility.md).
func seesPreimages(ctx context.Context) bool {
	p := principalFrom(ctx)
	return p == nil || p.anonymous || p.grants(ctx, ports.PermSettlementsWrite)
}

// seesNodeErrors: a node's last error may name its dial target, TLS
// failures and lnd's answers; callers that read invoices (invoices:read)
// see it, others a generic text.
func seesNodeErrors(ctx context.Context) bool {
	p := principalFrom(ctx)
	return p == nil || !p.anonymous && p.grants(ctx, ports.PermInvoicesRead)
}

// genericNodeError replaces a node's last error for callers that may not
// see it.
const genericNodeError = "connection failed (details in the lnmuxd log, or GetInfo with a readonly or admin macaroon)"

// traceHeaders carry a caller's trace context (W3C Trace Context and
// Baggage).
var traceHeaders = []string{"Traceparent", "Tracestate", "Baggage"}

// untrustedTrace runs after authentication and before the trace
// interceptors: an anonymous caller's trace headers are dropped, so that
// it can neither name the trace of its call (and of the log lines) nor
// force sampling. A caller whose credential failed never gets this far.
type untrustedTrace struct{}

func dropAnonymousTrace(ctx context.Context, h http.Header) {
	if p := principalFrom(ctx); p != nil && p.anonymous {
		for _, k := range traceHeaders {
			h.Del(k)
		}
	}
}

func (untrustedTrace) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if !req.Spec().IsClient {
			dropAnonymousTrace(ctx, req.Header())
		}
		return next(ctx, req)
	}
}

func (untrustedTrace) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (untrustedTrace) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		dropAnonymousTrace(ctx, conn.RequestHeader())
		return next(ctx, conn)
	}
}
