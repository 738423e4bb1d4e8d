package regtest

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
)

// PayHandler is the "pay as Carol" helper of the dev command and the
// browser tests: POST /pay {"invoice": "<bolt11>"} has Carol pay the
// invoice and answers {"status": "SUCCEEDED"} or {"error": "..."} once the
// payment is final. It answers only browsers on one of origins (the
// console's) and only requests from loopback addresses: it spends Carol's
// regtest coins for whoever asks.
func (c *Cluster) PayHandler(origins ...string) http.Handler {
	allowed := map[string]bool{}
	for _, o := range origins {
		allowed[strings.TrimRight(o, "/")] = true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/pay", func(w http.ResponseWriter, r *http.Request) {
		if !fromLoopback(r) {
			http.Error(w, "loopback only", http.StatusForbidden)
			return
		}
		origin := r.Header.Get("Origin")
		if origin != "" {
			if !allowed[origin] {
				http.Error(w, "origin not allowed", http.StatusForbidden)
				return
			}
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Vary", "Origin")
		}
		switch r.Method {
		case http.MethodOptions:
			w.Header().Set("Access-Control-Allow-Methods", "POST")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
			w.WriteHeader(http.StatusNoContent)
			return
		case http.MethodPost:
		default:
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		var req struct {
			Invoice string `json:"invoice"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10)).Decode(&req); err != nil || req.Invoice == "" {
			writeJSON(w, map[string]string{"error": "the request needs an invoice"})
			return
		}
		// The payment ends when lnmux settles or cancels it: up to the
		// accept timeout and a little more.
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Minute)
		defer cancel()
		p, err := c.PayInvoice(ctx, strings.TrimSpace(req.Invoice))
		switch {
		case err != nil:
			writeJSON(w, map[string]string{"error": err.Error()})
		case p.Status == lnrpc.Payment_SUCCEEDED:
			writeJSON(w, map[string]string{"status": p.Status.String()})
		default:
			reason := p.FailureReason.String()
			if p.FailureCode != 0 {
				reason += " (" + p.FailureCode.String() + ")"
			}
			writeJSON(w, map[string]string{"status": p.Status.String(), "error": reason})
		}
	})
	return mux
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// ServePayHelper serves PayHandler on a free loopback port until ctx ends
// and returns its base URL.
func (c *Cluster) ServePayHelper(ctx context.Context, origins ...string) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: c.PayHandler(origins...), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			if c.opts.Logf != nil {
				c.opts.Logf("pay helper: %v", err)
			}
		}
	}()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	return "http://" + l.Addr().String(), nil
}
