// Package lndfake is test tooling: a gRPC server that speaks the part of
// lnd's API lnmux's lnd adapter uses (lnrpc GetInfo,
// LookupHtlcResolution, ListChannels and SubscribeChannelEvents, verrpc GetVersion, chainrpc block epochs, routerrpc
// HtlcInterceptor and SubscribeHtlcEvents), over TLS with a macaroon, on
// 127.0.0.1. It lets the real adapter and the real application core be
// driven from the wire without an lnd, for load measurements (load.go,
// cmd/htlcload) and adapter tests. It holds no channels: the caller offers
// the HTLCs and gets each answer back with the time it took.
package lndfake

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/chainrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lnrpc/verrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/lnmux/lnmux/adapters/lnd"
	"github.com/lnmux/lnmux/adapters/tlscert"
	"github.com/lnmux/lnmux/domain"
)

// Answer is what the adapter answered for one offered HTLC.
type Answer struct {
	Chan, HTLC uint64
	Action     routerrpc.ResolveHoldForwardAction
	Preimage   []byte
	// Latency is the time from the offer's Send on the stream to the
	// answer's Recv.
	Latency time.Duration
}

// Options configure a Server.
type Options struct {
	// Dir receives tls.cert, tls.key and admin.macaroon.
	Dir string
	// Height is the block height reported first.
	Height uint32
	// OnAnswer is called for every answer, from the stream's receive
	// goroutine; it must not block for long.
	OnAnswer func(Answer)
	// NoFinalEvents: do not report a FinalHtlcEvent after SETTLE or FAIL
	// (the settlements then stay pending in lnmux).
	NoFinalEvents bool
	// Version is the lnd version GetInfo reports (default
	// "0.21.3-beta commit=lndfake").
	Version string
	// Coupled models lnd's interceptable switch, whose one run loop sends
	// every offer on the interceptor stream and applies every answer
	// (lnd htlcswitch/interceptable_switch.go, run; the stream's reader in
	// lnrpc/routerrpc/forward_interceptor.go hands each answer to that loop
	// and waits). Here one lock stands for the loop: Offer holds it across
	// its Send, a newly registered stream is offered every held HTLC again
	// under it in one go (lnd's setInterceptor → forEach), and the stream's
	// reader takes it to apply each answer. While offers are being sent the
	// answers are therefore not read, and the adapter may send only what
	// the stream's flow-control window holds (Window). Offered and
	// unanswered HTLCs stay held across streams, as with
	// --requireinterceptor.
	Coupled bool
	// Window, if set, fixes the server's HTTP/2 flow-control windows at this
	// many bytes (at least 64 KiB; gRPC's dynamic window is then off), so
	// that what the adapter can send while its answers are not read is
	// bounded by a known amount.
	Window int32
}

// Server is one fake lnd node.
type Server struct {
	lnrpc.UnimplementedLightningServer
	routerrpc.UnimplementedRouterServer
	chainrpc.UnimplementedChainNotifierServer
	verrpc.UnimplementedVersionerServer

	opts     Options
	key      domain.NodeKey
	macaroon string // hex, as the adapter sends it
	lis      net.Listener
	grpc     *grpc.Server

	// sw stands for lnd's switch loop in Coupled mode: held while offers
	// are sent and while an answer is applied.
	sw sync.Mutex

	mu        sync.Mutex
	stream    *icptStream // the open interceptor stream, nil if none
	streamUp  chan struct{}
	sent      map[circuit]time.Time                              // offered and not answered
	held      map[circuit]*routerrpc.ForwardHtlcInterceptRequest // the same, for the replay (Coupled)
	finals    map[circuit]bool                                   // settled?
	eventSubs map[chan *routerrpc.HtlcEvent]struct{}
	height    uint32
	epochSubs map[chan uint32]struct{}
	// channels is what ListChannels lists; nil: ListChannels is
	// unimplemented, as before SetChannels.
	channels []*lnrpc.Channel
	chanSubs map[chan *lnrpc.ChannelEventUpdate]struct{}
}

