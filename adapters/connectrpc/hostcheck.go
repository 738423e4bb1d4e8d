package connectrpc

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
)

// HostPolicy says which Host headers and Origins GuardHosts lets through.
// A listener that serves without a macaroon (the API on loopback, where
// macaroons are optional; the console; the instrumentation port) is
// reachable by any web page the operator's browser opens: a page whose name
// the attacker rebinds to 127.0.0.1 (DNS rebinding) is same-origin with the
// listener and could read ListInvoices and call SettleInvoice. Its requests
// carry the attacker's name in Host, which is what GuardHosts refuses
// (docs/authentication.md, "Browsers and DNS rebinding").
type HostPolicy struct {
	// ListenHost is the host part of the listen address ("localhost",
	// "127.0.0.1", "::1", …); it is always accepted. An unspecified address
	// ("", 0.0.0.0, ::) accepts every IP literal.
	ListenHost string
	// AllowedHosts are more names (or IP addresses) the listener is reached
	// by, e.g. through a local proxy. Ports are ignored.
	AllowedHosts []string
	// AllowedOrigins are the origins CORS allows (WithAllowedOrigins); a
	// cross-origin request from any other origin is refused. "*" turns the
	// Origin check off.
	AllowedOrigins []string
}

// GuardHosts serves next only to requests whose Host is one of:
// localhost, a loopback IP literal (127.0.0.0/8, [::1]), the listen host,
// an AllowedHosts entry (any port); and refuses with 403 the cross-origin
// requests of browsers (by Sec-Fetch-Site or Origin, net/http's
// CrossOriginProtection) from origins outside AllowedOrigins. Requests
// without a Host (HTTP/1.0) pass: browsers always send one. Other IP
// literals are refused too, except on an unspecified listen address: a
// browser sends an IP literal only for a page whose URL names that address,
// which no DNS answer can rebind.
func GuardHosts(next http.Handler, p HostPolicy, log *slog.Logger) (http.Handler, error) {
	g := &hostGuard{next: next, log: log, names: map[string]bool{"localhost": true}}
	for _, h := range append([]string{p.ListenHost}, p.AllowedHosts...) {
		h = normalizeHost(h)
		if ip := net.ParseIP(h); ip != nil {
			if ip.IsUnspecified() {
				g.anyIP = true
			}
			g.ips = append(g.ips, ip)
			continue
		}
		if h == "" {
			g.anyIP = true // listening on every address
			continue
		}
		g.names[h] = true
	}
	g.origins = http.NewCrossOriginProtection()
	if slices.Contains(p.AllowedOrigins, "*") {
		g.origins = nil
	} else {
		for _, o := range p.AllowedOrigins {
			if err := g.origins.AddTrustedOrigin(o); err != nil {
				return nil, fmt.Errorf("connectrpc: allowed origin: %w", err)
			}
		}
	}
	return g, nil
}

type hostGuard struct {
	next    http.Handler
	log     *slog.Logger
	names   map[string]bool
	ips     []net.IP
	anyIP   bool
	origins *http.CrossOriginProtection // nil: every origin

	refused atomic.Uint64
}

func (g *hostGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.hostAllowed(r.Host) {
		g.refuse(w, r, "host", "lnmuxd: this Host is not allowed here (DNS rebinding protection): "+
			"call it as localhost or 127.0.0.1, or add the name to api.allowedHosts\n")
		return
	}
	if g.origins != nil {
		if err := g.origins.Check(r); err != nil {
			g.refuse(w, r, "origin", "lnmuxd: cross-origin request refused: "+
				"only the pages lnmuxd serves itself may call it here\n")
			return
		}
	}
	g.next.ServeHTTP(w, r)
}

// refuse answers 403 with msg (which never quotes the request) and logs
// the 1st, 2nd, 4th, 8th… refusal, so that a page hammering the port
// cannot flood the log.
func (g *hostGuard) refuse(w http.ResponseWriter, r *http.Request, what, msg string) {
	if n := g.refused.Add(1); n&(n-1) == 0 {
		g.log.WarnContext(r.Context(), "request refused: not from an allowed host or origin (DNS rebinding or cross-site request?)",
			"refused", what, "host", truncate(r.Host), "origin", truncate(r.Header.Get("Origin")),
			"path", truncate(r.URL.Path), "remote", r.RemoteAddr, "refused_total", n)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(msg))
}

func (g *hostGuard) hostAllowed(hostport string) bool {
	if hostport == "" {
		return true
	}
	h := normalizeHost(hostport)
	ip := net.ParseIP(h)
	if ip == nil {
		return g.names[h]
	}
	if ip.IsLoopback() || g.anyIP {
		return true
	}
	return slices.ContainsFunc(g.ips, ip.Equal)
}

// normalizeHost drops the port, the brackets of an IPv6 literal and a
// trailing dot, and lower-cases the rest.
func normalizeHost(hostport string) string {
	h := strings.TrimSpace(hostport)
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// truncate bounds a client-supplied string before it is logged or echoed.
func truncate(s string) string {
	const limit = 100
	if len(s) > limit {
		return s[:limit] + "…"
	}
	return s
}
