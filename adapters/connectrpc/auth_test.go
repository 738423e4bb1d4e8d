package connectrpc

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc/metadata"

	"github.com/lnmux/lnmux/adapters/macaroon"
	"github.com/lnmux/lnmux/adapters/memstore"
	"github.com/lnmux/lnmux/ports"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// credKey carries the header a test call sends (name, value).
type credKey struct{}

func withHeader(ctx context.Context, name, value string) context.Context {
	ctx = context.WithValue(ctx, credKey{}, [2]string{name, value})
	// grpc-go sends outgoing metadata as HTTP/2 headers.
	return metadata.AppendToOutgoingContext(ctx, strings.ToLower(name), value)
}

// headerRT adds the header of the request's context, for connect clients.
type headerRT struct{ next http.RoundTripper }

func (h headerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	if hv, ok := r.Context().Value(credKey{}).([2]string); ok {
		r = r.Clone(r.Context())
		r.Header.Set(hv[0], hv[1])
	}
	return h.next.RoundTrip(r)
}

func withHeaderRT(c *http.Client) *http.Client {
	return &http.Client{Transport: headerRT{c.Transport}}
}

// authTransports are the transports of server_test.go with clients that
// send the context's header.
var authTransports = []transport{
	{"connect-proto/http1", func(t *testing.T, srv *testServer) caller {
		return connectCaller(lnmuxpbconnect.NewServiceClient(withHeaderRT(srv.Client()), srv.URL))
	}},
	{"connect-json/h2c", func(t *testing.T, srv *testServer) caller {
		return connectCaller(lnmuxpbconnect.NewServiceClient(withHeaderRT(h2cClient(t)), srv.URL, connect.WithProtoJSON()))
	}},
	{"grpc-web/http1", func(t *testing.T, srv *testServer) caller {
		return connectCaller(lnmuxpbconnect.NewServiceClient(withHeaderRT(srv.Client()), srv.URL, connect.WithGRPCWeb()))
	}},
	{"grpc/connect-go", func(t *testing.T, srv *testServer) caller {
		return connectCaller(lnmuxpbconnect.NewServiceClient(withHeaderRT(h2cClient(t)), srv.URL, connect.WithGRPC()))
	}},
	{"grpc/grpc-go", func(t *testing.T, srv *testServer) caller {
		return grpcCaller(grpcConn(t, srv))
	}},
}

func newMacaroons(t *testing.T, identity byte) *macaroon.Service {
	t.Helper()
	s, err := macaroon.New(t.Context(), bytes.Repeat([]byte{identity}, 32), t.TempDir(), memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bake(t *testing.T, s *macaroon.Service, scopes ...ports.Scope) string {
	t.Helper()
	mac, err := s.Bake(t.Context(), time.Now(), 0, scopes...)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(mac)
}

// TestPermissionsCoverEveryRPC: every method of the service has a
// permission, so that none is refused by accident or left open.
func TestPermissionsCoverEveryRPC(t *testing.T) {
	t.Parallel()
	methods := lnmuxpb.File_lnmux_lnmux_proto.Services().ByName("Service").Methods()
	for i := range methods.Len() {
		proc := "/" + lnmuxpbconnect.ServiceName + "/" + string(methods.Get(i).Name())
		if _, ok := permissions[proc]; !ok {
			t.Errorf("%s has no permission in auth.go", proc)
		}
	}
	if len(permissions) != methods.Len() {
		t.Errorf("permissions has %d entries for %d methods", len(permissions), methods.Len())
	}
}

// TestAuthScopes runs every RPC with every scope over every transport:
// allowed calls succeed, the others are PERMISSION_DENIED; without a
// macaroon or with a bad one every call is UNAUTHENTICATED.
func TestAuthScopes(t *testing.T) {
	t.Parallel()
	macs := newMacaroons(t, 0x42)
	stranger := newMacaroons(t, 0x43)
	want := map[ports.Scope][]string{
		ports.ScopeInvoice:  {"GetInfo", "AddInvoice", "BatchAddInvoice"},
		ports.ScopeReadOnly: {"GetInfo", "ListInvoices", "WaitForInvoiceFinalStatus", "SubscribeInvoiceAccepted", "SubscribeSingleInvoice"},
		ports.ScopeAdmin:    {"GetInfo", "AddInvoice", "BatchAddInvoice", "ListInvoices", "WaitForInvoiceFinalStatus", "SubscribeInvoiceAccepted", "SubscribeSingleInvoice", "SettleInvoice", "CancelInvoice"},
	}
	type cred struct {
		name, header, value string
		scope               ports.Scope // "": every call is unauthenticated
	}
	var creds []cred
	for _, scope := range ports.Scopes {
		hexMac := bake(t, macs, scope)
		creds = append(creds,
			cred{string(scope) + "/macaroon-header", "Macaroon", hexMac, scope},
			cred{string(scope) + "/bearer", "Authorization", "Bearer " + hexMac, scope})
	}
	creds = append(creds,
		cred{"none", "", "", ""},
		cred{"not-hex", "Macaroon", "zz", ""},
		cred{"basic-auth", "Authorization", "Basic dXNlcjpwYXNz", ""},
		cred{"garbage", "Macaroon", "00ff00ff", ""},
		cred{"other-identity", "Macaroon", bake(t, stranger, ports.ScopeAdmin), ""},
	)
	for _, tr := range authTransports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, newFake(), WithAuthorizer(macs, true))
			call := tr.dial(t, srv)
			for _, c := range creds {
				ctx := t.Context()
				if c.header != "" {
					ctx = withHeader(ctx, c.header, c.value)
				}
				for _, rc := range rpcCases() {
					_, err := call(ctx, rc.method, rc.req, rc.newResp)
					code, msg := codeAndMessage(err)
					switch {
					case c.scope == "":
						if code != connect.CodeUnauthenticated {
							t.Errorf("%s %s: got %v %q, want unauthenticated", c.name, rc.method, code, msg)
						}
					case slices.Contains(want[c.scope], rc.method):
						if err != nil {
							t.Errorf("%s %s: got %v %q, want success", c.name, rc.method, code, msg)
						}
					default:
						if code != connect.CodePermissionDenied {
							t.Errorf("%s %s: got %v %q, want permission denied", c.name, rc.method, code, msg)
						}
					}
					if strings.Contains(msg, c.value[min(len(c.value), 8):]) && len(c.value) > 16 {
						t.Errorf("%s %s: the error quotes the credential: %q", c.name, rc.method, msg)
					}
				}
			}
			if strings.Contains(srv.log.String(), bake(t, macs, ports.ScopeAdmin)[:32]) {
				t.Error("a macaroon appears in the server log")
			}
		})
	}
}

