package connectrpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

func bytes32(b byte) (a [32]byte) {
	for i := range a {
		a[i] = b
	}
	return a
}

var (
	testHash     = domain.PaymentHash(bytes32(1))
	testSetID    = domain.SetID(bytes32(2))
	testPreimage = domain.Preimage(bytes32(3))
	testAddr     = domain.PaymentAddr(bytes32(4))
	testDescHash = bytes32(5)
	testPubKey   = domain.NodeKey{0x02, 0xaa, 0xbb}
	testNodeKey  = domain.NodeKey{0x03, 0xcc, 0xdd}
)

func newFake() *fakeService {
	settleAt := time.Unix(1_700_000_000, 0)
	return &fakeService{
		info: ports.Info{
			PubKey:     testPubKey,
			Network:    "regtest",
			AutoSettle: true,
			Nodes: []ports.NodeStatus{{
				Node: testNodeKey, Connected: true, InterceptorActive: true,
				Height: 812, LastError: "tls: bad certificate",
				Inbound: 123_456_000, InboundKnown: true, Hint: ports.HintNoInbound,
			}},
		},
		addRes: ports.AddInvoiceResult{
			PaymentRequest: "lnbcrt200n1test",
			Hash:           testHash,
			Preimage:       testPreimage,
			PaymentAddr:    testAddr,
			ExpiresAt:      settleAt.Add(10 * time.Minute),
		},
		accepted: []ports.AcceptedEvent{
			{Hash: testHash, SetID: testSetID, Amount: 20_000},
			{Hash: domain.PaymentHash(bytes32(6)), SetID: domain.SetID(bytes32(7)), Amount: 1},
		},
		updates: []ports.InvoiceUpdate{
			{Hash: testHash, Status: domain.StatusOpen},
			{Hash: testHash, Status: domain.StatusAccepted, SetID: testSetID},
			{Hash: testHash, Status: domain.StatusSettleRequested, SetID: testSetID},
			{Hash: testHash, Status: domain.StatusSettled, SetID: testSetID},
		},
		final: domain.StatusSettled,
		lookup: ports.InvoiceLookup{
			Hash: testHash, State: ports.LookupStored,
			Invoice: domain.Invoice{
				Hash: testHash, Preimage: testPreimage, Amount: 20_000, AmountPaid: 20_001,
				SetID: testSetID, Status: domain.StatusSettleRequested, Sequence: 5, SettleRequestedAt: settleAt,
				HTLCs: []domain.SettledHTLC{
					{Circuit: domain.CircuitKey{Node: testNodeKey, Chan: 1<<63 + 1, HTLC: 2}, Amount: 20_000, Status: domain.HTLCSettled},
					{Circuit: domain.CircuitKey{Node: testNodeKey, Chan: 3, HTLC: 4}, Amount: 1, Status: domain.HTLCPending},
				},
			},
		},
		events: []ports.InvoiceEvent{
			{Hash: domain.PaymentHash(bytes32(6)), Status: domain.StatusAccepted, SetID: domain.SetID(bytes32(7)), AmountPaid: 7},
			{Cursor: 9, Hash: testHash, Status: domain.StatusSettleRequested, SetID: testSetID, Amount: 20_000, AmountPaid: 20_001, Sequence: 5, At: settleAt},
			{Cursor: 11, Hash: testHash, Status: domain.StatusFailed, SetID: testSetID, Amount: 20_000, AmountPaid: 20_001, Sequence: 5, At: settleAt.Add(time.Second)},
			{Cursor: 12, Hash: domain.PaymentHash(bytes32(8)), Status: domain.StatusCancelled, At: settleAt.Add(2 * time.Second)},
		},
		invoices: []domain.Invoice{
			{
				Hash: testHash, Preimage: testPreimage, Amount: 20_000, AmountPaid: 20_001,
				SetID: testSetID, Status: domain.StatusSettled, Sequence: 5,
				SettleRequestedAt: settleAt, FinalizedAt: settleAt.Add(time.Second),
			},
			{
				Hash: domain.PaymentHash(bytes32(6)), Preimage: domain.Preimage(bytes32(8)),
				AmountPaid: 7, SetID: domain.SetID(bytes32(7)), Status: domain.StatusSettleRequested,
				Sequence: 6, SettleRequestedAt: settleAt,
			},
		},
	}
}

// syncBuffer is a log sink the server goroutines and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testServer struct {
	*httptest.Server
	h   *Handler
	log *syncBuffer
}

// newTestServer serves the handler with NewHTTPServer's configuration
// (HTTP/1.1 and h2c on one listener), as production does.
func newTestServer(t *testing.T, svc ports.Service, opts ...Option) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := NewHandler(svc, log, opts...)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config = NewHTTPServer("", h)
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	return &testServer{Server: srv, h: h, log: logs}
}

