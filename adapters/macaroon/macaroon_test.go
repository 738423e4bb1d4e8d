package macaroon_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lnmux/lnmux/adapters/macaroon"
	"github.com/lnmux/lnmux/adapters/memstore"
	"github.com/lnmux/lnmux/ports"
)

var identity = bytes.Repeat([]byte{0x42}, 32)

var allPerms = []ports.Permission{ports.PermInfoRead, ports.PermInvoicesRead, ports.PermInvoicesWrite, ports.PermSettlementsWrite}

// databases holds one memory store per data directory of a test, so that
// two services on one directory share their database as lnmuxd on one
// host does.
var databases sync.Map // dir → *memstore.Store

func dbOf(dir string) *memstore.Store {
	db, _ := databases.LoadOrStore(dir, memstore.New())
	return db.(*memstore.Store) //nolint:forcetypeassert // only stores are stored
}

func newService(t *testing.T, dir string) *macaroon.Service {
	t.Helper()
	return newServiceDB(t, dir, dbOf(dir))
}

func newServiceDB(t *testing.T, dir string, db ports.MacaroonRootKeyStore) *macaroon.Service {
	t.Helper()
	s, err := macaroon.New(t.Context(), identity, dir, db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rotate(t *testing.T, dir string, db ports.MacaroonRootKeyStore) uint64 {
	t.Helper()
	id, err := macaroon.Rotate(t.Context(), identity, dir, db)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestScopes(t *testing.T) {
	t.Parallel()
	s := newService(t, t.TempDir())
	for _, scope := range ports.Scopes {
		mac, err := s.Bake(t.Context(), time.Now(), 0, scope)
		if err != nil {
			t.Fatal(err)
		}
		granted, _ := scope.Permissions()
		for _, p := range allPerms {
			err := s.Authorize(t.Context(), mac, p)
			switch want := slices.Contains(granted, p); {
			case want && err != nil:
				t.Errorf("%s: %s refused: %v", scope, p, err)
			case !want && !errors.Is(err, ports.ErrPermissionDenied):
				t.Errorf("%s: %s = %v, want ErrPermissionDenied", scope, p, err)
			}
		}
	}
	// Scopes combine.
	mac, err := s.Bake(t.Context(), time.Now(), 0, ports.ScopeInvoice, ports.ScopeReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []ports.Permission{ports.PermInvoicesRead, ports.PermInvoicesWrite} {
		if err := s.Authorize(t.Context(), mac, p); err != nil {
			t.Errorf("invoice+readonly: %s refused: %v", p, err)
		}
	}
	if err := s.Authorize(t.Context(), mac, ports.PermSettlementsWrite); !errors.Is(err, ports.ErrPermissionDenied) {
		t.Errorf("invoice+readonly may settle: %v", err)
	}
	if _, err := s.Bake(t.Context(), time.Now(), 0, "superuser"); err == nil {
		t.Error("unknown scope baked")
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newService(t, dir)
	admin, err := s.Bake(t.Context(), time.Now(), 0, ports.ScopeAdmin)
	if err != nil {
		t.Fatal(err)
	}
	other, err := macaroon.New(t.Context(), bytes.Repeat([]byte{0x43}, 32), t.TempDir(), memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Bake(t.Context(), time.Now(), 0, ports.ScopeAdmin)
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Clone(admin)
	forged[len(forged)-1] ^= 1
	expired, err := s.Bake(t.Context(), time.Now().Add(-2*time.Hour), time.Hour, ports.ScopeAdmin)
	if err != nil {
		t.Fatal(err)
	}
	valid, err := s.Bake(t.Context(), time.Now(), time.Hour, ports.ScopeAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Authorize(t.Context(), valid, ports.PermSettlementsWrite); err != nil {
		t.Errorf("unexpired macaroon refused: %v", err)
	}
	for name, cred := range map[string][]byte{
		"empty": nil, "garbage": []byte("hello"), "forged signature": forged,
		"other identity key": foreign, "expired": expired,
	} {
		if err := s.Authorize(t.Context(), cred, ports.PermInfoRead); !errors.Is(err, ports.ErrUnauthenticated) {
			t.Errorf("%s: %v, want ErrUnauthenticated", name, err)
		}
	}
}

func TestRotate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newService(t, dir)
	written, err := s.WriteDefaults(t.Context(), time.Now(), false)
	if err != nil || len(written) != 3 {
		t.Fatalf("WriteDefaults = %v, %v", written, err)
	}
	for _, p := range written {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", p, st.Mode(), err)
		}
	}
	if again, err := s.WriteDefaults(t.Context(), time.Now(), false); err != nil || len(again) != 0 {
		t.Errorf("second WriteDefaults rewrote %v, %v", again, err)
	}
	admin, err := os.ReadFile(filepath.Join(dir, "admin.macaroon"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Authorize(t.Context(), admin, ports.PermSettlementsWrite); err != nil {
		t.Fatalf("admin.macaroon refused: %v", err)
	}
	// Another lnmuxd with the same identity key and id accepts it.
	if err := newService(t, dir).Authorize(t.Context(), admin, ports.PermSettlementsWrite); err != nil {
		t.Fatalf("second instance refuses admin.macaroon: %v", err)
	}

	if id := rotate(t, dir, dbOf(dir)); id != 1 {
		t.Fatalf("Rotate = %d", id)
	}
	// The running service notices the rotation at once.
	if err := s.Authorize(t.Context(), admin, ports.PermInfoRead); !errors.Is(err, ports.ErrUnauthenticated) {
		t.Fatalf("macaroon of the old root key: %v, want ErrUnauthenticated", err)
	}
	if s.RootKeyID() != 1 {
		t.Errorf("RootKeyID = %d after rotation", s.RootKeyID())
	}
	if _, err := s.WriteDefaults(t.Context(), time.Now(), true); err != nil {
		t.Fatal(err)
	}
	admin2, _ := os.ReadFile(filepath.Join(dir, "admin.macaroon"))
	if err := s.Authorize(t.Context(), admin2, ports.PermSettlementsWrite); err != nil {
		t.Errorf("new admin.macaroon refused: %v", err)
	}
	// Deleting the id file must not bring the old macaroons back.
	if err := os.Remove(filepath.Join(dir, macaroon.RootKeyIDFile)); err != nil {
		t.Fatal(err)
	}
	if err := s.Authorize(t.Context(), admin, ports.PermInfoRead); !errors.Is(err, ports.ErrUnauthenticated) {
		t.Errorf("old macaroon after the id file vanished: %v", err)
	}
	if err := s.Authorize(t.Context(), admin2, ports.PermInfoRead); err != nil {
		t.Errorf("current macaroon after the id file vanished: %v", err)
	}
}

// TestRootKeyIDFileGoingBackIsIgnored: the id in use never goes back; a
// lower id file is rewritten by the next Sync.
func TestRootKeyIDFileGoingBackIsIgnored(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rotate(t, dir, dbOf(dir))
	s := newService(t, dir)
	mac, err := s.Bake(t.Context(), time.Now(), 0, ports.ScopeAdmin)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, macaroon.RootKeyIDFile)
	if err := os.WriteFile(path, []byte("0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour) // a modification time that surely differs
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if err := s.Authorize(t.Context(), mac, ports.PermInfoRead); err != nil {
		t.Errorf("id file went back: %v, want the id in use kept", err)
	}
	if s.RootKeyID() != 1 {
		t.Errorf("RootKeyID = %d, want 1", s.RootKeyID())
	}
	if _, err := s.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "1\n" {
		t.Errorf("id file after Sync: %q, want 1", b)
	}
}
