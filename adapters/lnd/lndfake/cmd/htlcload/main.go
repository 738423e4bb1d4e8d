// Command htlcload measures HTLCs through lnmux's real lnd adapter and
// application core from the wire: fake lnd nodes (package lndfake) offer
// HTLCs with real sphinx onions on their HtlcInterceptor streams, lnmux
// answers as lnmuxd assembles it (app/lnmuxd/wiring, with the hand-over gate;
// auto-settle, in-memory store), and the time from each offer's
// Send to its answer's Recv is measured. It prints the throughput at the
// highest rate the machine sustains and the latency at a fixed offered
// rate. See docs/benchmarks.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/lnmux/lnmux/adapters/lnd/lndfake"
)

// profileTo names the CPU profile of the max-rate run; the fixed-rate run's
// goes to profileTo+".rate".
var profileTo string

func main() {
	var (
		nodes   = flag.Int("nodes", 2, "fake lnd nodes")
		parts   = flag.Int("parts", 4, "HTLCs per payment, spread over the nodes")
		htlcs   = flag.Int("htlcs", 40000, "HTLCs of the max-rate run")
		window  = flag.Int("window", 1024, "unanswered HTLCs at most in the max-rate run")
		rate    = flag.Float64("rate", 2000, "offered HTLC/s of the fixed-rate run (0: skip it)")
		seconds = flag.Float64("seconds", 10, "length of the fixed-rate run")
		workers = flag.Int("decode-workers", 0, "onion peeling goroutines per node (0: GOMAXPROCS, -1: none, as before the parallel decode)")
		timeout = flag.Duration("timeout", 10*time.Minute, "bound on the whole run")
		profile = flag.String("cpuprofile", "", "write the max-rate run's CPU profile to this file, the fixed-rate run's to this file + \".rate\"")
	)
	flag.Parse()
	profileTo = *profile
	if err := run(*nodes, *parts, *htlcs, *window, *rate, *seconds, *workers, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "htlcload:", err)
		os.Exit(1)
	}
}

func run(nodes, parts, htlcs, window int, rate, seconds float64, workers int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	rig, err := lndfake.NewRig(ctx, lndfake.RigConfig{Nodes: nodes, Parts: parts, DecodeWorkers: workers})
	if err != nil {
		return err
	}
	defer rig.Close()
	fmt.Printf("lnmux as lnmuxd assembles it (wiring.NewMux: hand-over gate, traced store, metrics) behind the real lnd adapter, %d fake lnd nodes over TLS gRPC, %d parts per payment, GOMAXPROCS=%d, decode workers %d\n",
		nodes, parts, runtime.GOMAXPROCS(0), workers)

	// A short warm-up: connections, buffers and the allocator settle.
	if err := measure(ctx, rig, 200, 0, window, false, ""); err != nil {
		return err
	}
	if err := measure(ctx, rig, htlcs/parts, 0, window, true, profileTo); err != nil {
		return err
	}
	if rate > 0 {
		rateProfile := ""
		if profileTo != "" {
			rateProfile = profileTo + ".rate"
		}
		if err := measure(ctx, rig, int(rate*seconds)/parts, rate, window, true, rateProfile); err != nil {
			return err
		}
	}
	return nil
}

// measure runs sets payments; a warm-up (print false) prints nothing. With
// profile set the run, not the onion building, is CPU-profiled into that
// file.
func measure(ctx context.Context, rig *lndfake.Rig, sets int, rate float64, window int, print bool, profile string) error {
	offers, err := rig.Build(ctx, sets)
	if err != nil {
		return err
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := rig.Run(ctx, offers, rate, window)
	if err != nil {
		return err
	}
	if print {
		fmt.Println(res)
	}
	if len(res.Failures) > 0 {
		return fmt.Errorf("%d HTLCs not settled with their preimage, first: %s", len(res.Failures), res.Failures[0])
	}
	return nil
}
