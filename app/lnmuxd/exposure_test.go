package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// TestCORSNeedsMacaroons: allowed origins (and '*') are refused while
// macaroons are optional (the API on loopback without
// auth.requireOnLoopback), by validation and by run on the address it
// actually bound.
func TestCORSNeedsMacaroons(t *testing.T) {
	cleanEnv(t)
	for _, tc := range []struct {
		listen  string
		require bool
		origins []string
		ok      bool
	}{
		{"localhost:9190", false, []string{"*"}, false},
		{"127.0.0.1:9190", false, []string{"https://shop.example"}, false},
		{"[::1]:9190", false, []string{"http://localhost:5173"}, false},
		{"localhost:9190", true, []string{"*"}, true},
		{"0.0.0.0:9190", false, []string{"https://shop.example"}, true},
		{"localhost:9190", false, nil, true},
	} {
		cfg := validConfig(t)
		cfg.ListenAddress, cfg.Auth.RequireOnLoopback, cfg.CORS.AllowedOrigins = tc.listen, tc.require, tc.origins
		err := cfg.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("listen %s requireOnLoopback %v origins %v: %v", tc.listen, tc.require, tc.origins, err)
		}
		if err != nil && !strings.Contains(err.Error(), "auth.requireOnLoopback") {
			t.Errorf("the refusal does not say how to allow origins: %v", err)
		}
	}
	// The address bound decides: a name that resolves to loopback passes
	// validation, not run.
	cfg := validConfig(t)
	cfg.CORS.AllowedOrigins = []string{"https://shop.example"}
	if err := cfg.CheckCORS(false); err == nil || !strings.Contains(err.Error(), "cors.allowedOrigins") {
		t.Errorf("checkCORS with macaroons optional: %v", err)
	}
	if err := cfg.CheckCORS(true); err != nil {
		t.Errorf("checkCORS with macaroons required: %v", err)
	}

	// run refuses to start, saying why.
	t.Setenv("LNMUX_IDENTITY_KEY", testKey)
	err := run(t.Context(), []string{"--data-dir", t.TempDir(), "--listen-address", freeLocalAddr(t),
		"--instrumentation-address", freeLocalAddr(t), "--cors-allowed-origins", "*", "run"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "cors.allowedOrigins") || !strings.Contains(err.Error(), "macaroons are required") {
		t.Errorf("run with cors.allowedOrigins * on loopback: %v", err)
	}
}

// hostClient is an HTTP client that sends every request with a Host of
// its choice, as a browser does for a page whose name was rebound to the
// daemon's address.
func hostClient(host string) *http.Client {
	return &http.Client{Transport: hostTransport{host: host}}
}

type hostTransport struct{ host string }

func (h hostTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = h.host
	return http.DefaultTransport.RoundTrip(r)
}

