package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"

	"github.com/lnmux/lnmux/adapters/sqlstore/pgtest"
	"github.com/lnmux/lnmux/deployments/regtest"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// haCluster runs several lnmuxd on one Postgres database: one leads, the
// others are hot standbys (docs/high-availability.md).
type haCluster struct {
	t   *testing.T
	env *lnmuxdEnv
	dsn string
	n   int
}

// haDaemon is one lnmuxd of an haCluster.
type haDaemon struct {
	*daemon
	id      string
	logPath string
}

func newHACluster(t *testing.T) *haCluster {
	t.Helper()
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	t.Cleanup(func() {
		if err := pg.Stop(); err != nil {
			t.Errorf("stop postgres: %v", err)
		}
	})
	dsn, err := pg.CreateDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cluster := regtest.StartT(t, regtest.Options{Logf: t.Logf})
	logDir, err := os.MkdirTemp("", "lnmux-ha-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lnmuxd logs kept in %s", logDir)
			return
		}
		_ = os.RemoveAll(logDir)
	})
	h := &haCluster{t: t, dsn: dsn,
		env: &lnmuxdEnv{root: t, bin: buildLnmuxd(t), dataDir: t.TempDir(), logDir: logDir, cluster: cluster}}
	cfg := filepath.Join(logDir, "lnmux-migrate.yml")
	if err := os.WriteFile(cfg, []byte(h.env.config(freeAddr(t), freeAddr(t), daemonOpts{})), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"init", "up"} {
		cmd := exec.Command(h.env.bin, "-c", cfg, "migrate", c)
		cmd.Env = h.environ("migrate")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("migrate %s: %v\n%s", c, err, out)
		}
	}
	return h
}

func (h *haCluster) environ(id string) []string {
	return append(os.Environ(), "LNMUX_IDENTITY_KEY="+identityKey,
		"LNMUX_PERSISTENCE_POSTGRES_DSN="+h.dsn, "LNMUX_DISTRIBUTED_LOCK_ID="+id)
}

// start runs one more lnmuxd (auto-settle on) and waits until its API
// answers; it may lead or stand by.
func (h *haCluster) start() *haDaemon {
	t := h.t
	h.n++
	id := fmt.Sprintf("ha-%d", h.n)
	addr, instr := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(h.env.logDir, "lnmux-"+id+".yml")
	// Each instance has a data directory of its own (macaroons, TLS).
	cfg := strings.Replace(h.env.config(addr, instr, daemonOpts{autoSettle: true}),
		"dataDir: "+h.env.dataDir, "dataDir: "+filepath.Join(h.env.dataDir, id), 1)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(h.env.logDir, "lnmuxd-"+id+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(h.env.bin, "-c", cfgPath, "run")
	cmd.Env = h.environ(id)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &haDaemon{daemon: &daemon{t: t, cmd: cmd, addr: addr, instr: instr, done: make(chan error, 1)}, id: id, logPath: logPath}
	go func() { d.done <- cmd.Wait(); logFile.Close() }()
	t.Cleanup(d.kill)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: &p}}
	d.client = lnmuxpbconnect.NewServiceClient(hc, "http://"+addr, connect.WithGRPC())
	h.waitFor(d, "API answering", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := d.client.GetInfo(ctx, connect.NewRequest(&lnmuxpb.GetInfoRequest{}))
		return err == nil
	})
	return d
}

