package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

func freeLocalAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuf collects the daemon's log.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDaemonSecurity runs lnmuxd in-process (SQLite, no LND node) with TLS
// and macaroons required on loopback, and checks what a client sees: the
// generated certificate and macaroons, scopes over gRPC (grpc-go, ALPN h2)
// and Connect, bake and rotate against the running daemon, and metrics,
// pprof and health on the instrumentation port only.
func TestDaemonSecurity(t *testing.T) {
	cleanEnv(t)
	t.Setenv("LNMUX_IDENTITY_KEY", testKey)
	dir := t.TempDir()
	api, instr := freeLocalAddr(t), freeLocalAddr(t)
	base := []string{"--data-dir", dir, "--listen-address", api, "--instrumentation-address", instr,
		"--tls-enabled", "--tls-extra-domains", "lnmux.example", "--auth-require-on-loopback"}
	cmd := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(t.Context(), append(append([]string{}, base...), args...), &out, &errOut)
		if err != nil {
			t.Logf("lnmuxd %v log:\n%s", args, errOut.String())
		}
		return out.String(), err
	}
	for _, c := range []string{"init", "up"} {
		if _, err := cmd("migrate", c); err != nil {
			t.Fatalf("migrate %s: %v", c, err)
		}
	}
	ctx, stop := context.WithCancel(t.Context())
	logs := &syncBuf{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append(append([]string{}, base...), "run"), io.Discard, logs) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if t.Failed() {
			t.Logf("lnmuxd log:\n%s", logs)
		}
		if strings.Contains(logs.String(), testKey) {
			t.Error("the identity key appears in the log")
		}
	})

	certPEM := waitFile(t, filepath.Join(dir, "tls.cert"), done)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("tls.cert is not PEM")
	}
	macs := map[string][]byte{}
	for _, scope := range []string{"admin", "readonly", "invoice"} {
		path := filepath.Join(dir, scope+".macaroon")
		macs[scope] = waitFile(t, path, done)
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", path, st.Mode(), err)
		}
	}

	// grpc-go over TLS: it insists on h2 by ALPN.
	creds := credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "localhost"})
	conn, err := grpc.NewClient(api, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	getInfo := func(mac []byte) error {
		ctx := t.Context()
		if mac != nil {
			ctx = metadata.AppendToOutgoingContext(ctx, "macaroon", hex.EncodeToString(mac))
		}
		return conn.Invoke(ctx, lnmuxpbconnect.ServiceGetInfoProcedure, &lnmuxpb.GetInfoRequest{}, &lnmuxpb.GetInfoResponse{})
	}
	waitUntil(t, done, func() bool { return status.Code(getInfo(macs["admin"])) != codes.Unavailable })
	if err := getInfo(macs["admin"]); err != nil {
		t.Fatalf("GetInfo with admin.macaroon: %v", err)
	}
	if code := status.Code(getInfo(nil)); code != codes.Unauthenticated {
		t.Errorf("GetInfo without macaroon: %v, want Unauthenticated", code)
	}
	settle := &lnmuxpb.SettleInvoiceRequest{Hash: make([]byte, 32), SetId: make([]byte, 32)}
	invCtx := metadata.AppendToOutgoingContext(t.Context(), "macaroon", hex.EncodeToString(macs["invoice"]))
	if err := conn.Invoke(invCtx, lnmuxpbconnect.ServiceSettleInvoiceProcedure, settle, &lnmuxpb.SettleInvoiceResponse{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("SettleInvoice with invoice.macaroon: %v, want PermissionDenied", err)
	}

	// Connect JSON over HTTPS with Authorization: Bearer, and a baked macaroon.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "lnmux.example"}}}
	defer hc.CloseIdleConnections()
	client := lnmuxpbconnect.NewServiceClient(hc, "https://"+api, connect.WithProtoJSON())
	baked, err := cmd("macaroon", "bake", "--scope", "invoice", "--valid-for", "1h")
	if err != nil {
		t.Fatal(err)
	}
	addInvoice := func(hexMac string) error {
		req := connect.NewRequest(&lnmuxpb.AddInvoiceRequest{AmtMsat: 1000, ExpirySecs: 600})
		req.Header().Set("Authorization", "Bearer "+hexMac)
		_, err := client.AddInvoice(t.Context(), req)
		return err
	}
	if err := addInvoice(strings.TrimSpace(baked)); err != nil {
		t.Errorf("AddInvoice with a baked invoice macaroon: %v", err)
	}
	if _, err := cmd("macaroon", "bake", "--scope", "root"); err == nil {
		t.Error("bake accepted an unknown scope")
	}

	// Metrics, pprof and health: on the instrumentation port, not the API's.
	get := func(url string) int {
		res, err := hc.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		return res.StatusCode
	}
	for url, want := range map[string]int{
		"http://" + instr + "/metrics":               200,
		"http://" + instr + "/debug/pprof/goroutine": 200,
		"http://" + instr + "/debug/pprof/cmdline":   404,
		"https://" + api + "/metrics":                404,
		"https://" + api + "/debug/pprof/goroutine":  404,
	} {
		if got := get(url); got != want {
			t.Errorf("GET %s: %d, want %d", url, got, want)
		}
	}
	for _, base := range []string{"http://" + instr, "https://" + api} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/grpc.health.v1.Health/Check", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(body), "SERVING") {
			t.Errorf("health on %s: %d %s", base, res.StatusCode, body)
		}
	}

	// A rotation invalidates every macaroon, in the running daemon too.
	if _, err := cmd("macaroon", "rotate"); err != nil {
		t.Fatal(err)
	}
	if code := status.Code(getInfo(macs["admin"])); code != codes.Unauthenticated {
		t.Errorf("old admin.macaroon after rotate: %v, want Unauthenticated", code)
	}
	if err := addInvoice(strings.TrimSpace(baked)); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("baked macaroon after rotate: %v", err)
	}
	fresh, err := os.ReadFile(filepath.Join(dir, "admin.macaroon"))
	if err != nil {
		t.Fatal(err)
	}
	if err := getInfo(fresh); err != nil {
		t.Errorf("rewritten admin.macaroon: %v", err)
	}
	if !strings.Contains(logs.String(), "macaroons required") {
		t.Error("the log does not say that macaroons are required")
	}
}

