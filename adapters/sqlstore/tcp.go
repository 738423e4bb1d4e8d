package sqlstore

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TCP liveness of Postgres connections (docs/operations.md, "Connections
// that die silently"). Without it a partitioned connection looks alive for
// hours (Linux's default keepalive starts after two hours, retransmissions
// give up after about fifteen minutes): the leader's session would keep the
// advisory lock that long, and a store call would hang as long. With these
// the server ends a cut-off leader's session 3 s after the last packet it
// received, and the leader, pinging every 0.5 s, stops leading 2 s after
// its last successful ping (session.go; docs/high-availability.md).
const (
	defaultKeepaliveIdle     = 1 * time.Second
	defaultKeepaliveInterval = 1 * time.Second
	defaultKeepaliveCount    = 2
	defaultTCPUserTimeout    = 3 * time.Second
)

// tcpSettings are the keepalive and user timeout of both ends of a
// connection. The DSN may set them with libpq's names: keepalives (0
// disables), keepalives_idle, keepalives_interval (seconds),
// keepalives_count and tcp_user_timeout (milliseconds). pgx does not know
// these names and would send them to the server as settings, which fails.
type tcpSettings struct {
	keepalive   bool
	idle        time.Duration
	interval    time.Duration
	count       int
	userTimeout time.Duration
}

// takeTCPSettings removes libpq's client-side TCP parameters from params and
// returns them, with the defaults for those not set.
func takeTCPSettings(params map[string]string) (tcpSettings, error) {
	s := tcpSettings{
		keepalive: true, idle: defaultKeepaliveIdle, interval: defaultKeepaliveInterval,
		count: defaultKeepaliveCount, userTimeout: defaultTCPUserTimeout,
	}
	for key, unit := range map[string]time.Duration{
		"keepalives":          0,
		"keepalives_idle":     time.Second,
		"keepalives_interval": time.Second,
		"keepalives_count":    0,
		"tcp_user_timeout":    time.Millisecond,
	} {
		v, ok := params[key]
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return s, fmt.Errorf("postgres: DSN parameter %s must be a non-negative integer", key)
		}
		switch key {
		case "keepalives":
			s.keepalive = n != 0
		case "keepalives_idle":
			s.idle = time.Duration(n) * unit
		case "keepalives_interval":
			s.interval = time.Duration(n) * unit
		case "keepalives_count":
			s.count = n
		case "tcp_user_timeout":
			s.userTimeout = time.Duration(n) * unit
		}
		// tcp_user_timeout is also a server setting (its end of the
		// socket) with the same unit: keep it for the server.
		if key != "tcp_user_timeout" {
			delete(params, key)
		}
	}
	return s, nil
}

// serverSettings asks the server to watch its end of the socket the same
// way, so that it ends the session (and frees the leader lock) when this
// process is cut off. Settings the DSN gives (params) win.
func (s tcpSettings) serverSettings(params, out map[string]string) {
	setDefault := func(k, v string) {
		if _, ok := params[k]; !ok {
			out[k] = v
		}
	}
	if s.keepalive {
		setDefault("tcp_keepalives_idle", strconv.Itoa(int(s.idle/time.Second)))
		setDefault("tcp_keepalives_interval", strconv.Itoa(int(s.interval/time.Second)))
		setDefault("tcp_keepalives_count", strconv.Itoa(s.count))
	}
	setDefault("tcp_user_timeout", strconv.FormatInt(s.userTimeout.Milliseconds(), 10))
}

// dialFunc dials with these settings on TCP; Unix sockets are left alone.
func (s tcpSettings) dialFunc() pgconn.DialFunc {
	d := &net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: s.keepalive, Idle: s.idle, Interval: s.interval, Count: s.count,
		},
	}
	if !s.keepalive {
		d.KeepAlive = -1
	}
	if s.userTimeout > 0 {
		ms := int(s.userTimeout.Milliseconds())
		d.Control = func(network, _ string, c syscall.RawConn) error {
			if !strings.HasPrefix(network, "tcp") {
				return nil
			}
			var serr error
			if err := c.Control(func(fd uintptr) { serr = setTCPUserTimeout(fd, ms) }); err != nil {
				return err
			}
			return serr
		}
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
}