// waitFor polls cond (an external process's state, which has no event to
// wait on) until it holds, d exits or waitLong passes.
func (h *haCluster) waitFor(d *haDaemon, what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if err, gone := d.exited(0); gone {
			h.t.Fatalf("%s exited (%v) while waiting for %s:\n%s", d.id, err, what, tailFile(d.logPath, 40))
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: no %s within %s:\n%s", d.id, what, waitLong, tailFile(d.logPath, 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readyz is the HTTP status of the instance's /readyz.
func (d *haDaemon) readyz() int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.instr+"/readyz", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// livez is the HTTP status of the instance's /livez.
func (d *haDaemon) livez() int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.instr+"/livez", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// waitLeader waits until d leads: ready, and intercepting on both nodes.
func (h *haCluster) waitLeader(d *haDaemon) {
	h.t.Helper()
	h.waitFor(d, "leadership", func() bool {
		if d.readyz() != http.StatusOK {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		info, err := d.client.GetInfo(ctx, connect.NewRequest(&lnmuxpb.GetInfoRequest{}))
		return err == nil && len(info.Msg.Nodes) == 2 && allIntercepting(info.Msg.Nodes)
	})
}

// waitStandby waits until d waits on the lock with both nodes connected and
// checked.
func (h *haCluster) waitStandby(d *haDaemon) {
	h.t.Helper()
	h.waitFor(d, "standby", func() bool {
		if !strings.Contains(readFile(d.logPath), "lnmuxd standby: waiting for the leader lock") {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		info, err := d.client.GetInfo(ctx, connect.NewRequest(&lnmuxpb.GetInfoRequest{}))
		if err != nil || len(info.Msg.Nodes) != 2 {
			return false
		}
		for _, n := range info.Msg.Nodes {
			if !n.Connected || n.InterceptorActive {
				return false
			}
		}
		// The log line comes just before the lock request: wait until
		// Postgres has it.
		waiting, err := lockWaiters(h.t.Context(), h.dsn)
		return err == nil && waiting > 0
	})
}

// lockWaiters counts the sessions waiting for an advisory lock.
func lockWaiters(ctx context.Context, dsn string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").Scan(&n)
	return n, err
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// terminate sends SIGTERM, as a rolling deploy does.
func (d *haDaemon) terminate() { _ = d.cmd.Process.Signal(syscall.SIGTERM) }

// payOnce creates an invoice on via (any instance) and has Carol pay it,
// with her mission control reset as for a new payer.
func (h *haCluster) payOnce(ctx context.Context, via *haDaemon, amtMsat int64) (*lnmuxpb.AddInvoiceResponse, *regtest.Payment, error) {
	res, err := via.client.AddInvoice(ctx, connect.NewRequest(&lnmuxpb.AddInvoiceRequest{
		AmtMsat: amtMsat, ExpirySecs: 600, Description: "ha",
	}))
	if err != nil {
		return nil, nil, fmt.Errorf("add invoice on %s: %w", via.id, err)
	}
	c := h.env.cluster
	if _, err := c.Carol.Router.ResetMissionControl(ctx, &routerrpc.ResetMissionControlRequest{}); err != nil {
		return nil, nil, fmt.Errorf("reset mission control: %w", err)
	}
	p, err := c.PayInvoice(ctx, res.Msg.PaymentRequest, func(r *routerrpc.SendPaymentRequest) { r.TimeoutSeconds = 30 })
	return res.Msg, p, err
}

// mustPay pays one invoice created on via and fails the test unless it
// succeeds.
func (h *haCluster) mustPay(via *haDaemon, label string) []byte {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), waitLong)
	defer cancel()
	inv, p, err := h.payOnce(ctx, via, 20_000)
	if err != nil {
		h.t.Fatalf("%s: %v", label, err)
	}
	if p.Status != lnrpc.Payment_SUCCEEDED {
		h.t.Fatalf("%s: payment %s (%s, last failure %s), want SUCCEEDED", label, p.Status, p.FailureReason, p.FailureCode)
	}
	return inv.Hash
}

// refusedHTLCs counts the HTLC attempts of a payment that a cluster node
// failed with temporary_channel_failure: lnd refusing the virtual hop
// because no interceptor was registered (or lnmux refusing it).
func refusedHTLCs(p *regtest.Payment) int {
	n := 0
	for _, a := range p.Raw.GetHtlcs() {
		if f := a.GetFailure(); f != nil && f.Code == lnrpc.Failure_TEMPORARY_CHANNEL_FAILURE {
			n++
		}
	}
	return n
}

// TestHotStandby runs two lnmuxd on one Postgres database: the standby
// serves AddInvoice and GetInfo and refuses what only the leader does, with
// readiness saying which leads; it takes over after a kill -9 of the leader
// and after a SIGTERM hand-over, and every payment settles exactly once.
func TestHotStandby(t *testing.T) {
	h := newHACluster(t)
	a := h.start()
	h.waitLeader(a)
	b := h.start()
	h.waitStandby(b)

	if got := a.readyz(); got != http.StatusOK {
		t.Errorf("leader /readyz = %d, want 200", got)
	}
	if got := b.readyz(); got != http.StatusServiceUnavailable {
		t.Errorf("standby /readyz = %d, want 503", got)
	}
	if got := b.livez(); got != http.StatusOK {
		t.Errorf("standby /livez = %d, want 200 (a healthy standby must not be restarted)", got)
	}

	var hashes [][]byte
	// An invoice made by the standby is paid and settled through the leader.
	hashes = append(hashes, h.mustPay(b, "invoice from the standby"))
	hashes = append(hashes, h.mustPay(a, "invoice from the leader"))

	_, err := b.client.SettleInvoice(t.Context(), connect.NewRequest(&lnmuxpb.SettleInvoiceRequest{
		Hash: hashes[0], SetId: make([]byte, 32)}))
	if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "standby") ||
		!strings.Contains(err.Error(), a.id) {
		t.Errorf("SettleInvoice on the standby: got %v, want Unavailable saying it is a standby and naming the leader %s", err, a.id)
	}

	// kill -9 of the leader: the standby takes over.
	a.kill()
	h.waitLeader(b)
	hashes = append(hashes, h.mustPay(b, "after kill -9"))

	// A new standby, then a planned hand-over to it.
	c := h.start()
	h.waitStandby(c)
	b.terminate()
	h.waitLeader(c)
	if err, gone := b.exited(waitLong); !gone || err != nil {
		t.Errorf("old leader after SIGTERM: exited %v with %v, want a clean exit", gone, err)
	}
	log := readFile(b.logPath)
	for _, step := range []string{"hand-over: leader lock released", "standby_waiting=true", "hand-over: the successor took the lock", "hand-over: interceptor streams closed"} {
		if !strings.Contains(log, step) {
			t.Errorf("old leader's log lacks %q", step)
		}
	}
	hashes = append(hashes, h.mustPay(c, "after the hand-over"))

	// Every invoice has one stored settlement, which lnd reports final.
	res, err := c.client.ListInvoices(t.Context(), connect.NewRequest(&lnmuxpb.ListInvoicesRequest{MaxInvoicesCount: 100}))
	if err != nil {
		t.Fatal(err)
	}
	records := map[string]int{}
	for _, inv := range res.Msg.Invoice {
		records[string(inv.Hash)]++
	}
	for i, hash := range hashes {
		if records[string(hash)] != 1 {
			t.Errorf("payment %d (%x): %d stored settlements, want 1", i, hash, records[string(hash)])
		}
		if st := c.waitFinal(t, hash); st != lnmuxpb.InvoiceStatus_SETTLED {
			t.Errorf("payment %d (%x): final status %s, want SETTLED", i, hash, st)
		}
	}
	if len(res.Msg.Invoice) != len(hashes) {
		t.Errorf("%d stored settlements, want %d (one per payment)", len(res.Msg.Invoice), len(hashes))
	}
}

// takeoverRunsEnv turns on TestTakeoverDrill (task takeover): the number
// of kill -9 takeovers and of planned hand-overs to measure.
const takeoverRunsEnv = "LNMUX_TEST_TAKEOVER_RUNS"

var activeRE = regexp.MustCompile(`interceptors active on every node.*at_unix_us=(\d+)`)

// activeAfter waits for the first "interceptors active on every node" line
// of d's log stamped after since, and returns its time.
func activeAfter(d *haDaemon, since time.Time) (time.Time, error) {
	deadline := time.Now().Add(waitLong)
	for time.Now().Before(deadline) {
		f, err := os.Open(d.logPath)
		if err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				if m := activeRE.FindStringSubmatch(sc.Text()); m != nil {
					us, _ := strconv.ParseInt(m[1], 10, 64)
					if at := time.UnixMicro(us); at.After(since) {
						f.Close()
						return at, nil
					}
				}
			}
			f.Close()
		}
		if _, gone := d.exited(0); gone {
			return time.Time{}, fmt.Errorf("%s exited", d.id)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Time{}, errors.New("no takeover line")
}

// drillPayments pays invoices at a bounded rate (one every interval, at
// most inFlight at once) until stop closes, and returns the payments.
func (h *haCluster) drillPayments(ctx context.Context, via func() *haDaemon, stop <-chan struct{}) func() []*regtest.Payment {
	const (
		interval = 50 * time.Millisecond
		inFlight = 4
	)
	var (
		mu   sync.Mutex
		pays []*regtest.Payment
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, inFlight)
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			select {
			case sem <- struct{}{}:
			default:
				continue // the rate bound: skip a tick while saturated
			}
			wg.Go(func() {
				defer func() { <-sem }()
				_, p, err := h.payOnce(ctx, via(), 20_000)
				if err != nil {
					h.t.Logf("drill payment: %v", err)
					return
				}
				mu.Lock()
				pays = append(pays, p)
				mu.Unlock()
			})
		}
	})
	return func() []*regtest.Payment {
		wg.Wait()
		return pays
	}
}