// h2cClient speaks cleartext HTTP/2 with prior knowledge, as gRPC clients do.
func h2cClient(t *testing.T) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func grpcConn(t *testing.T, srv *testServer) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(srv.Listener.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// caller performs one RPC and returns every response message.
type caller func(ctx context.Context, method string, req proto.Message, newResp func() proto.Message) ([]proto.Message, error)

type transport struct {
	name string
	dial func(t *testing.T, srv *testServer) caller
}

// transports are the ways a client reaches the one listener.
var transports = []transport{
	{"connect-proto/http1", func(t *testing.T, srv *testServer) caller {
		return connectCaller(lnmuxpbconnect.NewServiceClient(srv.Client(), srv.URL))
	}},
	{"connect-json/h2c", func(t *testing.T, srv *testServer) caller {
		return connectCaller(lnmuxpbconnect.NewServiceClient(h2cClient(t), srv.URL, connect.WithProtoJSON()))
	}},
	{"grpc-web/http1", func(t *testing.T, srv *testServer) caller {
		return connectCaller(lnmuxpbconnect.NewServiceClient(srv.Client(), srv.URL, connect.WithGRPCWeb()))
	}},
	{"grpc/connect-go", func(t *testing.T, srv *testServer) caller {
		return connectCaller(lnmuxpbconnect.NewServiceClient(h2cClient(t), srv.URL, connect.WithGRPC()))
	}},
	{"grpc/grpc-go", func(t *testing.T, srv *testServer) caller {
		return grpcCaller(grpcConn(t, srv))
	}},
}

var streaming = map[string]bool{"SubscribeInvoiceAccepted": true, "SubscribeSingleInvoice": true, "SubscribeInvoiceEvents": true}

func unary[T any](resp *connect.Response[T], err error) ([]proto.Message, error) {
	if err != nil {
		return nil, err
	}
	return []proto.Message{any(resp.Msg).(proto.Message)}, nil
}

func collect[T any](st *connect.ServerStreamForClient[T], err error) ([]proto.Message, error) {
	if err != nil {
		return nil, err
	}
	defer func() { _ = st.Close() }()
	var out []proto.Message
	for st.Receive() {
		out = append(out, any(st.Msg()).(proto.Message))
	}
	return out, st.Err()
}

func connectCaller(c lnmuxpbconnect.ServiceClient) caller {
	return func(ctx context.Context, _ string, req proto.Message, _ func() proto.Message) ([]proto.Message, error) {
		switch r := req.(type) {
		case *lnmuxpb.GetInfoRequest:
			return unary(c.GetInfo(ctx, connect.NewRequest(r)))
		case *lnmuxpb.AddInvoiceRequest:
			return unary(c.AddInvoice(ctx, connect.NewRequest(r)))
		case *lnmuxpb.BatchAddInvoiceRequest:
			return unary(c.BatchAddInvoice(ctx, connect.NewRequest(r)))
		case *lnmuxpb.SubscribeInvoiceAcceptedRequest:
			return collect(c.SubscribeInvoiceAccepted(ctx, connect.NewRequest(r)))
		case *lnmuxpb.WaitForInvoiceFinalStatusRequest:
			return unary(c.WaitForInvoiceFinalStatus(ctx, connect.NewRequest(r)))
		case *lnmuxpb.SettleInvoiceRequest:
			return unary(c.SettleInvoice(ctx, connect.NewRequest(r)))
		case *lnmuxpb.CancelInvoiceRequest:
			return unary(c.CancelInvoice(ctx, connect.NewRequest(r)))
		case *lnmuxpb.ListInvoicesRequest:
			return unary(c.ListInvoices(ctx, connect.NewRequest(r)))
		case *lnmuxpb.SubscribeSingleInvoiceRequest:
			return collect(c.SubscribeSingleInvoice(ctx, connect.NewRequest(r)))
		case *lnmuxpb.LookupInvoiceRequest:
			return unary(c.LookupInvoice(ctx, connect.NewRequest(r)))
		case *lnmuxpb.SubscribeInvoiceEventsRequest:
			return collect(c.SubscribeInvoiceEvents(ctx, connect.NewRequest(r)))
		}
		return nil, fmt.Errorf("no client method for %T", req)
	}
}

func grpcCaller(conn *grpc.ClientConn) caller {
	return func(ctx context.Context, method string, req proto.Message, newResp func() proto.Message) ([]proto.Message, error) {
		full := "/" + lnmuxpbconnect.ServiceName + "/" + method
		if !streaming[method] {
			resp := newResp()
			if err := conn.Invoke(ctx, full, req, resp); err != nil {
				return nil, err
			}
			return []proto.Message{resp}, nil
		}
		st, err := conn.NewStream(ctx, &grpc.StreamDesc{StreamName: method, ServerStreams: true}, full)
		if err != nil {
			return nil, err
		}
		if err := st.SendMsg(req); err != nil {
			return nil, err
		}
		if err := st.CloseSend(); err != nil {
			return nil, err
		}
		var out []proto.Message
		for {
			resp := newResp()
			err := st.RecvMsg(resp)
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return out, err
			}
			out = append(out, resp)
		}
	}
}

// codeAndMessage reads the status of a Connect or grpc-go error.
func codeAndMessage(err error) (connect.Code, string) {
	if cerr, ok := errors.AsType[*connect.Error](err); ok {
		return cerr.Code(), cerr.Message()
	}
	if st, ok := status.FromError(err); ok {
		return connect.Code(st.Code()), st.Message()
	}
	return connect.CodeUnknown, err.Error()
}

func newResp[T any, P interface {
	*T
	proto.Message
}]() func() proto.Message {
	return func() proto.Message { return P(new(T)) }
}

func text(msgs []proto.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%T{%s}\n", m, prototext.MarshalOptions{}.Format(m))
	}
	return b.String()
}

func equalMessages(a, b []proto.Message) bool {
	return slices.EqualFunc(a, b, proto.Equal)
}

type rpcCase struct {
	method  string
	req     proto.Message
	newResp func() proto.Message
	want    []proto.Message
	check   func(t *testing.T, f *fakeService)
}

