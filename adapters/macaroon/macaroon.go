// Package macaroon issues and checks the credentials of lnmux's API:
// macaroons as the LND ecosystem uses them (gopkg.in/macaroon.v2 baked and
// verified by gopkg.in/macaroon-bakery.v2), each carrying the permissions
// of its scopes as bakery operations.
//
// No root key is stored. The root key is derived from the identity key
// with HKDF under a label of its own and the current root key id, a
// counter kept in the data directory. Rotating bumps the counter, which
// invalidates every macaroon issued before; two lnmuxd with the same
// identity key and the same counter accept each other's macaroons. See
// docs/authentication.md.
package macaroon

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/macaroon-bakery.v2/bakery"
	"gopkg.in/macaroon-bakery.v2/bakery/checkers"
	"gopkg.in/macaroon.v2"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

const (
	// location names the issuer in every macaroon.
	location = "lnmux"
	// rootKeyLabel separates the root key from every other key derived
	// from the identity key (the invoice codec's labels differ).
	rootKeyLabel = "lnmux/v1 macaroon root key "
	// RootKeyIDFile holds the current root key id in the data directory.
	RootKeyIDFile = "macaroon-root-key-id"
)

// DefaultFiles are the macaroons written into the data directory, one per
// scope.
var DefaultFiles = map[ports.Scope]string{
	ports.ScopeAdmin:    "admin.macaroon",
	ports.ScopeReadOnly: "readonly.macaroon",
	ports.ScopeInvoice:  "invoice.macaroon",
}

// Service bakes and checks macaroons.
type Service struct {
	identity []byte
	dir      string

	mu    sync.Mutex
	id    uint64
	mtime time.Time
	oven  *bakery.Bakery

	// verified remembers credentials that verified (verified.go).
	verified verifiedCache
	// now is the clock of the verified cache (time.Now; tests move it).
	now func() time.Time
}

var _ ports.Authorizer = (*Service)(nil)

