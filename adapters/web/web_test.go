package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Result()
}

func TestHandlerServesTheBuild(t *testing.T) {
	h := NewHandler(Options{AcceptTimeout: 45 * time.Second})
	res := get(t, h, Prefix)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "lnmux console") {
		t.Fatalf("GET %s: %d %.200s", Prefix, res.StatusCode, body)
	}
	// Every asset index.html names is embedded and served.
	for _, part := range strings.Split(string(body), `"./assets/`)[1:] {
		name, _, _ := strings.Cut(part, `"`)
		a := get(t, h, Prefix+"assets/"+name)
		if a.StatusCode != http.StatusOK {
			t.Errorf("asset %s: %d", name, a.StatusCode)
		}
		if !strings.Contains(a.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("asset %s: Cache-Control %q", name, a.Header.Get("Cache-Control"))
		}
	}
	cfg := get(t, h, Prefix+"config.json")
	b, _ := io.ReadAll(cfg.Body)
	if string(b) != `{"acceptTimeoutSeconds":45}` {
		t.Errorf("config.json = %s", b)
	}
	if res := get(t, h, Prefix+"nope.js"); res.StatusCode != http.StatusNotFound {
		t.Errorf("missing file: %d", res.StatusCode)
	}
}

func TestRedirectRoot(t *testing.T) {
	res := get(t, RedirectRoot(), "/")
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != Prefix {
		t.Fatalf("%d %q", res.StatusCode, res.Header.Get("Location"))
	}
}