func rpcCases() []rpcCase {
	other := bytes32(6)
	return []rpcCase{
		{
			method: "GetInfo", req: &lnmuxpb.GetInfoRequest{}, newResp: newResp[lnmuxpb.GetInfoResponse](),
			want: []proto.Message{&lnmuxpb.GetInfoResponse{
				PubKey: testPubKey[:], Network: "regtest", AutoSettle: true,
				Nodes: []*lnmuxpb.NodeInfo{{
					PubKey: testNodeKey[:], Connected: true, InterceptorActive: true,
					BlockHeight: 812, LastError: "tls: bad certificate",
					InboundMsat: 123_456_000, InboundKnown: true, HintStatus: lnmuxpb.NodeInfo_HINT_STATUS_NO_INBOUND,
				}},
			}},
		},
		{
			method: "AddInvoice",
			req: &lnmuxpb.AddInvoiceRequest{
				AmtMsat: 20_000, DescriptionHash: testDescHash[:], ExpirySecs: 600,
			},
			newResp: newResp[lnmuxpb.AddInvoiceResponse](),
			want: []proto.Message{&lnmuxpb.AddInvoiceResponse{
				PaymentRequest: "lnbcrt200n1test", Preimage: testPreimage[:], Hash: testHash[:],
				PaymentAddr: testAddr[:], ExpiresAt: 1_700_000_600,
			}},
			check: func(t *testing.T, f *fakeService) {
				want := ports.AddInvoiceRequest{Amount: 20_000, DescriptionHash: &testDescHash, Expiry: 10 * time.Minute}
				got := f.addReq
				if got.Amount != want.Amount || got.Expiry != want.Expiry || got.Description != "" ||
					got.DescriptionHash == nil || *got.DescriptionHash != testDescHash {
					t.Errorf("AddInvoice got %+v, want %+v", got, want)
				}
			},
		},
		{
			method: "BatchAddInvoice",
			req: &lnmuxpb.BatchAddInvoiceRequest{Invoices: []*lnmuxpb.AddInvoiceRequest{
				{AmtMsat: 1_000, ExpirySecs: 60, Description: "first"},
				{AmtMsat: 20_000, DescriptionHash: testDescHash[:], ExpirySecs: 600},
			}},
			newResp: newResp[lnmuxpb.BatchAddInvoiceResponse](),
			want: []proto.Message{&lnmuxpb.BatchAddInvoiceResponse{Invoices: []*lnmuxpb.AddInvoiceResponse{
				{PaymentRequest: "lnbcrt200n1test", Preimage: testPreimage[:], Hash: testHash[:], PaymentAddr: testAddr[:], ExpiresAt: 1_700_000_600},
				{PaymentRequest: "lnbcrt200n1test", Preimage: testPreimage[:], Hash: testHash[:], PaymentAddr: testAddr[:], ExpiresAt: 1_700_000_600},
			}}},
			check: func(t *testing.T, f *fakeService) {
				// The fake remembers the last request: the batch's second.
				got := f.addReq
				if got.Amount != 20_000 || got.Expiry != 10*time.Minute || got.DescriptionHash == nil || *got.DescriptionHash != testDescHash {
					t.Errorf("last AddInvoice of the batch got %+v, want the second request (20000 msat, 10m, description hash)", got)
				}
			},
		},
		{
			method: "SubscribeInvoiceAccepted", req: &lnmuxpb.SubscribeInvoiceAcceptedRequest{},
			newResp: newResp[lnmuxpb.SubscribeInvoiceAcceptedResponse](),
			want: []proto.Message{
				&lnmuxpb.SubscribeInvoiceAcceptedResponse{Hash: testHash[:], SetId: testSetID[:]},
				&lnmuxpb.SubscribeInvoiceAcceptedResponse{Hash: other[:], SetId: bytesOf(bytes32(7))},
			},
		},
		{
			method: "WaitForInvoiceFinalStatus", req: &lnmuxpb.WaitForInvoiceFinalStatusRequest{Hash: testHash[:]},
			newResp: newResp[lnmuxpb.WaitForInvoiceFinalStatusResponse](),
			want: []proto.Message{&lnmuxpb.WaitForInvoiceFinalStatusResponse{
				InvoiceStatus: lnmuxpb.InvoiceStatus_SETTLED,
			}},
			check: func(t *testing.T, f *fakeService) {
				if f.hash != testHash {
					t.Errorf("hash = %s", f.hash)
				}
			},
		},
		{
			method: "SettleInvoice", req: &lnmuxpb.SettleInvoiceRequest{Hash: testHash[:], SetId: testSetID[:]},
			newResp: newResp[lnmuxpb.SettleInvoiceResponse](),
			want:    []proto.Message{&lnmuxpb.SettleInvoiceResponse{}},
			check: func(t *testing.T, f *fakeService) {
				if f.hash != testHash || f.setID != testSetID {
					t.Errorf("settle(%s, %s)", f.hash, f.setID)
				}
			},
		},
		{
			method: "CancelInvoice", req: &lnmuxpb.CancelInvoiceRequest{Hash: other[:], SetId: testSetID[:]},
			newResp: newResp[lnmuxpb.CancelInvoiceResponse](),
			want:    []proto.Message{&lnmuxpb.CancelInvoiceResponse{}},
			check: func(t *testing.T, f *fakeService) {
				if f.hash != other || f.setID != testSetID {
					t.Errorf("cancel(%s, %s)", f.hash, f.setID)
				}
			},
		},
		{
			// Permanent: no set id needed; the service's permanent cancel
			// gets the hash.
			method: "CancelInvoice", req: &lnmuxpb.CancelInvoiceRequest{Hash: other[:], Permanent: true},
			newResp: newResp[lnmuxpb.CancelInvoiceResponse](),
			want:    []proto.Message{&lnmuxpb.CancelInvoiceResponse{}},
			check: func(t *testing.T, f *fakeService) {
				calls := f.Calls()
				if f.hash != other || len(calls) == 0 || calls[len(calls)-1] != "CancelInvoicePermanently" {
					t.Errorf("permanent cancel reached the service as %v(%s)", calls, f.hash)
				}
			},
		},
		{
			// Permanent with a set id: accepted, every set is cancelled.
			method: "CancelInvoice", req: &lnmuxpb.CancelInvoiceRequest{Hash: testHash[:], SetId: testSetID[:], Permanent: true},
			newResp: newResp[lnmuxpb.CancelInvoiceResponse](),
			want:    []proto.Message{&lnmuxpb.CancelInvoiceResponse{}},
			check: func(t *testing.T, f *fakeService) {
				calls := f.Calls()
				if f.hash != testHash || len(calls) == 0 || calls[len(calls)-1] != "CancelInvoicePermanently" {
					t.Errorf("permanent cancel reached the service as %v(%s)", calls, f.hash)
				}
			},
		},
		{
			method: "ListInvoices", req: &lnmuxpb.ListInvoicesRequest{SequenceStart: 5},
			newResp: newResp[lnmuxpb.ListInvoicesResponse](),
			want: []proto.Message{&lnmuxpb.ListInvoicesResponse{
				Invoice: []*lnmuxpb.Invoice{
					{
						Hash: testHash[:], Preimage: testPreimage[:], AmountMsat: 20_000,
						Status: lnmuxpb.InvoiceStatus_SETTLED, SettleRequestedAt: 1_700_000_000,
						FinalizedAt: 1_700_000_001, SequenceNumber: 5, SetId: testSetID[:],
						AmountPaidMsat: 20_001,
					},
					{
						Hash: other[:], Preimage: bytesOf(bytes32(8)), AmountMsat: 0,
						Status: lnmuxpb.InvoiceStatus_SETTLE_REQUESTED, SettleRequestedAt: 1_700_000_000,
						SequenceNumber: 6, SetId: bytesOf(bytes32(7)), AmountPaidMsat: 7,
					},
				},
				FirstSequenceNumber: 5, LastSequenceNumber: 6,
			}},
			check: func(t *testing.T, f *fakeService) {
				if f.listFrom != 5 || f.listLimit != defaultListLimit {
					t.Errorf("list(%d, %d), want (5, %d)", f.listFrom, f.listLimit, defaultListLimit)
				}
			},
		},
		{
			method: "SubscribeSingleInvoice", req: &lnmuxpb.SubscribeSingleInvoiceRequest{Hash: testHash[:]},
			newResp: newResp[lnmuxpb.SubscribeSingleInvoiceResponse](),
			want: []proto.Message{
				&lnmuxpb.SubscribeSingleInvoiceResponse{State: lnmuxpb.SubscribeSingleInvoiceResponse_STATE_ACCEPTED, SetId: testSetID[:]},
				&lnmuxpb.SubscribeSingleInvoiceResponse{State: lnmuxpb.SubscribeSingleInvoiceResponse_STATE_SETTLE_REQUESTED, SetId: testSetID[:]},
				&lnmuxpb.SubscribeSingleInvoiceResponse{State: lnmuxpb.SubscribeSingleInvoiceResponse_STATE_SETTLED, SetId: testSetID[:]},
			},
			check: func(t *testing.T, f *fakeService) {
				if f.hash != testHash {
					t.Errorf("hash = %s", f.hash)
				}
			},
		},
	}
}

