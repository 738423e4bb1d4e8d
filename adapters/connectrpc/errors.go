package connectrpc

import (
	"context"
	"errors"
	"fmt"

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
	case errors.Is(err, domain.ErrNotReady):
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
// through; domain errors get their code and message, which the domain writes
// for callers; anything else is logged and becomes a bare INTERNAL.
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
	code, ok := codeOf(err)
	if !ok {
		s.log.ErrorContext(ctx, "rpc failed", "procedure", procedure, "err", err)
		return connect.NewError(connect.CodeInternal, errInternal)
	}
	s.log.DebugContext(ctx, "rpc refused", "procedure", procedure, "code", code.String(), "err", err)
	return connect.NewError(code, err)
}
