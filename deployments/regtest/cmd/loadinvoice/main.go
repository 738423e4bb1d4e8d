// Command loadinvoice measures AddInvoice side by side: lnmuxd over raw
// gRPC (grpc-go) and over Connect (connect-go, protobuf binary), and, as the
// baseline, Alice's own lnd AddInvoice over gRPC (lnrpc, TLS, macaroon),
// all driven by the same load generator in one run. It starts a regtest
// cluster (deployments/regtest) and lnmuxd against Alice and Bob on a fresh
// SQLite database, then alternates the targets round after round so that
// the machine's load drifts over all of them alike, and prints throughput,
// p50 and p99 per target and the ratios to lnd.
//
//	go run ./deployments/regtest/cmd/loadinvoice [-callers 16] [-rounds 3] [-duration 5s] [-count 50000]
//	    [-warmup 1s] [-conns 1] [-batch 100] [-replicas 2] [-floor] [-cpuprofile lnmuxd.pprof] [-lnmuxd path]
//
// -replicas 2 starts a second lnmuxd on the same database, a hot standby,
// which answers AddInvoice like the leader (docs/high-availability.md), and
// adds a target whose calls alternate between the two processes. -floor
// adds lnmuxd's GetInfo over gRPC: the same server stack and macaroon check
// without the invoice, the most single calls per second this wire and this
// generator allow on the machine.
//
// Each run first calls for -warmup without recording, then records until
// -count calls completed or -duration passed, whichever comes first. Every
// wait is bounded; a call failing counts as an error and the run goes on
// (errors are printed). See docs/benchmarks.md for figures.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/lnmux/lnmux/deployments/regtest"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadinvoice:", err)
		os.Exit(1)
	}
}

type options struct {
	callers    int
	rounds     int
	duration   time.Duration
	count      int
	warmup     time.Duration
	conns      int
	batch      int
	cpuprofile string
	profiled   string
	lnmuxd     string
	timeout    time.Duration
	replicas   int
	floor      bool
}

