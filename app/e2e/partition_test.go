package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
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
	"golang.org/x/sys/unix"

	"github.com/lnmux/lnmux/adapters/sqlstore/pgtest"
	"github.com/lnmux/lnmux/deployments/regtest"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// The partition drill (task partition-drill; docs/high-availability.md,
// "Partitions"). It needs root and a network namespace of its own (the
// task runs it under `unshare --net`): every address it sets lives in that
// namespace or in the two it creates, one per lnmuxd, joined to it by veth
// pairs. Postgres and the regtest lnd nodes run in the drill's own
// namespace ("the hub"); a nemesis cuts the leader's namespace from
// Postgres, from Alice, or from everything, with blackhole routing rules
// on the ports (both directions, nothing answered, nothing refused: a
// lost host), and heals it.
const (
	partitionEnv = "LNMUX_TEST_PARTITION" // "1" runs the drill
	// partitionLndPingEnv set to "default" leaves lnd's gRPC keepalive at
	// its defaults (1 min + 20 s) instead of the recommended 1 s + 3 s:
	// for the figures before.
	partitionLndPingEnv = "LNMUX_PARTITION_LND_PING"
	// partitionBinEnv names another lnmuxd binary to drill (main's, for
	// the figures before); default: this tree's.
	partitionBinEnv = "LNMUX_PARTITION_LNMUXD"
	// partitionKindsEnv limits the partitions run (comma-separated of
	// postgres, alice, all).
	partitionKindsEnv = "LNMUX_PARTITION_KINDS"

	// Ports on the hub's veth addresses where Alice and Bob serve gRPC.
	aliceHubPort = 10019
	bobHubPort   = 10029
	// lnd's gRPC keepalive recommended with lnmux (docs/high-availability.md).
	lndPingTime    = "1s"
	lndPingTimeout = "3s"
)

// nsLink is one lnmuxd's namespace and its veth pair to the hub.
type nsLink struct {
	name    string // the named network namespace
	nsIf    string // its end of the veth pair
	hubAddr string // the hub's address on the pair
	nsAddr  string // the namespace's address
}

func ipRun(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// drillNamespacePrefix names the drill's namespaces; the pid that made them
// follows, so that a later run can remove those of a drill that died.
const drillNamespacePrefix = "lnmuxp"

// removeStaleNamespaces deletes the namespaces of drills whose process is
// gone.
func removeStaleNamespaces() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for line := range strings.Lines(string(out)) {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, drillNamespacePrefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || syscall.Kill(pid, 0) == nil {
			continue
		}
		_ = ipRun("netns", "del", name)
	}
}

// requirePrivateHub fails unless the test runs as root in a network
// namespace of its own (no interface but lo).
func requirePrivateHub(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the partition drill needs root (network namespaces): run it with task partition-drill")
	}
	// A namespace of its own, fresh from `unshare --net`, has only lo.
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Name != "lo" {
			t.Fatalf("the partition drill sets addresses only in network namespaces of its own, but this one has %s: run it under `unshare --net` (task partition-drill)", i.Name)
		}
	}
	if err := ipRun("link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
}

// newNamespaces creates the two lnmuxd namespaces and their veth pairs,
// removed on cleanup and on an interrupt.
func newNamespaces(t *testing.T) []*nsLink {
	t.Helper()
	removeStaleNamespaces()
	var links []*nsLink
	var once sync.Once
	remove := func() {
		once.Do(func() {
			for _, l := range links {
				if err := ipRun("netns", "del", l.name); err != nil {
					t.Logf("remove namespace: %v", err)
				}
			}
		})
	}
	t.Cleanup(remove)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	stopSig := make(chan struct{})
	t.Cleanup(func() { signal.Stop(sig); close(stopSig) })
	go func() {
		select {
		case s := <-sig:
			remove()
			fmt.Fprintf(os.Stderr, "partition drill: %s: namespaces removed\n", s)
			os.Exit(2)
		case <-stopSig:
		}
	}()
	for i, id := range []string{"a", "b"} {
		l := &nsLink{
			name:    fmt.Sprintf("%s%d-%s", drillNamespacePrefix, os.Getpid(), id),
			nsIf:    "lnmux-" + id,
			hubAddr: fmt.Sprintf("10.231.%d.1", i+1),
			nsAddr:  fmt.Sprintf("10.231.%d.2", i+1),
		}
		hubIf := "hub-" + id
		for _, args := range [][]string{
			{"netns", "add", l.name},
			{"link", "add", hubIf, "type", "veth", "peer", "name", l.nsIf, "netns", l.name},
			{"addr", "add", l.hubAddr + "/24", "dev", hubIf},
			{"link", "set", hubIf, "up"},
			{"-n", l.name, "addr", "add", l.nsAddr + "/24", "dev", l.nsIf},
			{"-n", l.name, "link", "set", l.nsIf, "up"},
			{"-n", l.name, "link", "set", "lo", "up"},
		} {
			if err := ipRun(args...); err != nil {
				t.Fatal(err)
			}
			if args[0] == "netns" {
				links = append(links, l)
			}
		}
	}
	return links
}

