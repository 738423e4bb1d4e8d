package lnd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lightningnetwork/lnd/lnrpc/chainrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lnrpc/verrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// requiredTags are the build tags of the lnd RPC subsystems lnmux calls
// that lnd compiles only on request: chainrpc (block epochs). routerrpc
// (interceptor, HTLC events) has had no build tag for years and is always
// compiled, so no build lists it; invoicesrpc is not used by lnmux, and
// refusing a node for it would refuse a node lnmux can serve. See
// docs/lnd-behaviour.md.
var requiredTags = []string{"chainrpc"}

// missingTags returns the required tags a build does not list, and whether
// the build lists tags at all: a binary built with plain `go build -tags`
// rather than lnd's Makefile reports none (lnd sets them by ldflags).
func missingTags(v *verrpc.Version) (missing []string, known bool) {
	tags := v.GetBuildTags()
	if len(tags) == 0 {
		return nil, false
	}
	for _, t := range requiredTags {
		if !slices.Contains(tags, t) {
			missing = append(missing, t)
		}
	}
	return missing, true
}

// subsystemProbe asks one subsystem something cheap; an Unimplemented
// answer means lnd was built without it.
type subsystemProbe struct {
	tag  string
	call func(ctx context.Context, conn grpc.ClientConnInterface) error
}

var probes = []subsystemProbe{
	{"chainrpc", func(ctx context.Context, conn grpc.ClientConnInterface) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		st, err := chainrpc.NewChainNotifierClient(conn).RegisterBlockEpochNtfn(ctx, &chainrpc.BlockEpoch{})
		if err != nil {
			return err
		}
		_, err = st.Recv() // lnd sends its tip first
		return err
	}},
	{"routerrpc", func(ctx context.Context, conn grpc.ClientConnInterface) error {
		_, err := routerrpc.NewRouterClient(conn).GetMissionControlConfig(ctx, &routerrpc.GetMissionControlConfigRequest{})
		return err
	}},
}

// checkBuild refuses a node built without an RPC subsystem lnmux needs,
// naming the build tag, instead of reconnecting to it forever. It reads
// verrpc's build tags, as lndclient does; when the build lists none it
// probes the subsystems instead.
func checkBuild(ctx context.Context, conn grpc.ClientConnInterface, node string) error {
	v, err := verrpc.NewVersionerClient(conn).GetVersion(ctx, &verrpc.VersionRequest{})
	if err != nil {
		return fmt.Errorf("getversion: %w", err)
	}
	missing, known := missingTags(v)
	if !known {
		for _, p := range probes {
			err := p.call(ctx, conn)
			if status.Code(err) == codes.Unimplemented {
				missing = append(missing, p.tag)
			} else if err != nil && !errors.Is(err, context.Canceled) && status.Code(err) != codes.PermissionDenied {
				return fmt.Errorf("probe %s: %w", p.tag, err)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: node %s was built without the RPC subsystems %s: rebuild lnd with -tags=\"%s\" (release binaries have them)",
			ErrMisconfigured, node, strings.Join(missing, ", "), strings.Join(missing, " "))
	}
	return nil
}