type circuit struct{ chanID, htlcID uint64 }

type icptStream struct {
	mu sync.Mutex // serialises Send
	s  routerrpc.Router_HtlcInterceptorServer
}

// Start listens on 127.0.0.1 with a fresh identity key, TLS certificate and
// macaroon in opts.Dir, and serves until Stop.
func Start(opts Options) (*Server, error) {
	k, err := btcec.NewPrivateKey()
	if err != nil {
		return nil, fmt.Errorf("lndfake: identity key: %w", err)
	}
	cert, _, err := tlscert.LoadOrGenerate(filepath.Join(opts.Dir, "tls.cert"), filepath.Join(opts.Dir, "tls.key"), nil, time.Now())
	if err != nil {
		return nil, fmt.Errorf("lndfake: tls certificate: %w", err)
	}
	mac := make([]byte, 32)
	rand.Read(mac)
	if err := os.WriteFile(filepath.Join(opts.Dir, "admin.macaroon"), mac, 0o600); err != nil {
		return nil, fmt.Errorf("lndfake: write macaroon: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("lndfake: listen: %w", err)
	}
	s := &Server{
		opts:      opts,
		macaroon:  hex.EncodeToString(mac),
		lis:       lis,
		streamUp:  make(chan struct{}),
		sent:      make(map[circuit]time.Time),
		held:      make(map[circuit]*routerrpc.ForwardHtlcInterceptRequest),
		finals:    make(map[circuit]bool),
		eventSubs: make(map[chan *routerrpc.HtlcEvent]struct{}),
		epochSubs: make(map[chan uint32]struct{}),
		height:    opts.Height,
	}
	copy(s.key[:], k.PubKey().SerializeCompressed())
	var window []grpc.ServerOption
	if opts.Window > 0 {
		window = []grpc.ServerOption{grpc.InitialWindowSize(opts.Window), grpc.InitialConnWindowSize(opts.Window)}
	}
	s.grpc = grpc.NewServer(append(window,
		grpc.Creds(credentials.NewServerTLSFromCert(&cert)),
		// lnd's default ping policy (lnd.go, config.go
		// grpc.client-ping-min-wait): gRPC's own would send the adapter's
		// keepalive pings away with too_many_pings.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := s.authorize(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := s.authorize(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	)...)
	lnrpc.RegisterLightningServer(s.grpc, s)
	routerrpc.RegisterRouterServer(s.grpc, s)
	chainrpc.RegisterChainNotifierServer(s.grpc, s)
	verrpc.RegisterVersionerServer(s.grpc, s)
	// Every goroutine of the fake's gRPC server (its connections' readers and
	// writers, the stream handlers) carries the label side=lnd, so that a
	// CPU profile of a load run tells lnmux's share from the fake's
	// (docs/benchmarks.md).
	go pprof.Do(context.Background(), FakeLabels, func(context.Context) { _ = s.grpc.Serve(lis) })
	return s, nil
}

// FakeLabels marks the fake lnd's goroutines in CPU profiles:
// `go tool pprof -tagignore side=lnd` shows lnmux's CPU alone.
var FakeLabels = pprof.Labels("side", "lnd")

// authorize checks the macaroon header as lnd does (presence and value).
func (s *Server) authorize(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get("macaroon")
	if len(v) != 1 || subtle.ConstantTimeCompare([]byte(v[0]), []byte(s.macaroon)) != 1 {
		return status.Error(codes.Unauthenticated, "lndfake: missing or wrong macaroon")
	}
	return nil
}

// Stop ends every stream and the listener.
func (s *Server) Stop() { s.grpc.Stop() }

// Key is the node's identity key.
func (s *Server) Key() domain.NodeKey { return s.key }

// Config is the adapter configuration that reaches this node.
func (s *Server) Config() lnd.Config {
	return lnd.Config{
		PubKey:       s.key,
		URL:          s.lis.Addr().String(),
		TLSCertPath:  filepath.Join(s.opts.Dir, "tls.cert"),
		MacaroonPath: filepath.Join(s.opts.Dir, "admin.macaroon"),
		Network:      "regtest",
		MinBackoff:   50 * time.Millisecond,
		MaxBackoff:   time.Second,
	}
}

// GetInfo reports the flags and version the adapter requires.
func (s *Server) GetInfo(context.Context, *lnrpc.GetInfoRequest) (*lnrpc.GetInfoResponse, error) {
	s.mu.Lock()
	h := s.height
	s.mu.Unlock()
	return &lnrpc.GetInfoResponse{
		IdentityPubkey:            s.key.String(),
		Version:                   s.version(),
		BlockHeight:               h,
		Chains:                    []*lnrpc.Chain{{Chain: "bitcoin", Network: "regtest"}},
		RequireHtlcInterceptor:    true,
		StoreFinalHtlcResolutions: true,
		SyncedToChain:             true,
	}, nil
}

func (s *Server) version() string {
	if s.opts.Version != "" {
		return s.opts.Version
	}
	return "0.21.3-beta commit=lndfake"
}

// GetVersion lists the build tags the adapter checks.
func (s *Server) GetVersion(context.Context, *verrpc.VersionRequest) (*verrpc.Version, error) {
	return &verrpc.Version{Version: "0.21.3-beta", AppMajor: 0, AppMinor: 21, AppPatch: 3,
		BuildTags: []string{"autopilotrpc", "signrpc", "walletrpc", "chainrpc", "invoicesrpc", "routerrpc"}}, nil
}

// LookupHtlcResolution answers from the answers this node applied.
func (s *Server) LookupHtlcResolution(_ context.Context, req *lnrpc.LookupHtlcResolutionRequest) (*lnrpc.LookupHtlcResolutionResponse, error) {
	s.mu.Lock()
	settled, ok := s.finals[circuit{req.ChanId, req.HtlcIndex}]
	s.mu.Unlock()
	if !ok {
		return nil, status.Error(codes.NotFound, "htlc unknown or not final")
	}
	return &lnrpc.LookupHtlcResolutionResponse{Settled: settled, Offchain: true}, nil
}

// SetChannels sets what ListChannels lists from now on and sends
// SubscribeChannelEvents subscribers an ACTIVE_CHANNEL event.
func (s *Server) SetChannels(chs []*lnrpc.Channel) {
	s.mu.Lock()
	s.channels = append([]*lnrpc.Channel{}, chs...)
	subs := make([]chan *lnrpc.ChannelEventUpdate, 0, len(s.chanSubs))
	for ch := range s.chanSubs {
		subs = append(subs, ch)
	}
	s.mu.Unlock()
	for _, ch := range subs {
		select {
		case ch <- &lnrpc.ChannelEventUpdate{Type: lnrpc.ChannelEventUpdate_ACTIVE_CHANNEL}:
		default:
		}
	}
}

// ChannelSubscribers is the number of open SubscribeChannelEvents streams.
func (s *Server) ChannelSubscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.chanSubs)
}

// ListChannels lists the channels SetChannels set (the active ones when
// asked); unimplemented before the first SetChannels.
func (s *Server) ListChannels(_ context.Context, req *lnrpc.ListChannelsRequest) (*lnrpc.ListChannelsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.channels == nil {
		return nil, status.Error(codes.Unimplemented, "lndfake: no channels set")
	}
	res := &lnrpc.ListChannelsResponse{}
	for _, c := range s.channels {
		if c.Active || !req.ActiveOnly {
			res.Channels = append(res.Channels, c)
		}
	}
	return res, nil
}

// SubscribeChannelEvents sends an event for every SetChannels.
func (s *Server) SubscribeChannelEvents(_ *lnrpc.ChannelEventSubscription, st lnrpc.Lightning_SubscribeChannelEventsServer) error {
	ch := make(chan *lnrpc.ChannelEventUpdate, 16)
	s.mu.Lock()
	if s.chanSubs == nil {
		s.chanSubs = map[chan *lnrpc.ChannelEventUpdate]struct{}{}
	}
	s.chanSubs[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.chanSubs, ch)
		s.mu.Unlock()
	}()
	for {
		select {
		case <-st.Context().Done():
			return nil
		case ev := <-ch:
			if err := st.Send(ev); err != nil {
				return err
			}
		}
	}
}