// cut blackholes, in l's namespace, TCP to and from the hub ports given:
// packets vanish both ways, as for a host cut off (nothing is refused, no
// connection is closed). heal removes the rules.
func (l *nsLink) cut(ports ...int) error {
	for i, p := range ports {
		if err := ipRun("-n", l.name, "rule", "add", "ipproto", "tcp", "dport", strconv.Itoa(p), "blackhole", "prio", strconv.Itoa(100+i)); err != nil {
			return err
		}
		if err := ipRun("-n", l.name, "rule", "add", "iif", l.nsIf, "ipproto", "tcp", "sport", strconv.Itoa(p), "blackhole", "prio", strconv.Itoa(200+i)); err != nil {
			return err
		}
	}
	return nil
}

func (l *nsLink) heal(ports ...int) error {
	var errs []error
	for i := range ports {
		errs = append(errs, ipRun("-n", l.name, "rule", "del", "prio", strconv.Itoa(100+i)),
			ipRun("-n", l.name, "rule", "del", "prio", strconv.Itoa(200+i)))
	}
	return errors.Join(errs...)
}

// partitionDrill is the drill's cluster: Postgres and the regtest nodes in
// the hub, two lnmuxd in their namespaces.
type partitionDrill struct {
	*haCluster
	links  []*nsLink
	pgPort int
	runs   map[*nsLink]int
}

// start runs lnmuxd in l's namespace (as its supervisor restarts it) and
// waits until its API answers.
func (p *partitionDrill) start(l *nsLink) *haDaemon {
	t := p.t
	p.runs[l]++
	id := fmt.Sprintf("%s-%d", l.name[len(l.name)-1:], p.runs[l])
	// Loopback inside the namespace: the drill dials into it (nsDialer).
	addr, instr := "127.0.0.1:8080", "127.0.0.1:9090"
	cfg := p.env.config(addr, instr, daemonOpts{autoSettle: true, holdTimeout: time.Minute})
	cfg = strings.Replace(cfg, "dataDir: "+p.env.dataDir, "dataDir: "+filepath.Join(p.env.dataDir, id), 1)
	c := p.env.cluster
	cfg = strings.ReplaceAll(cfg, "lndUrl: "+c.Alice.RPCAddr, "lndUrl: "+net.JoinHostPort(l.hubAddr, strconv.Itoa(aliceHubPort)))
	cfg = strings.ReplaceAll(cfg, "lndUrl: "+c.Bob.RPCAddr, "lndUrl: "+net.JoinHostPort(l.hubAddr, strconv.Itoa(bobHubPort)))
	cfgPath := filepath.Join(p.env.logDir, "lnmux-"+id+".yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(p.env.logDir, "lnmuxd-"+id+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(p.dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = net.JoinHostPort(l.hubAddr, strconv.Itoa(p.pgPort))
	cmd := exec.Command("ip", "netns", "exec", l.name, p.env.bin, "-c", cfgPath, "run")
	cmd.Env = append(os.Environ(), "LNMUX_IDENTITY_KEY="+identityKey,
		"LNMUX_PERSISTENCE_POSTGRES_DSN="+u.String(), "LNMUX_DISTRIBUTED_LOCK_ID="+id)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &haDaemon{daemon: &daemon{t: t, cmd: cmd, addr: addr, instr: instr, done: make(chan error, 1)}, id: id, logPath: logPath}
	go func() { d.done <- cmd.Wait(); logFile.Close() }()
	t.Cleanup(d.kill)
	var hp http.Protocols
	hp.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: &hp, DialContext: nsDialer("/run/netns/" + l.name)}}
	d.client = lnmuxpbconnect.NewServiceClient(hc, "http://"+addr, connect.WithGRPC())
	p.waitFor(d, "API answering", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := d.client.GetInfo(ctx, connect.NewRequest(&lnmuxpb.GetInfoRequest{}))
		return err == nil
	})
	return d
}

