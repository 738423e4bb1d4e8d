package sqlstore_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lnmux/lnmux/adapters/sqlstore"
)

// TestSQLiteStandbyGetsTheLockOnRelease: a second leader blocks on the
// flock (no polling) and is granted it as soon as the first releases; a
// cancelled wait returns context.Canceled and takes nothing.
func TestSQLiteStandbyGetsTheLockOnRelease(t *testing.T) {
	cfg := sqliteConfig(t)
	st := migrated(t, cfg)
	first, err := st.Leader().AcquireLease(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancelled := make(chan error, 1)
	go func() {
		_, err := st.Leader().AcquireLease(ctx)
		cancelled <- err
	}()
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: got %v, want context.Canceled", err)
	}

	got := make(chan *sqlstore.Lease, 1)
	go func() {
		l, err := st.Leader().AcquireLease(t.Context())
		if err != nil {
			t.Errorf("standby: %v", err)
		}
		got <- l
	}()
	first.Release()
	second := <-got
	if second == nil {
		t.Fatal("the standby got no lease")
	}
	defer second.Release()
	if second.Epoch <= first.Epoch {
		t.Errorf("standby epoch %d, want above the first leader's %d", second.Epoch, first.Epoch)
	}
}

// TestPostgresStandbyWaitingAndMark: the leader sees a standby waiting on
// the lock; after the hand-over the leader row names the new holder, with
// its epoch, and shows the intercepting mark once set.
func TestPostgresStandbyWaitingAndMark(t *testing.T) {
	cfg := postgresConfig(t)
	st := migrated(t, cfg)
	lease, err := st.Leader().As("pod-a").AcquireLease(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if waiting, err := st.StandbyWaiting(t.Context()); err != nil || waiting {
		t.Fatalf("StandbyWaiting with no standby: %v, %v; want false", waiting, err)
	}
	got := make(chan *sqlstore.Lease, 1)
	go func() {
		l, err := st.Leader().As("pod-b").AcquireLease(t.Context())
		if err != nil {
			t.Errorf("standby: %v", err)
		}
		got <- l
	}()
	waitFor(t, "the leader to see the standby waiting", func() (bool, error) { return st.StandbyWaiting(t.Context()) })
	lease.Release()
	next := <-got
	if next == nil {
		t.Fatal("the standby got no lease")
	}
	defer next.Release()
	row, err := st.LeaderRow(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if row.Epoch != next.Epoch || row.Intercepting || len(row.Holder) < 5 || row.Holder[:5] != "pod-b" {
		t.Errorf("leader row after the hand-over: %+v, want epoch %d, holder pod-b…, not intercepting", row, next.Epoch)
	}
	if err := st.MarkIntercepting(t.Context(), next.Epoch); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkIntercepting(t.Context(), next.Epoch); err != nil {
		t.Fatal(err)
	}
	again, err := st.LeaderRow(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !again.Intercepting || again.Holder != row.Holder {
		t.Errorf("leader row after MarkIntercepting twice: %+v, want intercepting with holder %q", again, row.Holder)
	}
}

// TestPostgresLeaseKnowsItsSessionBound: the lease reads back the TCP
// settings the server applies to the lock's session: the defaults lnmuxd
// sends (3 s), or the DSN's.
func TestPostgresLeaseKnowsItsSessionBound(t *testing.T) {
	cfg := postgresConfig(t)
	st := migrated(t, cfg)
	lease, err := st.Leader().AcquireLease(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !lease.OverTCP {
		lease.Release()
		t.Skip("the test server is reached over a Unix socket: no TCP settings to read back")
	}
	if lease.SessionBound != 3*time.Second {
		t.Errorf("session bound with the defaults: %s, want 3s", lease.SessionBound)
	}
	lease.Release()

	sep := "?"
	if strings.Contains(cfg.DSN, "?") {
		sep = "&"
	}
	cfg.DSN += sep + "tcp_user_timeout=0&keepalives_idle=4&keepalives_interval=2&keepalives_count=3"
	st2, err := sqlstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	lease, err = st2.Leader().AcquireLease(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	if lease.SessionBound != 10*time.Second {
		t.Errorf("session bound with keepalives 4+3×2 s and no user timeout: %s, want 10s", lease.SessionBound)
	}
}

// freezableProxy forwards TCP to target until frozen: then it passes
// nothing on either way and closes nothing, as a network cut does (the
// server's end stays open, so the server keeps the session).
type freezableProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen bool
	thaw   chan struct{} // closed by closeAll
	conns  []net.Conn
}

func newFreezableProxy(t *testing.T, target string) *freezableProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezableProxy{ln: ln, target: target, thaw: make(chan struct{})}
	go p.serve()
	t.Cleanup(p.closeAll)
	return p
}

func (p *freezableProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

func (p *freezableProxy) pipe(from, to net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if err != nil {
			_ = to.Close()
			return
		}
		p.mu.Lock()
		frozen := p.frozen
		p.mu.Unlock()
		if frozen {
			<-p.thaw // the cut: hold the bytes until the connections close
			return
		}
		if _, err := to.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (p *freezableProxy) freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

func (p *freezableProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thaw:
		return
	default:
	}
	close(p.thaw)
	_ = p.ln.Close()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

// TestPostgresLeaderStopsBeforeTheServerFreesTheLock: a leader whose
// connection to Postgres goes silent (a cut, not a close) reports the lock
// lost on its own deadline while the server still holds its session and
// so the lock (no standby can have it yet), and says when the server will
// most likely have freed it. Once the server's end closes, a standby gets
// the lock with the next epoch.
func TestPostgresLeaderStopsBeforeTheServerFreesTheLock(t *testing.T) {
	cfg := postgresConfig(t)
	st := migrated(t, cfg)
	u, err := url.Parse(cfg.DSN)
	if err != nil || u.Host == "" {
		t.Skipf("the test server's DSN %q has no TCP host to proxy", "(redacted)")
	}
	proxy := newFreezableProxy(t, u.Host)
	pu := *u
	pu.Host = proxy.ln.Addr().String()
	pcfg := cfg
	pcfg.DSN = pu.String()
	pst, err := sqlstore.Open(t.Context(), pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pst.Close()
	lease, err := pst.Leader().AcquireLease(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	if lease.SessionBound <= 0 {
		t.Fatalf("session bound %s through a TCP proxy, want the server's TCP settings", lease.SessionBound)
	}
	proxy.freeze()
	<-lease.Lost()
	if lease.FreedBy().IsZero() {
		t.Error("a silent loss says nothing about when the server frees the lock")
	}
	// The server still holds the session: the lock is granted, to the
	// leader that already stopped.
	holders := func() int {
		conn, err := pgx.Connect(t.Context(), cfg.DSN)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var n int
		if err := conn.QueryRow(t.Context(),
			"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := holders(); n != 1 {
		t.Fatalf("%d advisory locks granted when the leader reported the lock lost, want its own still held by the server", n)
	}
	// The server's end closes (its keepalive would give up): a standby
	// takes over with the next epoch.
	proxy.closeAll()
	next, err := st.Leader().AcquireLease(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer next.Release()
	if next.Epoch != lease.Epoch+1 {
		t.Errorf("standby epoch %d, want %d", next.Epoch, lease.Epoch+1)
	}
}