func eventCases() []rpcCase {
	other := bytes32(6)
	return []rpcCase{
		{
			method: "LookupInvoice", req: &lnmuxpb.LookupInvoiceRequest{Hash: testHash[:]},
			newResp: newResp[lnmuxpb.LookupInvoiceResponse](),
			want: []proto.Message{&lnmuxpb.LookupInvoiceResponse{
				State: lnmuxpb.LookupInvoiceResponse_LOOKUP_STATE_STORED, Hash: testHash[:], SetId: testSetID[:],
				Invoice: &lnmuxpb.Invoice{
					Hash: testHash[:], Preimage: testPreimage[:], AmountMsat: 20_000,
					Status: lnmuxpb.InvoiceStatus_SETTLE_REQUESTED, SettleRequestedAt: 1_700_000_000,
					SequenceNumber: 5, SetId: testSetID[:], AmountPaidMsat: 20_001,
				},
				Htlcs: []*lnmuxpb.StoredHtlc{
					{NodePubKey: testNodeKey[:], ChanId: 1<<63 + 1, HtlcId: 2, AmountMsat: 20_000, Status: lnmuxpb.StoredHtlc_HTLC_STATUS_SETTLED},
					{NodePubKey: testNodeKey[:], ChanId: 3, HtlcId: 4, AmountMsat: 1, Status: lnmuxpb.StoredHtlc_HTLC_STATUS_PENDING},
				},
			}},
			check: func(t *testing.T, f *fakeService) {
				if f.hash != testHash {
					t.Errorf("hash = %s", f.hash)
				}
			},
		},
		{
			method: "SubscribeInvoiceEvents", req: &lnmuxpb.SubscribeInvoiceEventsRequest{FromSequence: 8},
			newResp: newResp[lnmuxpb.SubscribeInvoiceEventsResponse](),
			want: []proto.Message{
				&lnmuxpb.SubscribeInvoiceEventsResponse{
					Type: lnmuxpb.SubscribeInvoiceEventsResponse_EVENT_TYPE_ACCEPTED, Hash: other[:],
					SetId: bytesOf(bytes32(7)), AmountPaidMsat: 7,
				},
				&lnmuxpb.SubscribeInvoiceEventsResponse{
					Type: lnmuxpb.SubscribeInvoiceEventsResponse_EVENT_TYPE_SETTLE_REQUESTED, Sequence: 9, Hash: testHash[:],
					SetId: testSetID[:], AmountMsat: 20_000, AmountPaidMsat: 20_001, InvoiceSequenceNumber: 5, At: 1_700_000_000,
				},
				&lnmuxpb.SubscribeInvoiceEventsResponse{
					Type: lnmuxpb.SubscribeInvoiceEventsResponse_EVENT_TYPE_FAILED, Sequence: 11, Hash: testHash[:],
					SetId: testSetID[:], AmountMsat: 20_000, AmountPaidMsat: 20_001, InvoiceSequenceNumber: 5, At: 1_700_000_001,
				},
				&lnmuxpb.SubscribeInvoiceEventsResponse{
					Type: lnmuxpb.SubscribeInvoiceEventsResponse_EVENT_TYPE_CANCELLED, Sequence: 12, Hash: bytesOf(bytes32(8)), At: 1_700_000_002,
				},
			},
			check: func(t *testing.T, f *fakeService) {
				if f.after != 8 {
					t.Errorf("after = %d, want 8", f.after)
				}
			},
		},
	}
}

func bytesOf(a [32]byte) []byte { return a[:] }

// TestRPCs calls every RPC through every protocol on the one listener.
func TestRPCs(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake()
			srv := newTestServer(t, fake)
			call := tr.dial(t, srv)
			methods := map[string]bool{}
			for _, tc := range append(rpcCases(), eventCases()...) {
				methods[tc.method] = true
				t.Run(tc.method, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
					defer cancel()
					got, err := call(ctx, tc.method, tc.req, tc.newResp)
					if err != nil {
						t.Fatalf("%s: %v", tc.method, err)
					}
					if !equalMessages(got, tc.want) {
						t.Errorf("%s returned\n%swant\n%s", tc.method, text(got), text(tc.want))
					}
					if tc.check != nil {
						tc.check(t, fake)
					}
				})
			}
			// Every RPC of the service is covered.
			sd := lnmuxpb.File_lnmux_lnmux_proto.Services().ByName("Service")
			for i := range sd.Methods().Len() {
				if m := string(sd.Methods().Get(i).Name()); !methods[m] {
					t.Errorf("no test case for %s", m)
				}
			}
		})
	}
}

