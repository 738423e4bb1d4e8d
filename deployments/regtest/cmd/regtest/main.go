// Command regtest starts a throwaway Lightning cluster on bitcoin regtest
// (btcd; Alice and Bob with --requireinterceptor and
// --store-final-htlc-resolutions; Carol, the payer, with channels to both)
// and, given -lnmuxd, runs lnmuxd against Alice and Bob on a fresh SQLite
// database. It prints how to create and pay an invoice and keeps everything
// running until Ctrl-C.
//
//	go run ./deployments/regtest/cmd/regtest [-lnmuxd .bin/lnmuxd] [-listen localhost:9190]
//	    [-auto-settle] [-alice-sat N] [-bob-sat N] [-keep]
//
// The first run builds lnd and btcd (deployments/regtest/build.sh, 5–12 min).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lnmux/lnmux/deployments/regtest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "regtest:", err)
		os.Exit(1)
	}
}

type options struct {
	lnmuxd     string
	listen     string
	autoSettle bool
}

func run(args []string) error {
	fs := flag.NewFlagSet("regtest", flag.ContinueOnError)
	aliceSat := fs.Int64("alice-sat", 1_000_000, "capacity of the channel Carol→Alice")
	bobSat := fs.Int64("bob-sat", 1_000_000, "capacity of the channel Carol→Bob")
	keep := fs.Bool("keep", false, "keep the cluster directory after exit")
	var o options
	fs.StringVar(&o.lnmuxd, "lnmuxd", "", "lnmuxd binary to run against Alice and Bob (empty: cluster only)")
	fs.StringVar(&o.listen, "listen", "localhost:9190", "lnmuxd API address")
	fs.BoolVar(&o.autoSettle, "auto-settle", false, "run lnmuxd with autoSettle")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	began := time.Now()
	c, err := regtest.Start(ctx, regtest.Options{
		AliceChannelSat: *aliceSat,
		BobChannelSat:   *bobSat,
		KeepDir:         *keep,
		Logf:            func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) },
	})
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(os.Stderr, "regtest: cluster up in %s (directory %s)\n", time.Since(began).Round(time.Second), c.Dir)

	if o.lnmuxd == "" {
		printCluster(c)
		<-ctx.Done()
		fmt.Fprintln(os.Stderr, "regtest: stopping")
		return c.Close()
	}
	return runLnmuxd(ctx, c, o)
}

// runLnmuxd runs lnmuxd on a database and identity key of this cluster's
// own (both die with it) until ctx ends or lnmuxd exits.
func runLnmuxd(ctx context.Context, c *regtest.Cluster, o options) error {
	dir := filepath.Join(c.Dir, "lnmuxd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "lnd:\n  network: regtest\n  nodes:\n")
	for _, n := range []*regtest.Node{c.Alice, c.Bob} {
		fmt.Fprintf(&b, "    - pubKey: %s  # %s\n      lndUrl: %s\n      macaroonPath: %s\n      tlsCertPath: %s\n",
			n.PubKey, n.Name, n.RPCAddr, n.MacaroonPath, n.TLSCertPath)
	}
	fmt.Fprintf(&b, "dataDir: %s\nlistenAddress: %s\nautoSettle: %v\n", dir, o.listen, o.autoSettle)
	cfgPath := filepath.Join(dir, "lnmux.yml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o600); err != nil {
		return err
	}
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return err
	}
	env := append(os.Environ(), "LNMUX_IDENTITY_KEY="+hex.EncodeToString(key[:]))
	for _, step := range []string{"init", "up"} {
		cmd := exec.CommandContext(ctx, o.lnmuxd, "-c", cfgPath, "migrate", step)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("lnmuxd migrate %s: %w\n%s", step, err, out)
		}
	}
	if err := checkFree(o.listen); err != nil {
		return err
	}

	cmd := exec.Command(o.lnmuxd, "-c", cfgPath, "run")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if err := waitListening(ctx, o.listen, done); err != nil {
		return err
	}
	consoleURL, err := startPayHelper(ctx, c, o.listen)
	if err != nil {
		return err
	}
	printWalkthrough(c, o, cfgPath, consoleURL)

	select {
	case err := <-done:
		return fmt.Errorf("lnmuxd exited: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(os.Stderr, "regtest: stopping lnmuxd and the cluster")
	_ = cmd.Process.Signal(syscall.SIGINT)
	// lnmuxd's exit status after a stop signal says nothing new.
	select {
	case <-done: //nolint:errcheck // see above
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done //nolint:errcheck // see above
	}
	return c.Close()
}

func checkFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("lnmuxd address %s is taken (another lnmuxd?); pass -listen: %w", addr, err)
	}
	return l.Close()
}

