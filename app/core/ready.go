package core

import (
	"errors"
	"fmt"
	"time"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// Ready is what the machine decided since the driver last asked. The
// driver executes it in the order of its fields: the commit hooks before
// any answer, answers before events, and replies last, so that a caller
// told "settled" finds every answer of the settlement already queued.
type Ready struct {
	// Committed are the settlements whose write came back committed in
	// this step: their preimages are in Answers below.
	Committed []SettleEnd
	// Answers go to the nodes, in order. A failure is encrypted by the
	// driver with the HTLC's onion (Answer.Onion).
	Answers []Answer
	// Accepted are the sets newly complete, for the application.
	Accepted []Accepted
	// Updates are invoice state changes, for invoice subscribers.
	Updates []ports.InvoiceUpdate
	// Writes and Reads are store operations to run, each outcome fed back
	// with WriteDone or ReadDone under the same id.
	Writes []Write
	Reads  []Read
	// Ended are settlements that ended (committed or not), for tracing.
	Ended []SettleEnd
	// Finals are invoices that reached a final state in the store.
	Finals []FinalInvoice
	// Replies answer the callers' requests.
	Replies []Reply
	// Held counts HTLCs that joined an incomplete set.
	Held int
	// LogChanged: a committed write appended to the store's event log
	// without a stored status update (a permanent cancel): its readers
	// are woken.
	LogChanged bool
	Logs       []Log
	// Fatal is set when a write was fenced: another process leads. The
	// machine is deposed; the driver stops the process's interceptors.
	Fatal error
}

// Empty reports whether there is nothing to execute.
func (r *Ready) Empty() bool {
	return len(r.Committed) == 0 && len(r.Answers) == 0 && len(r.Accepted) == 0 && len(r.Updates) == 0 &&
		len(r.Writes) == 0 && len(r.Reads) == 0 && len(r.Ended) == 0 && len(r.Finals) == 0 &&
		len(r.Replies) == 0 && r.Held == 0 && len(r.Logs) == 0 && r.Fatal == nil && !r.LogChanged
}

// Answer is a resolution for one intercepted HTLC.
type Answer struct {
	Hash     domain.PaymentHash
	Circuit  domain.CircuitKey
	Action   ports.Action
	Preimage domain.Preimage
	Reason   domain.FailureReason
	// Onion is what the driver gave with the offer to encrypt a failure
	// (opaque to the machine); nil for a failure of an HTLC whose offer
	// is not at hand, which the driver sends unencrypted.
	Onion any
	FC    domain.FailureContext
}

// Accepted is a set complete and waiting for a decision.
type Accepted struct {
	Event ports.AcceptedEvent
	Parts int
}

// WriteKind names a store write.
type WriteKind uint8

// The writes.
const (
	// WriteSettle records a settlement request (Write.Invoice).
	WriteSettle WriteKind = iota + 1
	// WriteFinal records lnd's final word on one HTLC (Write.Final) with
	// Invoice.ApplyFinal at Write.At.
	WriteFinal
	// WriteCancel records an application's cancel (Write.Cancel).
	WriteCancel
)

// Write is a store write to run. Its outcome comes back through WriteDone.
type Write struct {
	ID      uint64
	Kind    WriteKind
	Hash    domain.PaymentHash
	SetID   domain.SetID
	Invoice domain.Invoice
	Final   ports.FinalResolution
	Cancel  domain.CancelRecord
	At      time.Time
	// Attempt counts the tries of this write, from 1.
	Attempt int
}

// Read asks the store for the invoice of Hash; its outcome comes back
// through ReadDone.
type Read struct {
	ID   uint64
	Hash domain.PaymentHash
}

// SettleEnd names a settlement that ended; Err is nil if it was committed.
type SettleEnd struct {
	Hash  domain.PaymentHash
	SetID domain.SetID
	Err   error
}

// FinalInvoice is an invoice that reached a final state in the store.
type FinalInvoice struct {
	Invoice domain.Invoice
	Partial bool
}

// ReqID names a caller's request; the driver chooses it, unique per
// request. Every request gets exactly one Reply.
type ReqID uint64

// Reply answers one request.
type Reply struct {
	Req ReqID
	Err error
}

// Level is a log line's level.
type Level uint8

// Levels.
const (
	LevelDebug Level = iota
	LevelInfo
	LevelWarn
	LevelError
)

// Log is a log line the driver writes.
type Log struct {
	Level Level
	Msg   string
	Attrs []any
}

// ErrAbandoned replies to a request whose caller gave up waiting while the
// outcome was known to be pending, not unknown: the caller returns its own
// context's error.
var ErrAbandoned = errors.New("request abandoned by its caller")

// errNotInMemory is the machine's own marker: memory cannot answer, the
// store must.
var errNotInMemory = fmt.Errorf("%w: not in memory", domain.ErrInvoiceNotFound)

func notReady(why string) error {
	if why == "" {
		why = "not leading"
	}
	return fmt.Errorf("%w: %s", domain.ErrNotReady, why)
}

func (m *Machine) logf(l Level, msg string, attrs ...any) {
	m.rd.Logs = append(m.rd.Logs, Log{Level: l, Msg: msg, Attrs: attrs})
}

func (m *Machine) reply(req ReqID, err error) {
	if req == 0 {
		return // the machine's own request (auto-settle)
	}
	m.rd.Replies = append(m.rd.Replies, Reply{Req: req, Err: err})
}

// answer queues an answer, if this process may answer lnd at all (I5).
func (m *Machine) answer(a Answer) {
	if m.role != leading {
		m.logf(LevelDebug, "answer withheld: not leading", "circuit", a.Circuit, "action", a.Action)
		return
	}
	m.rd.Answers = append(m.rd.Answers, a)
}

// fail queues a failure of h.
func (m *Machine) fail(h domain.HTLC, onion any, reason domain.FailureReason) {
	m.answer(Answer{Hash: h.Hash, Circuit: h.Circuit, Action: ports.ActionFail, Reason: reason, Onion: onion,
		FC: domain.FailureContext{Amount: h.Amount, Expiry: h.Expiry, Height: m.heights[h.Circuit.Node]}})
}

func (m *Machine) update(u ports.InvoiceUpdate) { m.rd.Updates = append(m.rd.Updates, u) }
