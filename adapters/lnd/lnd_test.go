package lnd

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

func testKey(b byte) domain.NodeKey {
	var k domain.NodeKey
	k[0] = 2
	k[32] = b
	return k
}

func newTestNode(t *testing.T) *Node {
	t.Helper()
	n, err := New(Config{PubKey: testKey(1), URL: "127.0.0.1:10009", TLSCertPath: "c", MacaroonPath: "m", Network: "regtest"})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNewValidates(t *testing.T) {
	good := Config{PubKey: testKey(1), URL: "127.0.0.1:10009", TLSCertPath: "c", MacaroonPath: "m", Network: "regtest"}
	for name, mod := range map[string]func(*Config){
		"no key":      func(c *Config) { c.PubKey = domain.NodeKey{} },
		"bad url":     func(c *Config) { c.URL = "localhost" },
		"no cert":     func(c *Config) { c.TLSCertPath = "" },
		"no mac":      func(c *Config) { c.MacaroonPath = "" },
		"bad network": func(c *Config) { c.Network = "bitcoin" },
	} {
		cfg := good
		mod(&cfg)
		if _, err := New(cfg); !errors.Is(err, domain.ErrInvalidArgument) {
			t.Errorf("%s: got %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
}

func TestCheckInfo(t *testing.T) {
	n := newTestNode(t)
	ok := func() *lnrpc.GetInfoResponse {
		return &lnrpc.GetInfoResponse{
			IdentityPubkey:            testKey(1).String(),
			Version:                   "0.21.3-beta commit=v0.21.3-beta",
			Chains:                    []*lnrpc.Chain{{Chain: "bitcoin", Network: "regtest"}},
			RequireHtlcInterceptor:    true,
			StoreFinalHtlcResolutions: true,
		}
	}
	if err := n.checkInfo(t.Context(), ok()); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		mod  func(*lnrpc.GetInfoResponse)
		want string
	}{
		"key":         {func(i *lnrpc.GetInfoResponse) { i.IdentityPubkey = testKey(2).String() }, "configured pubKey"},
		"network":     {func(i *lnrpc.GetInfoResponse) { i.Chains[0].Network = "mainnet" }, `network "mainnet"`},
		"old":         {func(i *lnrpc.GetInfoResponse) { i.Version = "0.15.5-beta commit=v0.15.5-beta" }, "v0.21.1 or newer"},
		"unsafe":      {func(i *lnrpc.GetInfoResponse) { i.Version = "0.21.0-beta commit=v0.21.0-beta" }, "lnd issue 10892"},
		"garbage":     {func(i *lnrpc.GetInfoResponse) { i.Version = "dev" }, "cannot read lnd version"},
		"interceptor": {func(i *lnrpc.GetInfoResponse) { i.RequireHtlcInterceptor = false }, "--requireinterceptor"},
		"final":       {func(i *lnrpc.GetInfoResponse) { i.StoreFinalHtlcResolutions = false }, "--store-final-htlc-resolutions"},
	} {
		info := ok()
		tc.mod(info)
		err := n.checkInfo(t.Context(), info)
		if !errors.Is(err, ErrMisconfigured) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want ErrMisconfigured mentioning %q", name, err, tc.want)
		}
	}
}

// TestCheckInfoUnsafeVersion: with lnd.allowUnsafeVersion a node from
// v0.16.0 up to v0.21.0 is accepted (a loud log line says why it should
// not be), nothing older is, and v0.21.1 needs no switch.
func TestCheckInfoUnsafeVersion(t *testing.T) {
	info := func(v string) *lnrpc.GetInfoResponse {
		return &lnrpc.GetInfoResponse{IdentityPubkey: testKey(1).String(), Version: v,
			Chains:                 []*lnrpc.Chain{{Chain: "bitcoin", Network: "regtest"}},
			RequireHtlcInterceptor: true, StoreFinalHtlcResolutions: true}
	}
	strict := newTestNode(t)
	if err := strict.checkInfo(t.Context(), info("0.21.1-beta")); err != nil {
		t.Errorf("v0.21.1: %v", err)
	}
	n, err := New(Config{PubKey: testKey(1), URL: "127.0.0.1:10009", TLSCertPath: "c", MacaroonPath: "m", Network: "regtest", AllowUnsafeVersion: true})
	if err != nil {
		t.Fatal(err)
	}
	for v, ok := range map[string]bool{"0.16.0-beta": true, "0.19.3-beta": true, "0.21.0-beta": true, "0.15.5-beta": false} {
		err := n.checkInfo(t.Context(), info(v))
		if ok && err != nil {
			t.Errorf("%s with allowUnsafeVersion: %v, want accepted", v, err)
		}
		if !ok && !errors.Is(err, ErrMisconfigured) {
			t.Errorf("%s with allowUnsafeVersion: %v, want ErrMisconfigured", v, err)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string][3]int{
		"0.21.3-beta commit=v0.21.3-beta": {0, 21, 3},
		"0.16.0-beta":                     {0, 16, 0},
		"v0.18.5-beta.rc1 commit=":        {0, 18, 5},
		"1.0.0":                           {1, 0, 0},
	} {
		got, err := parseVersion(in)
		if err != nil || got != want {
			t.Errorf("parseVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestResponse(t *testing.T) {
	c := domain.CircuitKey{Node: testKey(1), Chan: 7, HTLC: 3}
	var pre domain.Preimage
	pre[0] = 1
	for name, tc := range map[string]struct {
		r       ports.Resolution
		want    *routerrpc.ForwardHtlcInterceptResponse
		wantErr bool
	}{
		"resume": {r: ports.Resolution{Circuit: c, Action: ports.ActionResume},
			want: &routerrpc.ForwardHtlcInterceptResponse{Action: routerrpc.ResolveHoldForwardAction_RESUME}},
		"settle": {r: ports.Resolution{Circuit: c, Action: ports.ActionSettle, Preimage: pre},
			want: &routerrpc.ForwardHtlcInterceptResponse{Action: routerrpc.ResolveHoldForwardAction_SETTLE, Preimage: pre[:]}},
		"settle without preimage": {r: ports.Resolution{Circuit: c, Action: ports.ActionSettle}, wantErr: true},
		"fail message": {r: ports.Resolution{Circuit: c, Action: ports.ActionFail, FailureMessage: make([]byte, 292)},
			want: &routerrpc.ForwardHtlcInterceptResponse{Action: routerrpc.ResolveHoldForwardAction_FAIL, FailureMessage: make([]byte, 292)}},
		"fail short message": {r: ports.Resolution{Circuit: c, Action: ports.ActionFail, FailureMessage: make([]byte, 291)}, wantErr: true},
		"fail both":          {r: ports.Resolution{Circuit: c, Action: ports.ActionFail, FailureMessage: make([]byte, 292), FailureCode: 1}, wantErr: true},
		"fail temporary": {r: ports.Resolution{Circuit: c, Action: ports.ActionFail, FailureCode: uint16(lnwire.CodeTemporaryChannelFailure)},
			want: &routerrpc.ForwardHtlcInterceptResponse{Action: routerrpc.ResolveHoldForwardAction_FAIL, FailureCode: lnrpc.Failure_TEMPORARY_CHANNEL_FAILURE}},
		"fail hmac": {r: ports.Resolution{Circuit: c, Action: ports.ActionFail, FailureCode: uint16(lnwire.CodeInvalidOnionHmac)},
			want: &routerrpc.ForwardHtlcInterceptResponse{Action: routerrpc.ResolveHoldForwardAction_FAIL, FailureCode: lnrpc.Failure_INVALID_ONION_HMAC}},
		"fail key": {r: ports.Resolution{Circuit: c, Action: ports.ActionFail, FailureCode: uint16(lnwire.CodeInvalidOnionKey)},
			want: &routerrpc.ForwardHtlcInterceptResponse{Action: routerrpc.ResolveHoldForwardAction_FAIL, FailureCode: lnrpc.Failure_INVALID_ONION_KEY}},
		"fail version": {r: ports.Resolution{Circuit: c, Action: ports.ActionFail, FailureCode: uint16(lnwire.CodeInvalidOnionVersion)},
			want: &routerrpc.ForwardHtlcInterceptResponse{Action: routerrpc.ResolveHoldForwardAction_FAIL, FailureCode: lnrpc.Failure_INVALID_ONION_VERSION}},
		"fail unsupported code": {r: ports.Resolution{Circuit: c, Action: ports.ActionFail, FailureCode: uint16(lnwire.CodeMPPTimeout)}, wantErr: true},
		"unknown action":        {r: ports.Resolution{Circuit: c, Action: 9}, wantErr: true},
	} {
		got, err := response(tc.r)
		if tc.wantErr {
			if !errors.Is(err, domain.ErrInvalidArgument) {
				t.Errorf("%s: got %v, want ErrInvalidArgument", name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got.IncomingCircuitKey.ChanId != 7 || got.IncomingCircuitKey.HtlcId != 3 || got.Action != tc.want.Action ||
			string(got.Preimage) != string(tc.want.Preimage) || len(got.FailureMessage) != len(tc.want.FailureMessage) ||
			got.FailureCode != tc.want.FailureCode {
			t.Errorf("%s: got %v, want %v", name, got, tc.want)
		}
	}
}

func TestResolveGuards(t *testing.T) {
	n := newTestNode(t)
	c := domain.CircuitKey{Node: testKey(1), Chan: 7, HTLC: 3}
	if err := n.Resolve(t.Context(), ports.Resolution{Circuit: c}); !errors.Is(err, ErrInterceptorDown) || !errors.Is(err, domain.ErrNotReady) {
		t.Errorf("no stream: got %v", err)
	}
	other := c
	other.Node = testKey(2)
	if err := n.Resolve(t.Context(), ports.Resolution{Circuit: other}); !errors.Is(err, domain.ErrInvalidArgument) {
		t.Errorf("other node: got %v", err)
	}
	ic := newInterceptor(nil, n.log)
	ic.offer(ports.InterceptedHTLC{Circuit: c, AutoFailHeight: 100, Forward: domain.Forward{IncomingExpiry: 119}})
	onChain := domain.CircuitKey{Node: testKey(1), Chan: 8, HTLC: 1}
	ic.offer(ports.InterceptedHTLC{Circuit: onChain, AutoFailHeight: 150, Forward: domain.Forward{IncomingExpiry: 150}})
	n.icpt = ic
	for _, a := range []ports.Action{ports.ActionResume, ports.ActionFail} {
		if err := n.Resolve(t.Context(), ports.Resolution{Circuit: onChain, Action: a}); !errors.Is(err, ErrOnChain) {
			t.Errorf("%v on chain: got %v", a, err)
		}
	}
	if err := n.Resolve(t.Context(), ports.Resolution{Circuit: domain.CircuitKey{Node: testKey(1), Chan: 7, HTLC: 4}}); !errors.Is(err, ErrNotHeld) {
		t.Errorf("not offered: got %v", err)
	}
	ic.expire(100)
	if err := n.Resolve(t.Context(), ports.Resolution{Circuit: c}); !errors.Is(err, ErrNotHeld) {
		t.Errorf("auto-failed: got %v", err)
	}
}

func TestIntercepted(t *testing.T) {
	n := newTestNode(t)
	dest := testKey(9)
	req := &routerrpc.ForwardHtlcInterceptRequest{
		IncomingCircuitKey:      &routerrpc.CircuitKey{ChanId: 5, HtlcId: 6},
		IncomingAmountMsat:      1010,
		IncomingExpiry:          200,
		PaymentHash:             make([]byte, 32),
		OutgoingRequestedChanId: ^uint64(0),
		OutgoingAmountMsat:      1000,
		OutgoingExpiry:          160,
		OnionBlob:               []byte{1, 2},
		AutoFailHeight:          181,
		OutgoingRequestedNodeId: dest[:],
	}
	h, err := n.intercepted(req)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Forward{IncomingAmount: 1010, OutgoingAmount: 1000, IncomingExpiry: 200, OutgoingExpiry: 160}
	if h.Circuit != (domain.CircuitKey{Node: testKey(1), Chan: 5, HTLC: 6}) || h.Forward != want ||
		h.OutgoingChanID != ^uint64(0) || h.OutgoingNodeID == nil || *h.OutgoingNodeID != dest ||
		h.AutoFailHeight != 181 || len(h.Onion) != 2 {
		t.Errorf("got %+v", h)
	}
	req.PaymentHash = req.PaymentHash[:31]
	if _, err := n.intercepted(req); err == nil {
		t.Error("short hash accepted")
	}
}

func TestQueueOrderAndNoBlocking(t *testing.T) {
	q := newQueue()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	release := make(chan struct{})
	var mu sync.Mutex
	var got []int
	go q.run(ctx)
	q.push(func(context.Context) { <-release })
	for i := range 1000 {
		// push must not wait for the blocked consumer.
		q.push(func(context.Context) { mu.Lock(); got = append(got, i); mu.Unlock() })
	}
	close(release)
	deadline := time.Now().Add(time.Minute) // only a hang fails, not a busy machine
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 1000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d of 1000", n)
		}
		time.Sleep(time.Millisecond)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("out of order at %d: %d", i, v)
		}
	}
}

func TestMacaroonNotPrinted(t *testing.T) {
	m := macaroon("0201036c6e64")
	if s := m.String(); strings.Contains(s, "0201") {
		t.Errorf("String reveals the macaroon: %s", s)
	}
}

// blockingStream is an HtlcInterceptor client stream whose Send waits
// until released, as it does while lnd reads no answer.
type blockingStream struct {
	routerrpc.Router_HtlcInterceptorClient
	release chan struct{}

	mu   sync.Mutex
	sent []uint64
}

func (s *blockingStream) Send(r *routerrpc.ForwardHtlcInterceptResponse) error {
	<-s.release
	s.mu.Lock()
	s.sent = append(s.sent, r.IncomingCircuitKey.HtlcId)
	s.mu.Unlock()
	return nil
}

func (s *blockingStream) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}

// TestAnswersNeverWaitForTheNetwork: while the stream cannot write, offers
// are still recorded (the receive loop) and answers still accepted
// (Resolve, the block loop): nothing waits for the blocked Send. Once lnd
// reads again the answers go out in the order they were given, except one
// whose HTLC lnd gave up meanwhile, and each HTLC is answered once.
func TestAnswersNeverWaitForTheNetwork(t *testing.T) {
	const n = 500
	n0 := newTestNode(t)
	st := &blockingStream{release: make(chan struct{})}
	ic := newInterceptor(st, n0.log)
	n0.icpt = ic
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); ic.sendLoop(ctx) }()
	defer func() { cancel(); <-done }()
	circuit := func(i int) domain.CircuitKey {
		return domain.CircuitKey{Node: testKey(1), Chan: 7, HTLC: uint64(i)} //nolint:gosec // small test indices
	}
	for i := range n {
		deadline := uint32(1000)
		if i == 3 {
			deadline = 200 // lnd fails it at 200
		}
		ic.offer(ports.InterceptedHTLC{Circuit: circuit(i), AutoFailHeight: deadline, Forward: domain.Forward{IncomingExpiry: deadline + 19}})
	}
	for i := range n {
		if err := n0.Resolve(ctx, ports.Resolution{Circuit: circuit(i), Action: ports.ActionResume}); err != nil {
			t.Fatalf("Resolve %d: %v", i, err)
		}
	}
	if err := n0.Resolve(ctx, ports.Resolution{Circuit: circuit(1), Action: ports.ActionResume}); !errors.Is(err, ErrNotHeld) {
		t.Errorf("second answer for one HTLC: got %v, want ErrNotHeld", err)
	}
	ic.expire(200) // the block loop, while Send still waits
	ic.offer(ports.InterceptedHTLC{Circuit: circuit(n), AutoFailHeight: 1000, Forward: domain.Forward{IncomingExpiry: 1019}})
	if err := n0.Resolve(ctx, ports.Resolution{Circuit: circuit(n), Action: ports.ActionResume}); err != nil {
		t.Fatal(err)
	}
	close(st.release)
	deadline := time.Now().Add(time.Minute) // only a hang fails
	for st.count() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	want := make([]uint64, 0, n)
	for i := range n + 1 {
		if i != 3 {
			want = append(want, uint64(i)) //nolint:gosec // small test indices
		}
	}
	if len(st.sent) != len(want) {
		t.Fatalf("sent %d answers, want %d", len(st.sent), len(want))
	}
	for i := range want {
		if st.sent[i] != want[i] {
			t.Fatalf("answer %d was for HTLC %d, want %d: answers go out in the order given", i, st.sent[i], want[i])
		}
	}
}

// TestAnswersOfAnEndedStreamAreDropped: answers queued on a stream that
// ends are not sent, not even on the next stream (lnd offers their HTLCs
// to it again); Resolve refuses answers for HTLCs the next stream has not
// been offered.
func TestAnswersOfAnEndedStreamAreDropped(t *testing.T) {
	n0 := newTestNode(t)
	old := &blockingStream{release: make(chan struct{})}
	ic := newInterceptor(old, n0.log)
	n0.icpt = ic
	c := domain.CircuitKey{Node: testKey(1), Chan: 7, HTLC: 1}
	ic.offer(ports.InterceptedHTLC{Circuit: c})
	if err := n0.Resolve(t.Context(), ports.Resolution{Circuit: c, Action: ports.ActionResume}); err != nil {
		t.Fatal(err)
	}
	ic.close()
	done := make(chan struct{})
	go func() { defer close(done); ic.sendLoop(t.Context()) }()
	<-done // returns at once: the stream is down
	close(old.release)
	if old.count() != 0 {
		t.Errorf("%d answers sent on an ended stream", old.count())
	}
	next := &blockingStream{release: make(chan struct{})}
	close(next.release)
	n0.icpt = newInterceptor(next, n0.log)
	if err := n0.Resolve(t.Context(), ports.Resolution{Circuit: c, Action: ports.ActionResume}); !errors.Is(err, ErrNotHeld) {
		t.Errorf("answer before the next stream offered the HTLC: got %v, want ErrNotHeld", err)
	}
}
