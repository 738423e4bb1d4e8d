package domain

import "time"

// CancelRecord is an application's cancel, stored before any of its HTLCs
// is failed and before the cancel is reported done: whichever lnmux leads
// next loads it and fails those HTLCs again if lnd re-offers them, so a
// cancel reported OK is never undone by a successor (docs/design.md,
// "Cancels"). A permanent cancel also makes the hash unpayable until
// Expiry: every later HTLC for it is failed as unknown.
type CancelRecord struct {
	Hash PaymentHash
	// SetID is the cancelled set; zero for a permanent cancel of a hash
	// that had no set when it was cancelled.
	SetID SetID
	// HTLCs are the set's HTLCs, failed with the cancel.
	HTLCs     []CancelledHTLC
	Permanent bool
	// Expiry is the invoice's expiry: after it no HTLC can pay the hash
	// and the record may be forgotten.
	Expiry      time.Time
	CancelledAt time.Time
}

// CancelledHTLC is one HTLC of a cancelled set.
type CancelledHTLC struct {
	Circuit CircuitKey
	// Until is the block height after which lnd can no longer offer the
	// HTLC again (its auto-fail height or its expiry).
	Until uint32
}