// RegisterBlockEpochNtfn sends the tip, then every new height.
func (s *Server) RegisterBlockEpochNtfn(_ *chainrpc.BlockEpoch, st chainrpc.ChainNotifier_RegisterBlockEpochNtfnServer) error {
	ch := make(chan uint32, 16)
	s.mu.Lock()
	h := s.height
	s.epochSubs[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.epochSubs, ch)
		s.mu.Unlock()
	}()
	if err := st.Send(&chainrpc.BlockEpoch{Height: h, Hash: make([]byte, 32)}); err != nil {
		return err
	}
	for {
		select {
		case <-st.Context().Done():
			return nil
		case h := <-ch:
			if err := st.Send(&chainrpc.BlockEpoch{Height: h, Hash: make([]byte, 32)}); err != nil {
				return err
			}
		}
	}
}

// Mine announces a new height.
func (s *Server) Mine(height uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.height = height
	for ch := range s.epochSubs {
		select {
		case ch <- height:
		default:
		}
	}
}

// SubscribeHtlcEvents confirms the subscription, then reports a
// FinalHtlcEvent for every HTLC answered with SETTLE or FAIL.
func (s *Server) SubscribeHtlcEvents(_ *routerrpc.SubscribeHtlcEventsRequest, st routerrpc.Router_SubscribeHtlcEventsServer) error {
	ch := make(chan *routerrpc.HtlcEvent, 1<<16)
	s.mu.Lock()
	s.eventSubs[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.eventSubs, ch)
		s.mu.Unlock()
	}()
	if err := st.Send(&routerrpc.HtlcEvent{Event: &routerrpc.HtlcEvent_SubscribedEvent{SubscribedEvent: &routerrpc.SubscribedEvent{}}}); err != nil {
		return err
	}
	for {
		select {
		case <-st.Context().Done():
			return nil
		case ev := <-ch:
			if err := st.Send(ev); err != nil {
				return err
			}
		}
	}
}

