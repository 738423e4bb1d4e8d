package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/lnmux/lnmux/deployments/regtest"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// waitLong bounds each wait for lnmuxd or lnd in these tests: far above
// what an idle machine needs, so that only a hang fails a test on a busy
// one.
const waitLong = 3 * time.Minute

// identityKey is the virtual node's key in these tests; never a real one.
var identityKey = strings.Repeat("1f", 32)

// daemonOpts vary between lnmuxd runs of one test.
type daemonOpts struct {
	autoSettle bool
	failpoint  string
	// acceptTimeout and holdTimeout replace the 60 s accept timeout and
	// the 3 s hold timeout (invoice.acceptTimeout, invoice.holdTimeout).
	acceptTimeout time.Duration
	holdTimeout   time.Duration
	// hintGrace replaces the 5 min invoice.routeHintGrace.
	hintGrace time.Duration
}

// daemon is one lnmuxd process.
type daemon struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	// instr serves /metrics and pprof (instrumentationAddress).
	instr  string
	client lnmuxpbconnect.ServiceClient
	done   chan error
	// logPath collects the process's output.
	logPath string
}

// lnmuxdEnv builds lnmuxd once per test binary and keeps its data directory
// (the SQLite database) across restarts.
type lnmuxdEnv struct {
	// root owns the daemons and streams: a daemon started in one scenario
	// serves the next ones.
	root    *testing.T
	bin     string
	dataDir string
	logDir  string
	cluster *regtest.Cluster
	runs    int
	// otlp receives lnmuxd's traces.
	otlp *collector
}

func buildLnmuxd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lnmuxd")
	// lnmuxtest compiles in the crash failpoint (LNMUX_TEST_FAILPOINT).
	cmd := exec.Command("go", "build", "-tags", "lnmuxtest", "-o", bin, "github.com/lnmux/lnmux/app/lnmuxd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build lnmuxd: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (e *lnmuxdEnv) config(addr, instr string, o daemonOpts) string {
	var b strings.Builder
	// A free port: several test runs share this machine.
	fmt.Fprintf(&b, "instrumentationAddress: %s\n", instr)
	fmt.Fprintf(&b, "lnd:\n  network: regtest\n  nodes:\n")
	for _, n := range []*regtest.Node{e.cluster.Alice, e.cluster.Bob} {
		fmt.Fprintf(&b, "    - pubKey: %s\n      macaroonPath: %s\n      tlsCertPath: %s\n      lndUrl: %s\n",
			n.PubKey, n.MacaroonPath, n.TLSCertPath, n.RPCAddr)
	}
	fmt.Fprintf(&b, "dataDir: %s\nlistenAddress: %s\nautoSettle: %v\n", e.dataDir, addr, o.autoSettle)
	fmt.Fprintf(&b, "routingPolicy:\n  cltvDelta: 40\n  feeBaseMsat: 100\n  feeRatePpm: 1000\n")
	// Short hold timeout so the mpp_timeout case does not wait two minutes.
	hold, accept := 3*time.Second, 60*time.Second
	if o.holdTimeout > 0 {
		hold = o.holdTimeout
	}
	if o.acceptTimeout > 0 {
		accept = o.acceptTimeout
	}
	fmt.Fprintf(&b, "invoice:\n  holdTimeout: %s\n  acceptTimeout: %s\n", hold, accept)
	if o.hintGrace > 0 {
		fmt.Fprintf(&b, "  routeHintGrace: %s\n", o.hintGrace)
	}
	fmt.Fprintf(&b, "logging:\n  level: debug\n")
	if e.otlp != nil {
		fmt.Fprintf(&b, "telemetry:\n  otlpEndpoint: %s\n", e.otlp.addr)
	}
	return b.String()
}

// start runs lnmuxd (migrating the database on its first run) and waits
// until both nodes are connected and intercepting.
func (e *lnmuxdEnv) start(t *testing.T, o daemonOpts) *daemon {
	t.Helper()
	e.runs++
	addr, instr := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(e.logDir, fmt.Sprintf("lnmux-%d.yml", e.runs))
	if err := os.WriteFile(cfgPath, []byte(e.config(addr, instr, o)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "LNMUX_IDENTITY_KEY="+identityKey)
	if e.runs == 1 {
		for _, c := range []string{"init", "up"} {
			cmd := exec.Command(e.bin, "-c", cfgPath, "migrate", c)
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("migrate %s: %v\n%s", c, err, out)
			}
		}
	}
	logPath := filepath.Join(e.logDir, fmt.Sprintf("lnmuxd-%d.log", e.runs))
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(e.bin, "-c", cfgPath, "run")
	cmd.Env = env
	if o.failpoint != "" {
		cmd.Env = append(cmd.Env, "LNMUX_TEST_FAILPOINT="+o.failpoint)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: e.root, cmd: cmd, addr: addr, instr: instr, done: make(chan error, 1), logPath: logPath}
	go func() { d.done <- cmd.Wait(); logFile.Close() }()
	e.root.Cleanup(func() {
		d.kill()
		if e.root.Failed() {
			e.root.Logf("lnmuxd log: %s", logPath)
		}
	})

	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: &p}}
	d.client = lnmuxpbconnect.NewServiceClient(hc, "http://"+addr, connect.WithGRPC())
	d.waitReady(t, logPath)
	return d
}

