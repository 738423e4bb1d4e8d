package connectrpc

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/grpcreflect"
)

// Clients that send slowly or open many connections: a body read deadline
// for every call whose request is one message, and a cap on the
// connections of the API's listener (docs/authentication.md, "Limits").

// DefaultBodyReadTimeout is how long a request body may take to arrive
// unless WithBodyReadTimeout says otherwise. lnmux's largest request is
// about 65 KB.
const DefaultBodyReadTimeout = 10 * time.Second

// WithBodyReadTimeout gives the body of every request d to arrive, counted
// from the moment its headers were read; a body still incomplete then fails
// the call and, on HTTP/1.1, closes the connection. It applies to the unary
// calls and to the server streams (whose request is one message too), not
// to the reflection streams, whose client sends as long as it likes. Once
// the body is read the deadline is lifted, so streams last as long as
// they are open. 0 turns it off.
func WithBodyReadTimeout(d time.Duration) Option {
	return func(c *config) { c.bodyTimeout = d }
}

// openBodied are the procedures whose request body stays open for the
// whole call (bidirectional streams).
var openBodied = map[string]bool{
	"/" + grpcreflect.ReflectV1ServiceName + "/ServerReflectionInfo":      true,
	"/" + grpcreflect.ReflectV1AlphaServiceName + "/ServerReflectionInfo": true,
}

// bodyDeadline sets a read deadline of timeout on every request that has a
// body, except the bidirectional streams, and lifts it once the body has
// been read to its end.
func bodyDeadline(next http.Handler, timeout time.Duration) http.Handler {
	if timeout <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || openBodied[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			// A ResponseWriter without deadlines (not net/http's server).
			next.ServeHTTP(w, r)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, w: w, http1: r.ProtoMajor == 1}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline when the body has been read: on
// HTTP/1.1 the server then keeps reading the connection in the background
// to notice a client that goes away, and a deadline left in place would
// end a stream that lasts longer. A body that fails (its deadline passed)
// closes an HTTP/1.1 connection after the answer: net/http would otherwise
// keep it for the next request, and the rest of the announced body would
// hold it open until the idle timeout.
type deadlineBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	w     http.ResponseWriter
	http1 bool
	done  bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil || b.done:
	case err == io.EOF:
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	default:
		b.done = true
		if b.http1 {
			b.w.Header().Set("Connection", "close")
		}
	}
	return n, err
}

// ConnLimits caps the connections of a listener.
type ConnLimits struct {
	// Total caps the connections open at once; 0 means no cap.
	Total int
	// PerClient caps them per client IP address; 0 means no cap. Behind a
	// reverse proxy every client has the proxy's address.
	PerClient int
}

// DefaultConnLimits leave room for a Connect stream per connection
// (HTTP/1.1 clients, browsers) up to DefaultStreamLimits, plus unary calls.
var DefaultConnLimits = ConnLimits{Total: 8192, PerClient: 2048}

// ConnStats counts what a ConnLimiter did.
type ConnStats struct {
	// Open is the number of connections open now.
	Open int
	// Refused counts the connections closed at once for being over a cap.
	Refused uint64
}

// ConnLimiter is a listener that closes, as soon as it accepts it, every
// connection beyond its limits: the client sees its connection closed and
// may retry, nothing of the server is held, and connections within the
// limits are never made to wait behind refused ones.
type ConnLimiter struct {
	net.Listener
	limits  ConnLimits
	log     *slog.Logger
	refused atomic.Uint64

	mu       sync.Mutex
	open     int
	byClient map[string]int
}

// LimitListener wraps ln with the limits l. Serve the API on the result
// (before any TLS listener, so that handshakes count too).
func LimitListener(ln net.Listener, l ConnLimits, log *slog.Logger) *ConnLimiter {
	return &ConnLimiter{Listener: ln, limits: l, log: log, byClient: make(map[string]int)}
}

// Stats reports the open and refused connections.
func (l *ConnLimiter) Stats() ConnStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ConnStats{Open: l.open, Refused: l.refused.Load()}
}

// Accept returns the next connection within the limits and closes the
// others.
func (l *ConnLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := c.RemoteAddr().String()
		if host, _, err := net.SplitHostPort(client); err == nil {
			client = host
		}
		if limit := l.acquire(client); limit != "" {
			_ = c.Close()
			if n := l.refused.Add(1); n&(n-1) == 0 { // the 1st, 2nd, 4th, 8th… refusal
				l.log.Warn("connection refused: connection limit reached", "client", client, "limit", limit, "refused_total", n)
			}
			continue
		}
		return &limitedConn{Conn: c, release: func() { l.release(client) }}, nil
	}
}

// acquire counts a connection of client, or names the limit it is over.
func (l *ConnLimiter) acquire(client string) (overLimit string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.limits.Total > 0 && l.open >= l.limits.Total:
		return "total"
	case l.limits.PerClient > 0 && l.byClient[client] >= l.limits.PerClient:
		return "per client"
	}
	l.open++
	l.byClient[client]++
	return ""
}

func (l *ConnLimiter) release(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byClient[client]--; l.byClient[client] <= 0 {
		delete(l.byClient, client)
	}
}

// limitedConn gives its slot back when closed (once, however often Close
// is called).
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
