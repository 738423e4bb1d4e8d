// Package web serves lnmux's web console: the static build of console/
// (made with the TypeScript client in client/, committed in dist/ so that
// go build needs no npm), embedded with go:embed. Rebuild it with
// "npm ci && npm run build" here; check-build.sh fails when dist/ is stale.
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

//go:embed all:dist
var dist embed.FS

// Prefix is the URL path under which lnmuxd serves the console.
const Prefix = "/console/"

// Options are the settings the page reads from config.json.
type Options struct {
	// AcceptTimeout is how long an accepted set waits for a decision; the
	// page counts down to it.
	AcceptTimeout time.Duration
}

// Assets returns the built console (index.html and assets/).
func Assets() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		// dist is embedded at build time: a missing directory fails the build.
		panic(err)
	}
	return sub
}

// NewHandler serves the console under Prefix: the static files, and
// config.json with the settings in opts. Mount it at Prefix.
func NewHandler(opts Options) http.Handler {
	files := http.FileServerFS(Assets())
	cfg, _ := json.Marshal(struct {
		AcceptTimeoutSeconds int64 `json:"acceptTimeoutSeconds"`
	}{int64(opts.AcceptTimeout / time.Second)})

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Prefix+"config.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(cfg)
	})
	mux.Handle("GET "+Prefix, http.StripPrefix(strings.TrimSuffix(Prefix, "/"), secure(files)))
	return mux
}

// secure sets the headers of a page that talks to lnmuxd only: assets are
// content-hashed (cached for long), the page itself is not cached, and it
// may not be framed by another site.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if strings.HasPrefix(r.URL.Path, "/assets/") {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		next.ServeHTTP(w, r)
	})
}

// RedirectRoot sends "/" to the console, for people who type the API's
// address into a browser.
func RedirectRoot() http.Handler {
	return http.RedirectHandler(Prefix, http.StatusFound)
}
