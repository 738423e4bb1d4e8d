package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// The contract of RecordCancel and ListCancels, run by RunInvoiceStore: a
// record is listed until its expiry, with its HTLCs in circuit order and
// its times in UTC to the microsecond; recording again merges (permanent
// stays permanent, the later expiry, the first CancelledAt and the union
// of the HTLCs with each one's later height are kept); a stored hash is
// refused with domain.ErrSettleRequested; a cancelled set, and every set
// of a permanently cancelled hash, is refused by RequestSettle with
// domain.ErrConflict; of a cancel and a settle request of the same set
// that race, exactly one wins; the first permanent cancel of a hash, and
// only that, is logged as a "cancelled" event.

// NewCancel returns the cancel of inv's set, with inv's HTLCs and expiry,
// cancelled at T0.
func NewCancel(inv domain.Invoice, permanent bool) domain.CancelRecord {
	c := domain.CancelRecord{Hash: inv.Hash, SetID: inv.SetID, Permanent: permanent, Expiry: inv.Expiry, CancelledAt: t0}
	for i, h := range inv.HTLCs {
		c.HTLCs = append(c.HTLCs, domain.CancelledHTLC{Circuit: h.Circuit, Until: uint32(800_000 + i)}) //nolint:gosec // a few HTLCs
	}
	return c
}

// storedCancel is c as the store gives it back.
func storedCancel(c domain.CancelRecord) domain.CancelRecord {
	c.Expiry = c.Expiry.UTC().Truncate(time.Microsecond)
	c.CancelledAt = c.CancelledAt.UTC().Truncate(time.Microsecond)
	c.HTLCs = slices.Clone(c.HTLCs)
	slices.SortFunc(c.HTLCs, func(a, b domain.CancelledHTLC) int { return a.Circuit.Compare(b.Circuit) })
	return c
}

func listCancels(t *testing.T, st ports.InvoiceStore, at time.Time) []domain.CancelRecord {
	t.Helper()
	cs, err := st.ListCancels(t.Context(), at)
	if err != nil {
		t.Fatalf("list cancels: %v", err)
	}
	return cs
}

func assertCancels(t *testing.T, what string, got, want []domain.CancelRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d cancel records %+v, want %d", what, len(got), got, len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Hash != w.Hash || g.SetID != w.SetID || g.Permanent != w.Permanent {
			t.Fatalf("%s: record #%d is %s/%s permanent=%v, want %s/%s permanent=%v", what, i, g.Hash, g.SetID, g.Permanent, w.Hash, w.SetID, w.Permanent)
		}
		for _, c := range []struct {
			field     string
			got, want time.Time
		}{{"expiry", g.Expiry, w.Expiry}, {"cancelled at", g.CancelledAt, w.CancelledAt}} {
			if !c.got.Equal(c.want) || c.got.Location() != time.UTC {
				t.Fatalf("%s: record #%d: %s is %v, want %v in UTC", what, i, c.field, c.got, c.want)
			}
		}
		if !slices.Equal(g.HTLCs, w.HTLCs) {
			t.Fatalf("%s: record #%d: HTLCs %+v, want %+v", what, i, g.HTLCs, w.HTLCs)
		}
	}
}

func byHashAndSet(cs []domain.CancelRecord) []domain.CancelRecord {
	cs = slices.Clone(cs)
	slices.SortFunc(cs, func(a, b domain.CancelRecord) int {
		if c := slices.Compare(a.Hash[:], b.Hash[:]); c != 0 {
			return c
		}
		return slices.Compare(a.SetID[:], b.SetID[:])
	})
	return cs
}

// testCancelList: records are listed in (hash, set id) order while
// unexpired, with their HTLCs; an empty store lists none.
func (s suite) testCancelList(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	if got := listCancels(t, st, t0); len(got) != 0 {
		t.Fatalf("empty store lists %d cancels", len(got))
	}
	var want []domain.CancelRecord
	for i := range 4 {
		inv := newInvoice(t, 1+i%3)
		inv.Expiry = t0.Add(time.Duration(i+1) * time.Hour)
		c := NewCancel(inv, i == 3)
		if err := st.RecordCancel(ctx, c); err != nil {
			t.Fatalf("record cancel #%d: %v", i, err)
		}
		want = append(want, storedCancel(c))
	}
	// Two sets of one hash.
	other := want[0]
	other.SetID = domain.SetID{1}
	other.HTLCs = NewCancel(newInvoice(t, 2), false).HTLCs
	if err := st.RecordCancel(ctx, other); err != nil {
		t.Fatalf("record cancel of a second set: %v", err)
	}
	want = append(want, storedCancel(other))
	want = byHashAndSet(want)
	assertCancels(t, "list", listCancels(t, st, t0), want)
	// Expired records are left out: the first and the second set of
	// want's hash expire after one hour.
	later := t0.Add(90 * time.Minute)
	var unexpired []domain.CancelRecord
	for _, c := range want {
		if c.Expiry.After(later) {
			unexpired = append(unexpired, c)
		}
	}
	assertCancels(t, "list after 90 minutes", listCancels(t, st, later), unexpired)
	if got := listCancels(t, st, t0.Add(5*time.Hour)); len(got) != 0 {
		t.Fatalf("after every expiry: %d cancels listed", len(got))
	}
}

