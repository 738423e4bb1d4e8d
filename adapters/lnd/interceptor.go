package lnd

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lnwire"
	"google.golang.org/grpc"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// failureMessageLen is the only length lnd accepts for an encrypted failure
// (BOLT 4: 256-byte padded message, two length prefixes, 32-byte HMAC).
const failureMessageLen = lnwire.FailureMessageLength + 2 + 2 + 32

// interceptor is one open HtlcInterceptor stream. lnd ends the stream on any
// answer it cannot apply (unknown circuit, unsupported failure code, wrong
// failure length, RESUME or FAIL of an HTLC already on chain), so answers
// are only sent for HTLCs this stream was offered and has not answered.
//
// lnd couples the stream's two directions: the loop that sends the offers
// is the one that applies the answers, so while it sends (the replay of
// every held HTLC when an interceptor registers) it reads no answer. The
// stream's receive loop therefore never waits for an answer to be written:
// Resolve checks an answer and queues it, a sender goroutine of the stream
// writes the queue in order, and no lock is held across a network call
// (docs/lnd-behaviour.md, "The interceptor stream's two directions").
type interceptor struct {
	stream routerrpc.Router_HtlcInterceptorClient
	log    *slog.Logger

	mu      sync.Mutex // guards what follows; never held across a network call
	offered map[domain.CircuitKey]offer
	// out holds the answers accepted and not written yet, in order. Each
	// took its HTLC out of offered, so there are never more than the
	// HTLCs this stream was offered.
	out    []queuedAnswer
	height uint32 // the best height expire saw
	down   bool
	wake   chan struct{} // capacity 1: out grew or down was set
}

// queuedAnswer is an answer waiting for the sender.
type queuedAnswer struct {
	circuit  domain.CircuitKey
	deadline uint32 // the offer's, see offer
	resp     *routerrpc.ForwardHtlcInterceptResponse
}

func newInterceptor(stream routerrpc.Router_HtlcInterceptorClient, log *slog.Logger) *interceptor {
	return &interceptor{stream: stream, log: log, offered: map[domain.CircuitKey]offer{}, wake: make(chan struct{}, 1)}
}

// offer is what the stream remembers of an HTLC it was offered.
type offer struct {
	// deadline is lnd's auto-fail height (off-chain) or settlement
	// deadline (on-chain): from it on, lnd no longer holds the HTLC.
	deadline uint32
	// onChain: the incoming channel was force-closed and the HTLC is
	// resolved on chain; lnd accepts only SETTLE for it.
	onChain bool
}

// isOnChain tells an on-chain offer: lnd then sets auto_fail_height to the
// HTLC's expiry (its settlement deadline), while off-chain it is the expiry
// minus lnd's CLTV reject delta (witness_beacon.go, interceptable_switch.go).
func isOnChain(h ports.InterceptedHTLC) bool {
	return h.AutoFailHeight != 0 && h.AutoFailHeight >= h.Forward.IncomingExpiry
}

func (ic *interceptor) offer(h ports.InterceptedHTLC) {
	ic.mu.Lock()
	ic.offered[h.Circuit] = offer{deadline: h.AutoFailHeight, onChain: isOnChain(h)}
	ic.mu.Unlock()
}

// expired tells whether lnd, at height, no longer holds an HTLC with this
// deadline: it fails it (off-chain) or drops it (on-chain) by itself.
func expired(deadline, height uint32) bool { return deadline != 0 && deadline <= height }

// expire forgets HTLCs lnd fails (off-chain) or drops (on-chain) by itself
// at this height; answers still queued for them are not sent.
func (ic *interceptor) expire(height uint32) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	ic.height = max(ic.height, height)
	for c, o := range ic.offered {
		if expired(o.deadline, height) {
			delete(ic.offered, c)
		}
	}
}

// close marks the stream down: Resolve refuses answers and the sender
// drops what is queued (lnd re-offers those HTLCs to the next stream).
func (ic *interceptor) close() {
	ic.mu.Lock()
	ic.down = true
	ic.mu.Unlock()
	ic.signal()
}

func (ic *interceptor) signal() {
	select {
	case ic.wake <- struct{}{}:
	default:
	}
}