// nsDialer dials from inside the network namespace at path: the socket is
// made on a thread switched into it, and stays there.
func nsDialer(path string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer orig.Close()
		target, err := os.Open(path)
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			return nil, fmt.Errorf("setns %s: %w", path, err)
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			// Only a thread back in its own namespace may serve other
			// goroutines; otherwise it ends with this one.
			runtime.UnlockOSThread()
		}
		return conn, err
	}
}

// waitUp waits until d leads (intercepting on both nodes) or, with leader
// false, stands by: waiting for the lock with both nodes connected and
// checked.
func (p *partitionDrill) waitUp(d *haDaemon, leader bool) {
	p.t.Helper()
	what := "standby"
	if leader {
		what = "leadership"
	}
	p.waitFor(d, what, func() bool {
		if !leader && !strings.Contains(readFile(d.logPath), "lnmuxd standby: waiting for the leader lock") {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		info, err := d.client.GetInfo(ctx, connect.NewRequest(&lnmuxpb.GetInfoRequest{}))
		if err != nil || len(info.Msg.Nodes) != 2 {
			return false
		}
		for _, n := range info.Msg.Nodes {
			if !n.Connected || n.InterceptorActive != leader {
				return false
			}
		}
		if leader {
			return true
		}
		waiting, err := lockWaiters(p.t.Context(), p.dsn)
		return err == nil && waiting > 0
	})
}

// drillPayment is one payment of the drill, as Carol saw it.
type drillPayment struct {
	start time.Time
	mpp   bool
	hash  []byte
	p     *regtest.Payment
	err   error
}

// payLoop pays an invoice every interval (at most inFlight at once), half
// of them split into two parts, with Carol's mission
// control reset before each, until stop closes. via gives the instance to
// create the invoice on (any instance serves AddInvoice).
func (p *partitionDrill) payLoop(ctx context.Context, via func() []*haDaemon, stop <-chan struct{}) func() []*drillPayment {
	const (
		interval = 250 * time.Millisecond
		// Far above what is held at once, so that HTLCs keep arriving
		// while lnd holds others (and refusals are seen).
		inFlight = 160
		single   = 30_000
		multi    = 300_000
	)
	var (
		mu   sync.Mutex
		pays []*drillPayment
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, inFlight)
	c := p.env.cluster
	wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			select {
			case sem <- struct{}{}:
			default:
				continue
			}
			wg.Go(func() {
				defer func() { <-sem }()
				dp := &drillPayment{start: time.Now(), mpp: n%2 == 1}
				amt := int64(single)
				if dp.mpp {
					amt = multi
				}
				var inv *lnmuxpb.AddInvoiceResponse
				for _, d := range via() {
					actx, cancel := context.WithTimeout(ctx, 2*time.Second)
					res, err := d.client.AddInvoice(actx, connect.NewRequest(&lnmuxpb.AddInvoiceRequest{
						AmtMsat: amt, ExpirySecs: 600, Description: "partition drill"}))
					cancel()
					if err == nil {
						inv = res.Msg
						break
					}
					dp.err = err
				}
				if inv == nil {
					return
				}
				dp.hash = inv.Hash
				if _, err := c.Carol.Router.ResetMissionControl(ctx, &routerrpc.ResetMissionControlRequest{}); err != nil {
					dp.err = err
				}
				dp.p, dp.err = c.PayInvoice(ctx, inv.PaymentRequest, func(r *routerrpc.SendPaymentRequest) {
					r.TimeoutSeconds = 60
					if dp.mpp {
						r.MaxShardSizeMsat = multi / 2
					}
				})
				mu.Lock()
				pays = append(pays, dp)
				mu.Unlock()
			})
		}
	})
	return func() []*drillPayment {
		wg.Wait()
		return pays
	}
}

