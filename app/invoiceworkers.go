package app

import (
	"context"
	"runtime"
	"sync"

	"github.com/lnmux/lnmux/ports"
)

// invoiceWorkers runs invoice creation on a few long-lived goroutines, one
// per CPU, instead of on the caller's.
//
// Why: every API call runs on a fresh goroutine of the HTTP/2 server, whose
// stack starts small. Encoding and signing an invoice at the bottom of the
// handler, interceptor and connect-go frames outgrew it, and the runtime
// copied the stack (twice, to 32 KB) on every call: about a tenth of
// lnmuxd's CPU under AddInvoice load (runtime.newstack/copystack in the
// profile, docs/benchmarks.md). A worker's stack grows once and stays. The
// work is pure CPU, so one worker per CPU keeps every core busy; a hand-off
// costs two channel operations.
type invoiceWorkers struct {
	once sync.Once
	jobs chan invoiceJob
}

type invoiceJob struct {
	make func() (ports.AddInvoiceResult, error)
	done chan invoiceOutcome
}

type invoiceOutcome struct {
	res ports.AddInvoiceResult
	err error
}

// outcomes recycles the one-slot channels jobs answer on.
var outcomes = sync.Pool{New: func() any { return make(chan invoiceOutcome, 1) }}

// run makes the invoice on a worker. A job waits for a free worker until
// ctx ends; once taken it completes (microseconds of computation).
func (w *invoiceWorkers) run(ctx context.Context, make func() (ports.AddInvoiceResult, error)) (ports.AddInvoiceResult, error) {
	w.once.Do(w.start)
	done := outcomes.Get().(chan invoiceOutcome)
	select {
	case w.jobs <- invoiceJob{make: make, done: done}:
	case <-ctx.Done():
		outcomes.Put(done)
		return ports.AddInvoiceResult{}, ctx.Err()
	}
	out := <-done
	outcomes.Put(done)
	return out.res, out.err
}

// start launches the workers on first use. They live as long as the
// process: idle, each is one parked goroutine.
func (w *invoiceWorkers) start() {
	w.jobs = make(chan invoiceJob)
	for range runtime.GOMAXPROCS(0) {
		go func() {
			for j := range w.jobs {
				res, err := j.make()
				j.done <- invoiceOutcome{res: res, err: err}
			}
		}()
	}
}