// TestValidation sends invalid requests: each fails with INVALID_ARGUMENT
// naming the field, and the service is never called.
func TestValidation(t *testing.T) {
	t.Parallel()
	h, s := testHash[:], testSetID[:]
	short := make([]byte, 31)
	cases := []struct {
		method string
		req    proto.Message
		field  string
	}{
		{"AddInvoice", &lnmuxpb.AddInvoiceRequest{AmtMsat: -1, ExpirySecs: 60}, "amt_msat"},
		{"AddInvoice", &lnmuxpb.AddInvoiceRequest{AmtMsat: int64(domain.MaxMsat) + 1, ExpirySecs: 60}, "amt_msat"},
		{"AddInvoice", &lnmuxpb.AddInvoiceRequest{AmtMsat: 1}, "expiry_secs"},
		{"AddInvoice", &lnmuxpb.AddInvoiceRequest{AmtMsat: 1, ExpirySecs: -5}, "expiry_secs"},
		{"AddInvoice", &lnmuxpb.AddInvoiceRequest{AmtMsat: 1, ExpirySecs: 366 * 24 * 3600}, "expiry_secs"},
		{"AddInvoice", &lnmuxpb.AddInvoiceRequest{ExpirySecs: 60, Description: strings.Repeat("x", 640)}, "description"},
		{"AddInvoice", &lnmuxpb.AddInvoiceRequest{ExpirySecs: 60, Description: "x", DescriptionHash: h}, "description_hash"},
		{"AddInvoice", &lnmuxpb.AddInvoiceRequest{ExpirySecs: 60, DescriptionHash: short}, "description_hash"},
		{"BatchAddInvoice", &lnmuxpb.BatchAddInvoiceRequest{}, "invoices"},
		{"BatchAddInvoice", &lnmuxpb.BatchAddInvoiceRequest{Invoices: make([]*lnmuxpb.AddInvoiceRequest, maxBatchInvoices+1)}, "invoices"},
		{"BatchAddInvoice", &lnmuxpb.BatchAddInvoiceRequest{Invoices: []*lnmuxpb.AddInvoiceRequest{
			{AmtMsat: 1, ExpirySecs: 60}, {AmtMsat: -1, ExpirySecs: 60}}}, "invoices[1].amt_msat"},
		{"BatchAddInvoice", &lnmuxpb.BatchAddInvoiceRequest{Invoices: []*lnmuxpb.AddInvoiceRequest{
			{ExpirySecs: 60, Description: "x", DescriptionHash: h}}}, "invoices[0].description_hash"},
		{"WaitForInvoiceFinalStatus", &lnmuxpb.WaitForInvoiceFinalStatusRequest{}, "hash"},
		{"SettleInvoice", &lnmuxpb.SettleInvoiceRequest{Hash: short, SetId: s}, "hash"},
		{"SettleInvoice", &lnmuxpb.SettleInvoiceRequest{Hash: h}, "set_id"},
		{"SettleInvoice", &lnmuxpb.SettleInvoiceRequest{Hash: h, SetId: s, Preimage: short}, "preimage"},
		{"AddInvoice", &lnmuxpb.AddInvoiceRequest{AmtMsat: 1, ExpirySecs: 60, PaymentHash: short}, "payment_hash"},
		{"AddInvoice", &lnmuxpb.AddInvoiceRequest{AmtMsat: 1, ExpirySecs: 60, AcceptTimeoutSecs: -1}, "accept_timeout_secs"},
		{"AddInvoice", &lnmuxpb.AddInvoiceRequest{AmtMsat: 1, ExpirySecs: 60, AcceptTimeoutSecs: 65536}, "accept_timeout_secs"},
		{"BatchAddInvoice", &lnmuxpb.BatchAddInvoiceRequest{Invoices: []*lnmuxpb.AddInvoiceRequest{
			{AmtMsat: 1, ExpirySecs: 60, PaymentHash: short}}}, "invoices[0].payment_hash"},
		{"CancelInvoice", &lnmuxpb.CancelInvoiceRequest{SetId: s}, "hash"},
		{"CancelInvoice", &lnmuxpb.CancelInvoiceRequest{Hash: h, SetId: append(s, 0)}, "set_id"},
		{"CancelInvoice", &lnmuxpb.CancelInvoiceRequest{Hash: h}, "set_id"},
		{"CancelInvoice", &lnmuxpb.CancelInvoiceRequest{Permanent: true}, "hash"},
		{"CancelInvoice", &lnmuxpb.CancelInvoiceRequest{Hash: short, Permanent: true}, "hash"},
		{"CancelInvoice", &lnmuxpb.CancelInvoiceRequest{Hash: h, SetId: short, Permanent: true}, "set_id"},
		{"ListInvoices", &lnmuxpb.ListInvoicesRequest{MaxInvoicesCount: -1}, "max_invoices_count"},
		{"ListInvoices", &lnmuxpb.ListInvoicesRequest{MaxInvoicesCount: maxListLimit + 1}, "max_invoices_count"},
		{"SubscribeSingleInvoice", &lnmuxpb.SubscribeSingleInvoiceRequest{Hash: short}, "hash"},
		{"LookupInvoice", &lnmuxpb.LookupInvoiceRequest{Hash: short}, "hash"},
		{"LookupInvoice", &lnmuxpb.LookupInvoiceRequest{}, "hash"},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake()
			srv := newTestServer(t, fake)
			call := tr.dial(t, srv)
			for _, tc := range cases {
				t.Run(tc.method+"/"+tc.field, func(t *testing.T) {
					_, err := call(t.Context(), tc.method, tc.req, func() proto.Message { return new(lnmuxpb.SettleInvoiceResponse) })
					if err == nil {
						t.Fatalf("%s(%v) succeeded", tc.method, tc.req)
					}
					code, msg := codeAndMessage(err)
					if code != connect.CodeInvalidArgument || !strings.HasPrefix(msg, tc.field+": ") {
						t.Errorf("got %v %q, want invalid_argument %q…", code, msg, tc.field+": ")
					}
				})
			}
			if calls := fake.Calls(); len(calls) > 0 {
				t.Errorf("service called with invalid requests: %v", calls)
			}
		})
	}
}

// TestValidBoundaries accepts the limits themselves.
func TestValidBoundaries(t *testing.T) {
	t.Parallel()
	fake := newFake()
	srv := newTestServer(t, fake)
	c := lnmuxpbconnect.NewServiceClient(srv.Client(), srv.URL)
	for _, req := range []*lnmuxpb.AddInvoiceRequest{
		{AmtMsat: 0, ExpirySecs: 1},
		{AmtMsat: int64(domain.MaxMsat), ExpirySecs: int64(maxExpiry / time.Second), Description: strings.Repeat("x", maxDescriptionBytes)},
	} {
		if _, err := c.AddInvoice(t.Context(), connect.NewRequest(req)); err != nil {
			t.Errorf("AddInvoice(%v): %v", req, err)
		}
	}
	if _, err := c.ListInvoices(t.Context(), connect.NewRequest(&lnmuxpb.ListInvoicesRequest{MaxInvoicesCount: maxListLimit})); err != nil {
		t.Errorf("ListInvoices(%d): %v", maxListLimit, err)
	}
	if fake.listLimit != maxListLimit {
		t.Errorf("limit %d, want %d", fake.listLimit, maxListLimit)
	}
}

