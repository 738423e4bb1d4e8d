package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// The chaos drill's schedule. Nothing in it is random: which payment is
// multi-part, single-node or cancelled, and after which accepted event
// lnmuxd is killed, Postgres or an lnd node restarted, follows from these
// numbers alone. What varies between runs is only how the machine's timing
// interleaves payments and faults, which is what the drill is for.
const (
	// chaosPaymentsEnv overrides chaosPayments (e.g. 200 for a long run).
	chaosPaymentsEnv = "LNMUX_CHAOS_PAYMENTS"
	chaosPayments    = 30
	// chaosKeepLogsEnv, when set, keeps lnmuxd's logs of a passing run too.
	chaosKeepLogsEnv = "LNMUX_CHAOS_KEEP_LOGS"
	// chaosPayers is how many payments are in flight at once.
	chaosPayers = 3
	// chaosKillEvery: lnmuxd is SIGKILLed at every accepted event n with
	// n % chaosKillEvery == 1, in the way given by killModes[(n/chaosKillEvery) % 3].
	chaosKillEvery = 3
	// Postgres is restarted at accepted event chaosPostgresAtEvent or when
	// payment chaosPostgresAtPayment starts, whichever comes first; Bob is
	// restarted likewise.
	chaosPostgresAtEvent   = 5
	chaosPostgresAtPayment = 15
	chaosLndAtEvent        = 14
	chaosLndAtPayment      = 20
)

// killMode says how a kill relates to the settlement of the set whose
// accepted event triggered it.
type killMode int

const (
	// killBeforeSettle: the set is only accepted; lnd re-offers its HTLCs to
	// the next lnmuxd and the application sees it again.
	killBeforeSettle killMode = iota
	// killDuringSettle: SettleInvoice is in flight; the commit may or may
	// not have happened.
	killDuringSettle
	// killAfterSettle: SettleInvoice answered; the preimages may or may not
	// have reached lnd.
	killAfterSettle
)

func (k killMode) String() string {
	return [...]string{"before-settle", "during-settle", "after-settle"}[k]
}

// paymentSpec is what payment i of the drill is.
type paymentSpec struct {
	index   int
	amtSat  int64
	mpp     bool   // split with max_shard_size_msat
	via     string // "alice" or "bob": first hop restricted to that node; "" any
	cancel  bool   // the application cancels instead of settling
	hashHex string
}

func chaosSpec(i int) paymentSpec {
	s := paymentSpec{index: i, amtSat: 20_000 + int64(i%7)*5_000}
	s.mpp = i%2 == 0
	switch i % 6 {
	case 1:
		s.via = "alice"
	case 3:
		s.via = "bob"
	}
	s.cancel = i%10 == 7
	return s
}