// queue accepts an answer for the sender, or refuses one lnd would end the
// stream for. It never waits for the network.
func (ic *interceptor) queue(c domain.CircuitKey, resp *routerrpc.ForwardHtlcInterceptResponse) error {
	ic.mu.Lock()
	if ic.down {
		ic.mu.Unlock()
		return ErrInterceptorDown
	}
	o, ok := ic.offered[c]
	if !ok {
		ic.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotHeld, c)
	}
	if o.onChain && resp.Action != routerrpc.ResolveHoldForwardAction_SETTLE {
		ic.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrOnChain, c)
	}
	delete(ic.offered, c) // answered: a second answer would end the stream
	ic.out = append(ic.out, queuedAnswer{circuit: c, deadline: o.deadline, resp: resp})
	ic.mu.Unlock()
	ic.signal()
	return nil
}

// sendLoop writes the queued answers in order until the stream is down or
// ctx ends. An answer whose HTLC lnd no longer holds (its deadline passed
// while it waited) is dropped: lnd would end the stream for it.
func (ic *interceptor) sendLoop(ctx context.Context) {
	var batch []queuedAnswer
	for {
		ic.mu.Lock()
		down := ic.down
		batch, ic.out = ic.out, batch[:0]
		ic.mu.Unlock()
		if down {
			ic.dropped(ctx, len(batch))
			return
		}
		for i, a := range batch {
			ic.mu.Lock()
			down, height := ic.down, ic.height
			ic.mu.Unlock()
			if down {
				ic.dropped(ctx, len(batch)-i)
				return
			}
			if expired(a.deadline, height) {
				ic.log.WarnContext(ctx, "answer not sent: lnd no longer holds the htlc", "circuit", a.circuit,
					"deadline", a.deadline, "height", height)
				continue
			}
			if err := ic.stream.Send(a.resp); err != nil {
				// The stream is gone; its receive loop reports why.
				ic.mu.Lock()
				ic.down = true
				ic.mu.Unlock()
				ic.log.DebugContext(ctx, "interceptor stream send failed", "err", err)
				ic.dropped(ctx, len(batch)-i)
				return
			}
		}
		clear(batch) // the responses may go
		if len(batch) > 0 {
			continue
		}
		select {
		case <-ic.wake:
		case <-ctx.Done():
			ic.mu.Lock()
			ic.down = true
			n := len(ic.out)
			ic.mu.Unlock()
			ic.dropped(ctx, n)
			return
		}
	}
}

// dropped logs answers left unsent when the stream ended. lnd still holds
// their HTLCs and offers them to the next stream, whose answers follow
// from the same decisions; they are never sent on another stream.
func (ic *interceptor) dropped(ctx context.Context, n int) {
	if n > 0 {
		ic.log.WarnContext(ctx, "interceptor stream ended with answers unsent: lnd offers their htlcs again", "answers", n)
	}
}

