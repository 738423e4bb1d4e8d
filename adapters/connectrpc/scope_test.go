package connectrpc

import (
	"bytes"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lnmux/lnmux/ports"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// scopedCaller names a credential of the scope tests: a macaroon of some
// scopes, or none (an anonymous call where macaroons are optional).
type scopedCaller struct {
	name   string
	scopes []ports.Scope // nil: no macaroon
}

var scopedCallers = []scopedCaller{
	{"anonymous", nil},
	{"invoice", []ports.Scope{ports.ScopeInvoice}},
	{"readonly", []ports.Scope{ports.ScopeReadOnly}},
	{"invoice+readonly", []ports.Scope{ports.ScopeInvoice, ports.ScopeReadOnly}},
	{"admin", []ports.Scope{ports.ScopeAdmin}},
}

// scopedRequest returns a request carrying c's macaroon baked by macs.
func scopedRequest[T any](t *testing.T, macs macaroonBaker, c scopedCaller, msg *T) *connect.Request[T] {
	t.Helper()
	req := connect.NewRequest(msg)
	if c.scopes != nil {
		req.Header().Set(macaroonHeader, macs(t, c.scopes...))
	}
	return req
}

type macaroonBaker func(t *testing.T, scopes ...ports.Scope) string

// newScopedServer serves the fake with macaroons optional (as on
// loopback), so that anonymous calls pass too.
func newScopedServer(t *testing.T, svc ports.Service, opts ...Option) (lnmuxpbconnect.ServiceClient, macaroonBaker) {
	t.Helper()
	macs := newMacaroons(t, 0x42)
	srv := newTestServer(t, svc, append([]Option{WithAuthorizer(macs, false)}, opts...)...)
	return lnmuxpbconnect.NewServiceClient(srv.Client(), srv.URL),
		func(t *testing.T, scopes ...ports.Scope) string { return bake(t, macs, scopes...) }
}

// TestNodeErrorDetailsByScope: GetInfo's last_error may name dial targets
// and TLS failures; only readonly and admin (invoices:read) see it, the
// invoice scope and anonymous callers a generic text, and "" stays "".
func TestNodeErrorDetailsByScope(t *testing.T) {
	t.Parallel()
	svc := newFake()
	detail := svc.info.Nodes[0].LastError
	svc.info.Nodes = append(svc.info.Nodes, ports.NodeStatus{Node: testNodeKey, Connected: true})
	client, macs := newScopedServer(t, svc)
	for _, c := range scopedCallers {
		res, err := client.GetInfo(t.Context(), scopedRequest(t, macs, c, &lnmuxpb.GetInfoRequest{}))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		nodes := res.Msg.GetNodes()
		got := nodes[0].GetLastError()
		full := c.name == "readonly" || c.name == "invoice+readonly" || c.name == "admin"
		switch {
		case full && got != detail:
			t.Errorf("%s: last_error %q, want %q", c.name, got, detail)
		case !full && (got == "" || strings.Contains(got, "tls") || strings.Contains(got, "certificate")):
			t.Errorf("%s: last_error %q, want a generic text", c.name, got)
		}
		if nodes[1].GetLastError() != "" {
			t.Errorf("%s: a node without an error got last_error %q", c.name, nodes[1].GetLastError())
		}
	}
}

// TestPreimagesOnlyForAdmin: AddInvoice, BatchAddInvoice and ListInvoices
// return preimages to callers that may settle (admin) and to anonymous
// callers where macaroons are optional (the original's clients send none);
// every other scope gets the rest of the response without them.
func TestPreimagesOnlyForAdmin(t *testing.T) {
	t.Parallel()
	client, macs := newScopedServer(t, newFake())
	for _, c := range scopedCallers {
		sees := c.name == "admin" || c.name == "anonymous"
		check := func(what string, preimage []byte, rest string) {
			t.Helper()
			if rest == "" {
				t.Errorf("%s %s: the rest of the response is missing", c.name, what)
			}
			if sees != (len(preimage) > 0) {
				t.Errorf("%s %s: preimage %x, want shown=%v", c.name, what, preimage, sees)
			}
			if sees && !bytes.Equal(preimage, testPreimage[:]) && what == "AddInvoice" {
				t.Errorf("%s %s: preimage %x, want %x", c.name, what, preimage, testPreimage)
			}
		}
		add := &lnmuxpb.AddInvoiceRequest{AmtMsat: 20_000, ExpirySecs: 600}
		if has(c, ports.ScopeInvoice) || has(c, ports.ScopeAdmin) || c.scopes == nil {
			res, err := client.AddInvoice(t.Context(), scopedRequest(t, macs, c, add))
			if err != nil {
				t.Fatalf("%s AddInvoice: %v", c.name, err)
			}
			check("AddInvoice", res.Msg.GetPreimage(), res.Msg.GetPaymentRequest())
			batch, err := client.BatchAddInvoice(t.Context(), scopedRequest(t, macs, c,
				&lnmuxpb.BatchAddInvoiceRequest{Invoices: []*lnmuxpb.AddInvoiceRequest{add, add}}))
			if err != nil {
				t.Fatalf("%s BatchAddInvoice: %v", c.name, err)
			}
			for _, inv := range batch.Msg.GetInvoices() {
				check("BatchAddInvoice", inv.GetPreimage(), inv.GetPaymentRequest())
			}
		}
		if has(c, ports.ScopeReadOnly) || has(c, ports.ScopeAdmin) || c.scopes == nil {
			res, err := client.ListInvoices(t.Context(), scopedRequest(t, macs, c, &lnmuxpb.ListInvoicesRequest{MaxInvoicesCount: 10}))
			if err != nil {
				t.Fatalf("%s ListInvoices: %v", c.name, err)
			}
			if len(res.Msg.GetInvoice()) != 2 {
				t.Fatalf("%s ListInvoices: %d invoices, want 2", c.name, len(res.Msg.GetInvoice()))
			}
			for _, inv := range res.Msg.GetInvoice() {
				check("ListInvoices", inv.GetPreimage(), string(inv.GetHash()))
			}
			look, err := client.LookupInvoice(t.Context(), scopedRequest(t, macs, c, &lnmuxpb.LookupInvoiceRequest{Hash: testHash[:]}))
			if err != nil {
				t.Fatalf("%s LookupInvoice: %v", c.name, err)
			}
			check("LookupInvoice", look.Msg.GetInvoice().GetPreimage(), string(look.Msg.GetInvoice().GetHash()))
		}
	}
}

func has(c scopedCaller, s ports.Scope) bool {
	for _, x := range c.scopes {
		if x == s {
			return true
		}
	}
	return false
}

// TestTraceParentOnlyAfterAuthentication: an anonymous caller's
// traceparent neither names the call's trace nor forces its sampling; an
// authenticated caller's is continued, with tracing on (otelconnect) and
// off.
func TestTraceParentOnlyAfterAuthentication(t *testing.T) {
	// Global providers: not parallel (restored before the parallel tests
	// resume).
	prevProp, prevTP := otel.GetTextMapPropagator(), otel.GetTracerProvider()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() {
		otel.SetTextMapPropagator(prevProp)
		otel.SetTracerProvider(prevTP)
		_ = tp.Shutdown(t.Context())
	})
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		spanID  = "00f067aa0ba902b7"
	)
	for _, mode := range []struct {
		name string
		opts []Option
	}{
		{"tracing on", []Option{WithTrustedTraceContext()}},
		{"tracing off", []Option{WithoutTelemetry(), WithTrustedTraceContext()}},
	} {
		for _, c := range []scopedCaller{{"anonymous", nil}, {"invoice", []ports.Scope{ports.ScopeInvoice}}} {
			svc := &spanRecorder{fakeService: newFake()}
			client, macs := newScopedServer(t, svc, mode.opts...)
			req := scopedRequest(t, macs, c, &lnmuxpb.GetInfoRequest{})
			req.Header().Set("traceparent", "00-"+traceID+"-"+spanID+"-01")
			if _, err := client.GetInfo(t.Context(), req); err != nil {
				t.Fatalf("%s %s: %v", mode.name, c.name, err)
			}
			svc.mu.Lock()
			seen := svc.seen
			svc.mu.Unlock()
			continued := seen.TraceID().String() == traceID
			if c.scopes == nil && (continued || seen.IsSampled()) {
				t.Errorf("%s: an anonymous traceparent reached the call (trace %s, sampled %v)", mode.name, seen.TraceID(), seen.IsSampled())
			}
			if c.scopes != nil && !continued {
				t.Errorf("%s: an authenticated caller's trace was not continued (trace %s)", mode.name, seen.TraceID())
			}
		}
	}
}
