package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/lnmux/lnmux/adapters/web"
)

// ConsoleConfig turns the web console (adapters/web) on or off.
type ConsoleConfig struct {
	Enabled string `conf:"default:auto,help:console.enabled: serve the web console at /console/ on the API port: auto (only when listenAddress is a loopback address)|true|false" yaml:"enabled"`
}

// consoleOn decides whether the console is served. "auto" serves it only on
// a loopback listener: the page lets whoever reaches it create invoices and
// settle payments, which elsewhere should be a deliberate choice.
func (c *Config) consoleOn() (bool, error) {
	switch strings.ToLower(strings.TrimSpace(c.Console.Enabled)) {
	case "", "auto":
		return isLoopbackHostPort(c.ListenAddress), nil
	case "true", "on", "yes", "1":
		return true, nil
	case "false", "off", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("console.enabled: %q is not auto, true or false", c.Console.Enabled)
}

// isLoopbackHostPort reports whether host:port names only loopback addresses
// (localhost, 127.0.0.0/8, ::1). An empty host listens everywhere.
func isLoopbackHostPort(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// mountConsole adds the console to routes when the configuration asks for
// it, and reports whether it did.
func mountConsole(cfg *Config, routes *http.ServeMux) (bool, error) {
	on, err := cfg.consoleOn()
	if err != nil || !on {
		return false, err
	}
	routes.Handle(web.Prefix, web.NewHandler(web.Options{AcceptTimeout: cfg.Invoice.AcceptTimeout}))
	routes.Handle("GET /{$}", web.RedirectRoot())
	return true, nil
}
