package lnd

import (
	"context"
	"sync"
)

// queue hands what the streams receive to the sink in order, from one
// goroutine per node, so that no receive loop ever waits for the sink and a
// slow sink never stalls lnd's streams. It is unbounded: lnd offers each
// HTLC once per stream, so its length is bounded by the HTLCs in flight.
type queue struct {
	mu    sync.Mutex
	items []func(context.Context)
	wake  chan struct{}
}

func newQueue() *queue { return &queue{wake: make(chan struct{}, 1)} }

func (q *queue) push(f func(context.Context)) {
	q.mu.Lock()
	q.items = append(q.items, f)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run calls the queued functions in order until ctx ends.
func (q *queue) run(ctx context.Context) {
	for {
		q.mu.Lock()
		items := q.items
		q.items = nil
		q.mu.Unlock()
		for _, f := range items {
			if ctx.Err() != nil {
				return
			}
			f(ctx)
		}
		if len(items) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
	}
}