// TestDaemonExposure runs lnmuxd in-process with macaroons optional (the
// default loopback setup) and checks what a rebinding page, a cross-origin
// page and a slow or greedy client get: the API (unary and subscriptions),
// the console and the instrumentation port refuse a foreign Host; the
// names of api.allowedHosts work; a body that does not arrive closes its
// connection; connections beyond the per-client cap are closed.
func TestDaemonExposure(t *testing.T) {
	cleanEnv(t)
	t.Setenv("LNMUX_IDENTITY_KEY", testKey)
	dir := t.TempDir()
	api, instr := freeLocalAddr(t), freeLocalAddr(t)
	base := []string{"--data-dir", dir, "--listen-address", api, "--instrumentation-address", instr,
		"--api-allowed-hosts", "lnmux.lan", "--api-body-read-timeout", "200ms", "--api-max-connections-per-client", "4"}
	for _, c := range []string{"init", "up"} {
		if err := run(t.Context(), append(append([]string{}, base...), "migrate", c), io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	ctx, stop := context.WithCancel(t.Context())
	logs := &syncBuf{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append(append([]string{}, base...), "run"), io.Discard, logs) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if t.Failed() {
			t.Logf("lnmuxd log:\n%s", logs)
		}
	}()
	client := lnmuxpbconnect.NewServiceClient(http.DefaultClient, "http://"+api)
	waitUntil(t, done, func() bool {
		_, err := client.GetInfo(t.Context(), connect.NewRequest(&lnmuxpb.GetInfoRequest{}))
		return err == nil
	})
	_, port, _ := net.SplitHostPort(api)
	_, instrPort, _ := net.SplitHostPort(instr)

	do := func(hc *http.Client, method, url, contentType, body string, header ...string) (int, string) {
		t.Helper()
		// A subscription that reached its handler answers nothing until
		// its first event: the bound makes that a failure, not a hang.
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := hc.Do(req)
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, "no answer: the call reached its handler"
		}
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer res.Body.Close()
		if res.StatusCode == http.StatusOK {
			return res.StatusCode, "" // a stream's body never ends
		}
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return res.StatusCode, string(b)
	}
	zeros := strings.Repeat("A", 43) + "=" // 32 zero bytes in base64
	settle := `{"hash":"` + zeros + `","set_id":"` + zeros + `"}`
	// A connect server stream: one enveloped JSON message.
	stream := string([]byte{0, 0, 0, 0, byte(len(`{"hash":"` + zeros + `"}`))}) + `{"hash":"` + zeros + `"}`

	rebound := hostClient("rebind.attacker.example:" + port)
	for _, c := range []struct{ name, method, path, ct, body string }{
		{"SettleInvoice", http.MethodPost, lnmuxpbconnect.ServiceSettleInvoiceProcedure, "application/json", settle},
		{"CancelInvoice", http.MethodPost, lnmuxpbconnect.ServiceCancelInvoiceProcedure, "application/json", settle},
		{"ListInvoices", http.MethodPost, lnmuxpbconnect.ServiceListInvoicesProcedure, "application/json", `{}`},
		{"SubscribeSingleInvoice", http.MethodPost, lnmuxpbconnect.ServiceSubscribeSingleInvoiceProcedure, "application/connect+json", stream},
		{"SubscribeInvoiceAccepted", http.MethodPost, lnmuxpbconnect.ServiceSubscribeInvoiceAcceptedProcedure, "application/connect+json", "\x00\x00\x00\x00\x02{}"},
		{"console", http.MethodGet, "/console/", "", ""},
		{"console config", http.MethodGet, "/console/config.json", "", ""},
		{"root", http.MethodGet, "/", "", ""},
	} {
		if code, body := do(rebound, c.method, "http://"+api+c.path, c.ct, c.body); code != http.StatusForbidden {
			t.Errorf("%s with a rebound Host: %d %q, want 403", c.name, code, body)
		}
	}
	if code, _ := do(hostClient("rebind.attacker.example:"+instrPort), http.MethodGet, "http://"+instr+"/metrics", "", ""); code != http.StatusForbidden {
		t.Errorf("instrumentation /metrics with a rebound Host: %d, want 403", code)
	}
	// A page of another origin, by its Origin header.
	if code, _ := do(http.DefaultClient, http.MethodPost, "http://"+api+lnmuxpbconnect.ServiceCancelInvoiceProcedure,
		"application/json", settle, "Origin", "http://evil.example"); code != http.StatusForbidden {
		t.Errorf("CancelInvoice from another origin: %d, want 403", code)
	}
	// The daemon's own names, and api.allowedHosts.
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "lnmux.lan:" + port} {
		if code, body := do(hostClient(host), http.MethodPost, "http://"+api+lnmuxpbconnect.ServiceGetInfoProcedure, "application/json", `{}`); code != http.StatusOK {
			t.Errorf("GetInfo with Host %s: %d %s", host, code, body)
		}
		if code, _ := do(hostClient(host), http.MethodGet, "http://"+api+"/console/", "", ""); code != http.StatusOK {
			t.Errorf("console with Host %s: %d", host, code)
		}
	}
	if code, _ := do(hostClient("localhost:"+instrPort), http.MethodGet, "http://"+instr+"/metrics", "", ""); code != http.StatusOK {
		t.Errorf("instrumentation /metrics with Host localhost: %d", code)
	}
	if !strings.Contains(logs.String(), "DNS rebinding protection") {
		t.Error("the log does not say that the API is guarded against DNS rebinding")
	}

	// A body announced and never sent: the connection is closed by the
	// body deadline (200ms here), not held.
	c, err := net.Dial("tcp", api)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute)) // a bound, not an expectation
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
		lnmuxpbconnect.ServiceSettleInvoiceProcedure)
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("a connection with an incomplete body: %v, want closed by lnmuxd", err)
	}

	// api.maxConnectionsPerClient 4: from 127.0.0.2 four connections are
	// served, the fifth is closed.
	var held []*bufio.Reader
	dial := func() (net.Conn, *bufio.Reader) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		c, err := d.Dial("tcp", api)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		return c, bufio.NewReader(c)
	}
	getInfo := func(c net.Conn, r *bufio.Reader) error {
		if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
			lnmuxpbconnect.ServiceGetInfoProcedure); err != nil {
			return err
		}
		res, err := http.ReadResponse(r, nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		return res.Body.Close()
	}
	for i := range 4 {
		c, r := dial()
		if err := getInfo(c, r); err != nil {
			t.Fatalf("connection %d from 127.0.0.2: %v", i, err)
		}
		held = append(held, r)
	}
	c5, r5 := dial()
	if err := getInfo(c5, r5); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Errorf("a fifth connection from 127.0.0.2: %v, want closed by lnmuxd", err)
	}
	if len(held) != 4 {
		t.Fatal(len(held))
	}
}
