package lnd

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lightningnetwork/lnd/lnrpc/chainrpc"
	"github.com/lightningnetwork/lnd/lnrpc/verrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// fakeConn answers GetVersion with version and every other call with
// Unimplemented for the services in missing, OK otherwise.
type fakeConn struct {
	version *verrpc.Version
	missing []string // service prefixes, e.g. "/chainrpc."
	calls   []string
}

func (f *fakeConn) unimplemented(method string) bool {
	for _, m := range f.missing {
		if strings.HasPrefix(method, m) {
			return true
		}
	}
	return false
}

func (f *fakeConn) Invoke(_ context.Context, method string, _, reply any, _ ...grpc.CallOption) error {
	f.calls = append(f.calls, method)
	if f.unimplemented(method) {
		return status.Error(codes.Unimplemented, "unknown service")
	}
	if method == "/verrpc.Versioner/GetVersion" {
		proto.Merge(reply.(proto.Message), f.version)
	}
	return nil
}

func (f *fakeConn) NewStream(ctx context.Context, _ *grpc.StreamDesc, method string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	f.calls = append(f.calls, method)
	return &fakeStream{ctx: ctx, err: func() error {
		if f.unimplemented(method) {
			return status.Error(codes.Unimplemented, "unknown service")
		}
		return nil
	}()}, nil
}

type fakeStream struct {
	ctx context.Context
	err error
}

func (s *fakeStream) Header() (metadata.MD, error) { return nil, nil }
func (s *fakeStream) Trailer() metadata.MD         { return nil }
func (s *fakeStream) CloseSend() error             { return nil }
func (s *fakeStream) Context() context.Context     { return s.ctx }
func (s *fakeStream) SendMsg(any) error            { return nil }
func (s *fakeStream) RecvMsg(m any) error {
	if s.err != nil {
		return s.err
	}
	proto.Merge(m.(proto.Message), &chainrpc.BlockEpoch{Height: 1})
	return nil
}

func TestCheckBuild(t *testing.T) {
	t.Parallel()
	release := []string{"autopilotrpc", "signrpc", "walletrpc", "chainrpc", "invoicesrpc", "watchtowerrpc", "neutrinorpc", "monitoring", "peersrpc"}
	cases := []struct {
		name    string
		conn    *fakeConn
		missing string // "" means accepted
	}{
		{"release build", &fakeConn{version: &verrpc.Version{BuildTags: release}}, ""},
		{"no chainrpc tag", &fakeConn{version: &verrpc.Version{BuildTags: []string{"signrpc", "walletrpc", "invoicesrpc"}}}, "chainrpc"},
		// Built without lnd's Makefile: no tags listed, the subsystems answer.
		{"untagged, all present", &fakeConn{version: &verrpc.Version{}}, ""},
		{"untagged, no chainrpc", &fakeConn{version: &verrpc.Version{}, missing: []string{"/chainrpc."}}, "chainrpc"},
		{"untagged, no routerrpc", &fakeConn{version: &verrpc.Version{}, missing: []string{"/routerrpc."}}, "routerrpc"},
	}
	for _, tc := range cases {
		err := checkBuild(t.Context(), tc.conn, "02ab")
		switch {
		case tc.missing == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.missing != "" && (!errors.Is(err, ErrMisconfigured) || !strings.Contains(err.Error(), tc.missing)):
			t.Errorf("%s: %v, want ErrMisconfigured naming %s", tc.name, err, tc.missing)
		}
	}
	// With tags listed, no probe is made.
	c := &fakeConn{version: &verrpc.Version{BuildTags: release}}
	if err := checkBuild(t.Context(), c, "02ab"); err != nil || len(c.calls) != 1 {
		t.Errorf("tagged build: %v after calls %v", err, c.calls)
	}
	// A node without verrpc at all.
	if err := checkBuild(t.Context(), &fakeConn{missing: []string{"/verrpc."}}, "02ab"); err == nil {
		t.Error("no GetVersion accepted")
	}
}