// finalEvent is an HTLC lnd resolved for good on a cluster node.
type finalEvent struct {
	node string
	at   time.Time
}

// watchFinal records every final HTLC resolution of Alice and Bob.
func (p *partitionDrill) watchFinal(ctx context.Context) func() []finalEvent {
	var (
		mu  sync.Mutex
		evs []finalEvent
		wg  sync.WaitGroup
	)
	for _, n := range []*regtest.Node{p.env.cluster.Alice, p.env.cluster.Bob} {
		stream, err := n.Router.SubscribeHtlcEvents(ctx, &routerrpc.SubscribeHtlcEventsRequest{})
		if err != nil {
			p.t.Fatal(err)
		}
		wg.Go(func() {
			for {
				ev, err := stream.Recv()
				if err != nil {
					return
				}
				if ev.GetFinalHtlcEvent() != nil {
					mu.Lock()
					evs = append(evs, finalEvent{node: n.Name, at: time.Unix(0, int64(ev.TimestampNs))}) //nolint:gosec // lnd's nanosecond clock
					mu.Unlock()
				}
			}
		})
	}
	return func() []finalEvent {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(evs)
	}
}

var logTimeRE = regexp.MustCompile(`^time=(\S+) `)

// logLineAfter returns the time of the first line of path containing msg
// and stamped after since, if there is one.
func logLineAfter(path, msg string, since time.Time) (time.Time, bool) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, msg) {
			continue
		}
		m := logTimeRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err == nil && at.After(since) {
			return at, true
		}
	}
	return time.Time{}, false
}

// lndLineAfter returns the time of the first line of an lnd log containing
// msg and stamped after since ("2006-01-02 15:04:05.000 [INF] ...", UTC
// here), if there is one.
func lndLineAfter(path, msg string, since time.Time) (time.Time, bool) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, msg) || len(line) < 23 {
			continue
		}
		at, err := time.ParseInLocation("2006-01-02 15:04:05.000", line[:23], time.Local)
		if err == nil && at.After(since) {
			return at, true
		}
	}
	return time.Time{}, false
}

// phase is one partition of the drill and what it measured.
type phase struct {
	kind             string
	cut, healed      time.Time
	takeover         time.Duration // cut to the successor's interceptors on every node; 0: none
	deposed, locked  time.Time     // the old leader's deposition, the successor's lock
	streamsClosedLog time.Time
}

