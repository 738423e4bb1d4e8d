package connectrpc

import (
	"bytes"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/lnmux/lnmux/adapters/macaroon"
	"github.com/lnmux/lnmux/adapters/memstore"
	"github.com/lnmux/lnmux/app"
	"github.com/lnmux/lnmux/ports"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// BenchmarkAddInvoiceHTTP measures AddInvoice through the real stack: a
// Connect client over a loopback TCP connection (h2c), the handler, its
// validation and the real application creating and signing the invoice.
func BenchmarkAddInvoiceHTTP(b *testing.B) {
	mux, err := app.New(app.Config{IdentityKey: bytes.Repeat([]byte{7}, 32)}, nil, nil, app.SystemClock{},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	h, err := NewHandler(mux, slog.New(slog.NewTextHandler(io.Discard, nil)), WithoutTelemetry())
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config = NewHTTPServer("", h)
	srv.Start()
	defer srv.Close()

	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	defer tr.CloseIdleConnections()
	for _, proto := range []struct {
		name string
		opts []connect.ClientOption
	}{
		{"connect", nil},
		{"grpc", []connect.ClientOption{connect.WithGRPC()}},
	} {
		b.Run(proto.name, func(b *testing.B) {
			client := lnmuxpbconnect.NewServiceClient(&http.Client{Transport: tr}, srv.URL, proto.opts...)
			req := &lnmuxpb.AddInvoiceRequest{AmtMsat: 20000, ExpirySecs: 600, Description: "coffee"}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.AddInvoice(b.Context(), connect.NewRequest(req)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkAddInvoiceAuth measures AddInvoice over gRPC (connect-go's gRPC
// protocol, h2c on loopback) with macaroons off and on (the invoice
// macaroon in the macaroon header, verified by the macaroon adapter).
func BenchmarkAddInvoiceAuth(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	key := bytes.Repeat([]byte{7}, 32)
	mux, err := app.New(app.Config{IdentityKey: key}, nil, nil, app.SystemClock{}, log)
	if err != nil {
		b.Fatal(err)
	}
	macs, err := macaroon.New(b.Context(), key, b.TempDir(), memstore.New())
	if err != nil {
		b.Fatal(err)
	}
	mac, err := macs.Bake(b.Context(), time.Now(), 0, ports.ScopeInvoice)
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []struct {
		name string
		opts []Option
		mac  string
	}{
		{"grpc/auth-off", []Option{WithoutTelemetry()}, ""},
		{"grpc/auth-on", []Option{WithAuthorizer(macs, true), WithoutTelemetry()}, hex.EncodeToString(mac)},
		// As lnmuxd runs by default: macaroons and the OpenTelemetry
		// interceptor with no exporter configured (global no-op providers).
		{"grpc/auth-on+telemetry", []Option{WithAuthorizer(macs, true)}, hex.EncodeToString(mac)},
	} {
		b.Run(mode.name, func(b *testing.B) {
			h, err := NewHandler(mux, log, mode.opts...)
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewUnstartedServer(h)
			srv.Config = NewHTTPServer("", h)
			srv.Start()
			defer srv.Close()
			var p http.Protocols
			p.SetUnencryptedHTTP2(true)
			tr := &http.Transport{Protocols: &p}
			defer tr.CloseIdleConnections()
			client := lnmuxpbconnect.NewServiceClient(&http.Client{Transport: tr}, srv.URL, connect.WithGRPC())
			msg := &lnmuxpb.AddInvoiceRequest{AmtMsat: 20000, ExpirySecs: 600, Description: "coffee"}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := connect.NewRequest(msg)
					if mode.mac != "" {
						req.Header().Set("Macaroon", mode.mac)
					}
					if _, err := client.AddInvoice(b.Context(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