func run() error {
	var o options
	flag.IntVar(&o.callers, "callers", 16, "concurrent callers per target")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each round runs every target once, in turn")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per run (upper bound)")
	flag.IntVar(&o.count, "count", 50_000, "measured calls per run (upper bound)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unrecorded calls before each run")
	flag.IntVar(&o.conns, "conns", 1, "HTTP/2 connections per target (callers share them)")
	flag.IntVar(&o.batch, "batch", 0, "also measure BatchAddInvoice with this many invoices per call (0: off)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write lnmuxd's CPU profile during the first round's run of -profile-target to this file")
	flag.StringVar(&o.profiled, "profile-target", "lnmuxd gRPC", "the target -cpuprofile profiles")
	flag.StringVar(&o.lnmuxd, "lnmuxd", "", "lnmuxd binary (default: go build ./app/lnmuxd)")
	flag.DurationVar(&o.timeout, "call-timeout", 30*time.Second, "deadline of one call")
	flag.IntVar(&o.replicas, "replicas", 1, "lnmuxd processes (1 or 2); with 2 a standby on the same database also answers AddInvoice")
	flag.BoolVar(&o.floor, "floor", false, "also measure lnmuxd's GetInfo over gRPC: the wire's and the stack's cost without the invoice")
	flag.Parse()
	if o.callers < 1 || o.rounds < 1 || o.conns < 1 || o.count < 1 || o.duration <= 0 {
		return errors.New("-callers, -rounds, -conns, -count and -duration must be positive")
	}
	if o.replicas != 1 && o.replicas != 2 {
		return errors.New("-replicas must be 1 or 2")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }

	tmp, err := os.MkdirTemp("", "loadinvoice-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if o.lnmuxd == "" {
		o.lnmuxd = filepath.Join(tmp, "lnmuxd")
		logf("building lnmuxd")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", o.lnmuxd, "github.com/lnmux/lnmux/app/lnmuxd").CombinedOutput(); err != nil {
			return fmt.Errorf("build lnmuxd: %w\n%s", err, out)
		}
	}

	began := time.Now()
	// On a loaded machine a node may miss the harness's start deadline:
	// try a second time before giving up.
	var c *regtest.Cluster
	for attempt := 1; ; attempt++ {
		c, err = regtest.Start(ctx, regtest.Options{Logf: logf})
		if err == nil {
			break
		}
		if attempt == 2 || ctx.Err() != nil {
			return fmt.Errorf("start regtest cluster: %w", err)
		}
		logf("cluster start failed (%v); trying again", err)
	}
	defer c.Close()
	logf("cluster up in %s", time.Since(began).Round(time.Second))

	d, err := startLnmuxd(ctx, c, o.lnmuxd, tmp, false)
	if err != nil {
		return err
	}
	defer d.stop()
	logf("lnmuxd up: api %s, instrumentation %s", d.addr, d.instr)
	var replica *lnmuxd
	if o.replicas == 2 {
		replica, err = startLnmuxd(ctx, c, o.lnmuxd, tmp, true)
		if err != nil {
			return err
		}
		defer replica.stop()
		logf("second lnmuxd (standby) up: api %s, instrumentation %s", replica.addr, replica.instr)
	}

	targets, closeAll, err := newTargets(ctx, c, d, replica, o)
	if err != nil {
		return err
	}
	defer closeAll()

	results := make(map[string]*result)
	for _, t := range targets {
		results[t.name] = &result{}
	}
	fmt.Printf("loadinvoice: %d callers, %d connection(s) per target and process, runs of ≤ %s / ≤ %d calls after %s warm-up, %d rounds, %d lnmuxd process(es), GOMAXPROCS %d, %d CPUs\n",
		o.callers, o.conns, o.duration, o.count, o.warmup, o.rounds, o.replicas, runtime.GOMAXPROCS(0), runtime.NumCPU())
	for round := 1; round <= o.rounds; round++ {
		for _, t := range targets {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var prof chan error
			if o.cpuprofile != "" && round == 1 && t.name == o.profiled {
				prof = make(chan error, 1)
				go func() { prof <- d.cpuProfile(ctx, o.warmup, o.duration, o.cpuprofile) }()
			}
			r := drive(ctx, t, o)
			if prof != nil {
				if err := <-prof; err != nil {
					logf("cpu profile: %v", err)
				} else {
					logf("cpu profile of lnmuxd written to %s", o.cpuprofile)
				}
			}
			results[t.name].add(r)
			fmt.Printf("round %d  %-22s %9.0f invoices/s  p50 %8s  p99 %8s  server CPU %8s/invoice  (%d calls, %d errors, load avg %s, I/O pressure %s)\n",
				round, t.name, r.rate(), r.quantile(0.5), r.quantile(0.99), r.cpuPer(r.serverCPU), r.calls, r.errors, loadAvg(), ioPressure())
			if r.firstErr != nil {
				fmt.Printf("         first error: %v\n", r.firstErr)
			}
		}
	}
	report(targets, results)
	return nil
}

// target is one AddInvoice endpoint. call makes one call, which creates
// per invoices.
type target struct {
	name string
	per  int
	// pids are the server processes, whose CPU time is measured.
	pids []int
	call func(ctx context.Context) error
}

// result accumulates the measured calls of one target.
type result struct {
	calls, errors int
	invoices      int
	elapsed       time.Duration
	serverCPU     time.Duration
	selfCPU       time.Duration
	lat           []time.Duration
	rates         []float64
	firstErr      error
}

func (r *result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.invoices) / r.elapsed.Seconds()
}

func (r *result) add(o *result) {
	r.calls += o.calls
	r.errors += o.errors
	r.invoices += o.invoices
	r.elapsed += o.elapsed
	r.serverCPU += o.serverCPU
	r.selfCPU += o.selfCPU
	r.lat = append(r.lat, o.lat...)
	r.rates = append(r.rates, o.rate())
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
}

// cpuPer is CPU time per invoice; 0 when not measured.
func (r *result) cpuPer(d time.Duration) time.Duration {
	if r.invoices == 0 {
		return 0
	}
	return (d / time.Duration(r.invoices)).Round(100 * time.Nanosecond)
}

