package regtest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/chainrpc"
	"github.com/lightningnetwork/lnd/lnrpc/invoicesrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lnrpc/walletrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// ClusterFlags are the lnd flags lnmux requires of the nodes it multiplexes.
var ClusterFlags = []string{"--requireinterceptor", "--store-final-htlc-resolutions"}

// Node is one lnd daemon of the cluster. Its clients stay usable across
// Stop and Start (gRPC reconnects by itself).
type Node struct {
	// Name is "alice", "bob" or "carol".
	Name string
	// PubKey is the node's identity key in hex.
	PubKey string
	// RPCAddr is the gRPC host:port (lnmux's lndUrl).
	RPCAddr string
	// P2PAddr is the peer-to-peer host:port.
	P2PAddr string
	// Dir is the node's --lnddir.
	Dir string
	// TLSCertPath and MacaroonPath (admin) authenticate RPC clients.
	TLSCertPath  string
	MacaroonPath string
	// LogPath collects the daemon's stdout and stderr.
	LogPath string

	Client   lnrpc.LightningClient
	Router   routerrpc.RouterClient
	Invoices invoicesrpc.InvoicesClient
	Chain    chainrpc.ChainNotifierClient
	Wallet   walletrpc.WalletKitClient

	proc *process
	conn *grpc.ClientConn
}

func newNode(name, bin, dir string, rpcPort, p2pPort int, b *btcd, extra []string) *Node {
	n := &Node{
		Name:         name,
		RPCAddr:      fmt.Sprintf("127.0.0.1:%d", rpcPort),
		P2PAddr:      fmt.Sprintf("127.0.0.1:%d", p2pPort),
		Dir:          dir,
		TLSCertPath:  filepath.Join(dir, "tls.cert"),
		MacaroonPath: filepath.Join(dir, "data", "chain", "bitcoin", "regtest", "admin.macaroon"),
		LogPath:      filepath.Join(dir, "lnd.log"),
	}
	args := []string{
		"--lnddir=" + dir,
		"--noseedbackup",
		"--bitcoin.regtest",
		"--bitcoin.node=btcd",
		"--btcd.rpchost=" + b.rpcAddr,
		"--btcd.rpcuser=" + rpcUser,
		"--btcd.rpcpass=" + rpcPass,
		"--btcd.rpccert=" + b.cert,
		"--rpclisten=" + n.RPCAddr,
		"--listen=" + n.P2PAddr,
		"--norest",
		"--nobootstrap",
		"--alias=" + name,
		"--debuglevel=info",
		"--trickledelay=50",
		"--accept-keysend",
		"--accept-amp",
		"--maxpendingchannels=10",
		"--logging.file.disable",
	}
	n.proc = &process{name: name, bin: bin, args: append(args, extra...), logPath: n.LogPath}
	return n
}

// start launches lnd and waits until its RPC answers (the wallet is created
// on first start with --noseedbackup).
func (n *Node) start(ctx context.Context) error {
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return err
	}
	if err := n.proc.start(); err != nil {
		return err
	}
	return n.proc.waitFor(ctx, "RPC", func(ctx context.Context) error {
		if n.conn == nil {
			conn, err := dial(n.RPCAddr, n.TLSCertPath, n.MacaroonPath)
			if err != nil {
				return err
			}
			n.conn = conn
			n.Client = lnrpc.NewLightningClient(conn)
			n.Router = routerrpc.NewRouterClient(conn)
			n.Invoices = invoicesrpc.NewInvoicesClient(conn)
			n.Chain = chainrpc.NewChainNotifierClient(conn)
			n.Wallet = walletrpc.NewWalletKitClient(conn)
		}
		info, err := n.Client.GetInfo(ctx, &lnrpc.GetInfoRequest{})
		if err != nil {
			return err
		}
		n.PubKey = info.IdentityPubkey
		return nil
	})
}

// waitSynced waits until lnd is synced to the chain at height or above.
func (n *Node) waitSynced(ctx context.Context, height int64) error {
	return n.proc.waitFor(ctx, fmt.Sprintf("sync to height %d", height), func(ctx context.Context) error {
		info, err := n.Client.GetInfo(ctx, &lnrpc.GetInfoRequest{})
		if err != nil {
			return err
		}
		if !info.SyncedToChain || int64(info.BlockHeight) < height {
			return fmt.Errorf("synced=%v height=%d", info.SyncedToChain, info.BlockHeight)
		}
		return nil
	})
}

// PID is the process id of the running lnd, 0 when it is not running (for
// load commands that measure its CPU time).
func (n *Node) PID() int {
	n.proc.mu.Lock()
	defer n.proc.mu.Unlock()
	if n.proc.cmd == nil || n.proc.cmd.Process == nil {
		return 0
	}
	return n.proc.cmd.Process.Pid
}

// Running reports whether the daemon is up (not stopped, not crashed).
func (n *Node) Running() bool { return n.proc.running() }

func (n *Node) close() error {
	err := n.proc.stop(shutdownGrace)
	if n.conn != nil {
		err = errors.Join(err, n.conn.Close())
		n.conn = nil
	}
	return err
}

// dial opens a lazily connecting gRPC client with lnd's TLS certificate and
// a macaroon. The files must exist; lnd writes them at startup.
func dial(addr, certPath, macaroonPath string) (*grpc.ClientConn, error) {
	tlsCreds, err := credentials.NewClientTLSFromFile(certPath, "")
	if err != nil {
		return nil, err
	}
	mac, err := os.ReadFile(macaroonPath)
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(tlsCreds),
		grpc.WithPerRPCCredentials(macaroonCreds(hex.EncodeToString(mac))),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(50<<20)),
	)
}

type macaroonCreds string

func (m macaroonCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"macaroon": string(m)}, nil
}

func (macaroonCreds) RequireTransportSecurity() bool { return true }
