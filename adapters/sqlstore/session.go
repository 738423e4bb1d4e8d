package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// The leader's own deadline (docs/store.md): the Postgres server ends a
// session it no longer hears from, and so frees the leader lock, when the
// TCP settings of that session give up. With tcp_user_timeout U set
// (Linux), neither the keepalive nor the retransmission path can end the
// connection before U has passed since the last packet the server received
// from us; without it, the keepalive path needs idle + interval × count.
// Every packet we send before a ping's reply arrives is received before
// that reply was sent, so a ping that started at t and succeeded proves the
// session cannot end before t + bound. The leader stops leading (Lost) at
// t + 2/3 bound if no later ping succeeded, well before any standby can be
// granted the lock.

// sessionBound reads the TCP settings the server applies to conn's session
// and returns the shortest time the server can take to end the session
// after the last packet it received from this process, and whether the
// session runs over TCP. Zero means none: a Unix socket (which cannot be
// cut off silently) or settings the server does not report.
func sessionBound(ctx context.Context, conn *pgx.Conn) (time.Duration, bool, error) {
	var (
		tcp                       bool
		user, idle, interval, cnt string
	)
	err := conn.QueryRow(ctx, `SELECT inet_client_addr() IS NOT NULL,
		current_setting('tcp_user_timeout'), current_setting('tcp_keepalives_idle'),
		current_setting('tcp_keepalives_interval'), current_setting('tcp_keepalives_count')`).
		Scan(&tcp, &user, &idle, &interval, &cnt)
	if err != nil {
		return 0, false, err
	}
	if !tcp {
		return 0, false, nil
	}
	return boundOf(user, idle, interval, cnt), true, nil
}

// boundOf computes sessionBound from the four settings as the server shows
// them ("3s", "3000ms", "10", "0"); an unreadable one counts as unknown.
func boundOf(user, idle, interval, count string) time.Duration {
	u, ok1 := pgDuration(user, time.Millisecond)
	i, ok2 := pgDuration(idle, time.Second)
	v, ok3 := pgDuration(interval, time.Second)
	c, err := strconv.Atoi(strings.TrimSpace(count))
	switch {
	case ok1 && u > 0:
		return u
	case ok2 && ok3 && err == nil && i > 0 && v > 0 && c > 0:
		return i + time.Duration(c)*v
	default:
		return 0
	}
}

// pgDuration parses a duration setting as SHOW prints it: a number with a
// unit (ms, s, min, h) or a bare number in the setting's base unit.
func pgDuration(s string, base time.Duration) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"ms", time.Millisecond}, {"min", time.Minute}, {"s", time.Second}, {"h", time.Hour}}
	unit := base
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, unit = strings.TrimSpace(rest), u.unit
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// sessionWatch keeps a held Postgres lock's session checked: a ping every
// interval, and the deadline described above.
type sessionWatch struct {
	bound time.Duration // zero: no deadline, the lease ends on a failed ping only
	every time.Duration
	// deposeAfter is how long after the last successful ping's start the
	// holder gives up: two thirds of bound, leaving a third for the
	// deposed leader to stop answering.
	deposeAfter time.Duration
}

func newSessionWatch(bound, poll time.Duration) sessionWatch {
	w := sessionWatch{bound: bound, every: poll}
	if bound > 0 {
		w.deposeAfter = bound * 2 / 3
		w.every = min(poll, bound/6)
	}
	return w
}

// pingTimeout bounds one ping.
func (w sessionWatch) pingTimeout() time.Duration {
	if w.bound > 0 {
		return w.deposeAfter
	}
	return max(w.every, 5*time.Second)
}

type pingResult struct {
	start time.Time
	err   error
}

// run pings until stop closes. It closes lost when a ping fails or when no
// ping has succeeded for deposeAfter since since (the lock was known held
// then), and records in freedBy when the server has most likely freed the
// lock if the session was cut off silently. Only run's own goroutine and
// the one ping it waits for use the connection; run returns only once no
// ping is in flight.
func (w sessionWatch) run(since time.Time, stop <-chan struct{}, lost chan<- struct{}, freedBy *atomic.Int64, ping func(time.Duration) error) {
	results := make(chan pingResult, 1)
	pinging := false
	tick := time.NewTicker(w.every)
	defer tick.Stop()
	// A nil channel never fires: no deadline without a bound.
	var deadline <-chan time.Time
	var timer *time.Timer
	if w.bound > 0 {
		timer = time.NewTimer(time.Until(since.Add(w.deposeAfter)))
		defer timer.Stop()
		deadline = timer.C
	}
	last := since
	isLost := false
	lose := func(silent bool) {
		if isLost {
			return
		}
		isLost = true
		if silent && w.bound > 0 {
			freedBy.Store(last.Add(w.bound + w.every).UnixMicro())
		}
		close(lost)
	}
	for {
		select {
		case <-stop:
			if pinging {
				<-results
			}
			return
		case <-tick.C:
			if pinging || isLost {
				continue
			}
			pinging = true
			start := time.Now()
			go func() { results <- pingResult{start: start, err: ping(w.pingTimeout())} }()
		case r := <-results:
			pinging = false
			if isLost {
				continue
			}
			if r.err != nil {
				lose(timedOut(r.err))
				continue
			}
			last = r.start
			if timer != nil {
				timer.Reset(time.Until(last.Add(w.deposeAfter)))
			}
		case <-deadline:
			if !isLost && time.Since(last) >= w.deposeAfter {
				lose(true)
			}
		}
	}
}

// timedOut tells a ping that went unanswered (the session may live on at
// the server until its TCP settings give up) from one the server or the
// network refused (the session is gone).
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// String describes the watch for the log line of a new lease.
func (w sessionWatch) String() string {
	if w.bound == 0 {
		return fmt.Sprintf("ping every %s, no deadline", w.every)
	}
	return fmt.Sprintf("ping every %s, depose after %s without one", w.every, w.deposeAfter)
}