// TestErrorCodes checks the mapping of service errors through the wire.
// Errors about the request keep their domain message; every other one
// reaches the client as a generic message with an error id, which the
// server log repeats next to the details.
func TestErrorCodes(t *testing.T) {
	t.Parallel()
	const secret = "pq: password authentication failed for user lnmux at 10.0.0.7"
	storeTimeout := fmt.Errorf("request settle (postgres at 10.0.0.7:5432/lnmux): %w", context.DeadlineExceeded)
	cases := []struct {
		err     error
		code    connect.Code
		message string // "" means: err.Error()
		withID  bool   // message + " (error id <16 hex>)", logged with the id
	}{
		{fmt.Errorf("%w: amount too small", domain.ErrInvalidArgument), connect.CodeInvalidArgument, "", false},
		{domain.ErrInvoiceNotFound, connect.CodeNotFound, "", false},
		{fmt.Errorf("settle: %w", domain.ErrSetNotFound), connect.CodeNotFound, "", false},
		{domain.ErrSettleRequested, connect.CodeFailedPrecondition, "", false},
		{domain.ErrInvalidTransition, connect.CodeFailedPrecondition, "", false},
		{domain.ErrConflict, connect.CodeFailedPrecondition, "", false},
		{fmt.Errorf("leader lock (postgres at 10.0.0.7:5432/lnmux): %w", domain.ErrNotReady), connect.CodeUnavailable, "temporarily unavailable, retry later", true},
		// The client's context is alive: these deadlines are lnmux's own.
		{storeTimeout, connect.CodeUnavailable, "temporarily unavailable, retry later", true},
		{context.Canceled, connect.CodeUnavailable, "temporarily unavailable, retry later", true},
		{errors.New(secret), connect.CodeInternal, "internal error", true},
		{domain.ErrUnknownPaymentAddr, connect.CodeInternal, "internal error", true},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				t.Run(tc.err.Error(), func(t *testing.T) {
					fake := newFake()
					fake.err = tc.err
					srv := newTestServer(t, fake)
					call := tr.dial(t, srv)
					for _, rc := range rpcCases() {
						if rc.method == "GetInfo" {
							continue // Info cannot fail.
						}
						_, err := call(t.Context(), rc.method, rc.req, rc.newResp)
						code, msg := codeAndMessage(err)
						want := cmp(tc.message, tc.err.Error())
						if !tc.withID {
							if code != tc.code || msg != want {
								t.Errorf("%s: got %v %q, want %v %q", rc.method, code, msg, tc.code, want)
							}
							continue
						}
						id, ok := strings.CutPrefix(msg, want+" (error id ")
						id, ok2 := strings.CutSuffix(id, ")")
						if code != tc.code || !ok || !ok2 || len(id) != 16 {
							t.Errorf("%s: got %v %q, want %v %q with an error id", rc.method, code, msg, tc.code, want)
							continue
						}
						if strings.Contains(msg, "postgres") || strings.Contains(msg, "10.0.0.7") {
							t.Errorf("%s: client sees infrastructure detail: %q", rc.method, msg)
						}
						// The log ties the id to the details.
						var logged bool
						for line := range strings.SplitSeq(srv.log.String(), "\n") {
							if strings.Contains(line, "error_id="+id) && strings.Contains(line, tc.err.Error()) {
								logged = true
							}
						}
						if !logged {
							t.Errorf("%s: error id %s not logged with %q; log:\n%s", rc.method, id, tc.err, srv.log)
						}
					}
				})
			}
		})
	}
}

// TestClientDeadline: a call whose own deadline passes reports
// DEADLINE_EXCEEDED, not UNAVAILABLE.
func TestClientDeadline(t *testing.T) {
	t.Parallel()
	fake := newFake()
	fake.block = true
	srv := newTestServer(t, fake)
	client := lnmuxpbconnect.NewServiceClient(srv.Client(), srv.URL)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := client.WaitForInvoiceFinalStatus(ctx, connect.NewRequest(&lnmuxpb.WaitForInvoiceFinalStatusRequest{Hash: testHash[:]}))
	if connect.CodeOf(err) != connect.CodeDeadlineExceeded {
		t.Errorf("WaitForInvoiceFinalStatus past its deadline: %v", err)
	}
}

func cmp(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// TestPanic turns a panic into INTERNAL without details.
func TestPanic(t *testing.T) {
	t.Parallel()
	fake := newFake()
	fake.panicMsg = "secret detail"
	srv := newTestServer(t, fake)
	c := lnmuxpbconnect.NewServiceClient(srv.Client(), srv.URL)
	_, err := c.GetInfo(t.Context(), connect.NewRequest(&lnmuxpb.GetInfoRequest{}))
	if code, msg := codeAndMessage(err); code != connect.CodeInternal || strings.Contains(msg, "secret") {
		t.Errorf("got %v %q", code, msg)
	}
	if !strings.Contains(srv.log.String(), "rpc panicked") {
		t.Errorf("panic not logged:\n%s", srv.log)
	}
}

// TestProtocols checks that HTTP/1.1 and h2c share the listener.
func TestProtocols(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, newFake())
	for name, client := range map[string]*http.Client{"HTTP/1.1": srv.Client(), "HTTP/2.0": h2cClient(t)} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
			srv.URL+lnmuxpbconnect.ServiceGetInfoProcedure, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Proto != name || !strings.Contains(string(body), `"network":"regtest"`) {
			t.Errorf("%s: %s %s %s", name, resp.Proto, resp.Status, body)
		}
	}
}

// grpcWebFrame frames a message as gRPC-Web does.
func grpcWebFrame(flags byte, payload []byte) []byte {
	b := []byte{flags, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

// TestGRPCWebRaw sends the request a browser's gRPC-Web client sends,
// from an allowed origin, over HTTP/1.1.
func TestGRPCWebRaw(t *testing.T) {
	t.Parallel()
	const origin = "https://shop.example"
	fake := newFake()
	srv := newTestServer(t, fake, WithAllowedOrigins(origin))
	msg, err := proto.Marshal(&lnmuxpb.AddInvoiceRequest{AmtMsat: 20_000, ExpirySecs: 600})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
		srv.URL+lnmuxpbconnect.ServiceAddInvoiceProcedure, bytes.NewReader(grpcWebFrame(0, msg)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc-web+proto")
	req.Header.Set("X-Grpc-Web", "1")
	req.Header.Set("Origin", origin)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Fatalf("%s, headers %v", resp.Status, resp.Header)
	}
	var got lnmuxpb.AddInvoiceResponse
	var trailer string
	for len(body) >= 5 {
		n := binary.BigEndian.Uint32(body[1:5])
		frame := body[5 : 5+n]
		if body[0]&0x80 != 0 {
			trailer = strings.ToLower(string(frame))
		} else if err := proto.Unmarshal(frame, &got); err != nil {
			t.Fatal(err)
		}
		body = body[5+n:]
	}
	if got.GetPaymentRequest() != "lnbcrt200n1test" || !strings.Contains(trailer, "grpc-status: 0") && !strings.Contains(trailer, "grpc-status:0") {
		t.Errorf("response %v, trailer %q", &got, trailer)
	}
	if fake.addReq.Amount != 20_000 || fake.addReq.Expiry != 10*time.Minute {
		t.Errorf("service got %+v", fake.addReq)
	}
}

// TestCORS answers preflights from allowed origins only.
func TestCORS(t *testing.T) {
	t.Parallel()
	const allowed = "https://shop.example"
	preflight := func(t *testing.T, srv *testServer, origin string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodOptions,
			srv.URL+lnmuxpbconnect.ServiceAddInvoiceProcedure, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodPost)
		// Browsers send the names sorted and lower-case; rs/cors relies on it.
		req.Header.Set("Access-Control-Request-Headers", "connect-protocol-version,content-type,x-grpc-web")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}

	srv := newTestServer(t, newFake(), WithAllowedOrigins(allowed))
	resp := preflight(t, srv, allowed)
	if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") != allowed {
		t.Errorf("allowed origin: %s %v", resp.Status, resp.Header)
	}
	methods := resp.Header.Get("Access-Control-Allow-Methods")
	headers := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	if !strings.Contains(methods, http.MethodPost) || !strings.Contains(headers, "connect-protocol-version") ||
		!strings.Contains(headers, "x-grpc-web") {
		t.Errorf("allowed methods %q, headers %q", methods, headers)
	}
	if resp := preflight(t, srv, "https://evil.example"); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin allowed: %v", resp.Header)
	}
	// No origins configured: nothing cross-origin is allowed.
	if resp := preflight(t, newTestServer(t, newFake()), allowed); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("default allows %v", resp.Header)
	}
}

