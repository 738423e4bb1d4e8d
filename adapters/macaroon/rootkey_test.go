package macaroon_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lnmux/lnmux/adapters/macaroon"
	"github.com/lnmux/lnmux/adapters/memstore"
	"github.com/lnmux/lnmux/ports"
)

func bakeAdmin(t *testing.T, s *macaroon.Service) []byte {
	t.Helper()
	mac, err := s.Bake(t.Context(), time.Now(), 0, ports.ScopeAdmin)
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

func wantRefused(t *testing.T, s *macaroon.Service, mac []byte, what string) {
	t.Helper()
	if err := s.Authorize(t.Context(), mac, ports.PermSettlementsWrite); !errors.Is(err, ports.ErrUnauthenticated) {
		t.Errorf("%s: %v, want ErrUnauthenticated", what, err)
	}
}

func wantAccepted(t *testing.T, s *macaroon.Service, mac []byte, what string) {
	t.Helper()
	if err := s.Authorize(t.Context(), mac, ports.PermSettlementsWrite); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

func writeIDFile(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, macaroon.RootKeyIDFile), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRotationSurvivesLostIDFile is the scenario: after a
// rotation, macaroon-root-key-id is lost (the file deleted, or a new
// emptyDir after a pod restart). The revoked macaroon stays revoked and
// the current one keeps working: the database holds the id.
func TestRotationSurvivesLostIDFile(t *testing.T) {
	t.Parallel()
	dir, db := t.TempDir(), memstore.New()
	revoked := bakeAdmin(t, newServiceDB(t, dir, db))
	rotate(t, dir, db)
	current := bakeAdmin(t, newServiceDB(t, dir, db))
	if err := os.Remove(filepath.Join(dir, macaroon.RootKeyIDFile)); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]string{"same directory without the id file": dir, "a new empty directory": t.TempDir()} {
		restarted := newServiceDB(t, d, db)
		wantRefused(t, restarted, revoked, name+": the revoked macaroon")
		wantAccepted(t, restarted, current, name+": the current macaroon")
		if restarted.RootKeyID() != 1 {
			t.Errorf("%s: root key id %d, want 1", name, restarted.RootKeyID())
		}
		if b, err := os.ReadFile(filepath.Join(d, macaroon.RootKeyIDFile)); err != nil || string(b) != "1\n" {
			t.Errorf("%s: id file %q %v, want it rewritten as 1", name, b, err)
		}
	}
}

// TestDatabaseBehindIsRefused: a database holding a lower id than the data
// directory has seen (restored from before a rotation, or another one)
// stops New, whatever showed the higher id; Rotate moves on past both.
func TestDatabaseBehindIsRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		layout func(t *testing.T, dir string)
		what   string
	}{
		{"id file", func(t *testing.T, dir string) { writeIDFile(t, dir, "2\n") }, macaroon.RootKeyIDFile + " holds 2"},
		{"default macaroon baked under a higher id", func(t *testing.T, dir string) {
			// Baked by an lnmuxd at id 2, the id file lost since.
			db := memstore.New()
			if _, err := db.RaiseMacaroonRootKeyID(t.Context(), 2); err != nil {
				t.Fatal(err)
			}
			s := newServiceDB(t, dir, db)
			if _, err := s.WriteDefaults(t.Context(), time.Now(), false); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(dir, macaroon.RootKeyIDFile)); err != nil {
				t.Fatal(err)
			}
		}, "baked under root key id 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.layout(t, dir)
			db := memstore.New() // "restored": it holds 1
			if _, err := db.RaiseMacaroonRootKeyID(t.Context(), 1); err != nil {
				t.Fatal(err)
			}
			_, err := macaroon.New(t.Context(), identity, dir, db)
			if !errors.Is(err, macaroon.ErrRootKeyIDBehind) || !strings.Contains(err.Error(), c.what) {
				t.Fatalf("New = %v, want ErrRootKeyIDBehind naming %q", err, c.what)
			}
			if id, _, _ := db.MacaroonRootKeyID(t.Context()); id != 1 {
				t.Errorf("the refused start changed the database's id to %d", id)
			}
			if id := rotate(t, dir, db); id != 3 {
				t.Errorf("Rotate = %d, want 3 (above both)", id)
			}
			if s := newServiceDB(t, dir, db); s.RootKeyID() != 3 {
				t.Errorf("after Rotate: id %d, want 3", s.RootKeyID())
			}
		})
	}
}

// TestUpgradeStoresTheDirectoryID: a database that never held an id (the
// first start after the upgrade that added it) takes the directory's.
func TestUpgradeStoresTheDirectoryID(t *testing.T) {
	t.Parallel()
	dir, db := t.TempDir(), memstore.New()
	writeIDFile(t, dir, "4\n")
	if s := newServiceDB(t, dir, db); s.RootKeyID() != 4 {
		t.Errorf("id %d, want the file's 4", s.RootKeyID())
	}
	if id, ok, err := db.MacaroonRootKeyID(t.Context()); err != nil || !ok || id != 4 {
		t.Errorf("database: %d %v %v, want 4", id, ok, err)
	}
	// A fresh directory and database start at 0, and store it.
	dir2, db2 := t.TempDir(), memstore.New()
	if s := newServiceDB(t, dir2, db2); s.RootKeyID() != 0 {
		t.Errorf("fresh: id %d, want 0", s.RootKeyID())
	}
	if _, ok, _ := db2.MacaroonRootKeyID(t.Context()); !ok {
		t.Error("fresh: the database holds no id")
	}
}

