package macaroon

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"gopkg.in/macaroon-bakery.v2/bakery/checkers"

	"github.com/lnmux/lnmux/adapters/memstore"
	"github.com/lnmux/lnmux/ports"
)

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }

// TestVerifiedCredentialExpiresWithItsCaveat: a macaroon remembered as
// verified is refused once its time-before caveat has passed, as a full
// check would refuse it.
func TestVerifiedCredentialExpiresWithItsCaveat(t *testing.T) {
	t.Parallel()
	s, err := New(t.Context(), bytes.Repeat([]byte{9}, 32), t.TempDir(), memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	clock := &fixedClock{t: time.Now()}
	s.now = clock.Now
	ctx := checkers.ContextWithClock(t.Context(), clock)
	// Valid for less than verifiedTTL: only the caveat can end the entry.
	mac, err := s.Bake(ctx, clock.t, time.Minute, ports.ScopeInvoice)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Authorize(ctx, mac, ports.PermInvoicesWrite); err != nil {
		t.Fatalf("fresh macaroon refused: %v", err)
	}
	if err := s.Authorize(ctx, mac, ports.PermInvoicesWrite); err != nil {
		t.Fatalf("remembered macaroon refused: %v", err)
	}
	if err := s.Authorize(ctx, mac, ports.PermSettlementsWrite); !errors.Is(err, ports.ErrPermissionDenied) {
		t.Errorf("remembered invoice macaroon asked for settlements:write: got %v, want ErrPermissionDenied", err)
	}
	clock.t = clock.t.Add(time.Minute + time.Second)
	if err := s.Authorize(ctx, mac, ports.PermInvoicesWrite); !errors.Is(err, ports.ErrUnauthenticated) {
		t.Errorf("macaroon past its time-before caveat: got %v, want ErrUnauthenticated", err)
	}
}

// TestVerifiedCacheForgetsAfterTTL: without an expiry of its own a
// credential is checked in full again after verifiedTTL.
func TestVerifiedCacheForgetsAfterTTL(t *testing.T) {
	t.Parallel()
	var c verifiedCache
	key := [32]byte{1}
	now := time.Now()
	c.store(key, nil, nil, now, time.Time{}, false)
	if _, ok := c.lookup(key, nil, now.Add(verifiedTTL-time.Second)); !ok {
		t.Error("entry gone before verifiedTTL")
	}
	if _, ok := c.lookup(key, nil, now.Add(verifiedTTL)); ok {
		t.Error("entry still used at verifiedTTL")
	}
}
