package connectrpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// StreamLimits bounds what long-lived calls may hold: the subscriptions,
// WaitForInvoiceFinalStatus, health Watch and the reflection streams. Each
// open one costs a goroutine, HTTP/2 stream buffers and, for the
// subscriptions, an event buffer in the application
// (docs/authentication.md, "Limits"). The API's calls and the anonymous
// ones (health Watch and reflection, which need no macaroon) count against
// separate caps, so that anonymous callers can never take the slots of
// authenticated ones.
type StreamLimits struct {
	// Total caps the API's long-lived calls open at once; 0 means no cap.
	Total int
	// PerClient caps them per client IP address; 0 means no cap. Behind a
	// reverse proxy every client has the proxy's address.
	PerClient int
	// Anonymous caps the health Watch and reflection streams open at once;
	// 0 means no cap (they still never count against Total).
	Anonymous int
	// AnonymousPerClient caps those per client IP address; 0 means no cap.
	AnonymousPerClient int
	// SlowReaderTimeout ends a call whose client has not accepted a
	// response write for this long (its flow-control window stayed full);
	// 0 turns the check off. It applies to every response write, unary or
	// streaming; idle streams, which write nothing, are not affected.
	SlowReaderTimeout time.Duration
}

// DefaultStreamLimits are the limits NewHandler applies unless
// WithStreamLimits says otherwise.
var DefaultStreamLimits = StreamLimits{Total: 4096, PerClient: 1024, Anonymous: 64, AnonymousPerClient: 16,
	SlowReaderTimeout: 30 * time.Second}

// WithStreamLimits replaces DefaultStreamLimits.
func WithStreamLimits(l StreamLimits) Option {
	return func(c *config) { c.limits = l }
}

// Stats counts what the limits did, for tests and metrics.
type Stats struct {
	// OpenStreams is the number of the API's long-lived calls open now.
	OpenStreams int
	// RefusedStreams counts the API's calls refused with
	// RESOURCE_EXHAUSTED.
	RefusedStreams uint64
	// OpenAnonymousStreams is the number of health Watch and reflection
	// streams open now.
	OpenAnonymousStreams int
	// RefusedAnonymousStreams counts those refused with
	// RESOURCE_EXHAUSTED.
	RefusedAnonymousStreams uint64
	// SlowReadersDropped counts the calls ended because their client did
	// not read.
	SlowReadersDropped uint64
}

// Stats reports the limits' counters.
func (h *Handler) Stats() Stats {
	return Stats{
		OpenStreams:             h.limiter.open(),
		RefusedStreams:          h.limiter.refused.Load(),
		OpenAnonymousStreams:    h.anonLimiter.open(),
		RefusedAnonymousStreams: h.anonLimiter.refused.Load(),
		SlowReadersDropped:      h.slowDropped.Load(),
	}
}

// longLived are the unary calls that may wait indefinitely.
var longLived = map[string]bool{lnmuxpbconnect.ServiceWaitForInvoiceFinalStatusProcedure: true}

var errTooManyStreams = errors.New("too many concurrent streams")

// limiter counts long-lived calls in total and per client address, with
// the Total and PerClient of its limits.
type limiter struct {
	limits  StreamLimits
	pool    string // "api" or "anonymous", for the log
	log     *slog.Logger
	refused atomic.Uint64

	mu       sync.Mutex
	total    int
	byClient map[string]int
}

var _ connect.Interceptor = (*limiter)(nil)

func newLimiter(l StreamLimits, log *slog.Logger) *limiter {
	return &limiter{limits: l, pool: "api", log: log, byClient: make(map[string]int)}
}

// newAnonymousLimiter counts the health Watch and reflection streams
// against l.Anonymous and l.AnonymousPerClient, apart from the API's.
func newAnonymousLimiter(l StreamLimits, log *slog.Logger) *limiter {
	lim := newLimiter(StreamLimits{Total: l.Anonymous, PerClient: l.AnonymousPerClient}, log)
	lim.pool = "anonymous"
	return lim
}

func (l *limiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// acquire takes a slot for client or refuses with RESOURCE_EXHAUSTED.
func (l *limiter) acquire(ctx context.Context, procedure, client string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var limit string
	switch {
	case l.limits.Total > 0 && l.total >= l.limits.Total:
		limit = fmt.Sprintf("%d in total", l.limits.Total)
	case l.limits.PerClient > 0 && l.byClient[client] >= l.limits.PerClient:
		limit = fmt.Sprintf("%d per client", l.limits.PerClient)
	}
	if limit != "" {
		if n := l.refused.Add(1); n&(n-1) == 0 { // log the 1st, 2nd, 4th, 8th… refusal
			l.log.WarnContext(ctx, "long-lived call refused: stream limit reached", "procedure", procedure,
				"client", client, "pool", l.pool, "limit", limit, "refused_total", n)
		}
		return nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("%w: at most %s", errTooManyStreams, limit))
	}
	l.total++
	l.byClient[client]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if l.byClient[client]--; l.byClient[client] <= 0 {
				delete(l.byClient, client)
			}
		})
	}, nil
}

func clientOf(p connect.Peer) string {
	if host, _, err := net.SplitHostPort(p.Addr); err == nil {
		return host
	}
	return p.Addr
}

func (l *limiter) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient || !longLived[req.Spec().Procedure] {
			return next(ctx, req)
		}
		release, err := l.acquire(ctx, req.Spec().Procedure, clientOf(req.Peer()))
		if err != nil {
			return nil, err
		}
		defer release()
		return next(ctx, req)
	}
}

func (l *limiter) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (l *limiter) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		release, err := l.acquire(ctx, conn.Spec().Procedure, clientOf(conn.Peer()))
		if err != nil {
			return err
		}
		defer release()
		return next(ctx, conn)
	}
}

// slowReaders gives every response write a deadline of timeout and clears
// it afterwards, so that a client that stops reading (its flow-control
// window full, its TCP buffers full) cannot hold a handler, and the events
// queued for it, forever: the write fails, the stream is reset, and the
// handler returns.
func (h *Handler) slowReaders(next http.Handler, timeout time.Duration) http.Handler {
	if timeout <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: timeout}
		next.ServeHTTP(dw, r)
		if dw.slow {
			h.slowDropped.Add(1)
			h.log.InfoContext(r.Context(), "call ended: client did not read", "path", r.URL.Path,
				"remote", r.RemoteAddr, "timeout", timeout)
		}
	})
}

type deadlineWriter struct {
	http.ResponseWriter
	rc       *http.ResponseController
	timeout  time.Duration
	deadline time.Time
	slow     bool
}

func (w *deadlineWriter) arm() {
	w.deadline = time.Now().Add(w.timeout)
	_ = w.rc.SetWriteDeadline(w.deadline)
}

func (w *deadlineWriter) disarm() {
	if !time.Now().Before(w.deadline) {
		w.slow = true
	}
	_ = w.rc.SetWriteDeadline(time.Time{})
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.arm()
	defer w.disarm()
	return w.ResponseWriter.Write(p)
}

// Flush implements http.Flusher, which connect needs for streams.
func (w *deadlineWriter) Flush() {
	w.arm()
	defer w.disarm()
	_ = w.rc.Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
