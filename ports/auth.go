package ports

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Permission is what an API call needs from its caller: an action on an
// entity, in the style of LND's macaroon permissions ("invoices:read").
type Permission struct {
	Entity string
	Action string
}

func (p Permission) String() string { return p.Entity + ":" + p.Action }

// The permissions of lnmux's API. Settling and cancelling get an entity of
// their own: they release or refuse funds, which no page that only shows
// invoices should be able to do.
var (
	PermInfoRead         = Permission{Entity: "info", Action: "read"}
	PermInvoicesRead     = Permission{Entity: "invoices", Action: "read"}
	PermInvoicesWrite    = Permission{Entity: "invoices", Action: "write"}
	PermSettlementsWrite = Permission{Entity: "settlements", Action: "write"}
)

// Scope names a set of permissions that a credential is issued with.
type Scope string

// The scopes lnmux issues credentials for.
const (
	// ScopeInvoice creates invoices and reads the node's info: safe for a
	// web page that shows invoices.
	ScopeInvoice Scope = "invoice"
	// ScopeReadOnly reads everything and changes nothing.
	ScopeReadOnly Scope = "readonly"
	// ScopeAdmin may do everything, settle and cancel included.
	ScopeAdmin Scope = "admin"
)

// Scopes lists every scope, in the order they are documented.
var Scopes = []Scope{ScopeAdmin, ScopeReadOnly, ScopeInvoice}

// Permissions returns the permissions a scope grants.
func (s Scope) Permissions() ([]Permission, error) {
	switch s {
	case ScopeInvoice:
		return []Permission{PermInfoRead, PermInvoicesWrite}, nil
	case ScopeReadOnly:
		return []Permission{PermInfoRead, PermInvoicesRead}, nil
	case ScopeAdmin:
		return []Permission{PermInfoRead, PermInvoicesRead, PermInvoicesWrite, PermSettlementsWrite}, nil
	}
	return nil, fmt.Errorf("unknown scope %q: want one of %v", string(s), Scopes)
}

// PermissionsOf returns the union of the scopes' permissions, without
// duplicates, in a stable order.
func PermissionsOf(scopes ...Scope) ([]Permission, error) {
	var out []Permission
	for _, s := range scopes {
		perms, err := s.Permissions()
		if err != nil {
			return nil, err
		}
		for _, p := range perms {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no scope given")
	}
	return out, nil
}

// Errors of an Authorizer. They are not domain errors: they say who may
// call, not what the call means.
var (
	// ErrUnauthenticated: no credential, or one that is malformed, forged,
	// revoked (a rotated root key) or expired.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: a valid credential without the permission the
	// call needs.
	ErrPermissionDenied = errors.New("permission denied")
)

// Authorizer checks the credential a client presents with an API call.
type Authorizer interface {
	// Authorize checks that credential (the raw token, decoded from the
	// transport's encoding) is valid and grants need. It fails with an
	// error wrapping ErrUnauthenticated or ErrPermissionDenied, or with
	// another error when it cannot decide.
	Authorize(ctx context.Context, credential []byte, need Permission) error
}