func (r *result) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	slices.Sort(r.lat)
	return r.lat[min(len(r.lat)-1, int(q*float64(len(r.lat))))].Round(10 * time.Microsecond)
}

// drive runs one target: -warmup unrecorded, then until -count calls or
// -duration.
func drive(ctx context.Context, t target, o options) *result {
	var (
		recording atomic.Bool
		done      atomic.Bool
		left      atomic.Int64
		mu        sync.Mutex
		res       = &result{}
		wg        sync.WaitGroup
	)
	left.Store(int64(o.count))
	start := make(chan struct{})
	for range o.callers {
		wg.Go(func() {
			lat := make([]time.Duration, 0, o.count/o.callers+1)
			var calls, errs int
			var firstErr error
			<-start
			for !done.Load() && ctx.Err() == nil {
				rec := recording.Load()
				if rec && left.Add(-1) < 0 {
					break
				}
				cctx, cancel := context.WithTimeout(ctx, o.timeout)
				began := time.Now()
				err := t.call(cctx)
				took := time.Since(began)
				cancel()
				if !rec || !recording.Load() {
					continue // began in the warm-up: not recorded
				}
				calls++
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lat = append(lat, took)
			}
			mu.Lock()
			defer mu.Unlock()
			res.calls += calls
			res.errors += errs
			res.lat = append(res.lat, lat...)
			if res.firstErr == nil {
				res.firstErr = firstErr
			}
		})
	}
	close(start)
	sleep(ctx, o.warmup)
	cpu := startCPU(t.pids)
	began := time.Now()
	recording.Store(true)
	deadline := time.NewTimer(o.duration)
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-deadline.C:
		done.Store(true)
		<-finished
	case <-finished:
	case <-ctx.Done():
		<-finished
	}
	deadline.Stop()
	// Calls still running at the deadline end after it; count the time
	// they took, not a shorter window.
	res.elapsed = time.Since(began)
	res.serverCPU, res.selfCPU = cpu.stop()
	res.invoices = len(res.lat) * t.per
	return res
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

func report(targets []target, results map[string]*result) {
	base := results["lnd gRPC"]
	fmt.Printf("\n%-24s %11s %9s %9s %8s %12s %12s %9s %7s  %s\n", "target", "invoices/s", "p50", "p99", "ratio",
		"server CPU", "client CPU", "CPU ratio", "errors", "per-run invoices/s")
	for _, t := range targets {
		r := results[t.name]
		ratio, cpuRatio := "-", "-"
		if base != nil && base.rate() > 0 && t.name != "lnd gRPC" {
			ratio = fmt.Sprintf("%.1f×", r.rate()/base.rate())
			if r.serverCPU > 0 && base.serverCPU > 0 {
				cpuRatio = fmt.Sprintf("%.1f×", float64(base.cpuPer(base.serverCPU))/float64(r.cpuPer(r.serverCPU)))
			}
		}
		var runs []string
		for _, x := range r.rates {
			runs = append(runs, fmt.Sprintf("%.0f", x))
		}
		fmt.Printf("%-24s %11.0f %9s %9s %8s %12s %12s %9s %7d  %s\n", t.name, r.rate(), r.quantile(0.5), r.quantile(0.99), ratio,
			r.cpuPer(r.serverCPU), r.cpuPer(r.selfCPU), cpuRatio, r.errors, strings.Join(runs, " "))
	}
	fmt.Println("(ratio: invoices/s against lnd's; server CPU: the server process's CPU time per invoice; CPU ratio: lnd's server CPU per invoice over this one's)")
	fmt.Printf("(p50/p99 are per call; a batch call creates %d invoices. load avg now %s, I/O pressure %s: lnd's AddInvoice waits for an fsync, so a busy disk slows the baseline and inflates the ratios; compare the CPU ratio)\n",
		batchOf(targets), loadAvg(), ioPressure())
}