// rawCodec lets grpc-go send and receive hand-encoded messages, so the
// test needs neither grpc-go's generated reflection and health packages
// (which lnmux does not otherwise link) nor descriptors of its own.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// wireField returns the values of field num in an encoded message: bytes
// for length-delimited fields, the number for varints.
func wireField(t *testing.T, b []byte, num protowire.Number) (vals [][]byte, varint uint64) {
	t.Helper()
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(l))
		}
		b = b[l:]
		switch {
		case n == num && typ == protowire.BytesType:
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				t.Fatalf("bad field %d: %v", n, protowire.ParseError(l))
			}
			vals = append(vals, v)
			b = b[l:]
		case n == num && typ == protowire.VarintType:
			v, l := protowire.ConsumeVarint(b)
			if l < 0 {
				t.Fatalf("bad field %d: %v", n, protowire.ParseError(l))
			}
			varint = v
			b = b[l:]
		default:
			l := protowire.ConsumeFieldValue(n, typ, b)
			if l < 0 {
				t.Fatalf("bad field %d: %v", n, protowire.ParseError(l))
			}
			b = b[l:]
		}
	}
	return vals, varint
}

// TestReflection lists the services with a grpc-go client over both
// reflection versions, as grpcurl does, and resolves lnmux.Service's file.
func TestReflection(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, newFake())
	conn := grpcConn(t, srv)
	for _, svc := range []string{grpcreflect.ReflectV1ServiceName, grpcreflect.ReflectV1AlphaServiceName} {
		t.Run(svc, func(t *testing.T) {
			// ServerReflectionRequest{list_services: "*"}; v1alpha is
			// wire-identical to v1.
			req := protowire.AppendString(protowire.AppendTag(nil, 7, protowire.BytesType), "*")
			st, err := conn.NewStream(t.Context(), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true},
				"/"+svc+"/ServerReflectionInfo", grpc.ForceCodecV2(rawCodec{}))
			if err != nil {
				t.Fatal(err)
			}
			if err := st.SendMsg(&req); err != nil {
				t.Fatal(err)
			}
			if err := st.CloseSend(); err != nil {
				t.Fatal(err)
			}
			var resp []byte
			if err := st.RecvMsg(&resp); err != nil {
				t.Fatal(err)
			}
			// list_services_response (6) → service (1) → name (1).
			var names []string
			for _, list := range first(wireField(t, resp, 6)) {
				for _, svc := range first(wireField(t, list, 1)) {
					for _, name := range first(wireField(t, svc, 1)) {
						names = append(names, string(name))
					}
				}
			}
			if !slices.Contains(names, lnmuxpbconnect.ServiceName) || !slices.Contains(names, grpchealth.HealthV1ServiceName) {
				t.Errorf("services %v", names)
			}
		})
	}

	client := grpcreflect.NewClient(h2cClient(t), srv.URL, connect.WithGRPC())
	st := client.NewStream(t.Context())
	defer st.Close()
	files, err := st.FileContainingSymbol(lnmuxpbconnect.ServiceName)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 || files[0].GetName() != "lnmux/lnmux.proto" || files[0].GetPackage() != "lnmux" {
		t.Errorf("files %v", files)
	}
}

// TestHealth answers SERVING for the service and the process, through a
// Connect gRPC client and through grpc-go.
func TestHealth(t *testing.T) {
	t.Parallel()
	checker := grpchealth.NewStaticChecker(lnmuxpbconnect.ServiceName)
	srv := newTestServer(t, newFake(), WithHealthChecker(checker))
	client := grpchealth.NewClient(h2cClient(t), srv.URL, connect.WithGRPC())
	for _, svc := range []string{"", lnmuxpbconnect.ServiceName} {
		resp, err := client.Check(t.Context(), &grpchealth.CheckRequest{Service: svc})
		if err != nil || resp.Status != grpchealth.StatusServing {
			t.Errorf("Check(%q) = %v, %v", svc, resp, err)
		}
	}
	if _, err := client.Check(t.Context(), &grpchealth.CheckRequest{Service: "nope"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("unknown service: %v", err)
	}

	conn := grpcConn(t, srv)
	check := func() int32 {
		// HealthCheckRequest{service} → HealthCheckResponse{status (1)}.
		req := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), lnmuxpbconnect.ServiceName)
		var resp []byte
		if err := conn.Invoke(t.Context(), "/grpc.health.v1.Health/Check", &req, &resp, grpc.ForceCodecV2(rawCodec{})); err != nil {
			t.Fatal(err)
		}
		_, st := wireField(t, resp, 1)
		return int32(st)
	}
	if got := check(); got != int32(grpchealth.StatusServing) {
		t.Errorf("grpc-go health status %d", got)
	}
	checker.SetStatus(lnmuxpbconnect.ServiceName, grpchealth.StatusNotServing)
	if got := check(); got != int32(grpchealth.StatusNotServing) {
		t.Errorf("grpc-go health status %d after SetStatus", got)
	}
}