// TestTakeoverDrill measures takeovers on the regtest cluster: with
// LNMUX_TEST_TAKEOVER_RUNS=N, N kill -9 takeovers and N planned hand-overs
// (SIGTERM), each during payments at a bounded rate. Per run it prints the
// time from the kill (or SIGTERM) to the successor's "interceptors active on
// every node" log line and the HTLCs lnd refused with
// temporary_channel_failure meanwhile; then median and max (task takeover;
// docs/benchmarks.md).
func TestTakeoverDrill(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv(takeoverRunsEnv))
	if runs <= 0 {
		t.Skipf("set %s=10 to run the takeover drill (task takeover)", takeoverRunsEnv)
	}
	h := newHACluster(t)
	leader := h.start()
	h.waitLeader(leader)
	standby := h.start()
	h.waitStandby(standby)
	var mu sync.Mutex
	current := func() *haDaemon { mu.Lock(); defer mu.Unlock(); return standby }

	type result struct {
		took    time.Duration
		refused int
		paid    int
	}
	results := map[string][]result{}
	for _, kind := range []string{"kill -9", "SIGTERM"} {
		for i := range runs {
			stop := make(chan struct{})
			wait := h.drillPayments(t.Context(), current, stop)
			time.Sleep(300 * time.Millisecond)
			at := time.Now()
			if kind == "kill -9" {
				_ = syscall.Kill(-leader.cmd.Process.Pid, syscall.SIGKILL)
			} else {
				leader.terminate()
			}
			active, err := activeAfter(standby, at)
			if err != nil {
				t.Fatalf("%s run %d: %v\n%s", kind, i+1, err, tailFile(standby.logPath, 40))
			}
			h.waitLeader(standby)
			time.Sleep(300 * time.Millisecond)
			close(stop)
			pays := wait()
			r := result{took: active.Sub(at), paid: len(pays)}
			for _, p := range pays {
				r.refused += refusedHTLCs(p)
			}
			results[kind] = append(results[kind], r)
			t.Logf("%s run %2d: interceptors active on every node after %6.1f ms; %d HTLCs refused (temporary_channel_failure) in %d payments",
				kind, i+1, float64(r.took.Microseconds())/1000, r.refused, r.paid)
			if _, gone := leader.exited(waitLong); !gone {
				t.Fatalf("%s run %d: the old leader did not exit", kind, i+1)
			}
			next := h.start()
			h.waitStandby(next)
			mu.Lock()
			leader, standby = standby, next
			mu.Unlock()
		}
	}
	for _, kind := range []string{"kill -9", "SIGTERM"} {
		rs := results[kind]
		took := make([]time.Duration, len(rs))
		refused := make([]int, len(rs))
		for i, r := range rs {
			took[i], refused[i] = r.took, r.refused
		}
		slices.Sort(took)
		slices.Sort(refused)
		t.Logf("%s: %d runs; takeover median %.1f ms, max %.1f ms; refused HTLCs median %d, max %d",
			kind, len(rs), float64(took[len(took)/2].Microseconds())/1000, float64(took[len(took)-1].Microseconds())/1000,
			refused[len(refused)/2], refused[len(refused)-1])
	}
}
