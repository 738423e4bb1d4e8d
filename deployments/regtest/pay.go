package regtest

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
)

// Payment is the final state of a payment sent by Carol.
type Payment struct {
	Status   lnrpc.Payment_PaymentStatus
	Preimage [32]byte
	// FailureReason is set when Status is FAILED.
	FailureReason lnrpc.PaymentFailureReason
	// FailureCode is the failure of the last failed HTLC attempt (e.g.
	// INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS, MPP_TIMEOUT), and
	// FailureSourceIndex the hop that sent it (0 = Carol herself).
	FailureCode        lnrpc.Failure_FailureCode
	FailureSourceIndex uint32
	// Raw is lnd's full record, with every HTLC attempt.
	Raw *lnrpc.Payment
}

// PayInvoice has Carol pay a BOLT11 invoice with routerrpc SendPaymentV2
// (60 s timeout, 10,000 sat fee limit unless mods change them) and waits
// for the final result. A FAILED payment is not an error.
func (c *Cluster) PayInvoice(ctx context.Context, payreq string, mods ...func(*routerrpc.SendPaymentRequest)) (*Payment, error) {
	req := &routerrpc.SendPaymentRequest{PaymentRequest: payreq}
	for _, m := range mods {
		m(req)
	}
	return c.SendPayment(ctx, c.Carol, req)
}

// SendPayment sends any payment from a node (keysend, payment to a bare
// destination with route hints, …) and waits for the final result.
// TimeoutSeconds defaults to 60 and FeeLimitSat to 10,000.
func (c *Cluster) SendPayment(ctx context.Context, from *Node, req *routerrpc.SendPaymentRequest) (*Payment, error) {
	if req.TimeoutSeconds == 0 {
		req.TimeoutSeconds = 60
	}
	if req.FeeLimitSat == 0 && req.FeeLimitMsat == 0 {
		req.FeeLimitSat = 10_000
	}
	req.NoInflightUpdates = true
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := from.Router.SendPaymentV2(ctx, req)
	if err != nil {
		return nil, err
	}
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("payment stream ended before a final status")
		}
		if err != nil {
			return nil, err
		}
		switch p.Status { //nolint:exhaustive // partial on purpose: the values without a case take the path after the switch
		case lnrpc.Payment_SUCCEEDED, lnrpc.Payment_FAILED:
			return paymentResult(p), nil
		}
	}
}

func paymentResult(p *lnrpc.Payment) *Payment {
	res := &Payment{Status: p.Status, FailureReason: p.FailureReason, Raw: p}
	if p.Status == lnrpc.Payment_SUCCEEDED {
		// lnd reports 64 hex digits; anything else leaves the zero
		// preimage, which no test accepts as the invoice's.
		pre, _ := hex.DecodeString(p.PaymentPreimage)
		copy(res.Preimage[:], pre)
	}
	for i := len(p.Htlcs) - 1; i >= 0; i-- {
		if f := p.Htlcs[i].Failure; f != nil {
			res.FailureCode = f.Code
			res.FailureSourceIndex = f.FailureSourceIndex
			break
		}
	}
	return res
}

// Lncli runs lncli against a node and returns its standard output.
func (c *Cluster) Lncli(ctx context.Context, n *Node, args ...string) ([]byte, error) {
	return run(ctx, "lncli", c.lncliArgs(n), args)
}

// Btcctl runs btcctl against btcd and returns its standard output.
func (c *Cluster) Btcctl(ctx context.Context, args ...string) ([]byte, error) {
	return run(ctx, "btcctl", c.btcctlArgs(), args)
}

// LncliCommand is the shell command that runs lncli against n.
func (c *Cluster) LncliCommand(n *Node) string { return strings.Join(c.lncliArgs(n), " ") }

// BtcctlCommand is the shell command that runs btcctl against btcd, e.g.
// followed by "generate 6".
func (c *Cluster) BtcctlCommand() string { return strings.Join(c.btcctlArgs(), " ") }

func (c *Cluster) lncliArgs(n *Node) []string {
	return []string{
		filepath.Join(c.BinDir, "lncli"),
		"--network=regtest",
		"--rpcserver=" + n.RPCAddr,
		"--tlscertpath=" + n.TLSCertPath,
		"--macaroonpath=" + n.MacaroonPath,
	}
}

func (c *Cluster) btcctlArgs() []string {
	return []string{
		filepath.Join(c.BinDir, "btcctl"),
		"--configfile=" + filepath.Join(c.btcd.dir, "btcctl.conf"),
		"--regtest",
		"--rpcserver=" + c.btcd.rpcAddr,
		"--rpccert=" + c.btcd.cert,
		"--rpcuser=" + rpcUser,
		"--rpcpass=" + rpcPass,
	}
}

func run(ctx context.Context, name string, base, args []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, base[0], append(base[1:len(base):len(base)], args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %v: %w: %s", name, args, err, stderr.String())
	}
	return stdout.Bytes(), nil
}