// TestChaos is the fund-safety drill of docs/lnd-behaviour.md's real
// cluster with Postgres: dozens of payments, half of them multi-part, while
// lnmuxd is SIGKILLed and restarted on a fixed schedule, Postgres is
// restarted once and Bob once. It never asserts that a payment succeeds
// (lnmuxd may be down when it arrives); it asserts what must hold whatever
// the timing: every payment the payer saw succeed is SETTLED in lnmux with
// its preimage, every SETTLED invoice was paid in full, nothing stays
// SETTLE_REQUESTED or IN_FLIGHT, a cancelled invoice is never settled and a
// successful SettleInvoice always ends SETTLED.
//
// Run it alone with: go test ./app/e2e -run TestChaos -v
func TestChaos(t *testing.T) {
	n := chaosPayments
	if v := os.Getenv(chaosPaymentsEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", chaosPaymentsEnv, v)
		}
	}
	// Bounds the whole drill: a hang becomes a failure with the counts so far.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute+time.Duration(n)*6*time.Second)
	defer cancel()
	began := time.Now()

	pg, err := pgtest.Start()
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	if pg.External {
		t.Fatalf("the chaos drill restarts Postgres: unset %s so that it starts its own", pgtest.EnvDSN)
	}
	t.Cleanup(func() {
		if err := pg.Stop(); err != nil {
			t.Errorf("stop postgres: %v", err)
		}
	})
	dsn, err := pg.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cluster := regtest.StartT(t, regtest.Options{Logf: t.Logf})
	aliceChan := chanID(t, cluster, cluster.Alice)
	bobChan := chanID(t, cluster, cluster.Bob)

	// lnmuxd's logs are kept when the drill fails: they are the report.
	logDir, err := os.MkdirTemp("", "lnmux-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv(chaosKeepLogsEnv) != "" {
			t.Logf("lnmuxd logs kept in %s", logDir)
			return
		}
		_ = os.RemoveAll(logDir)
	})
	env := &lnmuxdEnv{root: t, bin: buildLnmuxd(t), dataDir: t.TempDir(), logDir: logDir, cluster: cluster}
	sup := newSupervisor(t, env, dsn)
	sup.migrate(t)
	go sup.run(ctx)
	t.Cleanup(sup.shutdown)
	{
		rctx, rcancel := context.WithTimeout(ctx, waitLong)
		_, err := sup.client(rctx)
		rcancel()
		if err != nil {
			t.Fatalf("chaos: the first lnmuxd never answered GetInfo: %v; log %s:\n%s", err, sup.lastLog(), tailFile(sup.lastLog(), 40))
		}
	}
	t.Logf("chaos: cluster, postgres and lnmuxd binary ready after %s; %d payments, %d payers, kill at accepted event n%%%d==1",
		time.Since(began).Round(time.Second), n, chaosPayers, chaosKillEvery)

	d := &drill{
		t: t, ctx: ctx, sup: sup, cluster: cluster, pg: pg, n: n, dsn: dsn,
		chans:    map[string]uint64{"alice": aliceChan, "bob": bobChan},
		invoices: map[string]*chaosInvoice{},
	}
	settlerCtx, stopSettler := context.WithCancel(ctx)
	settlerDone := make(chan struct{})
	go func() { defer close(settlerDone); d.settler(settlerCtx) }()

	jobs := make(chan int)
	var wg sync.WaitGroup
	for range chaosPayers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				d.pay(chaosSpec(i))
			}
		}()
	}
	for i := range n {
		select {
		case jobs <- i:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	d.lndRestart.Wait()
	t.Logf("chaos: payments done after %s", time.Since(began).Round(time.Second))

	// From here on nothing is killed: lnmuxd must bring every payment to a
	// final state by itself. The settler keeps deciding sets lnd re-offers.
	sup.calm()
	d.waitStable()
	d.waitNoInflight()
	stopSettler()
	<-settlerDone
	d.check()
	t.Logf("chaos: drill took %s", time.Since(began).Round(time.Second))
}

// chaosInvoice is what the drill knows of one invoice.
type chaosInvoice struct {
	spec     paymentSpec
	hash     []byte
	preimage []byte
	amtMsat  int64
	// payerStatus is the final status SendPaymentV2 reported ("" if the
	// call itself failed); the check reads Carol's payment list anyway.
	payerStatus string
	payerErr    error
	settleOK    bool // a SettleInvoice call returned success
	settleCalls int
	cancelCalls int
}

type drill struct {
	t       *testing.T
	ctx     context.Context
	sup     *supervisor
	cluster *regtest.Cluster
	pg      *pgtest.Cluster
	chans   map[string]uint64
	n       int // payments
	dsn     string

	mu       sync.Mutex
	invoices map[string]*chaosInvoice // by hex hash
	events   int
	kills    map[killMode]int
	pgOnce   sync.Once
	lndOnce  sync.Once
	// lndRestart is done when Bob's restart finished.
	lndRestart sync.WaitGroup
	pgErr      error
	// leaderViolation is set when lnmuxd served without the lock after
	// the postgres restart.
	leaderViolation string
	lndErr          error
	pgAt            string
	lndAt           string
}

func (d *drill) invoice(hash []byte) *chaosInvoice {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.invoices[hex.EncodeToString(hash)]
}

// pay creates invoice i in lnmux and has Carol pay it once.
func (d *drill) pay(spec paymentSpec) {
	if spec.index == min(chaosPostgresAtPayment, d.n/2) {
		d.restartPostgres(fmt.Sprintf("payment %d", spec.index))
	}
	if spec.index == min(chaosLndAtPayment, 2*d.n/3) {
		d.restartLnd(fmt.Sprintf("payment %d", spec.index))
	}
	var inv *lnmuxpb.AddInvoiceResponse
	err := d.sup.retry(d.ctx, "AddInvoice", func(ctx context.Context, c lnmuxpbconnect.ServiceClient) error {
		res, err := c.AddInvoice(ctx, connect.NewRequest(&lnmuxpb.AddInvoiceRequest{
			AmtMsat: spec.amtSat * 1000, ExpirySecs: 3600, Description: fmt.Sprintf("chaos %d", spec.index),
		}))
		if err == nil {
			inv = res.Msg
		}
		return err
	})
	if err != nil {
		d.t.Errorf("payment %d: no invoice: %v", spec.index, err)
		return
	}
	spec.hashHex = hex.EncodeToString(inv.Hash)
	ci := &chaosInvoice{spec: spec, hash: inv.Hash, preimage: inv.Preimage, amtMsat: spec.amtSat * 1000}
	d.mu.Lock()
	d.invoices[spec.hashHex] = ci
	d.mu.Unlock()

	// Each payment stands for a different payer: none has learnt from the
	// refusals an earlier one met while lnmuxd was down.
	if _, err := d.cluster.Carol.Router.ResetMissionControl(d.ctx, &routerrpc.ResetMissionControlRequest{}); err != nil {
		d.t.Errorf("payment %d: reset mission control: %v", spec.index, err)
	}
	pctx, cancel := context.WithTimeout(d.ctx, 4*time.Minute)
	defer cancel()
	p, err := d.cluster.PayInvoice(pctx, inv.PaymentRequest, func(r *routerrpc.SendPaymentRequest) {
		r.TimeoutSeconds = 30
		if spec.mpp {
			r.MaxShardSizeMsat = uint64(spec.amtSat*1000) / 3
		}
		if spec.via != "" {
			r.OutgoingChanIds = []uint64{d.chans[spec.via]}
		}
	})
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		// The final status is read from Carol's payment list at the end.
		ci.payerErr = err
		return
	}
	ci.payerStatus = p.Status.String()
}