func batchOf(ts []target) int {
	for _, t := range ts {
		if t.per > 1 {
			return t.per
		}
	}
	return 1
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// newTargets dials every target with o.conns connections each (per
// process for the two-replica target); callers take them in turn.
func newTargets(ctx context.Context, c *regtest.Cluster, d, replica *lnmuxd, o options) ([]target, func(), error) {
	var closers []func()
	closeAll := func() {
		for _, f := range closers {
			f()
		}
	}
	req := &lnmuxpb.AddInvoiceRequest{AmtMsat: 20_000, ExpirySecs: 600, Description: "coffee"}
	mac := hex.EncodeToString(d.macaroon)

	dialGRPC := func(addr string) ([]*grpc.ClientConn, error) {
		var conns []*grpc.ClientConn
		for range o.conns {
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				return nil, fmt.Errorf("dial lnmuxd %s over gRPC: %w", addr, err)
			}
			closers = append(closers, func() { _ = conn.Close() })
			conns = append(conns, conn)
		}
		return conns, nil
	}
	var next atomic.Uint64
	// grpcCaller makes one call per invocation, decoding each answer
	// into a message of its own.
	grpcCaller := func(conns []*grpc.ClientConn, method string, in any, out func() any) func(context.Context) error {
		return func(ctx context.Context) error {
			conn := conns[next.Add(1)%uint64(len(conns))]
			ctx = metadata.AppendToOutgoingContext(ctx, "macaroon", mac)
			return conn.Invoke(ctx, method, in, out())
		}
	}
	addOut := func() any { return new(lnmuxpb.AddInvoiceResponse) }
	grpcConns, err := dialGRPC(d.addr)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	grpcCall := grpcCaller(grpcConns, lnmuxpbconnect.ServiceAddInvoiceProcedure, req, addOut)

	var connectClients []lnmuxpbconnect.ServiceClient
	for range o.conns {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		// One transport per connection: a transport opens one HTTP/2
		// connection per host.
		tr := &http.Transport{Protocols: &p}
		closers = append(closers, tr.CloseIdleConnections)
		connectClients = append(connectClients, lnmuxpbconnect.NewServiceClient(&http.Client{Transport: tr}, "http://"+d.addr))
	}
	connectCall := func(ctx context.Context) error {
		cl := connectClients[next.Add(1)%uint64(len(connectClients))]
		r := connect.NewRequest(req)
		r.Header().Set("Macaroon", mac)
		_, err := cl.AddInvoice(ctx, r)
		return err
	}

	alice := c.Alice.Client
	lndReq := &lnrpc.Invoice{ValueMsat: req.AmtMsat, Expiry: req.ExpirySecs, Memo: req.Description}
	lndCall := func(ctx context.Context) error {
		_, err := alice.AddInvoice(ctx, lndReq)
		return err
	}

	targets := []target{
		{name: "lnmuxd gRPC", per: 1, pids: []int{d.pid()}, call: grpcCall},
		{name: "lnmuxd Connect", per: 1, pids: []int{d.pid()}, call: connectCall},
		{name: "lnd gRPC", per: 1, pids: []int{c.Alice.PID()}, call: lndCall},
	}
	if replica != nil {
		// The connections of both processes interleaved: consecutive
		// calls go to alternate processes.
		second, err := dialGRPC(replica.addr)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		var both []*grpc.ClientConn
		for i := range grpcConns {
			both = append(both, grpcConns[i], second[i])
		}
		targets = append(targets, target{name: "lnmuxd gRPC 2 processes", per: 1, pids: []int{d.pid(), replica.pid()},
			call: grpcCaller(both, lnmuxpbconnect.ServiceAddInvoiceProcedure, req, addOut)})
	}
	if o.floor {
		targets = append(targets, target{name: "lnmuxd gRPC GetInfo", per: 1, pids: []int{d.pid()},
			call: grpcCaller(grpcConns, lnmuxpbconnect.ServiceGetInfoProcedure, &lnmuxpb.GetInfoRequest{}, func() any { return new(lnmuxpb.GetInfoResponse) })})
	}
	if o.batch > 0 {
		t, err := batchTarget(grpcConns, &next, mac, req, o.batch)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		t.pids = []int{d.pid()}
		targets = append(targets, t)
	}
	// A first call each, so that a broken target fails before the runs.
	for _, t := range targets {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := t.call(cctx)
		cancel()
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("first call to %s: %w", t.name, err)
		}
	}
	return targets, closeAll, nil
}