func waitListening(ctx context.Context, addr string, done <-chan error) error {
	for range 300 {
		select {
		case err := <-done:
			return fmt.Errorf("lnmuxd exited at start: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			return conn.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("lnmuxd did not start listening within 30s")
}

// startPayHelper serves the console's "Pay as Carol" button: a helper of
// this dev command on a loopback port (lnmuxd knows nothing of Carol) that
// answers only the console's origin. It returns the console's URL, which
// tells the page where the helper is.
func startPayHelper(ctx context.Context, c *regtest.Cluster, listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	origins := []string{"http://" + listen}
	if host == "localhost" || host == "127.0.0.1" {
		origins = append(origins, "http://localhost:"+port, "http://127.0.0.1:"+port)
	}
	helper, err := c.ServePayHelper(ctx, origins...)
	if err != nil {
		return "", fmt.Errorf("pay helper: %w", err)
	}
	return "http://" + listen + "/console/?carol=" + url.QueryEscape(helper), nil
}

func printWalkthrough(c *regtest.Cluster, o options, cfgPath, consoleURL string) {
	carol := c.LncliCommand(c.Carol)
	settle := `
  3. Settle it with the hash and set_id printed by step 0:
       grpcurl -plaintext -d '{"hash":"<hash>","set_id":"<setId>"}' ` + o.listen + ` lnmux.Service.SettleInvoice
     and Carol's payinvoice completes.`
	if o.autoSettle {
		settle = "\n  3. autoSettle is on: Carol's payinvoice completes by itself."
	}
	fmt.Printf(`
Web console: %[8]s
  Create an invoice, press "Pay as Carol", then Settle (or Cancel) it.

lnmuxd is running on %[1]s against Alice and Bob (config %[2]s).

Or from a terminal: try a payment (grpcurl: go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4):

  0. In another terminal, listen for accepted invoices (without a listener
     and with autoSettle off, lnmuxd refuses payments it could not decide on):
       grpcurl -plaintext %[1]s lnmux.Service.SubscribeInvoiceAccepted
  1. Create an invoice (grpcurl, or plain curl through Connect's JSON):
       grpcurl -plaintext -d '{"amt_msat":20000,"expiry_secs":600}' %[1]s lnmux.Service.AddInvoice
       curl -s -H 'Content-Type: application/json' -d '{"amt_msat":20000,"expiry_secs":600}' http://%[1]s/lnmux.Service/AddInvoice
  2. Pay it as Carol (through Alice or Bob, whichever lnd picks):
       %[3]s payinvoice --force <paymentRequest>%[4]s
  4. Its final state, from lnd:
       grpcurl -plaintext -d '{"hash":"<hash>"}' %[1]s lnmux.Service.WaitForInvoiceFinalStatus

Fail-over: stop Alice (%[5]s stop) and pay a new invoice: it goes through Bob.
Decode an invoice: %[3]s decodepayreq <paymentRequest>
Mine blocks:       %[6]s generate 6

Logs:
%[7]s
Ctrl-C stops lnmuxd and the cluster.
`, o.listen, cfgPath, carol, settle, c.LncliCommand(c.Alice), c.BtcctlCommand(), c.LogPaths(), consoleURL)
}

func printCluster(c *regtest.Cluster) {
	var nodes []string
	for _, n := range []*regtest.Node{c.Alice, c.Bob} {
		nodes = append(nodes, fmt.Sprintf("%s@%s,%s,%s", n.PubKey, n.RPCAddr, n.MacaroonPath, n.TLSCertPath))
	}
	fmt.Printf("\nlnmux configuration (network regtest):\n  LNMUX_LND_NETWORK=regtest\n  LNMUX_LND_NODES='%s'\n\n",
		strings.Join(nodes, ";"))
	fmt.Printf("Pay as Carol:  %s payinvoice --force <invoice>\nAlice / Bob:   %s getinfo\n               %s getinfo\nMine blocks:   %s generate 6\n\nLogs:\n%s\nCtrl-C stops everything.\n",
		c.LncliCommand(c.Carol), c.LncliCommand(c.Alice), c.LncliCommand(c.Bob), c.BtcctlCommand(), c.LogPaths())
}