// testCancelIdempotent: recording again merges into the stored record.
func (s suite) testCancelIdempotent(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	inv := newInvoice(t, 2)
	c := NewCancel(inv, false)
	for i := range 2 {
		if err := st.RecordCancel(ctx, c); err != nil {
			t.Fatalf("record cancel #%d: %v", i, err)
		}
	}
	assertCancels(t, "recorded twice", listCancels(t, st, t0), []domain.CancelRecord{storedCancel(c)})

	// Permanent, a later expiry, a new HTLC, a later height for a known
	// one and a lower one for the other, a later CancelledAt (ignored).
	again := c
	again.Permanent = true
	again.Expiry = c.Expiry.Add(time.Hour)
	again.CancelledAt = t0.Add(time.Minute)
	fresh := NewCancel(newInvoice(t, 1), false).HTLCs[0]
	again.HTLCs = []domain.CancelledHTLC{
		{Circuit: c.HTLCs[0].Circuit, Until: c.HTLCs[0].Until + 10},
		{Circuit: c.HTLCs[1].Circuit, Until: c.HTLCs[1].Until - 10},
		fresh,
	}
	if err := st.RecordCancel(ctx, again); err != nil {
		t.Fatalf("record permanently: %v", err)
	}
	want := storedCancel(c)
	want.Permanent = true
	want.Expiry = storedCancel(again).Expiry
	want.HTLCs = storedCancel(domain.CancelRecord{HTLCs: []domain.CancelledHTLC{again.HTLCs[0], c.HTLCs[1], fresh}}).HTLCs
	assertCancels(t, "merged", listCancels(t, st, t0), []domain.CancelRecord{want})

	// Permanent stays permanent; an earlier expiry changes nothing.
	if err := st.RecordCancel(ctx, c); err != nil {
		t.Fatalf("record not permanently again: %v", err)
	}
	assertCancels(t, "recorded again, not permanently", listCancels(t, st, t0), []domain.CancelRecord{want})
}

// testCancelRefusesStored: a hash whose settlement is stored cannot be
// cancelled, and nothing is recorded.
func (s suite) testCancelRefusesStored(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	inv := newInvoice(t, 2)
	got, err := st.RequestSettle(ctx, inv)
	if err != nil {
		t.Fatalf("request settle: %v", err)
	}
	for _, permanent := range []bool{false, true} {
		c := NewCancel(inv, permanent)
		if err := st.RecordCancel(ctx, c); !errors.Is(err, domain.ErrSettleRequested) {
			t.Fatalf("cancel of a stored invoice (permanent %v): got %v, want ErrSettleRequested", permanent, err)
		}
		// Another set of the hash, or none, is refused too.
		c.SetID = domain.SetID{}
		if err := st.RecordCancel(ctx, c); !errors.Is(err, domain.ErrSettleRequested) {
			t.Fatalf("cancel of a stored hash without a set (permanent %v): got %v, want ErrSettleRequested", permanent, err)
		}
	}
	if cs := listCancels(t, st, t0); len(cs) != 0 {
		t.Fatalf("refused cancels recorded: %+v", cs)
	}
	assertNoChange(t, st, stored(inv, got.Sequence))
	assertEvents(t, "log", listEvents(t, eventLog(t, st), 0, 10), []ports.InvoiceEvent{wantEvent(got)})
}