// New returns the service for identityKey (32 bytes) whose root key id is
// kept in dir. A missing id file means id 0 and is created.
func New(identityKey []byte, dir string) (*Service, error) {
	if err := domain.ValidateIdentityKey(identityKey); err != nil {
		return nil, fmt.Errorf("macaroon: %w", err)
	}
	s := &Service{identity: bytes.Clone(identityKey), dir: dir, now: time.Now}
	id, mtime, err := readID(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := writeID(dir, 0); err != nil {
			return nil, err
		}
		if id, mtime, err = readID(dir); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	if err := s.use(id, mtime); err != nil {
		return nil, err
	}
	return s, nil
}

// RootKeyID returns the id of the root key in use.
func (s *Service) RootKeyID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

func (s *Service) use(id uint64, mtime time.Time) error {
	key, err := hkdf.Key(sha256.New, s.identity, []byte("lnmux"), rootKeyLabel+strconv.FormatUint(id, 10), 32)
	if err != nil {
		return fmt.Errorf("macaroon: derive root key: %w", err)
	}
	s.id, s.mtime = id, mtime
	s.oven = bakery.New(bakery.BakeryParams{
		Location:     location,
		RootKeyStore: rootKey{id: []byte(strconv.FormatUint(id, 10)), key: key},
		Logger:       quiet{},
	})
	return nil
}

// current returns the bakery of the current root key, re-reading the id
// file when it changed so that a rotation applies to a running lnmuxd at
// once. A file that vanished keeps the last id: deleting it must not bring
// back old macaroons.
func (s *Service) current() (*bakery.Bakery, error) {
	st, statErr := os.Stat(filepath.Join(s.dir, RootKeyIDFile))
	s.mu.Lock()
	defer s.mu.Unlock()
	if statErr == nil && !st.ModTime().Equal(s.mtime) {
		id, mtime, err := readID(s.dir)
		if err != nil {
			return nil, err
		}
		if id < s.id {
			return nil, fmt.Errorf("macaroon: %s went back from %d to %d: refusing every macaroon", RootKeyIDFile, s.id, id)
		}
		if err := s.use(id, mtime); err != nil {
			return nil, err
		}
	}
	return s.oven, nil
}

// Bake returns a new macaroon (binary, as lnd writes its .macaroon files)
// granting the permissions of scopes. validFor > 0 adds a time-before
// caveat.
func (s *Service) Bake(ctx context.Context, now time.Time, validFor time.Duration, scopes ...ports.Scope) ([]byte, error) {
	perms, err := ports.PermissionsOf(scopes...)
	if err != nil {
		return nil, err
	}
	ops := make([]bakery.Op, len(perms))
	for i, p := range perms {
		ops[i] = bakery.Op{Entity: p.Entity, Action: p.Action}
	}
	var caveats []checkers.Caveat
	if validFor > 0 {
		caveats = append(caveats, checkers.TimeBeforeCaveat(now.Add(validFor)))
	}
	b, err := s.current()
	if err != nil {
		return nil, err
	}
	m, err := b.Oven.NewMacaroon(ctx, bakery.LatestVersion, caveats, ops...)
	if err != nil {
		return nil, fmt.Errorf("macaroon: bake: %w", err)
	}
	return m.M().MarshalBinary()
}

// Authorize implements ports.Authorizer. The reasons for a refusal stay in
// the returned error's chain for the server log; none of them quotes the
// credential.
func (s *Service) Authorize(ctx context.Context, credential []byte, need ports.Permission) error {
	b, err := s.current()
	if err != nil {
		return err
	}
	now := s.now()
	key := sha256.Sum256(credential)
	ops, ok := s.verified.lookup(key, b, now)
	if !ok {
		if ops, err = s.verify(ctx, b, credential, key, now); err != nil {
			return err
		}
	}
	if !ops[bakery.Op{Entity: need.Entity, Action: need.Action}] {
		return fmt.Errorf("%w: needs %s", ports.ErrPermissionDenied, need)
	}
	return nil
}

// verify checks the credential in full with the bakery of the current root
// key and remembers it if it verified.
func (s *Service) verify(ctx context.Context, b *bakery.Bakery, credential []byte, key [sha256.Size]byte, now time.Time) (map[bakery.Op]bool, error) {
	var m macaroon.Macaroon
	if err := m.UnmarshalBinary(credential); err != nil {
		return nil, fmt.Errorf("%w: not a macaroon", ports.ErrUnauthenticated)
	}
	ms := macaroon.Slice{&m}
	info, err := b.Checker.Auth(ms).Allowed(ctx)
	if err != nil {
		// The root key store cannot fail: the id itself is malformed.
		return nil, fmt.Errorf("%w: %v", ports.ErrUnauthenticated, err) //nolint:errorlint // the sentinel classifies; the cause is text so that errors.Is on it cannot reclassify
	}
	if len(info.OpIndexes) == 0 {
		return nil, fmt.Errorf("%w: macaroon not issued by this lnmux, revoked by a rotation, or expired", ports.ErrUnauthenticated)
	}
	ops := make(map[bakery.Op]bool, len(info.OpIndexes))
	for op := range info.OpIndexes {
		ops[op] = true
	}
	expires, hasExpiry := checkers.MacaroonsExpiryTime(checkers.New(nil).Namespace(), ms)
	s.verified.store(key, b, ops, now, expires, hasExpiry)
	return ops, nil
}

// WriteDefaults writes a macaroon for each scope into the data directory
// (mode 0600) unless its file exists, and returns the paths it wrote.
// With overwrite it replaces them (after a rotation).
func (s *Service) WriteDefaults(ctx context.Context, now time.Time, overwrite bool) ([]string, error) {
	var written []string
	for _, scope := range ports.Scopes {
		path := filepath.Join(s.dir, DefaultFiles[scope])
		if _, err := os.Stat(path); err == nil && !overwrite {
			continue
		}
		mac, err := s.Bake(ctx, now, 0, scope)
		if err != nil {
			return written, err
		}
		if err := WriteFile(path, mac); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}

// Rotate bumps the root key id in dir, which revokes every macaroon baked
// before, and returns the new id.
func Rotate(dir string) (uint64, error) {
	id, _, err := readID(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	id++
	return id, writeID(dir, id)
}

// WriteFile writes a secret file with mode 0600, atomically.
func WriteFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func readID(dir string) (uint64, time.Time, error) {
	path := filepath.Join(dir, RootKeyIDFile)
	st, err := os.Stat(path)
	if err != nil {
		return 0, time.Time{}, err
	}
	b, err := os.ReadFile(path) //nolint:gosec // the operator configures the path
	if err != nil {
		return 0, time.Time{}, err
	}
	id, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("macaroon: %s does not hold a root key id (a decimal number)", path)
	}
	return id, st.ModTime(), nil
}

func writeID(dir string, id uint64) error {
	return WriteFile(filepath.Join(dir, RootKeyIDFile), []byte(strconv.FormatUint(id, 10)+"\n"))
}

// rootKey is a bakery.RootKeyStore holding the one current root key.
type rootKey struct {
	id, key []byte
}

func (r rootKey) Get(_ context.Context, id []byte) ([]byte, error) {
	if !bytes.Equal(id, r.id) {
		return nil, bakery.ErrNotFound
	}
	return r.key, nil
}

func (r rootKey) RootKey(context.Context) ([]byte, []byte, error) { return r.key, r.id, nil }

// quiet drops the bakery's own log lines: Authorize's errors say enough.
type quiet struct{}

func (quiet) Infof(context.Context, string, ...any)  {}
func (quiet) Debugf(context.Context, string, ...any) {}
