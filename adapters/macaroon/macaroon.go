// Package macaroon issues and checks the credentials of lnmux's API:
// macaroons as the LND ecosystem uses them (gopkg.in/macaroon.v2 baked and
// verified by gopkg.in/macaroon-bakery.v2), each carrying the permissions
// of its scopes as bakery operations.
//
// No root key is stored. The root key is derived from the identity key
// with HKDF under a label of its own and the current root key id, a
// counter kept in the database (ports.MacaroonRootKeyStore) and mirrored in
// the data directory. Rotating bumps the counter, which invalidates every
// macaroon issued before; every lnmuxd with the same identity key and the
// same database accepts the same macaroons, and the id never goes back. See
// docs/authentication.md, "Root key".
package macaroon

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/macaroon-bakery.v2/bakery"
	"gopkg.in/macaroon-bakery.v2/bakery/checkers"
	"gopkg.in/macaroon.v2"

	"github.com/lnmux/lnmux/adapters/atomicfile"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

const (
	// location names the issuer in every macaroon.
	location = "lnmux"
	// rootKeyLabel separates the root key from every other key derived
	// from the identity key (the invoice codec's labels differ).
	rootKeyLabel = "lnmux/v1 macaroon root key "
	// RootKeyIDFile mirrors the current root key id in the data directory.
	RootKeyIDFile = "macaroon-root-key-id"
)

// DefaultFiles are the macaroons written into the data directory, one per
// scope.
var DefaultFiles = map[ports.Scope]string{
	ports.ScopeAdmin:    "admin.macaroon",
	ports.ScopeReadOnly: "readonly.macaroon",
	ports.ScopeInvoice:  "invoice.macaroon",
}

// ErrRootKeyIDBehind: the database holds a lower root key id than the data
// directory has seen. Starting with the database's would bring back
// macaroons a rotation revoked; starting with the directory's would hide
// that the database went back (restored from a backup taken before the
// rotation, or another database). New refuses; Rotate moves on to an id
// above both.
var ErrRootKeyIDBehind = errors.New("the database's macaroon root key id is behind this data directory's")

