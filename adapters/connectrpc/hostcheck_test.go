package connectrpc

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

func TestHostAllowed(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	guard := func(p HostPolicy) *hostGuard {
		h, err := GuardHosts(http.NotFoundHandler(), p, log)
		if err != nil {
			t.Fatal(err)
		}
		return h.(*hostGuard)
	}
	loop := guard(HostPolicy{ListenHost: "localhost", AllowedHosts: []string{"lnmux.lan", "192.168.1.10", "[fd00::7]"}})
	for host, want := range map[string]bool{
		"":                             true, // HTTP/1.0: not a browser
		"127.0.0.1:9190":               true,
		"127.0.0.1":                    true,
		"127.0.0.2:1":                  true,
		"localhost:9190":               true,
		"LocalHost.:9190":              true,
		"[::1]:9190":                   true,
		"[::1]":                        true,
		"lnmux.lan:443":                true,
		"LNMUX.LAN":                    true,
		"192.168.1.10:9190":            true,
		"[fd00::7]:9190":               true,
		"rebind.attacker.example:9190": false,
		"rebind.attacker.example":      false,
		"localhost.attacker.example":   false,
		"evil.localhost:9190":          false,
		"127.0.0.1.nip.io:9190":        false,
		"lnmux.lan.attacker.example":   false,
		"10.0.0.1:9190":                false,
		"[fe80::1%25eth0]:9190":        false,
		"0x7f.1:9190":                  false,
	} {
		if got := loop.hostAllowed(host); got != want {
			t.Errorf("listen localhost: Host %q allowed = %v, want %v", host, got, want)
		}
	}
	wild := guard(HostPolicy{ListenHost: "0.0.0.0"})
	for host, want := range map[string]bool{
		"10.0.0.1:9190": true, "[2001:db8::1]:1": true, "localhost": true, "lnmux.internal:9190": false,
	} {
		if got := wild.hostAllowed(host); got != want {
			t.Errorf("listen 0.0.0.0: Host %q allowed = %v, want %v", host, got, want)
		}
	}
	if _, err := GuardHosts(http.NotFoundHandler(), HostPolicy{AllowedOrigins: []string{"not an origin"}}, log); err == nil {
		t.Error("a bad origin was accepted")
	}
}

