// Command regtest starts a throwaway Lightning cluster on bitcoin regtest
// (btcd; Alice and Bob with --requireinterceptor and
// --store-final-htlc-resolutions; Carol, the payer, with channels to both),
// prints how to reach it and keeps it running until Ctrl-C.
//
//	go run ./deployments/regtest [-alice-sat N] [-bob-sat N] [-keep]
//
// The first run builds lnd and btcd (deployments/regtest/build.sh, 5–12 min).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lnmux/lnmux/adapters/lnd/regtest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "regtest:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("regtest", flag.ContinueOnError)
	aliceSat := fs.Int64("alice-sat", 1_000_000, "capacity of the channel Carol→Alice")
	bobSat := fs.Int64("bob-sat", 1_000_000, "capacity of the channel Carol→Bob")
	keep := fs.Bool("keep", false, "keep the cluster directory after exit")
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

	var nodes []string
	for _, n := range []*regtest.Node{c.Alice, c.Bob} {
		nodes = append(nodes, fmt.Sprintf("%s@%s,%s,%s", n.PubKey, n.RPCAddr, n.MacaroonPath, n.TLSCertPath))
	}
	fmt.Printf(`
Regtest cluster up in %s (directory %s).

lnmux configuration (network regtest):
  LNMUX_LND_NETWORK=regtest
  LNMUX_LND_NODES='%s'

  lnd:
    network: regtest
    nodes:
`, time.Since(began).Round(time.Second), c.Dir, strings.Join(nodes, ";"))
	for _, n := range []*regtest.Node{c.Alice, c.Bob} {
		fmt.Printf("      - pubKey: %s  # %s\n        lndUrl: %s\n        macaroonPath: %s\n        tlsCertPath: %s\n",
			n.PubKey, n.Name, n.RPCAddr, n.MacaroonPath, n.TLSCertPath)
	}
	fmt.Printf(`
Pay as Carol:     %s payinvoice --force <invoice>
Decode:           %s decodepayreq <invoice>
Alice / Bob:      %s getinfo
                  %s getinfo
Mine blocks:      %s generate 6

Logs:
%s
Ctrl-C stops everything.
`, c.LncliCommand(c.Carol), c.LncliCommand(c.Carol), c.LncliCommand(c.Alice), c.LncliCommand(c.Bob),
		c.BtcctlCommand(), c.LogPaths())
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "regtest: stopping")
	return c.Close()
}