// TestPartitionDrill: see the comment on partitionEnv above, and
// docs/high-availability.md for what it checks and the figures.
func TestPartitionDrill(t *testing.T) {
	if os.Getenv(partitionEnv) != "1" {
		t.Skipf("set %s=1 (as root, under unshare --net) to run the partition drill: task partition-drill", partitionEnv)
	}
	requirePrivateHub(t)
	links := newNamespaces(t)

	pg, err := pgtest.StartWith(pgtest.Options{ListenAddresses: []string{links[0].hubAddr, links[1].hubAddr}})
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	t.Cleanup(func() { _ = pg.Stop() })
	dsn, err := pg.CreateDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	du, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pgPort, _ := strconv.Atoi(du.Port())

	extra := func(port int) []string {
		args := []string{"--tlsextraip=" + links[0].hubAddr, "--tlsextraip=" + links[1].hubAddr}
		for _, l := range links {
			args = append(args, "--rpclisten="+net.JoinHostPort(l.hubAddr, strconv.Itoa(port)))
		}
		if os.Getenv(partitionLndPingEnv) != "default" {
			args = append(args, "--grpc.server-ping-time="+lndPingTime, "--grpc.server-ping-timeout="+lndPingTimeout)
		}
		return args
	}
	cluster := regtest.StartT(t, regtest.Options{Logf: t.Logf, ExtraArgs: map[string][]string{
		"alice": extra(aliceHubPort), "bob": extra(bobHubPort)}})
	logDir, err := os.MkdirTemp("", "lnmux-partition-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lnmuxd logs in %s", logDir)
	bin := os.Getenv(partitionBinEnv)
	if bin == "" {
		bin = buildLnmuxd(t)
	}
	h := &haCluster{t: t, dsn: dsn,
		env: &lnmuxdEnv{root: t, bin: bin, dataDir: t.TempDir(), logDir: logDir, cluster: cluster}}
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
	p := &partitionDrill{haCluster: h, links: links, pgPort: pgPort, runs: map[*nsLink]int{}}

	daemons := map[*nsLink]*haDaemon{}
	leaderLink, standbyLink := links[0], links[1]
	daemons[leaderLink] = p.start(leaderLink)
	p.waitUp(daemons[leaderLink], true)
	daemons[standbyLink] = p.start(standbyLink)
	p.waitUp(daemons[standbyLink], false)

	var mu sync.Mutex
	cutLink := (*nsLink)(nil)
	// Invoices are made on an instance the nemesis has not cut (its API
	// port stays reachable anyway), else on any.
	via := func() []*haDaemon {
		mu.Lock()
		defer mu.Unlock()
		var first, rest []*haDaemon
		for l, d := range daemons {
			if l == cutLink {
				rest = append(rest, d)
			} else {
				first = append(first, d)
			}
		}
		return append(first, rest...)
	}
	finals := p.watchFinal(t.Context())
	stop := make(chan struct{})
	wait := p.payLoop(t.Context(), via, stop)

	kinds := []string{"postgres", "alice", "all"}
	if k := os.Getenv(partitionKindsEnv); k != "" {
		kinds = strings.Split(k, ",")
	}
	var phases []*phase
	for _, kind := range kinds {
		time.Sleep(5 * time.Second) // steady payments first
		leader, standby := daemons[leaderLink], daemons[standbyLink]
		var ports []int
		switch kind {
		case "postgres":
			ports = []int{pgPort}
		case "alice":
			ports = []int{aliceHubPort}
		case "all":
			ports = []int{pgPort, aliceHubPort, bobHubPort}
		default:
			t.Fatalf("unknown partition %q", kind)
		}
		ph := &phase{kind: kind, cut: time.Now()}
		if err := leaderLink.cut(ports...); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		cutLink = leaderLink
		mu.Unlock()
		t.Logf("%s: leader %s cut", kind, leader.id)
		if kind == "alice" {
			// The leader keeps the lock: no takeover, lnd holds then
			// refuses Alice's HTLCs until the cut heals.
			time.Sleep(20 * time.Second)
		} else {
			active, err := activeAfter(standby, ph.cut)
			if err != nil {
				t.Fatalf("%s: no takeover: %v\n%s", kind, err, tailFile(standby.logPath, 40))
			}
			ph.takeover = active.Sub(ph.cut)
			t.Logf("%s: %s intercepts on every node %.1f s after the cut", kind, standby.id, ph.takeover.Seconds())
			time.Sleep(10 * time.Second)
		}
		if err := leaderLink.heal(ports...); err != nil {
			t.Fatal(err)
		}
		ph.healed = time.Now()
		mu.Lock()
		cutLink = nil
		mu.Unlock()
		ph.deposed, _ = logLineAfter(leader.logPath, "leadership ended: no answer leaves this process any more", ph.cut)
		if kind != "alice" {
			ph.locked, _ = logLineAfter(standby.logPath, "leader lock held", ph.cut)
			ph.streamsClosedLog, _ = logLineAfter(leader.logPath, "interception stopped after losing the leader lock", ph.cut)
			if _, gone := leader.exited(waitLong); !gone {
				t.Fatalf("%s: the deposed leader %s did not exit:\n%s", kind, leader.id, tailFile(leader.logPath, 40))
			}
			// Its supervisor restarts it: a standby now.
			mu.Lock()
			daemons[leaderLink] = p.start(leaderLink)
			mu.Unlock()
			p.waitUp(daemons[leaderLink], false)
			leaderLink, standbyLink = standbyLink, leaderLink
		} else {
			p.waitUp(leader, true)
		}
		phases = append(phases, ph)
	}
	time.Sleep(5 * time.Second)
	close(stop)
	pays := wait()
	leader := daemons[leaderLink]

	// Figures per partition: payments started from 2 s before the cut to
	// 2 s before the next cut (or the end).
	for i, ph := range phases {
		var n, ok, refused, held, failed int
		var maxHeld time.Duration
		end := time.Now()
		if i+1 < len(phases) {
			end = phases[i+1].cut.Add(-2 * time.Second)
		}
		for _, dp := range pays {
			if dp.p == nil || dp.start.Before(ph.cut.Add(-2*time.Second)) || dp.start.After(end) {
				continue
			}
			n++
			switch dp.p.Status {
			case lnrpc.Payment_SUCCEEDED:
				ok++
			default:
				failed++
			}
			refused += refusedHTLCs(dp.p)
			for _, a := range dp.p.Raw.GetHtlcs() {
				d := time.Duration(a.ResolveTimeNs - a.AttemptTimeNs)
				if d > time.Second {
					held++
					maxHeld = max(maxHeld, d)
				}
			}
		}
		drops := ""
		for _, node := range []*regtest.Node{p.env.cluster.Alice, p.env.cluster.Bob} {
			if at, ok := lndLineAfter(node.LogPath, "Interceptor disconnected", ph.cut); ok {
				drops += fmt.Sprintf(" %s %.2f s;", node.Name, at.Sub(ph.cut).Seconds())
			}
		}
		took := "none (the leader kept the lock)"
		if ph.takeover > 0 {
			took = fmt.Sprintf("%.2f s", ph.takeover.Seconds())
		}
		t.Logf("FIGURES %s: takeover %s; deposed %s after the cut; successor's lock %s after the cut; "+
			"old leader's streams closed %s after the cut; lnd unregistered it:%s %d payments (%d succeeded, %d failed); "+
			"%d HTLCs refused (temporary_channel_failure); %d HTLCs held over 1 s (longest %.1f s)",
			ph.kind, took, since(ph.deposed, ph.cut), since(ph.locked, ph.cut), since(ph.streamsClosedLog, ph.cut),
			drops, n, ok, failed, refused, held, maxHeld.Seconds())
	}

	// The checks.
	p.checkOutcome(t, leader, pays)
	evs := finals()
	for _, ph := range phases {
		if ph.kind == "alice" || ph.deposed.IsZero() || ph.locked.IsZero() {
			continue
		}
		// While the deposed leader's stream is still registered at a node
		// (until lnd unregisters it or the successor holds the lock), lnd
		// holds every new HTLC: a final resolution then (after the
		// commitment dance of an answer sent just before the deposition)
		// was the deposed leader's answer. Once no interceptor is
		// registered lnd fails new HTLCs itself, which is no answer.
		from := ph.deposed.Add(500 * time.Millisecond)
		for _, ev := range evs {
			until := ph.locked
			node := p.env.cluster.Alice
			if ev.node == p.env.cluster.Bob.Name {
				node = p.env.cluster.Bob
			}
			if at, ok := lndLineAfter(node.LogPath, "Interceptor disconnected", ph.cut); ok && at.Before(until) {
				until = at
			}
			if ev.at.After(from) && ev.at.Before(until) {
				t.Errorf("%s: %s resolved an HTLC at %s, after the old leader was deposed (%s) while its stream was still registered (until %s)",
					ph.kind, ev.node, ev.at.Format(time.RFC3339Nano), ph.deposed.Format(time.RFC3339Nano), until.Format(time.RFC3339Nano))
			}
		}
	}
}

