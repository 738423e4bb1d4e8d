package lnd

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// dial opens a gRPC connection with lnd's TLS certificate and the macaroon.
// Both files are read on every connect: lnd may have renewed them.
func (n *Node) dial() (*grpc.ClientConn, error) {
	tlsCreds, err := credentials.NewClientTLSFromFile(n.cfg.TLSCertPath, "")
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	mac, err := os.ReadFile(n.cfg.MacaroonPath)
	if err != nil {
		return nil, fmt.Errorf("macaroon: %w", err)
	}
	return grpc.NewClient(n.cfg.URL,
		grpc.WithTransportCredentials(tlsCreds),
		grpc.WithPerRPCCredentials(macaroon(hex.EncodeToString(mac))),
		// lnd's default ping policy allows one every 5 s; notice a
		// vanished node within ~30 s even while no HTLC flows.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                20 * time.Second,
			Timeout:             10 * time.Second,
			PermitWithoutStream: true,
		}),
	)
}

// macaroon sends the hex macaroon with every call. Its String never
// reveals it.
type macaroon string

func (m macaroon) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"macaroon": string(m)}, nil
}

func (macaroon) RequireTransportSecurity() bool { return true }

func (macaroon) String() string { return "macaroon(xxxxxx)" }

// checkInfo refuses a node that lnmux cannot use safely.
func (n *Node) checkInfo(ctx context.Context, info *lnrpc.GetInfoResponse) error {
	if info.IdentityPubkey != n.cfg.PubKey.String() {
		return fmt.Errorf("%w: %s reports identity key %s, configured pubKey is %s",
			ErrMisconfigured, n.cfg.URL, info.IdentityPubkey, n.cfg.PubKey)
	}
	// lnd serves bitcoin alone (hence its deprecated Chain field): the
	// network is the first chain's.
	network := ""
	if len(info.Chains) > 0 {
		network = info.Chains[0].Network
	}
	if network == "testnet3" {
		network = "testnet"
	}
	if network != n.cfg.Network {
		return fmt.Errorf("%w: node %s is on network %q, lnmux is configured for %q",
			ErrMisconfigured, n.cfg.PubKey, network, n.cfg.Network)
	}
	v, err := parseVersion(info.Version)
	if err != nil {
		return fmt.Errorf("%w: node %s: %v", ErrMisconfigured, n.cfg.PubKey, err) //nolint:errorlint // the sentinel classifies; the cause is text so that errors.Is on it cannot reclassify
	}
	switch {
	case less(v, minUnsafeVersion):
		return fmt.Errorf("%w: node %s runs lnd %s, lnmux needs %s or newer (%s at the very least, with lnd.allowUnsafeVersion)",
			ErrMisconfigured, n.cfg.PubKey, info.Version, versionString(minVersion), versionString(minUnsafeVersion))
	case less(v, minVersion) && !n.cfg.AllowUnsafeVersion:
		return fmt.Errorf("%w: node %s runs lnd %s, lnmux needs %s or newer: %s (set lnd.allowUnsafeVersion to accept it anyway)",
			ErrMisconfigured, n.cfg.PubKey, info.Version, versionString(minVersion), unsafeVersionRisk)
	case less(v, minVersion):
		n.log.ErrorContext(ctx, "UNSAFE lnd version accepted (lnd.allowUnsafeVersion): upgrade to "+versionString(minVersion)+" or newer",
			"version", info.Version, "risk", unsafeVersionRisk)
	}
	var missing []string
	if !info.RequireHtlcInterceptor {
		missing = append(missing, "--requireinterceptor")
	}
	if !info.StoreFinalHtlcResolutions {
		missing = append(missing, "--store-final-htlc-resolutions")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: node %s must run with %s (without them lnd forwards or forgets HTLCs while lnmux is away)",
			ErrMisconfigured, n.cfg.PubKey, strings.Join(missing, " and "))
	}
	return nil
}

// unsafeVersionRisk says why lnmux refuses lnd older than minVersion.
const unsafeVersionRisk = "before v0.21.1 lnd cannot settle an HTLC on chain: once the HTLC's channel is force-closed " +
	"lnd drops it from the interceptor's held set one block later, lnmux's SETTLE fails with \"fwd not found\" " +
	"and the payer takes the HTLC back on chain although lnmux recorded the payment as settled " +
	"(lnd issue 10892, fixed by lnd PR 10895 in v0.21.1)"

func versionString(v [3]int) string { return fmt.Sprintf("v%d.%d.%d", v[0], v[1], v[2]) }

// parseVersion reads "0.21.3-beta commit=v0.21.3-beta" as [0 21 3].
func parseVersion(s string) ([3]int, error) {
	var v [3]int
	field, _, _ := strings.Cut(strings.TrimPrefix(s, "v"), " ")
	field, _, _ = strings.Cut(field, "-")
	parts := strings.Split(field, ".")
	if len(parts) != 3 {
		return v, fmt.Errorf("cannot read lnd version %q", s)
	}
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil {
			return v, fmt.Errorf("cannot read lnd version %q", s)
		}
		v[i] = x
	}
	return v, nil
}

func less(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