func (d *daemon) waitReady(t *testing.T, logPath string) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for time.Now().Before(deadline) {
		select {
		case err := <-d.done:
			d.done <- err
			log, _ := os.ReadFile(logPath)
			t.Fatalf("lnmuxd exited: %v\n%s", err, log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := d.client.GetInfo(ctx, connect.NewRequest(&lnmuxpb.GetInfoRequest{}))
		cancel()
		if err == nil && len(info.Msg.Nodes) == 2 && allIntercepting(info.Msg.Nodes) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("lnmuxd not ready within %s (log: %s)", waitLong, logPath)
}

func allIntercepting(nodes []*lnmuxpb.NodeInfo) bool {
	for _, n := range nodes {
		if !n.Connected || !n.InterceptorActive {
			return false
		}
	}
	return true
}

// kill ends the process with SIGKILL, as a crash would.
func (d *daemon) kill() {
	if d.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	d.wait()
}

// stop asks for a graceful shutdown.
func (d *daemon) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGINT)
	d.wait()
}

func (d *daemon) wait() {
	select {
	case err := <-d.done:
		d.done <- err
	case <-time.After(30 * time.Second):
		d.t.Errorf("lnmuxd did not exit")
	}
}

// running reports whether the process is still there.
func (d *daemon) running() bool {
	select {
	case err := <-d.done:
		d.done <- err
		return false
	default:
		return true
	}
}

// exited reports whether the process is gone and how.
func (d *daemon) exited(timeout time.Duration) (error, bool) {
	select {
	case err := <-d.done:
		d.done <- err
		return err, true
	case <-time.After(timeout):
		return nil, false
	}
}

func (d *daemon) info(t *testing.T) *lnmuxpb.GetInfoResponse {
	t.Helper()
	res, err := d.client.GetInfo(t.Context(), connect.NewRequest(&lnmuxpb.GetInfoRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg
}

func (d *daemon) addInvoice(t *testing.T, amtMsat, expirySecs int64) *lnmuxpb.AddInvoiceResponse {
	t.Helper()
	res, err := d.client.AddInvoice(t.Context(), connect.NewRequest(&lnmuxpb.AddInvoiceRequest{
		AmtMsat: amtMsat, ExpirySecs: expirySecs, Description: "e2e",
	}))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg
}

// accepted streams SubscribeInvoiceAccepted until the test ends.
func (d *daemon) accepted(t *testing.T) <-chan *lnmuxpb.SubscribeInvoiceAcceptedResponse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d.t.Cleanup(cancel)
	ch := make(chan *lnmuxpb.SubscribeInvoiceAcceptedResponse, 64)
	// The call itself returns only with the first event's headers.
	go func() {
		defer close(ch)
		stream, err := d.client.SubscribeInvoiceAccepted(ctx, connect.NewRequest(&lnmuxpb.SubscribeInvoiceAcceptedRequest{}))
		if err != nil {
			return
		}
		for stream.Receive() {
			ch <- stream.Msg()
		}
	}()
	// No wait for the subscription to be registered: lnmuxd sends a new
	// subscriber every set still waiting for a decision first, and holds
	// new sets for a grace period after start while no one listens.
	return ch
}

// nextAcceptedFor waits for the accepted event of hash.
func nextAcceptedFor(t *testing.T, ch <-chan *lnmuxpb.SubscribeInvoiceAcceptedResponse, hash []byte) *lnmuxpb.SubscribeInvoiceAcceptedResponse {
	t.Helper()
	timeout := time.After(waitLong)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("accepted stream ended")
			}
			if string(ev.Hash) == string(hash) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no accepted event for %x", hash)
		}
	}
}

func (d *daemon) settle(t *testing.T, hash, setID []byte) error {
	t.Helper()
	_, err := d.client.SettleInvoice(t.Context(), connect.NewRequest(&lnmuxpb.SettleInvoiceRequest{Hash: hash, SetId: setID}))
	return err
}

func (d *daemon) waitFinal(t *testing.T, hash []byte) lnmuxpb.InvoiceStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	res, err := d.client.WaitForInvoiceFinalStatus(ctx, connect.NewRequest(&lnmuxpb.WaitForInvoiceFinalStatusRequest{Hash: hash}))
	if err != nil {
		t.Fatalf("wait final status: %v", err)
	}
	return res.Msg.InvoiceStatus
}
