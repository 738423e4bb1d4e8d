package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/lnmux/lnmux/adapters/connectrpc"
	"github.com/lnmux/lnmux/app/lnmuxd/config"
)

// What browsers and greedy clients may do with the ports lnmuxd opens
// (docs/authentication.md, "Who can reach what"): the Host names a
// listener that serves without a macaroon answers (DNS rebinding), CORS
// only where macaroons are required, and the cap on the API's connections.

// authRequired reports whether the API requires macaroons: always, unless
// it listens on loopback only (decided from the address actually bound)
// and auth.requireOnLoopback is off.
func authRequired(cfg *config.Config, api net.Addr) bool {
	return cfg.Auth.RequireOnLoopback || !isLoopback(api)
}

// connLimits converts the api.maxConnections* keys.
func connLimits(c *config.Config) connectrpc.ConnLimits {
	return connectrpc.ConnLimits{Total: c.API.MaxConnections, PerClient: c.API.MaxConnectionsPerClient}
}

// guardHosts puts the Host and Origin checks in front of a listener that
// serves without a macaroon, and says so in the log. name is the
// listener's, addr its configured address, origins the ones CORS allows
// there.
func guardHosts(ctx context.Context, cfg *config.Config, log *slog.Logger, name, addr string, origins []string, next http.Handler) (http.Handler, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", name, addr, err)
	}
	g, err := connectrpc.GuardHosts(next, connectrpc.HostPolicy{
		ListenHost:     host,
		AllowedHosts:   cfg.API.AllowedHosts,
		AllowedOrigins: origins,
	}, log)
	if err != nil {
		return nil, err
	}
	log.InfoContext(ctx, "DNS rebinding protection: "+name+" answers only requests for localhost, the loopback addresses, "+
		"the listen host and api.allowedHosts, and no cross-origin page",
		"listen", addr, "allowed_hosts", strings.Join(cfg.API.AllowedHosts, ","))
	return g, nil
}

// exposeAPI decides what the API port lets through: with macaroons
// optional, only requests for its own names (guardHosts); with them
// required, every Host (clients reach it by whatever name the network
// gives it, and a page cannot send a macaroon it does not have).
func exposeAPI(ctx context.Context, cfg *config.Config, log *slog.Logger, routes http.Handler, required bool) (http.Handler, error) {
	if len(cfg.CORS.AllowedOrigins) > 0 {
		log.InfoContext(ctx, "CORS: pages of these origins may call the API, with a macaroon",
			"allowed_origins", strings.Join(cfg.CORS.AllowedOrigins, ","))
	}
	if required {
		return routes, nil
	}
	return guardHosts(ctx, cfg, log, "the API port", cfg.ListenAddress, cfg.CORS.AllowedOrigins, routes)
}

// exposeInstrumentation guards the instrumentation port when it listens on
// loopback, where the operator's browser reaches it (it never asks for a
// macaroon). Elsewhere it must be kept on a trusted network: Prometheus and
// the kubelet reach it by addresses and names guardHosts cannot know.
func exposeInstrumentation(ctx context.Context, cfg *config.Config, log *slog.Logger, srv *http.Server, ln net.Listener) error {
	if !isLoopback(ln.Addr()) {
		return nil
	}
	// No CORS there: no page of another origin may call it.
	h, err := guardHosts(ctx, cfg, log, "the instrumentation port", cfg.InstrumentationAddress, nil, srv.Handler)
	if err != nil {
		return err
	}
	srv.Handler = h
	return nil
}

// limitConns caps the API listener's connections (api.maxConnections*).
func limitConns(cfg *config.Config, log *slog.Logger, ln net.Listener) net.Listener {
	return connectrpc.LimitListener(ln, connLimits(cfg), log)
}

// bodyReadTimeout is api.bodyReadTimeout as an option of the API handler.
func bodyReadTimeout(c *config.Config) connectrpc.Option {
	return connectrpc.WithBodyReadTimeout(c.API.BodyReadTimeout)
}