// TestStaleDefaultsReplaced: a directory that missed a rotation (another
// replica rotated while this one was down) takes the database's id, and
// its default macaroons, baked under the old id, are baked again.
func TestStaleDefaultsReplaced(t *testing.T) {
	t.Parallel()
	dir, db := t.TempDir(), memstore.New()
	s := newServiceDB(t, dir, db)
	if w, err := s.WriteDefaults(t.Context(), time.Now(), false); err != nil || len(w) != 3 {
		t.Fatalf("WriteDefaults = %v %v", w, err)
	}
	rotate(t, t.TempDir(), db) // elsewhere
	s = newServiceDB(t, dir, db)
	if s.RootKeyID() != 1 {
		t.Fatalf("id %d, want the database's 1", s.RootKeyID())
	}
	w, err := s.WriteDefaults(t.Context(), time.Now(), false)
	if err != nil || len(w) != 3 {
		t.Fatalf("WriteDefaults after the rotation elsewhere = %v %v, want the 3 stale files rewritten", w, err)
	}
	if w, err := s.WriteDefaults(t.Context(), time.Now(), false); err != nil || len(w) != 0 {
		t.Errorf("WriteDefaults again = %v %v, want none", w, err)
	}
	admin, err := os.ReadFile(filepath.Join(dir, "admin.macaroon"))
	if err != nil {
		t.Fatal(err)
	}
	wantAccepted(t, s, admin, "the rewritten admin.macaroon")
}

// TestSyncFollowsAnotherReplica: two lnmuxd on one database with data
// directories of their own. A rotation on one reaches the other at its
// next Sync, which also rewrites its id file.
func TestSyncFollowsAnotherReplica(t *testing.T) {
	t.Parallel()
	db := memstore.New()
	dirA, dirB := t.TempDir(), t.TempDir()
	a, b := newServiceDB(t, dirA, db), newServiceDB(t, dirB, db)
	old := bakeAdmin(t, b)
	wantAccepted(t, a, old, "a replica's macaroon on the other")
	rotate(t, dirA, db)
	wantRefused(t, a, old, "on the rotating host, at once")
	res, err := b.Sync(t.Context())
	if err != nil || !res.Adopted || res.ID != 1 {
		t.Fatalf("Sync = %+v %v, want the rotation adopted", res, err)
	}
	wantRefused(t, b, old, "on the other replica after Sync")
	wantAccepted(t, b, bakeAdmin(t, a), "the new macaroon on the other replica")
	if got, err := os.ReadFile(filepath.Join(dirB, macaroon.RootKeyIDFile)); err != nil || string(got) != "1\n" {
		t.Errorf("replica's id file %q %v, want 1", got, err)
	}
	if res, err := b.Sync(t.Context()); err != nil || res.Adopted || res.Restored {
		t.Errorf("second Sync = %+v %v, want nothing to do", res, err)
	}
}

// settableIDs is a MacaroonRootKeyStore whose id a test can lower, as a
// restore from a backup would.
type settableIDs struct {
	mu  sync.Mutex
	id  uint64
	set bool
	err error
}

func (s *settableIDs) MacaroonRootKeyID(context.Context) (uint64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id, s.set, s.err
}

func (s *settableIDs) RaiseMacaroonRootKeyID(_ context.Context, id uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	s.id, s.set = max(s.id, id), true
	return s.id, nil
}

// TestSyncRaisesTheDatabaseBack: a database that went back while lnmuxd
// runs is raised back to the id in use, so that no replica starting later
// takes the lower one; a failing database leaves the id in use.
func TestSyncRaisesTheDatabaseBack(t *testing.T) {
	t.Parallel()
	ids := &settableIDs{id: 2, set: true}
	s := newServiceDB(t, t.TempDir(), ids)
	mac := bakeAdmin(t, s)
	ids.mu.Lock()
	ids.id, ids.set = 0, false
	ids.mu.Unlock()
	res, err := s.Sync(t.Context())
	if err != nil || !res.Restored || res.ID != 2 {
		t.Fatalf("Sync = %+v %v, want the database raised back to 2", res, err)
	}
	if id, ok, _ := ids.MacaroonRootKeyID(t.Context()); !ok || id != 2 {
		t.Errorf("database holds %d (%v), want 2", id, ok)
	}
	ids.mu.Lock()
	ids.err = errors.New("database down")
	ids.mu.Unlock()
	if _, err := s.Sync(t.Context()); err == nil {
		t.Error("Sync with the database down: no error")
	}
	wantAccepted(t, s, mac, "with the database down")
}