func since(at, from time.Time) string {
	if at.IsZero() {
		return "n/a"
	}
	return fmt.Sprintf("%.2f s", at.Sub(from).Seconds())
}

// checkOutcome: every payment Carol saw succeed is SETTLED with its
// preimage; nothing stays SETTLE_REQUESTED; every settled invoice was paid
// in full at Carol; every HTLC of a stored set was settled in lnd (none
// failed, no partial settlement).
func (p *partitionDrill) checkOutcome(t *testing.T, leader *haDaemon, pays []*drillPayment) {
	t.Helper()
	ctx := t.Context()
	// Final states first: the leader finishes what was settle-requested.
	conn, err := pgx.Connect(ctx, p.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	type stored struct {
		preimage []byte
		status   string
	}
	invoices := map[string]stored{}
	deadline := time.Now().Add(waitLong)
	for {
		clear(invoices)
		rows, err := conn.Query(ctx, "SELECT hash, preimage, status FROM invoices")
		if err != nil {
			t.Fatal(err)
		}
		pending := 0
		for rows.Next() {
			var hash, pre []byte
			var st string
			if err := rows.Scan(&hash, &pre, &st); err != nil {
				t.Fatal(err)
			}
			st = strings.ToUpper(st)
			invoices[string(hash)] = stored{preimage: pre, status: st}
			if st != "SETTLED" && st != "FAILED" {
				pending++
			}
		}
		rows.Close()
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d invoices still not final (SETTLE_REQUESTED) %s after the drill", pending, waitLong)
			break
		}
		time.Sleep(time.Second)
	}
	byHash := map[string]*drillPayment{}
	succeeded := 0
	for _, dp := range pays {
		if dp.hash == nil || dp.p == nil {
			continue
		}
		byHash[string(dp.hash)] = dp
		if dp.p.Status != lnrpc.Payment_SUCCEEDED {
			continue
		}
		succeeded++
		inv, ok := invoices[string(dp.hash)]
		switch {
		case !ok:
			t.Errorf("payment %x succeeded at Carol but lnmux stored no settlement", dp.hash)
		case inv.status != "SETTLED":
			t.Errorf("payment %x succeeded at Carol; lnmux says %s", dp.hash, inv.status)
		case string(inv.preimage) != string(dp.p.Preimage[:]):
			t.Errorf("payment %x: Carol's preimage differs from the stored one", dp.hash)
		}
	}
	for hash, inv := range invoices {
		dp := byHash[hash]
		if inv.status == "SETTLED" && (dp == nil || dp.p.Status != lnrpc.Payment_SUCCEEDED) {
			st := "unknown"
			if dp != nil {
				st = dp.p.Status.String()
			}
			t.Errorf("invoice %x SETTLED in lnmux, payment at Carol %s: a partial or lost settlement", hash, st)
		}
	}
	// Every stored HTLC was settled in lnd.
	nodes := map[string]*regtest.Node{p.env.cluster.Alice.PubKey: p.env.cluster.Alice, p.env.cluster.Bob.PubKey: p.env.cluster.Bob}
	rows, err := conn.Query(ctx, "SELECT node_pubkey, chan_id, htlc_id, invoice_hash FROM htlcs")
	if err != nil {
		t.Fatal(err)
	}
	type htlcKey struct {
		node           string
		chanID, htlcID int64
		hash           []byte
	}
	var htlcs []htlcKey
	for rows.Next() {
		var k htlcKey
		var node []byte
		if err := rows.Scan(&node, &k.chanID, &k.htlcID, &k.hash); err != nil {
			t.Fatal(err)
		}
		k.node = fmt.Sprintf("%x", node)
		htlcs = append(htlcs, k)
	}
	rows.Close()
	for _, k := range htlcs {
		n := nodes[k.node]
		if n == nil {
			t.Errorf("stored HTLC on unknown node %s", k.node)
			continue
		}
		res, err := n.Client.LookupHtlcResolution(ctx, &lnrpc.LookupHtlcResolutionRequest{
			ChanId: uint64(k.chanID), HtlcIndex: uint64(k.htlcID)}) //nolint:gosec // the stored bit pattern of lnd's uint64 ids
		switch {
		case err != nil:
			t.Errorf("HTLC %d:%d on %s of invoice %x (settle requested): no final resolution in lnd: %v", k.chanID, k.htlcID, n.Name, k.hash, err)
		case !res.Settled:
			t.Errorf("HTLC %d:%d on %s of invoice %x (settle requested) FAILED in lnd", k.chanID, k.htlcID, n.Name, k.hash)
		}
	}
	t.Logf("checked: %d payments, %d succeeded at Carol, %d invoices stored, %d stored HTLCs settled in lnd; final leader %s",
		len(pays), succeeded, len(invoices), len(htlcs), leader.id)
}
