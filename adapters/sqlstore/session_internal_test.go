package sqlstore

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestBoundOfTheServersSettings(t *testing.T) {
	tests := []struct {
		user, idle, interval, count string
		want                        time.Duration
	}{
		// tcp_user_timeout decides when set: the kernel ends neither path
		// before it.
		{"3s", "1s", "1s", "2", 3 * time.Second},
		{"3000ms", "10", "5", "3", 3 * time.Second},
		{"12000", "7", "3", "4", 12 * time.Second},
		// Without it, the keepalive's idle + interval × count.
		{"0", "10s", "5s", "3", 25 * time.Second},
		{"0", "2min", "75s", "9", 2*time.Minute + 9*75*time.Second},
		// A setting the server does not apply shows 0: unknown.
		{"0", "0", "0", "0", 0},
		{"garbage", "1s", "x", "2", 0},
	}
	for _, tt := range tests {
		if got := boundOf(tt.user, tt.idle, tt.interval, tt.count); got != tt.want {
			t.Errorf("boundOf(%q, %q, %q, %q) = %s, want %s", tt.user, tt.idle, tt.interval, tt.count, got, tt.want)
		}
	}
}

// TestSessionWatchDeposesOnItsOwnTimer: a leader whose pings hang (the
// network to Postgres is cut: nothing comes back, nothing fails) reports
// the lock lost on its own deadline while the ping is still unanswered,
// and says when the server has most likely freed the lock; a refused ping
// reports it lost with no such time (the session is gone already).
func TestSessionWatchDeposesOnItsOwnTimer(t *testing.T) {
	w := newSessionWatch(300*time.Millisecond, time.Second)
	if w.every != 50*time.Millisecond || w.deposeAfter != 200*time.Millisecond {
		t.Fatalf("watch %+v: want a ping every 50ms and a deadline of 200ms", w)
	}
	unblock := make(chan struct{})
	var pings atomic.Int32
	lost := make(chan struct{})
	stop := make(chan struct{})
	done := make(chan struct{})
	var freed atomic.Int64
	since := time.Now()
	go func() {
		defer close(done)
		w.run(since, stop, lost, &freed, func(time.Duration) error {
			pings.Add(1)
			<-unblock // the cut: the ping neither succeeds nor fails
			return context.DeadlineExceeded
		})
	}()
	<-lost
	if pings.Load() != 1 {
		t.Errorf("%d pings in flight when the lock was reported lost, want the one hanging ping", pings.Load())
	}
	if f := freed.Load(); f != since.Add(300*time.Millisecond+50*time.Millisecond).UnixMicro() {
		t.Errorf("freed by %s, want the deadline base + bound + one ping interval", time.UnixMicro(f).Sub(since))
	}
	close(stop)
	select {
	case <-done:
		t.Fatal("the watch returned while its ping still used the connection")
	default:
	}
	close(unblock)
	<-done

	// A ping the server refuses: lost at once, the session is gone.
	lost2, stop2, done2 := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var freed2 atomic.Int64
	go func() {
		defer close(done2)
		w.run(time.Now(), stop2, lost2, &freed2, func(time.Duration) error { return errors.New("connection reset by peer") })
	}()
	<-lost2
	close(stop2)
	<-done2
	if freed2.Load() != 0 {
		t.Errorf("refused ping: freed-by time set, want none (the session ended)")
	}
}

// TestSessionWatchWithoutBound: over a Unix socket (no silent cut) the
// watch has no deadline; only a failed ping loses the lock.
func TestSessionWatchWithoutBound(t *testing.T) {
	w := newSessionWatch(0, 20*time.Millisecond)
	if w.deposeAfter != 0 || w.every != 20*time.Millisecond {
		t.Fatalf("watch %+v: want no deadline and the poll interval", w)
	}
	var n atomic.Int32
	lost, stop, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var freed atomic.Int64
	go func() {
		defer close(done)
		w.run(time.Now(), stop, lost, &freed, func(time.Duration) error {
			if n.Add(1) < 5 {
				return nil
			}
			return errors.New("server closed the connection")
		})
	}()
	<-lost
	close(stop)
	<-done
	if n.Load() != 5 {
		t.Errorf("lost after %d pings, want after the fifth (the first failure)", n.Load())
	}
}