// Service bakes and checks macaroons.
type Service struct {
	identity []byte
	dir      string
	ids      ports.MacaroonRootKeyStore

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
// kept in ids and mirrored in dir. The id in use is the highest of the
// database's, the id file's and the ids the default macaroons in dir were
// baked under; a database without an id (the first start, or the first
// after an upgrade) gets it. It fails with ErrRootKeyIDBehind when the
// database holds an id lower than dir has seen.
func New(ctx context.Context, identityKey []byte, dir string, ids ports.MacaroonRootKeyStore) (*Service, error) {
	if err := domain.ValidateIdentityKey(identityKey); err != nil {
		return nil, fmt.Errorf("macaroon: %w", err)
	}
	s := &Service{identity: bytes.Clone(identityKey), dir: dir, ids: ids, now: time.Now}
	seen, err := s.seen(ctx)
	if err != nil {
		return nil, err
	}
	stored, ok, err := ids.MacaroonRootKeyID(ctx)
	if err != nil {
		return nil, fmt.Errorf("macaroon: %w", err)
	}
	if ok && stored < seen.id {
		return nil, fmt.Errorf("macaroon: %w: the database holds root key id %d, but %s. "+
			"Was the database restored from before a rotation, or is it another one? "+
			"Check persistence; `lnmuxd macaroon rotate` moves every lnmuxd of this database on to an id above both (and revokes every macaroon baked before)",
			ErrRootKeyIDBehind, stored, seen.what)
	}
	id := max(stored, seen.id)
	if !ok {
		if id, err = ids.RaiseMacaroonRootKeyID(ctx, id); err != nil {
			return nil, fmt.Errorf("macaroon: store the root key id: %w", err)
		}
	}
	if err := s.mirror(id); err != nil {
		return nil, err
	}
	_, mtime, _, err := readID(dir)
	if err != nil {
		return nil, err
	}
	s.use(id, mtime)
	return s, nil
}

// RootKeyID returns the id of the root key in use.
func (s *Service) RootKeyID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

func (s *Service) rootKey(id uint64) []byte {
	key, err := hkdf.Key(sha256.New, s.identity, []byte("lnmux"), rootKeyLabel+strconv.FormatUint(id, 10), 32)
	if err != nil {
		// Only a key length beyond 255 hashes fails.
		panic("macaroon: derive root key: " + err.Error())
	}
	return key
}

// use switches to the root key id; s.mu held (or s not shared yet).
func (s *Service) use(id uint64, mtime time.Time) {
	s.mtime = mtime
	if s.oven != nil && id == s.id {
		return
	}
	s.id = id
	s.oven = bakery.New(bakery.BakeryParams{
		Location:     location,
		RootKeyStore: rootKey{id: []byte(strconv.FormatUint(id, 10)), key: s.rootKey(id)},
		Logger:       quiet{},
	})
}

// current returns the bakery of the current root key. When the id file
// changed it is read again, so that `lnmuxd macaroon rotate` on this host
// applies to a running lnmuxd at once. Only a higher id is taken: the id in
// use never goes back, and a lower, vanished or unreadable file is
// rewritten by the next Sync.
func (s *Service) current() *bakery.Bakery {
	st, statErr := os.Stat(filepath.Join(s.dir, RootKeyIDFile))
	s.mu.Lock()
	defer s.mu.Unlock()
	if statErr == nil && !st.ModTime().Equal(s.mtime) {
		s.mtime = st.ModTime()
		if id, mtime, ok, err := readID(s.dir); err == nil && ok && id > s.id {
			s.use(id, mtime)
		}
	}
	return s.oven
}

// SyncResult says what Sync did.
type SyncResult struct {
	// ID is the root key id in use afterwards.
	ID uint64
	// Adopted: the database held a higher id (a rotation by another
	// lnmuxd, or `macaroon rotate` run elsewhere), now in use.
	Adopted bool
	// Restored: the database held a lower id, or none, and was raised
	// back to the one in use.
	Restored bool
}

// Sync brings the service and the database to the same id once: a higher
// stored id is taken, a lower one raised back, and the id file rewritten
// when it is behind.
func (s *Service) Sync(ctx context.Context) (SyncResult, error) {
	stored, ok, err := s.ids.MacaroonRootKeyID(ctx)
	if err != nil {
		return SyncResult{ID: s.RootKeyID()}, fmt.Errorf("macaroon: %w", err)
	}
	cur := s.RootKeyID()
	var res SyncResult
	if !ok || stored < cur {
		if stored, err = s.ids.RaiseMacaroonRootKeyID(ctx, cur); err != nil {
			return SyncResult{ID: cur}, fmt.Errorf("macaroon: raise the stored root key id back to %d: %w", cur, err)
		}
		res.Restored = true
	}
	s.mu.Lock()
	if stored > s.id {
		s.use(stored, s.mtime)
		res.Adopted = true
	}
	res.ID = s.id
	s.mu.Unlock()
	return res, s.mirror(res.ID)
}

// Follow runs Sync every interval until ctx is done and hands each result
// to report (errors included: the id in use stays).
func (s *Service) Follow(ctx context.Context, interval time.Duration, report func(SyncResult, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := s.Sync(ctx)
		if ctx.Err() != nil {
			return
		}
		report(res, err)
	}
}

// mirror writes id into the id file unless the file holds it, or more.
func (s *Service) mirror(id uint64) error {
	if f, _, ok, err := readID(s.dir); err == nil && ok && f >= id {
		return nil
	}
	return writeID(s.dir, id)
}

// evidence is the highest root key id the data directory has seen.
type evidence struct {
	id   uint64
	what string
}

// seen reads the id file and the default macaroons baked by this identity.
// An unreadable id file fails: it is the operator's to fix.
func (s *Service) seen(ctx context.Context) (evidence, error) {
	var e evidence
	f, _, ok, err := readID(s.dir)
	if err != nil {
		return e, err
	}
	if ok {
		e = evidence{id: f, what: fmt.Sprintf("%s holds %d", filepath.Join(s.dir, RootKeyIDFile), f)}
	}
	for _, scope := range ports.Scopes {
		path := filepath.Join(s.dir, DefaultFiles[scope])
		if id, ok := s.bakedUnder(ctx, path); ok && id > e.id {
			e = evidence{id: id, what: fmt.Sprintf("%s was baked under root key id %d", path, id)}
		}
	}
	return e, nil
}

// bakedUnder returns the root key id the macaroon in path was baked under,
// if it is one of this identity's (its signature verifies under that id's
// root key).
func (s *Service) bakedUnder(ctx context.Context, path string) (uint64, bool) {
	b, err := os.ReadFile(path) //nolint:gosec // a file of the data directory
	if err != nil {
		return 0, false
	}
	var m macaroon.Macaroon
	if err := m.UnmarshalBinary(b); err != nil {
		return 0, false
	}
	probe := &anyRootKey{s: s}
	oven := bakery.NewOven(bakery.OvenParams{
		Location:           location,
		RootKeyStoreForOps: func([]bakery.Op) bakery.RootKeyStore { return probe },
	})
	if _, _, err := oven.VerifyMacaroon(ctx, macaroon.Slice{&m}); err != nil || !probe.asked {
		return 0, false
	}
	return probe.id, true
}

// anyRootKey answers the root key of whatever id a macaroon names and
// remembers the id.
type anyRootKey struct {
	s     *Service
	id    uint64
	asked bool
}

func (r *anyRootKey) Get(_ context.Context, id []byte) ([]byte, error) {
	n, err := strconv.ParseUint(string(id), 10, 64)
	if err != nil {
		return nil, bakery.ErrNotFound
	}
	r.id, r.asked = n, true
	return r.s.rootKey(n), nil
}

func (*anyRootKey) RootKey(context.Context) ([]byte, []byte, error) {
	return nil, nil, errors.New("macaroon: a probe bakes nothing")
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
	b := s.current()
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
	b := s.current()
	now := s.now()
	key := sha256.Sum256(credential)
	ops, ok := s.verified.lookup(key, b, now)
	if !ok {
		var err error
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
// (mode 0600) unless its file holds one of this identity baked under the
// root key id in use, and returns the paths it wrote. A file baked under an
// older id (a rotation by another lnmuxd of the database) or by another
// identity is replaced. With overwrite it replaces them all (after a
// rotation).
func (s *Service) WriteDefaults(ctx context.Context, now time.Time, overwrite bool) ([]string, error) {
	var written []string
	for _, scope := range ports.Scopes {
		path := filepath.Join(s.dir, DefaultFiles[scope])
		if id, ok := s.bakedUnder(ctx, path); ok && id == s.RootKeyID() && !overwrite {
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

// Rotate bumps the root key id, which revokes every macaroon baked before,
// and returns the new id: one above the highest of the database's and of
// what dir has seen (see New), stored in ids, then in dir's id file. It
// also resolves ErrRootKeyIDBehind. Every lnmuxd of the database takes the
// new id: at once on this host (the id file), within its Follow interval
// elsewhere.
func Rotate(ctx context.Context, identityKey []byte, dir string, ids ports.MacaroonRootKeyStore) (uint64, error) {
	if err := domain.ValidateIdentityKey(identityKey); err != nil {
		return 0, fmt.Errorf("macaroon: %w", err)
	}
	s := &Service{identity: identityKey, dir: dir}
	seen, err := s.seen(ctx)
	if err != nil {
		return 0, err
	}
	stored, _, err := ids.MacaroonRootKeyID(ctx)
	if err != nil {
		return 0, fmt.Errorf("macaroon: %w", err)
	}
	top := max(stored, seen.id)
	if top >= math.MaxInt64 {
		return 0, errors.New("macaroon: the root key id cannot grow any more")
	}
	id, err := ids.RaiseMacaroonRootKeyID(ctx, top+1)
	if err != nil {
		return 0, fmt.Errorf("macaroon: store the root key id: %w", err)
	}
	return id, writeID(dir, id)
}

// WriteFile writes a secret file with mode 0600, atomically.
func WriteFile(path string, data []byte) error {
	return atomicfile.Write(path, data, 0o600)
}

// readID reads the id file; ok is false when there is none.
func readID(dir string) (id uint64, mtime time.Time, ok bool, err error) {
	path := filepath.Join(dir, RootKeyIDFile)
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, time.Time{}, false, nil
	}
	if err != nil {
		return 0, time.Time{}, false, err
	}
	b, err := os.ReadFile(path) //nolint:gosec // the operator configures the path
	if err != nil {
		return 0, time.Time{}, false, err
	}
	id, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, time.Time{}, false, fmt.Errorf("macaroon: %s does not hold a root key id (a decimal number)", path)
	}
	return id, st.ModTime(), true, nil
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
