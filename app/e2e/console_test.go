package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/chromedp/chromedp"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/lnmux/lnmux/adapters/web"
	"github.com/lnmux/lnmux/adapters/web/browsertest"
	"github.com/lnmux/lnmux/deployments/regtest"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
)

// writeDocsEnv, set to 1, makes the test refresh docs/img/console.png and
// docs/trace-example.txt from what it saw.
const writeDocsEnv = "LNMUX_WRITE_DOCS"

// TestConsoleAndTraces runs the web console in headless Chromium against
// lnmuxd on a regtest cluster (settle, cancel, a bad amount, a phone-sized
// screen, each browser protocol; only from its own origin: the macaroon
// never leaves for another, and a page reaching lnmuxd by a rebound name is
// refused), the TypeScript client's own tests, and then reads the traces of
// a multi-part payment and of a client-started call back from Jaeger.
func TestConsoleAndTraces(t *testing.T) {
	jg := startJaeger(t)
	cluster := regtest.StartT(t, regtest.Options{AliceChannelSat: channelSat, BobChannelSat: channelSat, Logf: t.Logf})

	// The same build served from another origin: lnmuxd allows no origin
	// (CORS needs macaroons required, and they are optional on loopback).
	other := httptest.NewServer(http.FileServerFS(web.Assets()))
	t.Cleanup(other.Close)

	env := &lnmuxdEnv{root: t, bin: buildLnmuxd(t), dataDir: t.TempDir(), logDir: t.TempDir(), cluster: cluster,
		otlp: &collector{addr: jg.otlp}}
	d := env.start(t, daemonOpts{})
	// A Go subscriber too, so that lnmuxd takes payments whatever the
	// page's own subscription is doing.
	acc := d.accepted(t)

	origin := "http://" + d.addr
	helper, err := cluster.ServePayHelper(t.Context(), origin)
	if err != nil {
		t.Fatal(err)
	}
	page := origin + "/console/?carol=" + helper

	b := browsertest.New(t, 1200, 900)
	b.Step(t, "open the console", chromedp.Navigate(page), waitNodes(2))

	var settledHash string
	t.Run("create, pay as Carol, settle", func(t *testing.T) {
		hash := createInvoice(t, b, "20", "coffee")
		settledHash = hash
		b.Step(t, "pay as Carol", chromedp.Click("#pay-carol"), waitState("accepted"),
			chromedp.WaitVisible(pendingButton(hash, "settle")))
		ev := nextAcceptedFor(t, acc, mustHex(t, hash))
		b.Step(t, "the set waits with a countdown",
			pollJS(fmt.Sprintf(`document.querySelector('#accepted-list li[data-set-id="%x"] .countdown').textContent.includes('cancelled automatically in')`, ev.SetId)))
		if shot := os.Getenv(writeDocsEnv); shot == "1" {
			if err := b.Screenshot(filepath.Join("..", "..", "docs", "img", "console.png")); err != nil {
				t.Error(err)
			}
		}
		b.Step(t, "settle", chromedp.Click(pendingButton(hash, "settle")), waitState("settled"),
			pollJS(`document.querySelector('#pay-result').textContent.includes('SUCCEEDED')`),
			pollJS(fmt.Sprintf(`!!document.querySelector('#invoices-body tr[data-hash="%s"]')`, hash)))
		if got := d.waitFinal(t, mustHex(t, hash)); got != lnmuxpb.InvoiceStatus_SETTLED {
			t.Fatalf("final %v", got)
		}
	})

	t.Run("blinded: create with blinded paths, pay as Carol, settle", func(t *testing.T) {
		b.Step(t, "ask for blinded paths", chromedp.Click("#blinded"), pollJS(`document.querySelector('#blinded').checked`))
		hash := createInvoice(t, b, "25", "blinded coffee")
		payreq, err := chromedp.Run(b.Context(), chromedp.Value("#payment-request"))
		if err != nil {
			t.Fatal(err)
		}
		dec, err := zpay32.Decode(payreq, &chaincfg.RegressionNetParams)
		if err != nil || len(dec.BlindedPaymentPaths) == 0 || len(dec.RouteHints) != 0 {
			t.Fatalf("the console's blinded invoice: %d paths, %d hints, %v", len(dec.BlindedPaymentPaths), len(dec.RouteHints), err)
		}
		b.Step(t, "pay as Carol", chromedp.Click("#pay-carol"), waitState("accepted"),
			chromedp.WaitVisible(pendingButton(hash, "settle")))
		b.Step(t, "settle", chromedp.Click(pendingButton(hash, "settle")), waitState("settled"),
			pollJS(`document.querySelector('#pay-result').textContent.includes('SUCCEEDED')`),
			chromedp.Click("#blinded"), pollJS(`!document.querySelector('#blinded').checked`))
		if got := d.waitFinal(t, mustHex(t, hash)); got != lnmuxpb.InvoiceStatus_SETTLED {
			t.Fatalf("final %v", got)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		hash := createInvoice(t, b, "30", "")
		b.Step(t, "pay as Carol again", chromedp.Click("#pay-carol"), waitState("accepted"),
			chromedp.WaitVisible(pendingButton(hash, "cancel")))
		b.Step(t, "cancel", chromedp.Click(pendingButton(hash, "cancel")), waitState("cancelled"),
			pollJS(`document.querySelector('#pay-result').textContent.includes('failed')`))
	})

	t.Run("look up the settled invoice and follow the event log", func(t *testing.T) {
		b.Step(t, "look up", browsertest.SetValue("#lookup-hash", settledHash), chromedp.Click("#lookup-button"),
			pollJS(`document.querySelector('#lookup-state').dataset.state === 'STORED'`),
			pollJS(`document.querySelector('#lookup-state').textContent.includes('settled')`))
		row := func(typ string) string {
			return fmt.Sprintf(`!!document.querySelector('#events-body tr[data-hash="%s"][data-type="%s"]')`, settledHash, typ)
		}
		b.Step(t, "follow the log from 0", browsertest.SetValue("#events-from", "0"), chromedp.Click("#events-follow"),
			pollJS(row("SETTLE_REQUESTED")), pollJS(row("SETTLED")),
			pollJS(`document.querySelector('#events-status').textContent.startsWith('Following; last sequence')`))
		b.Step(t, "stop following", chromedp.Click("#events-stop"),
			pollJS(`document.querySelector('#events-status').textContent === 'Not following.'`))
	})

	t.Run("a bad amount shows the field's error", func(t *testing.T) {
		b.Step(t, "amount -5", browsertest.SetValue("#amount", "-5"), chromedp.Click("#create-invoice"),
			chromedp.WaitVisible("#amount-error"),
			pollJS(`document.querySelector('#amount-error').textContent === 'must not be negative'`),
			pollJS(`document.querySelector('#amount').getAttribute('aria-invalid') === 'true'`))
		b.Step(t, "amount abc", browsertest.SetValue("#amount", "abc"), chromedp.Click("#create-invoice"),
			pollJS(`document.querySelector('#amount-error').textContent.startsWith('enter an amount')`))
		b.Step(t, "expiry 0", browsertest.SetValue("#amount", "1"), browsertest.SetValue("#expiry", "0"), chromedp.Click("#create-invoice"),
			pollJS(`document.querySelector('#expiry-error').textContent === 'must be positive'`),
			browsertest.SetValue("#expiry", "3600"))
	})

	t.Run("phone-sized screen", func(t *testing.T) {
		phone := browsertest.New(t, 390, 844)
		phone.Step(t, "open on a phone", chromedp.Navigate(page), waitNodes(2))
		createInvoice(t, phone, "5", "")
		phone.Step(t, "nothing wider than the screen", pollJS(`document.documentElement.scrollWidth <= window.innerWidth`))
	})

	for _, proto := range []string{"connect", "connect-json", "grpc-web"} {
		t.Run("over "+proto, func(t *testing.T) {
			// A browser of its own: with every page in one tab, the fourth
			// page's AddInvoice waited about a minute (with main's server
			// too), as if the streams of the pages left still held the six
			// HTTP/1.1 sockets Chromium gives an origin.
			pb := browsertest.New(t, 1200, 900)
			u := origin + "/console/?protocol=" + proto
			pb.Step(t, "open over "+proto, chromedp.Navigate(u), waitNodes(2))
			createInvoice(t, pb, "7", proto)
		})
	}

	t.Run("only from its own origin: the macaroon never leaves", func(t *testing.T) {
		consoleOnlyFromItsOrigin(t, origin, other.URL)
	})

	t.Run("a page reaching lnmuxd by a rebound name is refused", func(t *testing.T) {
		rebindingRefused(t, d.addr)
	})

	t.Run("TypeScript client tests", func(t *testing.T) {
		mac, err := os.ReadFile(filepath.Join(env.dataDir, "readonly.macaroon"))
		if err != nil {
			t.Fatalf("lnmuxd wrote no readonly.macaroon: %v", err)
		}
		runClientTests(t, origin, hex.EncodeToString(mac))
	})

	t.Run("trace of a multi-part payment in jaeger", func(t *testing.T) {
		checkPaymentTrace(t, jg, d, env, cluster, acc)
	})

	t.Run("trace started by a Connect client continues through AddInvoice", func(t *testing.T) {
		var traceID [16]byte
		var spanID [8]byte
		_, _ = rand.Read(traceID[:])
		_, _ = rand.Read(spanID[:])
		req, _ := http.NewRequest(http.MethodPost, origin+"/lnmux.Service/AddInvoice",
			strings.NewReader(`{"amt_msat":1000,"expiry_secs":600}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("traceparent", fmt.Sprintf("00-%x-%x-01", traceID, spanID))
		// Only an authenticated caller's traceparent is continued: an
		// anonymous one's is dropped (docs/authentication.md).
		mac, err := os.ReadFile(filepath.Join(env.dataDir, "invoice.macaroon"))
		if err != nil {
			t.Fatalf("lnmuxd wrote no invoice.macaroon: %v", err)
		}
		req.Header.Set("Macaroon", hex.EncodeToString(mac))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("AddInvoice: %d", res.StatusCode)
		}
		tr := jg.trace(t, hex.EncodeToString(traceID[:]), func(tr jTrace) bool { return len(tr.Spans) > 0 })
		var found bool
		for _, s := range tr.Spans {
			if s.OperationName == "lnmux.Service/AddInvoice" && s.parent() == hex.EncodeToString(spanID[:]) {
				found = true
			}
		}
		if !found {
			t.Fatalf("no AddInvoice span under the client's span %x in trace %x: %+v", spanID, traceID, tr.Spans)
		}
	})
	_ = settledHash
}

// consoleOnlyFromItsOrigin: the console sends the tab's macaroon to its
// own lnmuxd, refuses an api= naming another server (which sees no request
// at all), and served from another origin reaches no lnmuxd.
func consoleOnlyFromItsOrigin(t *testing.T, origin, otherOrigin string) {
	var spied, leaked atomic.Int64
	// The attacker's server: it allows every page and every header, as
	// one would, so that a browser would send it the macaroon.
	spy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		spied.Add(1)
		if r.Header.Get("macaroon") != "" || r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
		w.Header().Set("Access-Control-Allow-Headers", r.Header.Get("Access-Control-Request-Headers"))
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		http.Error(w, "spy", http.StatusNotFound)
	}))
	t.Cleanup(spy.Close)
	// Checked even when a step fails: a leak is the finding.
	defer func() {
		if n, l := spied.Load(), leaked.Load(); n != 0 || l != 0 {
			t.Errorf("the server named by api= got %d requests, %d with a macaroon; want none", n, l)
		}
	}()

	tab := browsertest.New(t, 1200, 900)
	// A macaroon lnmuxd refuses: the banner shows that the console sent
	// it to its own origin.
	const badMacaroon = "0201036c6e64"
	tab.Step(t, "a macaroon in the tab goes to the console's own lnmuxd",
		chromedp.Navigate(origin+"/console/"), waitNodes(2),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`sessionStorage.setItem("lnmux.macaroon", %q)`, badMacaroon)),
		chromedp.Reload(),
		pollJS(`!document.querySelector('#banner').hidden && document.querySelector('#banner').textContent.includes('macaroon')`))
	tab.Step(t, "api= naming another server is refused",
		chromedp.Navigate(origin+"/console/?api="+spy.URL),
		pollJS(`document.querySelector('#banner').dataset.reason === 'foreign-api'`),
		pollJS(`document.querySelector('#create-invoice').disabled`))
	tab.Step(t, "served from another origin, pointed at lnmuxd",
		chromedp.Navigate(otherOrigin+"/?api="+origin),
		pollJS(`document.querySelector('#banner').dataset.reason === 'foreign-api'`))
	tab.Step(t, "served from another origin, it reaches no lnmuxd",
		chromedp.Navigate(otherOrigin+"/"),
		pollJS(`!document.querySelector('#banner').hidden`),
		pollJS(`document.querySelectorAll('#nodes-list li[data-pubkey]').length === 0`))
}

// rebindingRefused plays a DNS rebinding attack: the browser resolves
// rebind.test to 127.0.0.1, so a page at http://rebind.test:<lnmuxd's
// port>/ is same-origin with lnmuxd. lnmuxd refuses the page and the
// calls of a script running in that origin.
func rebindingRefused(t *testing.T, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	rebound := "http://rebind.test:" + port
	tab := browsertest.New(t, 1200, 900, browsertest.MapHost("rebind.test", "127.0.0.1"))
	tab.Step(t, "the console by a rebound name",
		chromedp.Navigate(rebound+"/console/"),
		pollJS(`document.body.innerText.includes('DNS rebinding protection')`),
		pollJS(`!document.querySelector('#create-invoice')`))
	for _, proc := range []string{"ListInvoices", "SettleInvoice", "SubscribeInvoiceAccepted"} {
		js := fmt.Sprintf(`fetch('/lnmux.Service/%s', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'}).then(r => r.status)`, proc)
		ctx, cancel := context.WithTimeout(tab.Context(), time.Minute)
		status, err := chromedp.Run(ctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
		cancel()
		if err != nil || status != http.StatusForbidden {
			t.Errorf("%s from a page at %s: status %d, %v; want 403", proc, rebound, status, err)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// pollJS waits until the expression is true in the page.
func pollJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond))(ctx, tg)
		return err
	})
}

func waitNodes(n int) chromedp.Action[chromedp.Void] {
	return pollJS(fmt.Sprintf(`document.querySelectorAll('#nodes-list li[data-pubkey] .ok').length === %d`, n))
}

func waitState(state string) chromedp.Action[chromedp.Void] {
	return pollJS(fmt.Sprintf(`document.querySelector('#invoice-status').dataset.state === %q`, state))
}

func pendingButton(hash, class string) string {
	return fmt.Sprintf(`#accepted-list li[data-hash="%s"] button.%s`, hash, class)
}

// createInvoice fills the form and returns the new invoice's hash.
func createInvoice(t *testing.T, b *browsertest.Browser, sat, description string) string {
	t.Helper()
	b.Step(t, "create an invoice of "+sat+" sat",
		browsertest.SetValue("#amount", sat), browsertest.SetValue("#description", description),
		chromedp.Click("#create-invoice"), chromedp.WaitVisible("#qr svg"),
		pollJS(`document.querySelector('#payment-request').value.startsWith('lnbcrt')`),
		pollJS(`document.querySelector('#lightning-link').href.startsWith('lightning:lnbcrt')`),
		waitState("waiting"))
	hash, err := chromedp.Run(b.Context(), chromedp.Text("#invoice-hash"))
	if err != nil || len(hash) != 64 {
		t.Fatalf("invoice hash %q: %v", hash, err)
	}
	return hash
}

// runClientTests runs the TypeScript client's tests (node's test runner)
// against lnmuxd.
func runClientTests(t *testing.T, url, macaroon string) {
	dir := filepath.Join("..", "..", "adapters", "web")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", "tsx")); err != nil {
		t.Fatalf("adapters/web/node_modules missing: run npm ci in adapters/web (the Taskfile's web-deps task does)")
	}
	cmd := exec.CommandContext(t.Context(), "npm", "test", "--silent")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LNMUX_URL="+url, "LNMUX_MACAROON="+macaroon)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm test: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("# fail 0")) {
		t.Fatalf("npm test:\n%s", out)
	}
	t.Logf("TypeScript client tests:\n%s", lastLines(string(out), 9))
}

// checkPaymentTrace pays an invoice in parts through Alice and Bob, settles
// it and finds in Jaeger: a span per part (node, channel, HTLC id, hash,
// amount), the settlement's span linked to every part, the store write in
// its trace, the settle answer of every part, lnd's final resolution of
// every part, and lnmuxd log lines with the same trace id.
func checkPaymentTrace(t *testing.T, jg *jaeger, d *daemon, env *lnmuxdEnv, cluster *regtest.Cluster, acc <-chan *lnmuxpb.SubscribeInvoiceAcceptedResponse) {
	inv := d.addInvoice(t, mppSat*1000, 600)
	pay := payAsync(t, cluster, inv.PaymentRequest)
	ev := nextAcceptedFor(t, acc, inv.Hash)
	if err := d.settle(t, inv.Hash, ev.SetId); err != nil {
		t.Fatal(err)
	}
	if p := <-pay; p.Status != lnrpc.Payment_SUCCEEDED {
		t.Fatalf("payment %v %v", p.Status, p.FailureReason)
	}
	if got := d.waitFinal(t, inv.Hash); got != lnmuxpb.InvoiceStatus_SETTLED {
		t.Fatalf("final %v", got)
	}
	hash := hex.EncodeToString(inv.Hash)

	// Every span with the hash: the parts, their answers and finals, the
	// store writes.
	var byName map[string][]jSpan
	traces := jg.find(t, "lnmuxd", map[string]string{"lnmux.payment_hash": hash}, func(ts []jTrace) bool {
		byName = spansByName(ts, hash)
		settles := 0
		for _, s := range byName["lnmux.htlc.resolve"] {
			if s.tag("lnmux.action") == "settle" {
				settles++
			}
		}
		return settles >= 2 && len(byName["lnmux.htlc.final"]) >= settles && len(byName["lnmux.store.request_settle"]) == 1
	})
	var parts []jSpan // HTLC spans of the settled parts
	settledCircuits := map[string]jSpan{}
	for _, s := range byName["lnmux.htlc.resolve"] {
		if s.tag("lnmux.action") == "settle" {
			settledCircuits[circuit(s)] = s
		}
	}
	nodes := map[string]bool{}
	var sum int64
	for _, s := range byName["lnmux.htlc"] {
		if _, ok := settledCircuits[circuit(s)]; !ok {
			continue // a part Carol's lnd tried and lnmux failed
		}
		for _, k := range []string{"lnmux.node", "lnmux.chan_id", "lnmux.htlc_id", "lnmux.amount_msat"} {
			if s.tag(k) == "" {
				t.Errorf("htlc span %s lacks %s", s.SpanID, k)
			}
		}
		if s.tag("lnmux.held") != "true" {
			t.Errorf("htlc span %s: held = %q", s.SpanID, s.tag("lnmux.held"))
		}
		var amt int64
		if _, err := fmt.Sscan(s.tag("lnmux.amount_msat"), &amt); err != nil {
			t.Errorf("htlc span %s: lnmux.amount_msat = %q, want a number: %v", s.SpanID, s.tag("lnmux.amount_msat"), err)
		}
		sum += amt
		nodes[s.tag("lnmux.node")] = true
		parts = append(parts, s)
	}
	if len(parts) < 2 || len(nodes) != 2 || sum != mppSat*1000 {
		t.Fatalf("settled parts: %d spans over %d nodes, %d msat; want ≥ 2 over both nodes summing to %d (spans: %v)",
			len(parts), len(nodes), sum, mppSat*1000, names(byName))
	}

	// The settlement: the span that links to every part, in the trace of
	// the store write and the settle answers.
	commit := byName["lnmux.store.request_settle"][0]
	tr := jg.trace(t, commit.TraceID, func(tr jTrace) bool {
		n := 0
		for _, s := range tr.Spans {
			if s.OperationName == "lnmux.htlc.final" {
				n++
			}
		}
		return n >= len(parts)
	})
	var settle *jSpan
	for i, s := range tr.Spans {
		links := map[string]bool{}
		for _, l := range s.links() {
			links[l] = true
		}
		all := true
		for _, p := range parts {
			all = all && links[p.TraceID+"/"+p.SpanID]
		}
		if all {
			settle = &tr.Spans[i]
		}
	}
	if settle == nil {
		t.Fatalf("no span in the settlement's trace %s links to every part: %s", commit.TraceID, renderTrace(tr, nil))
	}
	for _, s := range settledCircuits {
		if s.TraceID != commit.TraceID {
			t.Errorf("settle answer %s is in trace %s, not the settlement's %s", circuit(s), s.TraceID, commit.TraceID)
		}
	}
	finals := 0
	for _, s := range tr.Spans {
		if s.OperationName == "lnmux.htlc.final" && s.tag("lnmux.settled") == "true" {
			finals++
		}
	}
	if finals != len(parts) {
		t.Errorf("%d settled final resolutions in the settlement's trace, want %d", finals, len(parts))
	}

	// Log lines carry the trace id.
	logs, _ := os.ReadFile(filepath.Join(env.logDir, fmt.Sprintf("lnmuxd-%d.log", env.runs)))
	if !bytes.Contains(logs, []byte("trace_id="+commit.TraceID)) {
		t.Errorf("no lnmuxd log line with trace_id=%s", commit.TraceID)
	}
	rendered := renderTrace(tr, parts)
	t.Logf("trace of the payment as Jaeger returns it:\n%s", rendered)
	if os.Getenv(writeDocsEnv) == "1" {
		doc := "# Trace of a two-part payment, as Jaeger's query API returned it\n" +
			"# (app/e2e TestConsoleAndTraces; LNMUX_WRITE_DOCS=1 refreshes this file)\n\n" + rendered
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "trace-example.txt"), []byte(doc), 0o644); err != nil {
			t.Error(err)
		}
	}
	_ = traces
}

