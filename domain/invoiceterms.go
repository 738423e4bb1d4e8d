package domain

import (
	"fmt"
	"time"
)

// Invoice limits. NewInvoiceTerms is the only place that checks a request
// against them; the RPC adapter and the application call it, and the
// encoders take its result, so a limit changes in one place.
const (
	// MaxDescriptionLen is the longest description a BOLT11 'd' field
	// holds: 639 bytes are 1023 5-bit words, the field's 10-bit length limit.
	MaxDescriptionLen = 639
	// MaxInvoiceExpiry bounds how long an invoice may stay payable.
	MaxInvoiceExpiry = 365 * 24 * time.Hour
	// MinInvoiceExpiry is the shortest expiry: BOLT11 counts it in seconds.
	MinInvoiceExpiry = time.Second
	// descriptionHashLen is the length of a BOLT11 'h' field: a SHA-256.
	descriptionHashLen = 32
)

// Names of the invoice terms in FieldError.Field. Adapters map them onto the
// names of their own request fields.
const (
	FieldAmount          = "amount"
	FieldExpiry          = "expiry"
	FieldDescription     = "description"
	FieldDescriptionHash = "description_hash"
	FieldAcceptTimeout   = "accept_timeout"
	// FieldPreimage is the preimage a settlement brings (CheckSettlePreimage).
	FieldPreimage = "preimage"
)

// FieldError is a value that breaks a domain limit. Field says which value
// (one of the Field constants), Reason what is wrong with it, in words fit
// for the caller. It matches ErrInvalidArgument with errors.Is.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Is makes a FieldError an ErrInvalidArgument.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidArgument }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// InvoiceTerms are what the caller of AddInvoice decides about an invoice,
// checked against every limit. The zero value is not valid terms: only
// NewInvoiceTerms makes them, so whoever holds InvoiceTerms need not check
// again.
type InvoiceTerms struct {
	amount          Msat
	expiry          time.Duration
	description     string
	descriptionHash [descriptionHashLen]byte
	hasDescHash     bool
	acceptTimeout   time.Duration
	valid           bool
}

// NewInvoiceTerms checks an invoice request: amount from 0 (any amount) to
// MaxMsat, expiry from one second to MaxInvoiceExpiry (whole seconds: a
// fraction is dropped, as BOLT11 has second precision), a description of at
// most MaxDescriptionLen bytes or a 32-byte description hash (empty: none),
// not both. The error is a *FieldError naming the first bad field.
func NewInvoiceTerms(amount Msat, expiry time.Duration, description string, descriptionHash []byte) (InvoiceTerms, error) {
	if err := checkAmount(amount); err != nil {
		return InvoiceTerms{}, err
	}
	switch {
	case expiry <= 0:
		return InvoiceTerms{}, fieldErr(FieldExpiry, "must be positive")
	case expiry < MinInvoiceExpiry:
		return InvoiceTerms{}, fieldErr(FieldExpiry, "must be at least 1 second, got %s", expiry)
	case expiry > MaxInvoiceExpiry:
		return InvoiceTerms{}, fieldErr(FieldExpiry, "must be at most %d seconds (one year)", int64(MaxInvoiceExpiry/time.Second))
	case len(description) > MaxDescriptionLen:
		return InvoiceTerms{}, fieldErr(FieldDescription, "must be at most %d bytes, got %d", MaxDescriptionLen, len(description))
	}
	t := InvoiceTerms{amount: amount, expiry: expiry.Truncate(time.Second), description: description, valid: true}
	if len(descriptionHash) > 0 {
		if description != "" {
			return InvoiceTerms{}, fieldErr(FieldDescriptionHash, "must not be set together with description")
		}
		if len(descriptionHash) != descriptionHashLen {
			return InvoiceTerms{}, fieldErr(FieldDescriptionHash, "must be %d bytes, got %d", descriptionHashLen, len(descriptionHash))
		}
		copy(t.descriptionHash[:], descriptionHash)
		t.hasDescHash = true
	}
	return t, nil
}

// checkAmount is the amount limit, shared with the payment address codec,
// whose metadata cannot carry more.
func checkAmount(amount Msat) error {
	switch {
	case amount < 0:
		return fieldErr(FieldAmount, "must not be negative")
	case amount > MaxMsat:
		return fieldErr(FieldAmount, "must be at most %d (21 million BTC)", int64(MaxMsat))
	}
	return nil
}

// Amount is the invoice amount; zero means any amount.
func (t InvoiceTerms) Amount() Msat { return t.amount }

// Expiry is how long the invoice stays payable, in whole seconds.
func (t InvoiceTerms) Expiry() time.Duration { return t.expiry }

// Description is the 'd' field; empty with a description hash.
func (t InvoiceTerms) Description() string { return t.description }

// DescriptionHash is the 'h' field, if there is one.
func (t InvoiceTerms) DescriptionHash() ([descriptionHashLen]byte, bool) {
	return t.descriptionHash, t.hasDescHash
}

// WithAcceptTimeout returns the terms with a per-invoice accept timeout:
// how long an accepted set of the invoice waits for the application's
// decision (zero: the configured default), whole seconds up to
// MaxAcceptTimeout. lnd's auto-fail height still bounds it (I4).
func (t InvoiceTerms) WithAcceptTimeout(d time.Duration) (InvoiceTerms, error) {
	if err := checkAcceptTimeout(d); err != nil {
		return InvoiceTerms{}, err
	}
	t.acceptTimeout = d
	return t, nil
}

// AcceptTimeout is the per-invoice accept timeout; zero: the default.
func (t InvoiceTerms) AcceptTimeout() time.Duration { return t.acceptTimeout }

// Valid reports whether the terms came from NewInvoiceTerms.
func (t InvoiceTerms) Valid() bool { return t.valid }