// settler is the application: it follows SubscribeInvoiceAccepted on
// whichever lnmuxd is up, reconnecting after every restart, and settles
// (or, for the cancel payments, cancels) every accepted set. The kill
// schedule hangs on its events.
func (d *drill) settler(ctx context.Context) {
	for ctx.Err() == nil {
		c, err := d.sup.client(ctx)
		if err != nil {
			return
		}
		sctx, cancel := context.WithCancel(ctx)
		stream, err := c.SubscribeInvoiceAccepted(sctx, connect.NewRequest(&lnmuxpb.SubscribeInvoiceAcceptedRequest{}))
		if err == nil {
			for stream.Receive() {
				d.accepted(ctx, c, stream.Msg())
			}
			_ = stream.Close()
		}
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *drill) accepted(ctx context.Context, c lnmuxpbconnect.ServiceClient, ev *lnmuxpb.SubscribeInvoiceAcceptedResponse) {
	d.mu.Lock()
	d.events++
	n := d.events
	d.mu.Unlock()
	ci := d.invoice(ev.Hash)
	if ci == nil {
		// AddInvoice answered but the drill has not recorded it yet, or
		// a set of an invoice the drill never made: neither may be
		// settled blindly. It comes again after the next restart.
		d.t.Logf("chaos: event %d for unknown hash %x", n, ev.Hash)
		return
	}

	decide := func() error {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		d.mu.Lock()
		if ci.spec.cancel {
			ci.cancelCalls++
		} else {
			ci.settleCalls++
		}
		d.mu.Unlock()
		if ci.spec.cancel {
			_, err := c.CancelInvoice(cctx, connect.NewRequest(&lnmuxpb.CancelInvoiceRequest{Hash: ev.Hash, SetId: ev.SetId}))
			return err
		}
		_, err := c.SettleInvoice(cctx, connect.NewRequest(&lnmuxpb.SettleInvoiceRequest{Hash: ev.Hash, SetId: ev.SetId}))
		if err == nil {
			d.mu.Lock()
			ci.settleOK = true
			d.mu.Unlock()
		}
		return err
	}
	logErr := func(err error) {
		if err != nil {
			d.t.Logf("chaos: event %d payment %d: decide: %v", n, ci.spec.index, err)
		}
	}

	switch {
	case n == chaosPostgresAtEvent && d.sup.chaotic():
		done := make(chan error, 1)
		go func() { done <- decide() }()
		d.restartPostgres(fmt.Sprintf("accepted event %d (payment %d, decision in flight)", n, ci.spec.index))
		logErr(<-done)
		return
	case n == chaosLndAtEvent && d.sup.chaotic():
		d.restartLnd(fmt.Sprintf("accepted event %d (payment %d)", n, ci.spec.index))
	}
	if n%chaosKillEvery != 1 || !d.sup.chaotic() {
		logErr(decide())
		return
	}
	mode := killMode((n / chaosKillEvery) % 3)
	d.mu.Lock()
	if d.kills == nil {
		d.kills = map[killMode]int{}
	}
	d.kills[mode]++
	d.mu.Unlock()
	d.t.Logf("chaos: event %d payment %d: kill lnmuxd %s", n, ci.spec.index, mode)
	switch mode {
	case killBeforeSettle:
		d.sup.kill()
	case killDuringSettle:
		done := make(chan error, 1)
		go func() { done <- decide() }()
		d.sup.kill()
		logErr(<-done)
	case killAfterSettle:
		logErr(decide())
		d.sup.kill()
	}
}

// restartPostgres restarts the server once, whichever trigger comes first.
func (d *drill) restartPostgres(at string) {
	d.pgOnce.Do(func() {
		d.t.Logf("chaos: restarting postgres at %s", at)
		err := d.pg.Restart()
		d.mu.Lock()
		d.pgErr, d.pgAt = err, at
		d.mu.Unlock()
		if err != nil {
			d.t.Errorf("restart postgres: %v", err)
			return
		}
		d.checkLeaderAfterRestart()
	})
}

// checkLeaderAfterRestart: the restart ended the session holding the
// leader lock. An lnmuxd that goes on serving must hold the lock again;
// otherwise it must stop (issue: a leader that lost the lock keeps writing
// while a standby could take over). It waits for one or the other; no
// kill happens meanwhile, as kills hang on the settler, which waits here
// when it triggered the restart.
func (d *drill) checkLeaderAfterRestart() {
	d.sup.mu.Lock()
	before := d.sup.cur
	d.sup.mu.Unlock()
	ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
	defer cancel()
	var held int
	var err error
	for {
		d.sup.mu.Lock()
		same := d.sup.cur == before && before != nil
		d.sup.mu.Unlock()
		if !same {
			d.t.Logf("chaos: lnmuxd stopped after the postgres restart")
			return
		}
		if held, err = advisoryLocks(ctx, d.dsn); err == nil && held > 0 {
			d.t.Logf("chaos: lnmuxd holds the leader lock again after the postgres restart")
			return
		}
		select {
		case <-ctx.Done():
			d.mu.Lock()
			d.leaderViolation = fmt.Sprintf("30 s after the postgres restart the same lnmuxd (log %s) still serves while "+
				"no session holds an advisory lock (count %d, err %v): a leader without the lock (I5)", d.sup.lastLog(), held, err)
			d.mu.Unlock()
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// advisoryLocks counts the granted advisory locks in the drill's database.
func advisoryLocks(ctx context.Context, dsn string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
	return n, err
}

// restartLnd restarts Bob once, in the background: payments go on meanwhile.
func (d *drill) restartLnd(at string) {
	d.lndOnce.Do(func() {
		d.t.Logf("chaos: restarting bob at %s", at)
		d.lndRestart.Add(1)
		go func() {
			defer d.lndRestart.Done()
			err := d.cluster.Stop(d.cluster.Bob)
			if err == nil {
				err = d.cluster.Start(d.ctx, d.cluster.Bob)
			}
			d.mu.Lock()
			d.lndErr, d.lndAt = err, at
			d.mu.Unlock()
			if err != nil {
				d.t.Errorf("restart bob: %v", err)
			}
			d.t.Logf("chaos: bob back")
		}()
	})
}

// waitStable waits until lnmuxd is up with both nodes intercepting.
func (d *drill) waitStable() {
	ctx, cancel := context.WithTimeout(d.ctx, 2*time.Minute)
	defer cancel()
	err := d.sup.retry(ctx, "GetInfo with both nodes intercepting", func(ctx context.Context, c lnmuxpbconnect.ServiceClient) error {
		info, err := c.GetInfo(ctx, connect.NewRequest(&lnmuxpb.GetInfoRequest{}))
		if err != nil {
			return err
		}
		if len(info.Msg.Nodes) != 2 || !allIntercepting(info.Msg.Nodes) {
			return fmt.Errorf("nodes %v", info.Msg.Nodes)
		}
		return nil
	})
	if err != nil {
		d.t.Fatalf("chaos: lnmuxd not stable after the drill: %v; log %s:\n%s", err, d.sup.lastLog(), tailFile(d.sup.lastLog(), 40))
	}
}

// waitNoInflight waits until Carol has no payment in flight. A held set
// ends by lnmux's accept or hold timeout at the latest.
func (d *drill) waitNoInflight() {
	ctx, cancel := context.WithTimeout(d.ctx, 3*time.Minute)
	defer cancel()
	var inflight []string
	for {
		res, err := d.cluster.Carol.Client.ListPayments(ctx, &lnrpc.ListPaymentsRequest{IncludeIncomplete: true, MaxPayments: 10_000})
		if err == nil {
			inflight = inflight[:0]
			for _, p := range res.Payments {
				if p.Status == lnrpc.Payment_IN_FLIGHT || p.Status == lnrpc.Payment_INITIATED {
					inflight = append(inflight, p.PaymentHash)
				}
			}
			if len(inflight) == 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
			// check reports each of them.
			d.t.Logf("chaos: still in flight at the payer after 3 min: %v", inflight)
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// check reads the final state on both sides and reports every violation.
func (d *drill) check() {
	t := d.t
	ctx, cancel := context.WithTimeout(d.ctx, 3*time.Minute)
	defer cancel()
	var violations []string
	fail := func(format string, args ...any) { violations = append(violations, fmt.Sprintf(format, args...)) }

	payments := map[string]*lnrpc.Payment{}
	res, err := d.cluster.Carol.Client.ListPayments(ctx, &lnrpc.ListPaymentsRequest{IncludeIncomplete: true, MaxPayments: 10_000})
	if err != nil {
		t.Fatalf("carol list payments: %v", err)
	}
	for _, p := range res.Payments {
		payments[p.PaymentHash] = p
	}

	stored := d.listInvoices(ctx)
	// Nothing may stay SETTLE_REQUESTED once lnmuxd is up and both nodes
	// are connected: wait for each such invoice to become final.
	for _, inv := range stored {
		if inv.Status != lnmuxpb.InvoiceStatus_SETTLE_REQUESTED {
			continue
		}
		wctx, wcancel := context.WithTimeout(ctx, 90*time.Second)
		_ = d.sup.retry(wctx, "WaitForInvoiceFinalStatus", func(ctx context.Context, c lnmuxpbconnect.ServiceClient) error {
			_, err := c.WaitForInvoiceFinalStatus(ctx, connect.NewRequest(&lnmuxpb.WaitForInvoiceFinalStatusRequest{Hash: inv.Hash}))
			return err
		})
		wcancel()
	}
	stored = d.listInvoices(ctx)

	d.mu.Lock()
	defer d.mu.Unlock()
	var counts struct{ payments, succeeded, failed, inflight, noRecord, mppAsked, mppSettled, singleNode, cancels, settled, settleOK int }
	for h, ci := range d.invoices {
		counts.payments++
		if ci.spec.mpp {
			counts.mppAsked++
		}
		if ci.spec.via != "" {
			counts.singleNode++
		}
		if ci.spec.cancel {
			counts.cancels++
		}
		if ci.settleOK {
			counts.settleOK++
		}
		p := payments[h]
		inv := stored[h]
		label := fmt.Sprintf("payment %d (hash %s, %d sat, mpp=%v, via=%q, cancel=%v, settle calls %d ok=%v, cancel calls %d)",
			ci.spec.index, h, ci.spec.amtSat, ci.spec.mpp, ci.spec.via, ci.spec.cancel, ci.settleCalls, ci.settleOK, ci.cancelCalls)
		if p == nil {
			counts.noRecord++
			if ci.payerErr == nil {
				fail("%s: SendPaymentV2 reported %s but Carol has no record of it", label, ci.payerStatus)
			}
		}
		switch {
		case p == nil:
		case p.Status == lnrpc.Payment_SUCCEEDED:
			counts.succeeded++
			if ci.payerStatus != "" && ci.payerStatus != p.Status.String() {
				fail("%s: SendPaymentV2 reported %s, Carol's record says %s", label, ci.payerStatus, p.Status)
			}
			var received int64
			var parts int
			for _, a := range p.Htlcs {
				if a.Status == lnrpc.HTLCAttempt_SUCCEEDED {
					parts++
					hops := a.Route.Hops
					received += hops[len(hops)-1].AmtToForwardMsat
				}
			}
			if parts > 1 {
				counts.mppSettled++
			}
			if received < ci.amtMsat {
				fail("%s: payer SUCCEEDED with only %d of %d msat settled (%d parts): partial settlement", label, received, ci.amtMsat, parts)
			}
			if p.PaymentPreimage != hex.EncodeToString(ci.preimage) {
				fail("%s: payer got preimage %s, the invoice's is %x", label, p.PaymentPreimage, ci.preimage)
			}
			if ci.spec.cancel {
				fail("%s: the application only ever cancelled it, yet the payer SUCCEEDED", label)
			}
			switch {
			case inv == nil:
				fail("%s: payer SUCCEEDED but lnmux has no stored invoice", label)
			case inv.Status != lnmuxpb.InvoiceStatus_SETTLED:
				fail("%s: payer SUCCEEDED but lnmux says %s (amount paid %d msat)", label, inv.Status, inv.AmountPaidMsat)
			case !bytes.Equal(inv.Preimage, ci.preimage):
				fail("%s: lnmux stored preimage %x, the invoice's is %x", label, inv.Preimage, ci.preimage)
			}
		case p.Status == lnrpc.Payment_FAILED:
			counts.failed++
		default:
			counts.inflight++
			fail("%s: still %s at the payer after lnmuxd was stable for minutes; htlcs: %s", label, p.Status, attempts(p))
		}
		if inv == nil {
			if ci.settleOK {
				fail("%s: SettleInvoice succeeded but lnmux has no stored invoice", label)
			}
			continue
		}
		switch inv.Status { //nolint:exhaustive // partial on purpose: the values without a case take the path after the switch
		case lnmuxpb.InvoiceStatus_SETTLED:
			counts.settled++
			if p == nil || p.Status != lnrpc.Payment_SUCCEEDED {
				fail("%s: SETTLED in lnmux (amount paid %d msat) but the payer's status is %v", label, inv.AmountPaidMsat, statusOf(p))
			}
			if ci.spec.cancel {
				fail("%s: SETTLED in lnmux although the application never settled it", label)
			}
		case lnmuxpb.InvoiceStatus_SETTLE_REQUESTED:
			fail("%s: still SETTLE_REQUESTED in lnmux after 90 s with lnmuxd stable", label)
		case lnmuxpb.InvoiceStatus_FAILED:
			fail("%s: FAILED in lnmux (amount paid %d msat; payer %v): an htlc of a settle-requested set failed", label, inv.AmountPaidMsat, statusOf(p))
		}
		if ci.settleOK && inv.Status != lnmuxpb.InvoiceStatus_SETTLED {
			fail("%s: SettleInvoice succeeded but lnmux ends %s", label, inv.Status)
		}
	}
	for h, inv := range stored {
		if d.invoices[h] == nil {
			fail("lnmux stores invoice %s (%s) the drill never created", h, inv.Status)
		}
	}
	for _, log := range d.sup.logs {
		if lines := grepLog(log, `(?i)panic|partial settlement|data race`); lines != "" {
			fail("lnmuxd log %s:\n%s", log, lines)
		}
	}

	kills, exits, starts := d.sup.counts()
	t.Logf("CHAOS payments=%d succeeded=%d failed_at_payer=%d in_flight=%d no_payer_record=%d "+
		"multi_part_asked=%d multi_part_settled=%d single_node=%d cancel_payments=%d settled_in_lnmux=%d settle_ok=%d",
		counts.payments, counts.succeeded, counts.failed, counts.inflight, counts.noRecord,
		counts.mppAsked, counts.mppSettled, counts.singleNode, counts.cancels, counts.settled, counts.settleOK)
	t.Logf("CHAOS accepted_events=%d lnmuxd_kills=%d (before-settle %d, during-settle %d, after-settle %d) "+
		"lnmuxd_exits_by_itself=%d lnmuxd_starts=%d postgres_restarts=1 at %s (err %v) lnd_restarts=1 (bob) at %s (err %v)",
		d.events, kills, d.kills[killBeforeSettle], d.kills[killDuringSettle], d.kills[killAfterSettle],
		exits, starts, d.pgAt, d.pgErr, d.lndAt, d.lndErr)
	for _, log := range d.sup.cleanExits {
		fail("lnmuxd stopped by itself with exit status 0 (log %s; its errors:\n%s\n): an unrequested stop must exit non-zero "+
			"so that a supervisor restarts it", log, grepLog(log, `level=ERROR`))
	}
	if d.leaderViolation != "" {
		fail("%s", d.leaderViolation)
	}
	if held, err := advisoryLocks(ctx, d.dsn); err != nil || held == 0 {
		fail("lnmuxd is up and stable but no session holds the leader lock (advisory locks %d, err %v)", held, err)
	}
	if d.pgAt == "" || d.lndAt == "" {
		fail("the drill did not restart postgres (%q) and bob (%q)", d.pgAt, d.lndAt)
	}
	for _, v := range violations {
		t.Errorf("VIOLATION %s", v)
	}
	if len(violations) > 0 {
		t.Logf("lnmuxd logs: %v; cluster logs:\n%s", d.sup.logs, d.cluster.LogPaths())
	}
}

// listInvoices pages through every stored invoice, keyed by hex hash.
func (d *drill) listInvoices(ctx context.Context) map[string]*lnmuxpb.Invoice {
	out := map[string]*lnmuxpb.Invoice{}
	var next uint64
	for {
		var page *lnmuxpb.ListInvoicesResponse
		err := d.sup.retry(ctx, "ListInvoices", func(ctx context.Context, c lnmuxpbconnect.ServiceClient) error {
			res, err := c.ListInvoices(ctx, connect.NewRequest(&lnmuxpb.ListInvoicesRequest{SequenceStart: next, MaxInvoicesCount: 100}))
			if err == nil {
				page = res.Msg
			}
			return err
		})
		if err != nil {
			d.t.Fatalf("list invoices: %v", err)
		}
		for _, inv := range page.Invoice {
			out[hex.EncodeToString(inv.Hash)] = inv
		}
		if len(page.Invoice) == 0 {
			return out
		}
		next = page.LastSequenceNumber + 1
	}
}

func statusOf(p *lnrpc.Payment) string {
	if p == nil {
		return "no payment record"
	}
	return p.Status.String() + " (" + p.FailureReason.String() + ")"
}

func attempts(p *lnrpc.Payment) string {
	var b strings.Builder
	for _, a := range p.Htlcs {
		fmt.Fprintf(&b, "[%d %s via chan %d, %d msat]", a.AttemptId, a.Status, a.Route.Hops[0].ChanId, a.Route.TotalAmtMsat)
	}
	return b.String()
}

func grepLog(path, pattern string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	re := regexp.MustCompile(pattern)
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if re.MatchString(l) {
			out = append(out, l)
			if len(out) == 10 {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// supervisor keeps one lnmuxd running on the drill's Postgres database, as
// systemd or Kubernetes would: it restarts the process whenever it exits,
// whether the drill killed it or it stopped by itself (e.g. on losing the
// leader lock when Postgres restarts).
type supervisor struct {
	t   *testing.T
	env *lnmuxdEnv
	dsn string

	mu      sync.Mutex
	cur     *daemon
	ready   chan struct{} // closed when cur answers GetInfo
	changed chan struct{} // closed and replaced when cur changes
	calmed  bool
	killed  bool // cur was killed by the drill
	logs    []string
	// cleanExits are the logs of runs that stopped by themselves with
	// status 0.
	cleanExits []string
	kills      int
	exits      int
	starts     int
	stopped    chan struct{}
	done       chan struct{}
}

func newSupervisor(t *testing.T, env *lnmuxdEnv, dsn string) *supervisor {
	return &supervisor{t: t, env: env, dsn: dsn, ready: make(chan struct{}), changed: make(chan struct{}),
		stopped: make(chan struct{}), done: make(chan struct{})}
}

func (s *supervisor) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		// The drill's own knobs are no lnmuxd settings.
		if !strings.HasPrefix(kv, "LNMUX_CHAOS_") {
			env = append(env, kv)
		}
	}
	return append(env, "LNMUX_IDENTITY_KEY="+identityKey, "LNMUX_PERSISTENCE_POSTGRES_DSN="+s.dsn)
}

func (s *supervisor) migrate(t *testing.T) {
	cfg := filepath.Join(s.env.logDir, "lnmux-migrate.yml")
	if err := os.WriteFile(cfg, []byte(s.env.config(freeAddr(t), freeAddr(t), daemonOpts{})), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"init", "up"} {
		cmd := exec.Command(s.env.bin, "-c", cfg, "migrate", c)
		cmd.Env = s.environ()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("migrate %s: %v\n%s", c, err, out)
		}
	}
}

// run starts lnmuxd and starts it again after every exit until shutdown.
func (s *supervisor) run(ctx context.Context) {
	defer close(s.done)
	for {
		d, err := s.spawn()
		if err != nil {
			s.t.Errorf("start lnmuxd: %v", err)
			return
		}
		go s.watchReady(ctx, d)
		var exitErr error
		select {
		case exitErr = <-d.done:
			d.done <- exitErr
		case <-ctx.Done():
			s.killNow(d)
			return
		case <-s.stopped:
			s.killNow(d)
			return
		}
		s.mu.Lock()
		if !s.killed {
			s.exits++
			s.t.Logf("chaos: lnmuxd exited by itself (%v); log %s", exitErr, s.logs[len(s.logs)-1])
			if exitErr == nil {
				// Nobody asked it to stop: a supervisor restarting on
				// failure only (systemd Restart=on-failure, a Job) would
				// leave the cluster without lnmux.
				s.cleanExits = append(s.cleanExits, s.logs[len(s.logs)-1])
			}
		}
		s.cur, s.killed = nil, false
		s.ready = make(chan struct{})
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
		// A supervisor's restart delay; it also keeps a daemon that cannot
		// start (e.g. Postgres still down) from spinning.
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return
		case <-s.stopped:
			return
		}
	}
}

func loopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (s *supervisor) spawn() (*daemon, error) {
	s.mu.Lock()
	s.starts++
	run := s.starts
	s.mu.Unlock()
	addr, err := loopbackAddr()
	if err != nil {
		return nil, err
	}
	instr, err := loopbackAddr()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(s.env.logDir, fmt.Sprintf("lnmux-chaos-%d.yml", run))
	if err := os.WriteFile(cfgPath, []byte(s.env.config(addr, instr, daemonOpts{})), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(s.env.logDir, fmt.Sprintf("lnmuxd-chaos-%d.log", run))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.env.bin, "-c", cfgPath, "run")
	cmd.Env = s.environ()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	d := &daemon{t: s.t, cmd: cmd, addr: addr, done: make(chan error, 1)}
	go func() { d.done <- cmd.Wait(); logFile.Close() }()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: &p}}
	d.client = lnmuxpbconnect.NewServiceClient(hc, "http://"+addr, connect.WithGRPC())
	s.mu.Lock()
	s.cur = d
	s.logs = append(s.logs, logPath)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return d, nil
}

// watchReady marks d ready once its API answers. Readiness does not
// require both nodes: one may be restarting.
func (s *supervisor) watchReady(ctx context.Context, d *daemon) {
	tries := 0
	for ctx.Err() == nil {
		select {
		case err := <-d.done:
			d.done <- err
			return
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := d.client.GetInfo(cctx, connect.NewRequest(&lnmuxpb.GetInfoRequest{}))
		cancel()
		if err == nil {
			s.mu.Lock()
			if s.cur == d {
				close(s.ready)
			}
			s.mu.Unlock()
			return
		}
		if tries++; tries%50 == 0 {
			s.t.Logf("chaos: lnmuxd at %s not answering yet: %v", d.addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// client waits for a ready lnmuxd and returns its client.
func (s *supervisor) client(ctx context.Context) (lnmuxpbconnect.ServiceClient, error) {
	for {
		s.mu.Lock()
		d, ready, changed := s.cur, s.ready, s.changed
		s.mu.Unlock()
		if d != nil {
			select {
			case <-ready:
				return d.client, nil
			case <-changed:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// retry calls f on the current lnmuxd until it succeeds or ctx ends: the
// daemon it talks to may be killed at any moment.
func (s *supervisor) retry(ctx context.Context, what string, f func(context.Context, lnmuxpbconnect.ServiceClient) error) error {
	var last error
	for {
		c, err := s.client(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w (last error: %v)", what, err, last) //nolint:errorlint // the first error is the outcome; the last attempt's is a hint
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		last = f(cctx, c)
		cancel()
		if last == nil {
			return nil
		}
		if code := connect.CodeOf(last); code != connect.CodeUnavailable && code != connect.CodeUnknown &&
			code != connect.CodeDeadlineExceeded && code != connect.CodeCanceled && !errors.Is(last, context.DeadlineExceeded) {
			return fmt.Errorf("%s: %w", what, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), last) //nolint:errorlint // the first error is the outcome; the last attempt's is a hint
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// kill SIGKILLs the current lnmuxd, if one runs and the drill is not over.
func (s *supervisor) kill() {
	s.mu.Lock()
	d := s.cur
	if d == nil || s.calmed {
		s.mu.Unlock()
		return
	}
	s.killed = true
	s.kills++
	s.mu.Unlock()
	s.killNow(d)
}

func (s *supervisor) killNow(d *daemon) {
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	d.wait()
}

// calm ends the kills: from now on lnmuxd must finish the job.
func (s *supervisor) calm() {
	s.mu.Lock()
	s.calmed = true
	s.mu.Unlock()
}

func (s *supervisor) chaotic() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.calmed
}

func (s *supervisor) lastLog() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.logs) == 0 {
		return ""
	}
	return s.logs[len(s.logs)-1]
}

func tailFile(path string, n int) string {
	data, _ := os.ReadFile(path)
	return lastLines(string(data), n)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (s *supervisor) counts() (kills, exits, starts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kills, s.exits, s.starts
}

func (s *supervisor) shutdown() {
	select {
	case <-s.stopped:
	default:
		close(s.stopped)
	}
	<-s.done
	if s.t.Failed() {
		s.t.Logf("lnmuxd logs: %v", s.logs)
	}
}
