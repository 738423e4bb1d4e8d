package connectrpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/lnmux/lnmux/domain"
)

// errInternal is all a client learns of an unexpected failure; the details
// go to the log.
var errInternal = errors.New("internal error")

// errDraining tells clients of long-lived calls that the server is shutting
// down and they should retry (elsewhere).
var errDraining = errors.New("server is shutting down")

// codeOf maps the errors the service may return onto a status code. It
// reports false for anything unexpected.
func codeOf(err error) (connect.Code, bool) {
	switch {
	case errors.Is(err, context.Canceled):
		return connect.CodeCanceled, true
	case errors.Is(err, context.DeadlineExceeded):
		return connect.CodeDeadlineExceeded, true
	case errors.Is(err, domain.ErrInvalidArgument):
		return connect.CodeInvalidArgument, true
	case errors.Is(err, domain.ErrInvoiceNotFound), errors.Is(err, domain.ErrSetNotFound):
		return connect.CodeNotFound, true
	case errors.Is(err, domain.ErrSettleRequested),
		errors.Is(err, domain.ErrInvalidTransition),
		errors.Is(err, domain.ErrConflict):
		return connect.CodeFailedPrecondition, true
	case errors.Is(err, domain.ErrNotReady),
		// A settlement whose write's outcome is not known yet is retried
		// by lnmux; the client may call again (docs/design.md, I7).
		errors.Is(err, domain.ErrOutcomeUnknown),
		errors.Is(err, domain.ErrNotLeader):
		return connect.CodeUnavailable, true
	}
	return 0, false
}

// fieldError is a request field that fails validation.
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// invalid reports a bad request field; the message names the field.
func invalid(field, format string, args ...any) error {
	return connect.NewError(connect.CodeInvalidArgument, &fieldError{field: field, msg: fmt.Sprintf(format, args...)})
}

// toConnect turns an error of the service into the error the client sees.
// Errors that already carry a code (validation, a failed stream send) pass
// through. Domain errors about the request (InvalidArgument, NotFound,
// FailedPrecondition) keep their message, which the domain and the app
// write for callers and the store adapters return without infrastructure
// context. Everything else (not ready, a timeout inside lnmux, anything
// unexpected) is logged with an error id, and the client gets a generic
// message with that id and nothing of the infrastructure behind it (hosts,
// databases, drivers).
func (s *service) toConnect(ctx context.Context, procedure string, err error) error {
	if err == nil {
		return nil
	}
	if s.draining.Err() != nil && errors.Is(err, context.Canceled) {
		return connect.NewError(connect.CodeUnavailable, errDraining)
	}
	if cerr, ok := errors.AsType[*connect.Error](err); ok {
		return cerr
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if cerr := ctx.Err(); cerr != nil {
			// The client's own cancellation or deadline.
			code, _ := codeOf(cerr)
			return connect.NewError(code, cerr)
		}
		// A deadline of lnmux's own (a store timeout, say).
		return unavailableError(ctx, s.log, procedure, err)
	}
	code, ok := codeOf(err)
	switch {
	case !ok:
		return internalError(ctx, s.log, procedure, err)
	case code == connect.CodeUnavailable:
		return unavailableError(ctx, s.log, procedure, err)
	}
	s.log.DebugContext(ctx, "rpc refused", "procedure", procedure, "code", code.String(), "err", err)
	return connect.NewError(code, err)
}

// newErrorID returns a random id that ties a client's error to its log line.
func newErrorID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// internalError logs err and returns a bare INTERNAL carrying only an id.
func internalError(ctx context.Context, log *slog.Logger, procedure string, err error) error {
	id := newErrorID()
	log.ErrorContext(ctx, "rpc failed", "procedure", procedure, "error_id", id, "err", err)
	return connect.NewError(connect.CodeInternal, fmt.Errorf("%w (error id %s)", errInternal, id))
}

// errUnavailable is all a client learns of a transient failure.
var errUnavailable = errors.New("temporarily unavailable, retry later")

// unavailableError logs err and returns UNAVAILABLE carrying only an id.
func unavailableError(ctx context.Context, log *slog.Logger, procedure string, err error) error {
	id := newErrorID()
	log.WarnContext(ctx, "rpc unavailable", "procedure", procedure, "error_id", id, "err", err)
	return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%w (error id %s)", errUnavailable, id))
}
