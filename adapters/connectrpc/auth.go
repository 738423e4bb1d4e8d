package connectrpc

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"connectrpc.com/connect"

	"github.com/lnmux/lnmux/ports"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// Headers that carry the credential: the "macaroon" metadata of gRPC (hex,
// as lnd takes it) and the standard Authorization header (Bearer <hex>).
const (
	macaroonHeader      = "Macaroon"
	authorizationHeader = "Authorization"
)

// permissions says what each RPC needs. A procedure missing here is
// refused once authentication is on (TestPermissionsCoverEveryRPC keeps the
// table complete).
var permissions = map[string]ports.Permission{
	lnmuxpbconnect.ServiceGetInfoProcedure:                   ports.PermInfoRead,
	lnmuxpbconnect.ServiceAddInvoiceProcedure:                ports.PermInvoicesWrite,
	lnmuxpbconnect.ServiceBatchAddInvoiceProcedure:           ports.PermInvoicesWrite,
	lnmuxpbconnect.ServiceSubscribeInvoiceAcceptedProcedure:  ports.PermInvoicesRead,
	lnmuxpbconnect.ServiceWaitForInvoiceFinalStatusProcedure: ports.PermInvoicesRead,
	lnmuxpbconnect.ServiceListInvoicesProcedure:              ports.PermInvoicesRead,
	lnmuxpbconnect.ServiceSubscribeSingleInvoiceProcedure:    ports.PermInvoicesRead,
	lnmuxpbconnect.ServiceLookupInvoiceProcedure:             ports.PermInvoicesRead,
	lnmuxpbconnect.ServiceSubscribeInvoiceEventsProcedure:    ports.PermInvoicesRead,
	lnmuxpbconnect.ServiceSettleInvoiceProcedure:             ports.PermSettlementsWrite,
	lnmuxpbconnect.ServiceCancelInvoiceProcedure:             ports.PermSettlementsWrite,
}

var (
	errNoCredential  = errors.New("missing macaroon: send it hex-encoded in the macaroon header or as Authorization: Bearer <hex>")
	errBadCredential = errors.New("invalid macaroon")
)

// WithAuthorizer checks the credential of every lnmux.Service call with a.
// With required, a call without one is refused; otherwise it is let
// through, but a credential that is sent is always checked. Health and
// reflection stay open: they reveal nothing but the schema and the status.
func WithAuthorizer(a ports.Authorizer, required bool) Option {
	return func(c *config) {
		c.auth = &authInterceptor{authorizer: a, required: required}
	}
}

// authInterceptor runs before the handlers (and before the stream limits,
// so that an anonymous client cannot take stream slots).
type authInterceptor struct {
	authorizer ports.Authorizer
	required   bool
	log        *slog.Logger
}

var _ connect.Interceptor = (*authInterceptor)(nil)

func (i *authInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := i.check(ctx, req.Spec().Procedure, req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (i *authInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *authInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := i.check(ctx, conn.Spec().Procedure, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// check authorises the call and returns its context with the caller's
// principal (principal.go).
func (i *authInterceptor) check(ctx context.Context, procedure string, h http.Header) (context.Context, error) {
	cred, present, err := credential(h)
	if err != nil {
		i.log.DebugContext(ctx, "rpc unauthenticated", "procedure", procedure, "reason", err)
		return ctx, connect.NewError(connect.CodeUnauthenticated, errBadCredential)
	}
	if !present {
		if i.required {
			return ctx, connect.NewError(connect.CodeUnauthenticated, errNoCredential)
		}
		return withPrincipal(ctx, &principal{anonymous: true}), nil
	}
	need, ok := permissions[procedure]
	if !ok {
		return ctx, connect.NewError(connect.CodePermissionDenied, errors.New("permission denied: no permission is defined for "+procedure))
	}
	err = i.authorizer.Authorize(ctx, cred, need)
	switch {
	case err == nil:
		return withPrincipal(ctx, &principal{cred: cred, auth: i.authorizer}), nil
	case errors.Is(err, ports.ErrUnauthenticated):
		i.log.DebugContext(ctx, "rpc unauthenticated", "procedure", procedure, "reason", err)
		return ctx, connect.NewError(connect.CodeUnauthenticated, errBadCredential)
	case errors.Is(err, ports.ErrPermissionDenied):
		i.log.DebugContext(ctx, "rpc permission denied", "procedure", procedure, "reason", err)
		return ctx, connect.NewError(connect.CodePermissionDenied, errors.New("permission denied: the macaroon does not grant "+need.String()))
	}
	return ctx, internalError(ctx, i.log, procedure, err)
}

// credential finds the credential in the request headers: the macaroon
// header first, then Authorization: Bearer. present is false when neither
// is sent.
func credential(h http.Header) (cred []byte, present bool, err error) {
	text := strings.TrimSpace(h.Get(macaroonHeader))
	if text == "" {
		auth := strings.TrimSpace(h.Get(authorizationHeader))
		if auth == "" {
			return nil, false, nil
		}
		scheme, token, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, true, errors.New("authorization header is not Bearer <hex>")
		}
		text = strings.TrimSpace(token)
	}
	cred, err = hex.DecodeString(text)
	if err != nil || len(cred) == 0 {
		return nil, true, errors.New("macaroon is not hex")
	}
	return cred, true, nil
}