func circuit(s jSpan) string {
	return s.tag("lnmux.node") + ":" + s.tag("lnmux.chan_id") + ":" + s.tag("lnmux.htlc_id")
}

func spansByName(ts []jTrace, hash string) map[string][]jSpan {
	out := map[string][]jSpan{}
	seen := map[string]bool{}
	for _, tr := range ts {
		for _, s := range tr.Spans {
			if seen[s.SpanID] || s.tag("lnmux.payment_hash") != hash {
				continue
			}
			seen[s.SpanID] = true
			out[s.OperationName] = append(out[s.OperationName], s)
		}
	}
	return out
}

func names(m map[string][]jSpan) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = len(v)
	}
	return out
}

// renderTrace prints the linked HTLC spans, then the trace as a tree.
var shownTags = []string{"lnmux.node", "lnmux.chan_id", "lnmux.htlc_id", "lnmux.amount_msat", "lnmux.held",
	"lnmux.action", "lnmux.failure_code", "lnmux.settled", "lnmux.set_id", "lnmux.htlcs", "lnmux.status", "rpc.method"}

func renderSpan(b *strings.Builder, s jSpan, depth int) {
	fmt.Fprintf(b, "%s%s  span=%s  %s", strings.Repeat("  ", depth), s.OperationName, s.SpanID, time.Duration(s.Duration)*time.Microsecond)
	for _, k := range shownTags {
		if v := s.tag(k); v != "" {
			if k == "lnmux.node" || k == "lnmux.set_id" {
				v = v[:12] + "…"
			}
			fmt.Fprintf(b, "  %s=%s", strings.TrimPrefix(k, "lnmux."), v)
		}
	}
	if l := s.links(); len(l) > 0 {
		fmt.Fprintf(b, "  links=%d", len(l))
	}
	b.WriteString("\n")
}

func renderTrace(tr jTrace, parts []jSpan) string {
	var b strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&b, "trace %s (HTLC part)\n", p.TraceID)
		renderSpan(&b, p, 1)
	}
	fmt.Fprintf(&b, "trace %s (settlement)\n", tr.TraceID)
	children := map[string][]jSpan{}
	ids := map[string]bool{}
	for _, s := range tr.Spans {
		ids[s.SpanID] = true
	}
	var roots []jSpan
	for _, s := range tr.Spans {
		if p := s.parent(); p != "" && ids[p] {
			children[p] = append(children[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	var walk func(s jSpan, depth int)
	walk = func(s jSpan, depth int) {
		renderSpan(&b, s, depth)
		kids := children[s.SpanID]
		sort.Slice(kids, func(i, j int) bool { return kids[i].StartTime < kids[j].StartTime })
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	sort.Slice(roots, func(i, j int) bool { return roots[i].StartTime < roots[j].StartTime })
	for _, r := range roots {
		walk(r, 1)
	}
	return b.String()
}