// testCancelRefusesSettle: a cancelled set cannot be settled, another set
// of the hash can; after a permanent cancel no set of the hash can.
func (s suite) testCancelRefusesSettle(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	log := eventLog(t, st)
	inv := newInvoice(t, 2)
	if err := st.RecordCancel(ctx, NewCancel(inv, false)); err != nil {
		t.Fatalf("record cancel: %v", err)
	}
	if _, err := st.RequestSettle(ctx, inv); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("settle of a cancelled set: got %v, want ErrConflict", err)
	}
	if _, err := st.Get(ctx, inv.Hash); !errors.Is(err, domain.ErrInvoiceNotFound) {
		t.Fatalf("refused settle stored the invoice: %v", err)
	}
	if evs := listEvents(t, log, 0, 10); len(evs) != 0 {
		t.Fatalf("a cancel that is not permanent, and a refused settle, logged %+v", evs)
	}
	// The cancelled set's HTLCs were failed; a new set pays the hash.
	next := newInvoice(t, 2)
	next.Hash, next.Preimage = inv.Hash, inv.Preimage
	got, err := st.RequestSettle(ctx, next)
	if err != nil {
		t.Fatalf("settle of another set of a cancelled hash: %v", err)
	}
	assertNoChange(t, st, stored(next, got.Sequence))

	// Permanently: every set of the hash is refused, and one event is
	// logged with no set id.
	perm := newInvoice(t, 1)
	pc := domain.CancelRecord{Hash: perm.Hash, Permanent: true, Expiry: perm.Expiry, CancelledAt: t0.Add(time.Second)}
	for i := range 2 {
		if err := st.RecordCancel(ctx, pc); err != nil {
			t.Fatalf("record permanent cancel #%d: %v", i, err)
		}
	}
	for i := range 3 {
		try := newInvoice(t, 1+i)
		try.Hash, try.Preimage = perm.Hash, perm.Preimage
		if _, err := st.RequestSettle(ctx, try); !errors.Is(err, domain.ErrConflict) {
			t.Fatalf("settle #%d of a permanently cancelled hash: got %v, want ErrConflict", i, err)
		}
	}
	if _, err := st.Get(ctx, perm.Hash); !errors.Is(err, domain.ErrInvoiceNotFound) {
		t.Fatalf("refused settle stored the invoice: %v", err)
	}
	evs := listEvents(t, log, 0, 10)
	want := []ports.InvoiceEvent{wantEvent(got), {Hash: perm.Hash, Status: domain.StatusCancelled, At: t0.Add(time.Second).UTC().Truncate(time.Microsecond)}}
	assertEvents(t, "log after a permanent cancel recorded twice", evs, want)

	// A set cancelled, then the hash permanently with that set: one
	// event, with the set id.
	third := newInvoice(t, 2)
	if err := st.RecordCancel(ctx, NewCancel(third, false)); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordCancel(ctx, NewCancel(third, true)); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordCancel(ctx, NewCancel(third, true)); err != nil {
		t.Fatal(err)
	}
	want = append(want, ports.InvoiceEvent{Hash: third.Hash, Status: domain.StatusCancelled, SetID: third.SetID, At: t0.UTC().Truncate(time.Microsecond)})
	assertEvents(t, "log after a set was cancelled, then permanently", listEvents(t, log, 0, 10), want)
}

// testCancelSettleRace: a cancel and a settle request of the same set,
// concurrent: exactly one wins, and the store agrees with the winner.
func (s suite) testCancelSettleRace(t *testing.T) {
	ctx := t.Context()
	st := s.open(t)
	const rounds = 24
	var cancels []domain.CancelRecord
	settled, cancelled := 0, 0
	for round := range rounds {
		inv := newInvoice(t, 2)
		c := NewCancel(inv, round%2 == 1)
		var wg sync.WaitGroup
		var settleErr, cancelErr error
		var got domain.Invoice
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			got, settleErr = st.RequestSettle(ctx, inv)
		})
		wg.Go(func() {
			<-start
			cancelErr = st.RecordCancel(ctx, c)
		})
		close(start)
		wg.Wait()
		switch {
		case settleErr == nil && errors.Is(cancelErr, domain.ErrSettleRequested):
			settled++
			assertNoChange(t, st, stored(inv, got.Sequence))
		case cancelErr == nil && errors.Is(settleErr, domain.ErrConflict):
			cancelled++
			cancels = append(cancels, storedCancel(c))
			if _, err := st.Get(ctx, inv.Hash); !errors.Is(err, domain.ErrInvoiceNotFound) {
				t.Fatalf("round %d: the cancel won, yet the invoice is stored (%v)", round, err)
			}
		default:
			t.Fatalf("round %d: settle: %v; cancel: %v; want exactly one to succeed, the other to fail with ErrConflict or ErrSettleRequested", round, settleErr, cancelErr)
		}
	}
	assertCancels(t, "recorded cancels", listCancels(t, st, t0), byHashAndSet(cancels))
	t.Logf("%d rounds: %d settled first, %d cancelled first", rounds, settled, cancelled)
}

// testCancelCancelled: a record whose context is done is not stored.
func (s suite) testCancelCancelled(t *testing.T) {
	st := s.open(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	inv := newInvoice(t, 1)
	if err := st.RecordCancel(ctx, NewCancel(inv, true)); err == nil {
		t.Fatal("record cancel with a done context succeeded")
	}
	if cs := listCancels(t, st, t0); len(cs) != 0 {
		t.Fatalf("cancel with a done context recorded: %+v", cs)
	}
}

// AssertCancelFenced checks that old, a store whose leadership cur has
// taken over, cannot record a cancel (domain.ErrNotLeader, nothing
// recorded), and that cur can.
func AssertCancelFenced(t *testing.T, old, cur ports.InvoiceStore) {
	t.Helper()
	ctx := t.Context()
	var pre domain.Preimage
	_, _ = rand.Read(pre[:])
	c := domain.CancelRecord{Hash: pre.Hash(), Permanent: true, Expiry: t0.Add(time.Hour), CancelledAt: t0}
	if err := old.RecordCancel(ctx, c); !errors.Is(err, domain.ErrNotLeader) {
		t.Fatalf("record cancel of the old leader: got %v, want ErrNotLeader", err)
	}
	for _, cs := range listCancels(t, cur, t0) {
		if cs.Hash == c.Hash {
			t.Fatalf("refused cancel of the old leader was recorded: %+v", cs)
		}
	}
	if err := cur.RecordCancel(ctx, c); err != nil {
		t.Fatalf("record cancel of the new leader: %v", err)
	}
}