// intercept runs the HtlcInterceptor stream. lnd allows one interceptor per
// node and refuses another with "interceptor already exists" (routerrpc
// ErrInterceptorAlreadyExists) until the previous stream has ended on its
// side: during a hand-over between two lnmuxd the new leader meets that
// refusal for a moment, so it retries at once and then with a short
// doubling delay on the same connection instead of ending the session
// (docs/high-availability.md).
func (n *Node) intercept(ctx context.Context, conn grpc.ClientConnInterface, sink ports.NodeSink, q *queue) error {
	wait := alreadyExistsMinWait
	for refused := 0; ; refused++ {
		err := n.interceptStream(ctx, conn, sink, q)
		if !isAlreadyExists(err) || ctx.Err() != nil {
			return err
		}
		if refused == 0 || refused%100 == 0 {
			n.log.WarnContext(ctx, "lnd has another interceptor registered: retrying", "attempts", refused+1)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		if refused >= alreadyExistsFastTries {
			wait = min(2*wait, alreadyExistsMaxWait)
		}
	}
}

// Retry delays after lnd refused the interceptor because another is
// registered: short for about a second, since the other is usually a
// leader handing over, then doubling.
const (
	alreadyExistsMinWait   = 2 * time.Millisecond
	alreadyExistsFastTries = 500
	alreadyExistsMaxWait   = time.Second
)

// interceptorConfirm is how long a new stream must stay open without
// being refused before it counts as registered: lnd sends nothing when it
// accepts an interceptor, and refuses one at once (within a round trip)
// when another is registered. The first request confirms it earlier.
const interceptorConfirm = 10 * time.Millisecond

// isAlreadyExists tells lnd's refusal of a second interceptor.
func isAlreadyExists(err error) bool {
	return err != nil && strings.Contains(err.Error(), "interceptor already exists")
}

// interceptStream runs one HtlcInterceptor stream: each request is
// recorded as offered, then queued for the sink, and the stream's answers
// are written by a sender goroutine of its own; the receive loop waits for
// neither.
func (n *Node) interceptStream(ctx context.Context, conn grpc.ClientConnInterface, sink ports.NodeSink, q *queue) error {
	// The stream's context ends with it, so that a Send waiting for lnd
	// returns.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := routerrpc.NewRouterClient(conn).HtlcInterceptor(ctx)
	if err != nil {
		return fmt.Errorf("htlc interceptor: %w", err)
	}
	ic := newInterceptor(stream, n.log)
	var sender sync.WaitGroup
	sender.Go(func() { ic.sendLoop(ctx) })
	defer func() {
		cancel()
		sender.Wait()
	}()
	n.mu.Lock()
	n.icpt = ic
	n.mu.Unlock()
	// activate reports the stream registered, once, and never after it
	// ended (the timer may fire while the stream closes).
	var amu sync.Mutex
	active, ended := false, false
	activate := func() {
		amu.Lock()
		defer amu.Unlock()
		if !active && !ended {
			active = true
			n.setStatus(sink, func(s *ports.NodeStatus) { s.InterceptorActive = true })
		}
	}
	confirm := time.AfterFunc(interceptorConfirm, activate)
	defer func() {
		confirm.Stop()
		amu.Lock()
		ended = true
		amu.Unlock()
		ic.close()
		n.mu.Lock()
		if n.icpt == ic {
			n.icpt = nil
		}
		n.mu.Unlock()
		n.setStatus(sink, func(s *ports.NodeStatus) { s.InterceptorActive = false })
		n.spans.forget()
	}()
	for {
		req, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("htlc interceptor: %w", err)
		}
		activate()
		h, err := n.intercepted(req)
		if err != nil {
			// Unanswerable; lnd fails it at its auto-fail height.
			n.log.ErrorContext(ctx, "malformed intercept request", "err", err)
			continue
		}
		ic.offer(h)
		deliver := func(ctx context.Context) {
			ctx, span := n.traceHTLC(ctx, h)
			defer n.endHTLC(h, span)
			sink.HTLCIntercepted(ctx, h)
		}
		// The onion is peeled on the queue's workers; the HTLC is still
		// delivered in stream order (queue.go).
		q.pushPrepared(func() { h.Prepared = sink.PrepareHTLC(h) }, deliver)
	}
}

// intercepted converts lnd's request.
func (n *Node) intercepted(req *routerrpc.ForwardHtlcInterceptRequest) (ports.InterceptedHTLC, error) {
	var h ports.InterceptedHTLC
	if req.IncomingCircuitKey == nil {
		return h, fmt.Errorf("request without circuit key")
	}
	h.Circuit = domain.CircuitKey{Node: n.cfg.PubKey, Chan: req.IncomingCircuitKey.ChanId, HTLC: req.IncomingCircuitKey.HtlcId}
	if len(req.PaymentHash) != len(h.Hash) {
		return h, fmt.Errorf("circuit %s: payment hash of %d bytes", h.Circuit, len(req.PaymentHash))
	}
	copy(h.Hash[:], req.PaymentHash)
	h.OutgoingChanID = req.OutgoingRequestedChanId
	if len(req.OutgoingRequestedNodeId) > 0 {
		var k domain.NodeKey
		if len(req.OutgoingRequestedNodeId) != len(k) {
			return h, fmt.Errorf("circuit %s: outgoing node id of %d bytes", h.Circuit, len(req.OutgoingRequestedNodeId))
		}
		copy(k[:], req.OutgoingRequestedNodeId)
		h.OutgoingNodeID = &k
	}
	h.Forward = domain.Forward{
		IncomingAmount: domain.Msat(req.IncomingAmountMsat), //nolint:gosec // lnd reports real HTLC amounts, bounded by channel capacity, far below 2^63 msat
		OutgoingAmount: domain.Msat(req.OutgoingAmountMsat), //nolint:gosec // lnd reports real HTLC amounts, bounded by channel capacity, far below 2^63 msat
		IncomingExpiry: req.IncomingExpiry,
		OutgoingExpiry: req.OutgoingExpiry,
	}
	if req.AutoFailHeight > 0 {
		h.AutoFailHeight = uint32(req.AutoFailHeight)
	}
	h.Onion = req.OnionBlob
	return h, nil
}