// guardedServer serves the API behind GuardHosts as lnmuxd does when
// macaroons are optional.
func guardedServer(t *testing.T, fake *fakeService, p HostPolicy, opts ...Option) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := NewHandler(fake, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	guarded, err := GuardHosts(h, p, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(guarded)
	srv.Config = NewHTTPServer("", h)
	srv.Config.Handler = guarded
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	return &testServer{Server: srv, h: h, log: logs}
}

// hostRT sends every request with another Host header, as a browser does
// for a page whose name was rebound to the server's address.
type hostRT struct {
	host string
	next http.RoundTripper
}

func (h hostRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = h.host
	return h.next.RoundTrip(r)
}

// TestRebindingRefused: on a guarded listener a request whose Host is a
// foreign name never reaches the service, whatever the protocol; the
// loopback names and the configured ones do.
func TestRebindingRefused(t *testing.T) {
	t.Parallel()
	fake := newFake()
	fake.block = true
	srv := guardedServer(t, fake, HostPolicy{ListenHost: "127.0.0.1", AllowedHosts: []string{"lnmux.lan"}})
	const rebound = "rebind.attacker.example:9190"

	// The curl: a JSON POST with the attacker's name as Host.
	post := func(host, procedure, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+procedure, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	hash := base64.StdEncoding.EncodeToString(testHash[:])
	for _, proc := range []string{lnmuxpbconnect.ServiceSettleInvoiceProcedure, lnmuxpbconnect.ServiceCancelInvoiceProcedure,
		lnmuxpbconnect.ServiceListInvoicesProcedure, lnmuxpbconnect.ServiceAddInvoiceProcedure} {
		code, body := post(rebound, proc, `{"hash":"`+hash+`","set_id":"`+hash+`"}`)
		if code != http.StatusForbidden || !strings.Contains(body, "api.allowedHosts") {
			t.Errorf("%s with Host %s: %d %q, want 403", proc, rebound, code, body)
		}
	}
	if calls := fake.Calls(); len(calls) != 0 {
		t.Fatalf("the service was called through a rebound name: %v", calls)
	}

	// The subscriptions, over Connect (HTTP/1.1 and h2c) and gRPC.
	for name, hc := range map[string]*http.Client{"http1": srv.Client(), "h2c": h2cClient(t)} {
		c := lnmuxpbconnect.NewServiceClient(&http.Client{Transport: hostRT{rebound, hc.Transport}}, srv.URL)
		st, err := c.SubscribeSingleInvoice(t.Context(), connect.NewRequest(&lnmuxpb.SubscribeSingleInvoiceRequest{Hash: testHash[:]}))
		if err != nil {
			t.Fatal(err)
		}
		if st.Receive() || connect.CodeOf(st.Err()) != connect.CodePermissionDenied {
			t.Errorf("SubscribeSingleInvoice over %s with a rebound Host: %v, want permission_denied", name, st.Err())
		}
		_ = st.Close()
	}
	conn, err := grpc.NewClient(srv.Listener.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority(rebound))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := conn.NewStream(t.Context(), &grpc.StreamDesc{ServerStreams: true}, lnmuxpbconnect.ServiceSubscribeInvoiceAcceptedProcedure)
	if err == nil {
		if err = st.SendMsg(&lnmuxpb.SubscribeInvoiceAcceptedRequest{}); err == nil {
			_ = st.CloseSend()
			err = st.RecvMsg(&lnmuxpb.SubscribeInvoiceAcceptedResponse{})
		}
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC SubscribeInvoiceAccepted with :authority %s: %v, want PermissionDenied", rebound, err)
	}
	if calls := fake.Calls(); len(calls) != 0 {
		t.Fatalf("the service was called through a rebound name: %v", calls)
	}
	if n := srv.log.String(); !strings.Contains(n, "DNS rebinding") {
		t.Errorf("the refusal is not logged:\n%s", n)
	}

	// The names that are the listener's own reach it.
	addr := srv.Listener.Addr().String()
	port := addr[strings.LastIndex(addr, ":"):]
	for _, host := range []string{"127.0.0.1" + port, "localhost" + port, "[::1]" + port, "lnmux.lan" + port, "LNMUX.lan"} {
		if code, body := post(host, lnmuxpbconnect.ServiceGetInfoProcedure, `{}`); code != http.StatusOK {
			t.Errorf("GetInfo with Host %s: %d %s", host, code, body)
		}
	}
}

// TestCrossOriginRefused: behind GuardHosts a page of another origin cannot
// call the API even without a preflight (a "simple" request), while the
// page lnmuxd serves itself (same origin) and an origin CORS allows can.
func TestCrossOriginRefused(t *testing.T) {
	t.Parallel()
	const allowed = "https://shop.example"
	fake := newFake()
	srv := guardedServer(t, fake, HostPolicy{ListenHost: "127.0.0.1", AllowedOrigins: []string{allowed}},
		WithAllowedOrigins(allowed))
	self := srv.URL // http://127.0.0.1:port
	call := func(headers map[string]string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+lnmuxpbconnect.ServiceCancelInvoiceProcedure,
			strings.NewReader(`{"hash":"`+base64.StdEncoding.EncodeToString(testHash[:])+`","set_id":"`+base64.StdEncoding.EncodeToString(testSetID[:])+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		return res.StatusCode
	}
	for _, h := range []map[string]string{
		{"Origin": "http://evil.example"},
		{"Origin": "http://localhost:5173"}, // another local web app
		{"Origin": "null"},                  // a sandboxed frame or a file
		{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"},
		{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:1"},
	} {
		if got := call(h); got != http.StatusForbidden {
			t.Errorf("CancelInvoice with %v: %d, want 403", h, got)
		}
	}
	if slices.Contains(fake.Calls(), "CancelInvoice") {
		t.Fatal("a cross-origin request reached CancelInvoice")
	}
	for _, h := range []map[string]string{
		nil, // not a browser
		{"Origin": self},
		{"Sec-Fetch-Site": "same-origin", "Origin": self},
		{"Origin": allowed},
		{"Sec-Fetch-Site": "cross-site", "Origin": allowed},
	} {
		if got := call(h); got != http.StatusOK {
			t.Errorf("CancelInvoice with %v: %d, want 200", h, got)
		}
	}
	// The preflight of an allowed origin still gets its CORS answer.
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodOptions, srv.URL+lnmuxpbconnect.ServiceCancelInvoiceProcedure, nil)
	req.Header.Set("Origin", allowed)
	req.Header.Set("Access-Control-Request-Method", http.MethodPost)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.Header.Get("Access-Control-Allow-Origin") != allowed {
		t.Errorf("preflight of %s: %s %v", allowed, res.Status, res.Header)
	}
}
