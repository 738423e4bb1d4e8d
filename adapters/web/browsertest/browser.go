// Package browsertest drives Debian's Chromium, headless, for tests of the
// web console (chromedp over the DevTools protocol). It never downloads a
// browser: Chromium comes from the distribution (deployments/ci/ensure-deps.sh
// installs it) or from LNMUX_TEST_CHROMIUM.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser is one headless Chromium with a fresh profile, and the
// screenshots of the steps run in it.
type Browser struct {
	t      testing.TB
	ctx    context.Context
	shots  string
	step   int
	failed bool
}

// chromium finds the browser binary or fails the test saying how to get it.
func chromium(t testing.TB) string {
	if p := os.Getenv("LNMUX_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("browsertest: Chromium not found; install Debian's chromium (as root: apt-get install -y chromium, " +
		"or run deployments/ci/ensure-deps.sh) or set LNMUX_TEST_CHROMIUM")
	return ""
}

// New starts Chromium for the test with a phone-sized or desktop window
// (width × height in CSS pixels) and the extra options given (MapHost, for
// example). It stops with the test. On failure the screenshots of every
// step are copied to ArtifactsDir.
func New(t testing.TB, width, height int, extra ...chromedp.ExecAllocatorOption) *Browser {
	t.Helper()
	profile := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(width, height),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	// The first run starts the browser: no timeout on it (it would stop
	// the browser when it expires).
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("browsertest: start chromium: %v", err)
	}
	b := &Browser{t: t, ctx: ctx, shots: t.TempDir()}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() || b.failed {
			b.keepShots()
		}
	})
	return b
}

// MapHost makes the browser resolve name to ip (Chromium's
// host-resolver-rules), as a DNS answer would: a page at http://name:port/
// then reaches the server listening on ip:port, with name in its Host
// header and origin. It lets a test play a DNS rebinding attack.
func MapHost(name, ip string) chromedp.ExecAllocatorOption {
	return chromedp.Flag("host-resolver-rules", "MAP "+name+" "+ip)
}

// Context is the browser tab's context, for chromedp calls of one's own.
func (b *Browser) Context() context.Context { return b.ctx }

// Step runs actions (bounded by a minute), then screenshots the page as
// step N. A failing step fails t (the browser's test or a subtest of it).
func (b *Browser) Step(t testing.TB, name string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	b.step++
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	err := chromedp.Do(ctx, actions...)
	b.shot(fmt.Sprintf("%02d-%s.png", b.step, slug(name)))
	if err != nil {
		b.failed = true
		t.Fatalf("browser step %q: %v", name, err)
	}
}

// Screenshot saves the whole page as a PNG at path (quality 100 is PNG).
func (b *Browser) Screenshot(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

func (b *Browser) shot(name string) {
	if err := b.Screenshot(filepath.Join(b.shots, name)); err != nil {
		b.t.Logf("browsertest: screenshot %s: %v", name, err)
	}
}

// ArtifactsDir is where the screenshots of a failed test go:
// LNMUX_TEST_ARTIFACTS, or .artifacts/browser in the working directory.
func ArtifactsDir(t testing.TB) string {
	base := os.Getenv("LNMUX_TEST_ARTIFACTS")
	if base == "" {
		base = filepath.Join(".artifacts", "browser")
	}
	return filepath.Join(base, slug(t.Name()))
}

func (b *Browser) keepShots() {
	dir := ArtifactsDir(b.t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Logf("browsertest: %v", err)
		return
	}
	entries, _ := os.ReadDir(b.shots)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(b.shots, e.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644)
		}
		if err != nil {
			b.t.Logf("browsertest: keep %s: %v", e.Name(), err)
		}
	}
	abs, _ := filepath.Abs(dir)
	b.t.Logf("browsertest: screenshots of each step in %s", abs)
}

var nonWord = regexp.MustCompile(`[^A-Za-z0-9]+`)

func slug(s string) string { return nonWord.ReplaceAllString(s, "-") }

// SetValue sets an input's value, as typing would (an input event fires).
func SetValue(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.value = %q; e.dispatchEvent(new Event("input", {bubbles: true})); return true; })()`, sel, value)
		ok, err := chromedp.Evaluate[bool](js)(ctx, t)
		if err == nil && !ok {
			err = fmt.Errorf("no element %s", sel)
		}
		return err
	})
}