// HtlcInterceptor takes the one interceptor stream lnd allows and reads its
// answers. In Coupled mode the held HTLCs are offered to it again first,
// as lnd does when an interceptor registers.
func (s *Server) HtlcInterceptor(st routerrpc.Router_HtlcInterceptorServer) error {
	is := &icptStream{s: st}
	if s.opts.Coupled {
		// The loop takes the registration and replays before it applies
		// any answer of this stream.
		s.sw.Lock()
	}
	s.mu.Lock()
	if s.stream != nil {
		s.mu.Unlock()
		if s.opts.Coupled {
			s.sw.Unlock()
		}
		return status.Error(codes.AlreadyExists, "interceptor already registered")
	}
	s.stream = is
	close(s.streamUp)
	var replay []*routerrpc.ForwardHtlcInterceptRequest
	if s.opts.Coupled {
		for c, req := range s.held {
			s.sent[c] = time.Now()
			replay = append(replay, req)
		}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.stream = nil
		s.streamUp = make(chan struct{})
		s.mu.Unlock()
	}()
	var replaying sync.WaitGroup
	defer replaying.Wait() // ends with the stream: Send returns then
	if s.opts.Coupled {
		replaying.Go(func() {
			defer s.sw.Unlock()
			for _, req := range replay {
				is.mu.Lock()
				err := st.Send(req)
				is.mu.Unlock()
				if err != nil {
					return // lnd logs it and waits for the next interceptor
				}
			}
		})
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return nil
		}
		if s.opts.Coupled {
			s.sw.Lock()
		}
		err = s.apply(resp)
		if s.opts.Coupled {
			s.sw.Unlock()
		}
		if err != nil {
			return err
		}
	}
}

