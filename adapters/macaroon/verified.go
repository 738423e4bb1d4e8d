package macaroon

import (
	"crypto/sha256"
	"sync"
	"time"

	"gopkg.in/macaroon-bakery.v2/bakery"
)

// Verifying a macaroon (decoding its id, the HMAC chain, the caveats) cost
// about a seventh of lnmuxd's CPU under AddInvoice load (docs/benchmarks.md),
// for the same few macaroons over and over. verifiedCache remembers, for
// the exact bytes of a credential that verified, the operations it grants,
// so that the next call with the same bytes only hashes them. It stays
// exactly as strict as a full check:
//
//   - an entry belongs to the bakery (root key) it was verified with; a
//     rotation makes a new bakery, so no entry of the old key is used again;
//   - an entry ends at the macaroon's own expiry (its time-before caveats)
//     and after verifiedTTL at the latest;
//   - only credentials that verified are remembered: a refused one is
//     checked in full every time, and an attenuated copy (more caveats) has
//     other bytes, so it is checked on its own;
//   - the caveats lnmux's bakery accepts depend on nothing but time, so a
//     result holds for any request until the expiry.
type verifiedCache struct {
	mu      sync.RWMutex
	entries map[[sha256.Size]byte]verifiedEntry
}

// verifiedTTL bounds how long a verified credential is remembered, and
// verifiedMax how many: past it the cache starts over.
const (
	verifiedTTL = 5 * time.Minute
	verifiedMax = 4096
)

type verifiedEntry struct {
	oven    *bakery.Bakery
	ops     map[bakery.Op]bool
	expires time.Time
}

// lookup returns the operations the credential with this hash grants, if
// it verified with oven and has not expired at now.
func (c *verifiedCache) lookup(key [sha256.Size]byte, oven *bakery.Bakery, now time.Time) (map[bakery.Op]bool, bool) {
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || e.oven != oven || !now.Before(e.expires) {
		return nil, false
	}
	return e.ops, true
}

// store remembers a verified credential until expires (the macaroon's own
// expiry, if it has one) or verifiedTTL after now, whichever is first.
func (c *verifiedCache) store(key [sha256.Size]byte, oven *bakery.Bakery, ops map[bakery.Op]bool, now, expires time.Time, hasExpiry bool) {
	until := now.Add(verifiedTTL)
	if hasExpiry && expires.Before(until) {
		until = expires
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= verifiedMax {
		c.entries = make(map[[sha256.Size]byte]verifiedEntry)
	}
	c.entries[key] = verifiedEntry{oven: oven, ops: ops, expires: until}
}