// TestAuthOptional: on a loopback listener the credential is optional, but
// one that is sent is still checked.
func TestAuthOptional(t *testing.T) {
	t.Parallel()
	macs := newMacaroons(t, 0x42)
	srv := newTestServer(t, newFake(), WithAuthorizer(macs, false))
	call := authTransports[0].dial(t, srv)
	for _, rc := range rpcCases() {
		if _, err := call(t.Context(), rc.method, rc.req, rc.newResp); err != nil {
			t.Errorf("%s without macaroon: %v", rc.method, err)
		}
		ctx := withHeader(t.Context(), "Macaroon", bake(t, newMacaroons(t, 0x43), ports.ScopeAdmin))
		if _, err := call(ctx, rc.method, rc.req, rc.newResp); connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("%s with a bad macaroon: %v", rc.method, err)
		}
		ctx = withHeader(t.Context(), "Macaroon", bake(t, macs, ports.ScopeInvoice))
		_, err := call(ctx, rc.method, rc.req, rc.newResp)
		if ok := rc.method == "GetInfo" || rc.method == "AddInvoice" || rc.method == "BatchAddInvoice"; ok != (err == nil) {
			t.Errorf("%s with the invoice macaroon: %v", rc.method, err)
		}
	}
}

// TestAuthLeavesHealthOpen: health checks and reflection need no
// credential (load balancers and grpcurl list).
func TestAuthLeavesHealthOpen(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, newFake(), WithAuthorizer(newMacaroons(t, 0x42), true))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/grpc.health.v1.Health/Check",
		strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health check without macaroon: %s", resp.Status)
	}
}

// TestCORSAllowsCredentialHeaders: a browser may send the macaroon.
func TestCORSAllowsCredentialHeaders(t *testing.T) {
	t.Parallel()
	const origin = "https://shop.example"
	srv := newTestServer(t, newFake(), WithAllowedOrigins(origin), WithAuthorizer(newMacaroons(t, 0x42), true))
	for _, h := range []string{"authorization", "macaroon"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodOptions, srv.URL+lnmuxpbconnect.ServiceAddInvoiceProcedure, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodPost)
		// Sorted and lower-case, as browsers send them.
		names := []string{"connect-protocol-version", "content-type", h}
		slices.Sort(names)
		req.Header.Set("Access-Control-Request-Headers", strings.Join(names, ","))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if got := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")); !strings.Contains(got, h) {
			t.Errorf("preflight for %s: allowed headers %q", h, got)
		}
	}
}
