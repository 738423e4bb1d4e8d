package lndfake_test

import (
	"context"
	"testing"
	"time"

	"github.com/lnmux/lnmux/adapters/lnd/lndfake"
)

// BenchmarkHTLCWire measures HTLCs from the wire: fake lnd nodes offer
// HTLCs with real onions on their interceptor streams, lnmux's real
// adapter and core (auto-settle, in-memory store) answer them, and the
// benchmark ends when every HTLC got its SETTLE. Onions are built before
// the timer starts; b.N is rounded up to whole sets. At most 1024 HTLCs are unanswered at a time.
func BenchmarkHTLCWire(b *testing.B) {
	for _, bc := range []struct {
		name    string
		workers int
	}{
		{name: "parallel-decode", workers: 0},
		{name: "serial-decode", workers: -1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			rig, err := lndfake.NewRig(ctx, lndfake.RigConfig{Nodes: 2, Parts: 4, DecodeWorkers: bc.workers})
			if err != nil {
				b.Fatal(err)
			}
			defer rig.Close()
			offers, err := rig.Build(ctx, (b.N+3)/4)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			res, err := rig.Run(ctx, offers, 0, 1024)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if len(res.Failures) > 0 {
				b.Fatalf("%d HTLCs not settled with their preimage, first: %s", len(res.Failures), res.Failures[0])
			}
			b.ReportMetric(res.Rate(), "htlc/s")
			b.ReportMetric(float64(res.Percentile(99).Microseconds()), "p99-µs")
		})
	}
}