// lnmuxd is the lnmuxd process under load.
type lnmuxd struct {
	cmd      *exec.Cmd
	addr     string
	instr    string
	macaroon []byte
	done     chan error
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startLnmuxd runs lnmuxd against Alice and Bob with its defaults (macaroons
// written, telemetry without an exporter), logging at warn so that the log
// costs what it costs in production. With standby set it starts a second
// process on the first one's data directory and database (its macaroons,
// its SQLite file): a hot standby, which waits for the lock and answers
// AddInvoice meanwhile.
func startLnmuxd(ctx context.Context, c *regtest.Cluster, bin, tmp string, standby bool) (*lnmuxd, error) {
	dir := filepath.Join(tmp, "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	instr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "lnd:\n  network: regtest\n  nodes:\n")
	for _, n := range []*regtest.Node{c.Alice, c.Bob} {
		fmt.Fprintf(&b, "    - pubKey: %s\n      lndUrl: %s\n      macaroonPath: %s\n      tlsCertPath: %s\n",
			n.PubKey, n.RPCAddr, n.MacaroonPath, n.TLSCertPath)
	}
	fmt.Fprintf(&b, "dataDir: %s\nlistenAddress: %s\ninstrumentationAddress: %s\nlogging:\n  level: warn\n", dir, addr, instr)
	name := "lnmuxd"
	if standby {
		name = "lnmuxd-standby"
	}
	cfgPath := filepath.Join(dir, name+".yml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	// A throwaway identity key of this run only: the cluster dies with it.
	env := append(os.Environ(), "LNMUX_IDENTITY_KEY="+strings.Repeat("2e", 32))
	// A standby shares the first process's database, migrated already.
	for _, step := range []string{"init", "up"} {
		if standby {
			break
		}
		cmd := exec.CommandContext(ctx, bin, "-c", cfgPath, "migrate", step)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("lnmuxd migrate %s: %w\n%s", step, err, out)
		}
	}
	logFile, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", cfgPath, "run")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &lnmuxd{cmd: cmd, addr: addr, instr: instr, done: make(chan error, 1)}
	go func() { d.done <- cmd.Wait(); logFile.Close() }()
	if err := d.waitReady(ctx, filepath.Join(dir, "invoice.macaroon"), logFile.Name()); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

// waitReady waits (bounded) for the invoice macaroon and a GetInfo answer.
func (d *lnmuxd) waitReady(ctx context.Context, macPath, logPath string) error {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 5 * time.Second}
	client := lnmuxpbconnect.NewServiceClient(hc, "http://"+d.addr)
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-d.done:
			d.done <- err
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("lnmuxd exited: %w\n%s", err, log)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if mac, err := os.ReadFile(macPath); err == nil {
			req := connect.NewRequest(&lnmuxpb.GetInfoRequest{})
			req.Header().Set("Macaroon", hex.EncodeToString(mac))
			if _, err := client.GetInfo(ctx, req); err == nil {
				d.macaroon = mac
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("lnmuxd not ready within 3m (log %s)", logPath)
}

// cpuProfile fetches lnmuxd's CPU profile over the measured part of a run.
func (d *lnmuxd) cpuProfile(ctx context.Context, warmup, duration time.Duration, path string) error {
	sleep(ctx, warmup)
	secs := max(1, int(duration.Seconds()))
	cctx, cancel := context.WithTimeout(ctx, duration+time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", d.instr, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (d *lnmuxd) pid() int { return d.cmd.Process.Pid }

func (d *lnmuxd) stop() {
	if d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.done: //nolint:errcheck // stopping: how it exited does not matter
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done //nolint:errcheck // killed: how it exited does not matter
	}
}
