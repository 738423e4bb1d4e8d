package lnd

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// queue hands what the streams receive to the sink in order, from one
// goroutine per node, so that no receive loop ever waits for the sink and a
// slow sink never stalls lnd's streams. It is unbounded: lnd offers each
// HTLC once per stream, so its length is bounded by the HTLCs in flight.
//
// An item may carry a prepare step (peeling an HTLC's onion) that depends
// on nothing but the item: a pool of workers runs those ahead, in parallel
// and in any order, while delivery stays strictly in push order — the
// delivery goroutine waits for an item's prepare before delivering it, and
// runs it itself if no worker has picked it up. The sink therefore sees
// exactly the order it would see without the pool (docs/design.md, "The
// HTLC path").
type queue struct {
	mu    sync.Mutex
	items []*queueItem
	wake  chan struct{}
	// prep feeds the workers; when it is full, the delivery goroutine
	// prepares the item itself, so push never blocks.
	prep    chan *queueItem
	workers int
}

type queueItem struct {
	deliver func(context.Context)
	// prepare, if set, runs once before deliver, on a worker or on the
	// delivery goroutine: whoever claims it first.
	prepare func()
	claimed atomic.Bool
	done    chan struct{} // closed once a worker ran prepare
}

// prepQueueLen bounds the items waiting for a worker: beyond it the
// delivery goroutine prepares them in order, as without workers.
const prepQueueLen = 4096

func newQueue() *queue { return newQueueWorkers(runtime.GOMAXPROCS(0)) }

// newQueueWorkers makes a queue whose prepare steps run on workers
// goroutines (0: on the delivery goroutine only).
func newQueueWorkers(workers int) *queue {
	return &queue{wake: make(chan struct{}, 1), prep: make(chan *queueItem, prepQueueLen), workers: workers}
}

// push queues f for in-order delivery.
func (q *queue) push(f func(context.Context)) { q.add(&queueItem{deliver: f}) }

// pushPrepared queues deliver for in-order delivery after prepare, which
// may run on another goroutine, concurrently with other items' prepare
// steps and deliveries. prepare must not touch state deliveries use.
func (q *queue) pushPrepared(prepare func(), deliver func(context.Context)) {
	it := &queueItem{deliver: deliver, prepare: prepare}
	if q.workers > 0 {
		it.done = make(chan struct{})
	}
	q.add(it)
	if q.workers > 0 {
		select {
		case q.prep <- it:
		default: // the delivery goroutine prepares it
		}
	}
}

func (q *queue) add(it *queueItem) {
	q.mu.Lock()
	q.items = append(q.items, it)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run delivers the queued items in order until ctx ends; the workers run
// as long as it does.
func (q *queue) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for range q.workers {
		wg.Go(func() { q.work(ctx) })
	}
	for {
		q.mu.Lock()
		items := q.items
		q.items = nil
		q.mu.Unlock()
		for _, it := range items {
			if ctx.Err() != nil {
				return
			}
			if it.prepare != nil {
				if it.claimed.CompareAndSwap(false, true) {
					it.prepare()
				} else {
					<-it.done // a worker has it: it finishes without waiting on anything
				}
			}
			it.deliver(ctx)
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

// work prepares items ahead of delivery.
func (q *queue) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-q.prep:
			if it.claimed.CompareAndSwap(false, true) {
				it.prepare()
				close(it.done)
			}
		}
	}
}
