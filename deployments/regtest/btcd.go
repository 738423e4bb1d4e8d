package regtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

const (
	rpcUser = "lnmux"
	rpcPass = "lnmux"
)

// segwitHeight is a height past btcd's regtest segwit activation (~432);
// funding transactions broadcast before it are rejected.
const segwitHeight = 450

// btcd is the chain backend. It mines to a key the harness holds, so coins
// can be handed to any wallet without restarting btcd with a new
// --miningaddr.
type btcd struct {
	proc    *process
	dir     string
	rpcAddr string
	cert    string
	client  *rpcclient.Client

	key      *btcec.PrivateKey
	addr     btcutil.Address
	mu       sync.Mutex
	nextCoin int64 // height of the next unspent coinbase
}

func newBtcd(bin, dir string, rpcPort int) (*btcd, error) {
	key, err := btcec.NewPrivateKey()
	if err != nil {
		return nil, err
	}
	addr, err := btcutil.NewAddressPubKeyHash(
		btcutil.Hash160(key.PubKey().SerializeCompressed()), &chaincfg.RegressionNetParams)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// btcctl wants a config file; without one it tries to write ~/.btcd.
	if err := os.WriteFile(filepath.Join(dir, "btcctl.conf"), nil, 0o644); err != nil {
		return nil, err
	}
	b := &btcd{
		dir:      dir,
		rpcAddr:  fmt.Sprintf("127.0.0.1:%d", rpcPort),
		cert:     filepath.Join(dir, "rpc.cert"),
		key:      key,
		addr:     addr,
		nextCoin: 1,
	}
	b.proc = &process{
		name:    "btcd",
		bin:     bin,
		logPath: filepath.Join(dir, "btcd.log"),
		args: []string{
			"--regtest",
			"--datadir=" + filepath.Join(dir, "data"),
			"--logdir=" + filepath.Join(dir, "logs"),
			"--rpcuser=" + rpcUser,
			"--rpcpass=" + rpcPass,
			"--rpclisten=" + b.rpcAddr,
			"--rpccert=" + b.cert,
			"--rpckey=" + filepath.Join(dir, "rpc.key"),
			"--nolisten",
			"--txindex",
			"--miningaddr=" + addr.EncodeAddress(),
			"--debuglevel=info",
		},
	}
	return b, nil
}

func (b *btcd) start(ctx context.Context) error {
	if err := b.proc.start(); err != nil {
		return err
	}
	return b.proc.waitFor(ctx, "RPC", func(context.Context) error {
		if b.client == nil {
			cert, err := os.ReadFile(b.cert)
			if err != nil {
				return err
			}
			c, err := rpcclient.New(&rpcclient.ConnConfig{
				Host:         b.rpcAddr,
				User:         rpcUser,
				Pass:         rpcPass,
				HTTPPostMode: true,
				Certificates: cert,
			}, nil)
			if err != nil {
				return err
			}
			b.client = c
		}
		_, err := b.client.GetBlockCount()
		return err
	})
}

func (b *btcd) stop() error {
	if b.client != nil {
		b.client.Shutdown()
	}
	return b.proc.stop(shutdownGrace)
}

func (b *btcd) height() (int64, error) { return b.client.GetBlockCount() }

// mine generates n blocks and returns the new height.
func (b *btcd) mine(n uint32) (int64, error) {
	if _, err := b.client.Generate(n); err != nil {
		return 0, fmt.Errorf("generate %d blocks: %w", n, err)
	}
	return b.height()
}

// send pays each output from the next mature coinbase (50 BTC on regtest
// until height 150, halving every 150 blocks) and returns the txid. The rest
// goes back to the mining key.
func (b *btcd) send(outs map[btcutil.Address]btcutil.Amount) (*chainhash.Hash, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tip, err := b.height()
	if err != nil {
		return nil, err
	}
	if b.nextCoin+100 > tip {
		return nil, fmt.Errorf("no mature coinbase left at height %d", tip)
	}
	hash, err := b.client.GetBlockHash(b.nextCoin)
	if err != nil {
		return nil, err
	}
	block, err := b.client.GetBlock(hash)
	if err != nil {
		return nil, err
	}
	coinbase := block.Transactions[0]
	prev := coinbase.TxOut[0]

	tx := wire.NewMsgTx(wire.TxVersion)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(ptr(coinbase.TxHash()), 0), nil, nil))
	var total btcutil.Amount
	for addr, amt := range outs {
		script, err := txscript.PayToAddrScript(addr)
		if err != nil {
			return nil, err
		}
		tx.AddTxOut(wire.NewTxOut(int64(amt), script))
		total += amt
	}
	const fee = btcutil.Amount(20_000)
	change := btcutil.Amount(prev.Value) - total - fee
	if change < 0 {
		return nil, fmt.Errorf("coinbase of %v cannot pay %v", btcutil.Amount(prev.Value), total)
	}
	if change > 1000 {
		script, err := txscript.PayToAddrScript(b.addr)
		if err != nil {
			return nil, err
		}
		tx.AddTxOut(wire.NewTxOut(int64(change), script))
	}
	sig, err := txscript.SignatureScript(tx, 0, prev.PkScript, txscript.SigHashAll, b.key, true)
	if err != nil {
		return nil, err
	}
	tx.TxIn[0].SignatureScript = sig
	txid, err := b.client.SendRawTransaction(tx, true)
	if err != nil {
		return nil, fmt.Errorf("send funding tx: %w", err)
	}
	b.nextCoin++
	return txid, nil
}

func ptr[T any](v T) *T { return &v }