// apply carries out one answer as lnd's switch does; an error ends the
// stream.
func (s *Server) apply(resp *routerrpc.ForwardHtlcInterceptResponse) error {
	now := time.Now()
	c := circuit{resp.GetIncomingCircuitKey().GetChanId(), resp.GetIncomingCircuitKey().GetHtlcId()}
	s.mu.Lock()
	sentAt, ok := s.sent[c]
	delete(s.sent, c)
	delete(s.held, c)
	var subs []chan *routerrpc.HtlcEvent
	final := resp.Action == routerrpc.ResolveHoldForwardAction_SETTLE || resp.Action == routerrpc.ResolveHoldForwardAction_FAIL
	if ok && final {
		s.finals[c] = resp.Action == routerrpc.ResolveHoldForwardAction_SETTLE
		if !s.opts.NoFinalEvents {
			for ch := range s.eventSubs {
				subs = append(subs, ch)
			}
		}
	}
	s.mu.Unlock()
	if !ok {
		// lnd ends the stream on an answer for an HTLC it does not hold.
		return status.Errorf(codes.InvalidArgument, "answer for unknown circuit %d:%d", c.chanID, c.htlcID)
	}
	for _, ch := range subs {
		ev := &routerrpc.HtlcEvent{IncomingChannelId: c.chanID, IncomingHtlcId: c.htlcID,
			Event: &routerrpc.HtlcEvent_FinalHtlcEvent{FinalHtlcEvent: &routerrpc.FinalHtlcEvent{
				Settled: resp.Action == routerrpc.ResolveHoldForwardAction_SETTLE, Offchain: true}}}
		select {
		case ch <- ev:
		default: // a subscriber that falls behind loses events, as in lnd
		}
	}
	if s.opts.OnAnswer != nil {
		s.opts.OnAnswer(Answer{Chan: c.chanID, HTLC: c.htlcID, Action: resp.Action, Preimage: resp.Preimage, Latency: now.Sub(sentAt)})
	}
	return nil
}

// WaitInterceptor waits until the adapter has opened its interceptor stream.
func (s *Server) WaitInterceptor(ctx context.Context) error {
	s.mu.Lock()
	up := s.streamUp
	s.mu.Unlock()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("lndfake: no interceptor stream: %w", ctx.Err())
	}
}

// ErrNoStream: no interceptor stream is open.
var ErrNoStream = errors.New("lndfake: no interceptor stream")

// Offer sends an HTLC on the interceptor stream, as lnd does for an HTLC
// that would leave over the requested channel. In Coupled mode it stays
// held until answered, and is offered again to the next stream.
func (s *Server) Offer(req *routerrpc.ForwardHtlcInterceptRequest) error {
	c := circuit{req.IncomingCircuitKey.GetChanId(), req.IncomingCircuitKey.GetHtlcId()}
	if s.opts.Coupled {
		s.sw.Lock()
		defer s.sw.Unlock()
	}
	s.mu.Lock()
	is := s.stream
	if is == nil {
		// lnd with --requireinterceptor fails a new HTLC at once while no
		// interceptor is registered (docs/lnd-behaviour.md, fact 1).
		s.mu.Unlock()
		return ErrNoStream
	}
	if s.opts.Coupled {
		s.held[c] = req
	}
	s.sent[c] = time.Now()
	s.mu.Unlock()
	is.mu.Lock()
	err := is.s.Send(req)
	is.mu.Unlock()
	if err != nil {
		return fmt.Errorf("lndfake: offer %d:%d: %w", c.chanID, c.htlcID, err)
	}
	return nil
}

// Held counts the HTLCs offered and not answered (Coupled mode).
func (s *Server) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}