// TestAuthOptionalOnLoopback: without auth.requireOnLoopback a loopback
// API takes calls without a macaroon, and the log says so; on another
// address they are required.
func TestAuthOptionalOnLoopback(t *testing.T) {
	cases := []struct {
		addr     string
		loopback bool
	}{
		{"127.0.0.1:9190", true}, {"[::1]:9190", true}, {"0.0.0.0:9190", false}, {"10.1.2.3:9190", false}, {"[::]:9190", false},
	}
	for _, tc := range cases {
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if isLoopback(a) != tc.loopback {
			t.Errorf("isLoopback(%s) = %v", tc.addr, !tc.loopback)
		}
	}
	cleanEnv(t)
	t.Setenv("LNMUX_IDENTITY_KEY", testKey)
	dir := t.TempDir()
	api := freeLocalAddr(t)
	base := []string{"--data-dir", dir, "--listen-address", api, "--instrumentation-address", freeLocalAddr(t)}
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
	}()
	client := lnmuxpbconnect.NewServiceClient(http.DefaultClient, "http://"+api)
	var err error
	waitUntil(t, done, func() bool {
		_, err = client.GetInfo(t.Context(), connect.NewRequest(&lnmuxpb.GetInfoRequest{}))
		return err == nil
	})
	if !strings.Contains(logs.String(), "macaroons optional because the API listens on loopback only") {
		t.Errorf("the log does not say that macaroons are optional:\n%s", logs)
	}
}

func waitFile(t *testing.T, path string, done <-chan error) []byte {
	t.Helper()
	var b []byte
	waitUntil(t, done, func() bool {
		var err error
		b, err = os.ReadFile(path)
		return err == nil && len(b) > 0
	})
	return b
}

// waitUntil polls cond until it holds; it fails if the daemon exits first
// or after a generous minute.
func waitUntil(t *testing.T, done <-chan error, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		select {
		case err := <-done:
			t.Fatalf("lnmuxd exited: %v", errors.Join(err, errors.New("(see the log above)")))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("condition not met within a minute")
		}
	}
}
