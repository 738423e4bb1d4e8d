package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/lnmux/lnmux/adapters/connectrpc"
)

// newInstrumentation serves Prometheus metrics at /metrics, the Go
// profiler under /debug/pprof/, the gRPC health service and the HTTP probes
// /readyz (200 on the leader, 503 on a standby) and /livez (200 while the
// process serves) on addr, apart
// from the API: none of it needs a macaroon, so it must stay on a trusted
// network (the default is localhost). /debug/pprof/cmdline is left out: the
// command line may hold a secret (--identity-key).
func newInstrumentation(addr string, metrics, health, readyz, livez http.Handler) (*http.Server, net.Listener, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/pprof/cmdline", http.NotFoundHandler())
	mux.Handle(connectrpc.HealthPath(), health)
	mux.Handle("/readyz", readyz)
	mux.Handle("/livez", livez)

	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true) // gRPC health checks
	srv := &http.Server{
		Addr:              addr,
		Handler:           mux,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on instrumentationAddress %s: %w", addr, err)
	}
	return srv, ln, nil
}
