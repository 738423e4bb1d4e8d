package lnd

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestQueuePreparedKeepsPushOrder: prepare steps run on workers and finish
// in any order (the first ones slowest), yet every item is delivered in push
// order, after its own prepare, and plain items stay in place between
// prepared ones (an HTLC's later final event or a re-offer must never
// overtake it).
func TestQueuePreparedKeepsPushOrder(t *testing.T) {
	for _, workers := range []int{0, 1, 4} {
		t.Run("workers="+string(rune('0'+workers)), func(t *testing.T) {
			q := newQueueWorkers(workers)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go q.run(ctx)

			const n = 2000
			var (
				mu       sync.Mutex
				got      []int
				prepared = make([]atomic.Bool, n)
				notReady atomic.Int64
			)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range n {
				deliver := func(context.Context) {
					if i%3 != 2 && !prepared[i].Load() {
						notReady.Add(1)
					}
					mu.Lock()
					got = append(got, i)
					mu.Unlock()
				}
				if i%3 == 2 {
					q.push(deliver) // e.g. a final event or a block between HTLCs
					continue
				}
				delay := time.Duration(0)
				if i < 50 {
					delay = time.Duration(50-i) * 100 * time.Microsecond
				} else if rng.IntN(10) == 0 {
					delay = time.Duration(rng.IntN(500)) * time.Microsecond
				}
				q.pushPrepared(func() {
					time.Sleep(delay)
					prepared[i].Store(true)
				}, deliver)
			}
			deadline := time.Now().Add(2 * time.Minute) // only a hang fails, not a busy machine
			for {
				mu.Lock()
				k := len(got)
				mu.Unlock()
				if k == n {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("delivered %d of %d", k, n)
				}
				time.Sleep(time.Millisecond)
			}
			for i, v := range got {
				if v != i {
					t.Fatalf("delivery %d was item %d: want push order", i, v)
				}
			}
			if c := notReady.Load(); c != 0 {
				t.Fatalf("%d items delivered before their prepare ran, want 0", c)
			}
		})
	}
}
