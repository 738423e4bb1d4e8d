package connectrpc

import (
	"context"
	"errors"
	"io"
	"testing"

	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/lnmux/lnmux/ports"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// openWatch opens a health Watch stream without a macaroon and returns
// once the first status arrived (the stream then holds its slot) or the
// call failed.
func openWatch(ctx context.Context, conn *grpc.ClientConn) error {
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true},
		"/"+grpchealth.HealthV1ServiceName+"/Watch", grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		return err
	}
	req := []byte{} // HealthCheckRequest{service: ""}
	// A refused stream may already be over when the request goes out:
	// SendMsg then says io.EOF and RecvMsg has the status (grpc's
	// ClientStream contract).
	if err := st.SendMsg(&req); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	var resp []byte
	return st.RecvMsg(&resp)
}

// openReflection opens a reflection stream without a macaroon, lists the
// services once and leaves the stream open, as grpcurl's sessions are.
func openReflection(ctx context.Context, conn *grpc.ClientConn) error {
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true},
		"/"+grpcreflect.ReflectV1ServiceName+"/ServerReflectionInfo", grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		return err
	}
	req := protowire.AppendString(protowire.AppendTag(nil, 7, protowire.BytesType), "*")
	if err := st.SendMsg(&req); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	var resp []byte
	return st.RecvMsg(&resp)
}

// TestAnonymousStreamsCannotStarveTheAPI: health Watch and reflection
// streams, which need no macaroon, fill a cap of their own; the admin's
// subscriptions still get every slot of the API's.
func TestAnonymousStreamsCannotStarveTheAPI(t *testing.T) {
	t.Parallel()
	fake := newFake()
	fake.block = true
	macs := newMacaroons(t, 0x42)
	admin := bake(t, macs, ports.ScopeAdmin)
	srv := newTestServer(t, fake, WithAuthorizer(macs, true),
		WithStreamLimits(StreamLimits{Total: 4, PerClient: 4, Anonymous: 3, AnonymousPerClient: 3}))
	conn := grpcConn(t, srv)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	// An anonymous caller opens as many streams as it can.
	var open, refused int
	for i := range 10 {
		var err error
		if i%2 == 0 {
			err = openWatch(ctx, conn)
		} else {
			err = openReflection(ctx, conn)
		}
		switch status.Code(err) {
		case codes.OK:
			open++
		case codes.ResourceExhausted:
			refused++
		default:
			t.Fatalf("anonymous stream %d: %v", i, err)
		}
	}
	if open != 3 || refused != 7 {
		t.Errorf("anonymous streams: %d open, %d refused; want 3 and 7", open, refused)
	}

	// The admin still gets all four of the API's slots.
	actx := withHeader(ctx, "macaroon", admin)
	for i := range 4 {
		st, err := conn.NewStream(actx, &grpc.StreamDesc{ServerStreams: true}, lnmuxpbconnect.ServiceSubscribeInvoiceAcceptedProcedure)
		if err == nil {
			if err = st.SendMsg(&lnmuxpb.SubscribeInvoiceAcceptedRequest{}); err == nil {
				_ = st.CloseSend()
				err = st.RecvMsg(&lnmuxpb.SubscribeInvoiceAcceptedResponse{})
			}
		}
		if err != nil {
			t.Fatalf("admin's SubscribeInvoiceAccepted %d after the anonymous streams: %v", i, err)
		}
	}
	st := srv.h.Stats()
	if st.OpenStreams != 4 || st.RefusedStreams != 0 || st.OpenAnonymousStreams != 3 || st.RefusedAnonymousStreams != 7 {
		t.Errorf("stats %+v, want 4 open and none refused, 3 anonymous open and 7 refused", st)
	}
}