// TestShutdown ends open subscriptions and waits with UNAVAILABLE, so that
// http.Server.Shutdown returns promptly.
func TestShutdown(t *testing.T) {
	t.Parallel()
	fake := newFake()
	fake.block = true
	srv := newTestServer(t, fake)
	conn := grpcConn(t, srv)
	c := lnmuxpbconnect.NewServiceClient(h2cClient(t), srv.URL)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// A grpc-go subscriber that has received its first event.
	gst, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, lnmuxpbconnect.ServiceSubscribeInvoiceAcceptedProcedure)
	if err != nil {
		t.Fatal(err)
	}
	if err := gst.SendMsg(&lnmuxpb.SubscribeInvoiceAcceptedRequest{}); err != nil {
		t.Fatal(err)
	}
	_ = gst.CloseSend()
	if err := gst.RecvMsg(new(lnmuxpb.SubscribeInvoiceAcceptedResponse)); err != nil {
		t.Fatal(err)
	}
	// A Connect subscriber and a waiter.
	cst, err := c.SubscribeSingleInvoice(ctx, connect.NewRequest(&lnmuxpb.SubscribeSingleInvoiceRequest{Hash: testHash[:]}))
	if err != nil {
		t.Fatal(err)
	}
	if !cst.Receive() {
		t.Fatal(cst.Err())
	}
	waitErr := make(chan error, 1)
	go func() {
		_, err := c.WaitForInvoiceFinalStatus(ctx, connect.NewRequest(&lnmuxpb.WaitForInvoiceFinalStatusRequest{Hash: testHash[:]}))
		waitErr <- err
	}()
	for !slices.Contains(fake.Calls(), "WaitForFinalStatus") {
		time.Sleep(5 * time.Millisecond)
	}

	shutdownCtx, cancelShutdown := context.WithTimeout(ctx, 5*time.Second)
	defer cancelShutdown()
	if err := srv.Config.Shutdown(shutdownCtx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	for {
		err := gst.RecvMsg(new(lnmuxpb.SubscribeInvoiceAcceptedResponse))
		if err == nil {
			continue
		}
		if code, msg := codeAndMessage(err); code != connect.CodeUnavailable {
			t.Errorf("grpc-go subscriber: %v %q", code, msg)
		}
		break
	}
	for cst.Receive() {
	}
	if code := connect.CodeOf(cst.Err()); code != connect.CodeUnavailable {
		t.Errorf("connect subscriber: %v", cst.Err())
	}
	if err := <-waitErr; connect.CodeOf(err) != connect.CodeUnavailable {
		t.Errorf("waiter: %v", err)
	}
}

// TestInterceptors runs the caller's interceptors on lnmux RPCs.
func TestInterceptors(t *testing.T) {
	t.Parallel()
	var seen []string
	var mu sync.Mutex
	ic := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			mu.Lock()
			seen = append(seen, req.Spec().Procedure)
			mu.Unlock()
			return next(ctx, req)
		}
	})
	srv := newTestServer(t, newFake(), WithInterceptors(ic), WithoutTelemetry())
	c := lnmuxpbconnect.NewServiceClient(srv.Client(), srv.URL)
	if _, err := c.GetInfo(t.Context(), connect.NewRequest(&lnmuxpb.GetInfoRequest{})); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []string{lnmuxpbconnect.ServiceGetInfoProcedure}) {
		t.Errorf("interceptor saw %v", seen)
	}
}

// TestPaths mounts the handler on a shared mux by its paths.
func TestPaths(t *testing.T) {
	t.Parallel()
	h, err := NewHandler(newFake(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, p := range h.Paths() {
		mux.Handle(p, h)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "page") })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := lnmuxpbconnect.NewServiceClient(srv.Client(), srv.URL)
	if _, err := c.GetInfo(t.Context(), connect.NewRequest(&lnmuxpb.GetInfoRequest{})); err != nil {
		t.Errorf("GetInfo through shared mux: %v", err)
	}
}

func first[A, B any](a A, _ B) A { return a }

// TestDrain refuses new long-lived calls and reports NOT_SERVING; unary calls
// still work.
func TestDrain(t *testing.T) {
	t.Parallel()
	fake := newFake()
	fake.block = true
	srv := newTestServer(t, fake)
	srv.h.Drain()

	health := grpchealth.NewClient(h2cClient(t), srv.URL, connect.WithGRPC())
	for _, svc := range []string{"", lnmuxpbconnect.ServiceName} {
		resp, err := health.Check(t.Context(), &grpchealth.CheckRequest{Service: svc})
		if err != nil || resp.Status != grpchealth.StatusNotServing {
			t.Errorf("Check(%q) after Drain = %v, %v", svc, resp, err)
		}
	}
	call := grpcCaller(grpcConn(t, srv))
	for _, rc := range rpcCases() {
		_, err := call(t.Context(), rc.method, rc.req, rc.newResp)
		long := streaming[rc.method] || rc.method == "WaitForInvoiceFinalStatus"
		code, _ := codeAndMessage(err)
		if long && code != connect.CodeUnavailable || !long && err != nil {
			t.Errorf("%s after Drain: %v", rc.method, err)
		}
	}
}

// laggingService ends SubscribeInvoiceEvents as the app does for a client
// that fell behind, after sending its events.
type laggingService struct{ *fakeService }

func (l laggingService) SubscribeInvoiceEvents(ctx context.Context, after uint64, send func(ports.InvoiceEvent) error) error {
	_ = l.fakeService.SubscribeInvoiceEvents(ctx, after, send)
	return fmt.Errorf("%w: %w", domain.ErrNotReady, ports.ErrSubscriberLagged)
}

// TestSubscribeInvoiceEventsLaggedNamesTheCursor: a subscriber dropped for
// falling behind is told which from_sequence to resubscribe with: the last
// stored event it was sent, not an accepted one (sequence 0).
func TestSubscribeInvoiceEventsLaggedNamesTheCursor(t *testing.T) {
	t.Parallel()
	fake := newFake()
	fake.events = append(fake.events, ports.InvoiceEvent{Hash: testHash, Status: domain.StatusAccepted, SetID: testSetID})
	srv := newTestServer(t, laggingService{fake})
	client := lnmuxpbconnect.NewServiceClient(srv.Client(), srv.URL)
	got, err := collect(client.SubscribeInvoiceEvents(t.Context(), connect.NewRequest(&lnmuxpb.SubscribeInvoiceEventsRequest{FromSequence: 3})))
	if len(got) != 5 {
		t.Fatalf("%d events before the end, want 5", len(got))
	}
	code, msg := codeAndMessage(err)
	if code != connect.CodeUnavailable || !strings.Contains(msg, "from_sequence 12") {
		t.Fatalf("lagging subscriber ended with %v %q, want Unavailable naming from_sequence 12", code, msg)
	}
}