// Resolve implements ports.Node. It checks the answer against the open
// stream (which must have offered the HTLC and not had it answered) and
// queues it there; it never waits for the network. The stream's sender
// writes the answers in order and lnd applies them asynchronously. If the
// stream ends first, or lnd rejects an answer anyway (which ends the
// stream), lnd still holds the HTLC and offers it to the next stream: an
// answer is never carried over to another stream.
func (n *Node) Resolve(ctx context.Context, r ports.Resolution) (err error) {
	_, end := n.traceResolution(ctx, r)
	defer func() { end(err) }()
	if r.Circuit.Node != n.cfg.PubKey {
		return fmt.Errorf("%w: circuit %s is not on node %s", domain.ErrInvalidArgument, r.Circuit, n.cfg.PubKey)
	}
	resp, err := response(r)
	if err != nil {
		return err
	}
	n.mu.Lock()
	ic := n.icpt
	n.mu.Unlock()
	if ic == nil {
		return ErrInterceptorDown
	}
	return ic.queue(r.Circuit, resp)
}

// response builds lnd's answer, refusing what lnd would reject by ending the
// stream.
func response(r ports.Resolution) (*routerrpc.ForwardHtlcInterceptResponse, error) {
	resp := &routerrpc.ForwardHtlcInterceptResponse{
		IncomingCircuitKey: &routerrpc.CircuitKey{ChanId: r.Circuit.Chan, HtlcId: r.Circuit.HTLC},
	}
	switch r.Action {
	case ports.ActionResume:
		resp.Action = routerrpc.ResolveHoldForwardAction_RESUME
	case ports.ActionSettle:
		if r.Preimage == (domain.Preimage{}) {
			return nil, fmt.Errorf("%w: settle %s without preimage", domain.ErrInvalidArgument, r.Circuit)
		}
		resp.Action = routerrpc.ResolveHoldForwardAction_SETTLE
		resp.Preimage = r.Preimage[:]
	case ports.ActionFail:
		resp.Action = routerrpc.ResolveHoldForwardAction_FAIL
		switch {
		case len(r.FailureMessage) > 0 && r.FailureCode != 0:
			return nil, fmt.Errorf("%w: fail %s with both a message and a code", domain.ErrInvalidArgument, r.Circuit)
		case len(r.FailureMessage) > 0:
			if len(r.FailureMessage) != failureMessageLen {
				return nil, fmt.Errorf("%w: fail %s: encrypted failure of %d bytes, lnd takes exactly %d",
					domain.ErrInvalidArgument, r.Circuit, len(r.FailureMessage), failureMessageLen)
			}
			resp.FailureMessage = r.FailureMessage
		default:
			code, err := failureCode(lnwire.FailCode(r.FailureCode))
			if err != nil {
				return nil, fmt.Errorf("fail %s: %w", r.Circuit, err)
			}
			resp.FailureCode = code
		}
	default:
		return nil, fmt.Errorf("%w: unknown action %d", domain.ErrInvalidArgument, r.Action)
	}
	return resp, nil
}

// failureCode maps a BOLT 4 code to the few lnd accepts in a FAIL without
// message (lnd v0.21 routerrpc forward_interceptor.go); any other ends the
// stream. Code 0 means temporary_channel_failure, as in lnd.
func failureCode(c lnwire.FailCode) (lnrpc.Failure_FailureCode, error) {
	switch c { //nolint:exhaustive // partial on purpose: the values without a case take the path after the switch
	case 0, lnwire.CodeTemporaryChannelFailure:
		return lnrpc.Failure_TEMPORARY_CHANNEL_FAILURE, nil
	case lnwire.CodeInvalidOnionHmac:
		return lnrpc.Failure_INVALID_ONION_HMAC, nil
	case lnwire.CodeInvalidOnionKey:
		return lnrpc.Failure_INVALID_ONION_KEY, nil
	case lnwire.CodeInvalidOnionVersion:
		return lnrpc.Failure_INVALID_ONION_VERSION, nil
	}
	return 0, fmt.Errorf("%w: lnd accepts only temporary_channel_failure and the invalid_onion codes without an encrypted message, not %v",
		domain.ErrInvalidArgument, c)
}
