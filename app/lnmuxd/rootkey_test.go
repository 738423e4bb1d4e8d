package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// TestRotationSurvivesANewDataDir: lnmuxd keeps the macaroon root key id in
// the database, so a data directory lost after a rotation (an emptyDir
// after a pod restart) neither revives the revoked macaroons nor refuses
// the current ones; and a database restored from before the rotation is
// refused at start.
func TestRotationSurvivesANewDataDir(t *testing.T) {
	cleanEnv(t)
	t.Setenv("LNMUX_IDENTITY_KEY", testKey)
	dbDir := t.TempDir()
	dbPath := filepath.Join(dbDir, "lnmux.db")
	lnmuxd := func(ctx context.Context, dataDir string, logs io.Writer, args ...string) (string, error) {
		var out bytes.Buffer
		base := []string{"--data-dir", dataDir, "--persistence-sqlite-path", dbPath, "--auth-require-on-loopback"}
		err := run(ctx, append(base, args...), &out, logs)
		return out.String(), err
	}
	first := t.TempDir()
	for _, c := range []string{"init", "up"} {
		if _, err := lnmuxd(t.Context(), first, io.Discard, "migrate", c); err != nil {
			t.Fatalf("migrate %s: %v", c, err)
		}
	}
	revoked, err := lnmuxd(t.Context(), first, io.Discard, "macaroon", "bake", "--scope", "admin")
	if err != nil {
		t.Fatal(err)
	}
	backup := copyFiles(t, dbDir, t.TempDir()) // a backup taken before the rotation
	if _, err := lnmuxd(t.Context(), first, io.Discard, "macaroon", "rotate"); err != nil {
		t.Fatal(err)
	}
	current, err := os.ReadFile(filepath.Join(first, "admin.macaroon"))
	if err != nil {
		t.Fatal(err)
	}

	// The pod restarts with a new, empty data directory.
	second := t.TempDir()
	api := freeLocalAddr(t)
	ctx, stop := context.WithCancel(t.Context())
	logs := &syncBuf{}
	done := make(chan error, 1)
	go func() {
		_, err := lnmuxd(ctx, second, logs, "--listen-address", api, "--instrumentation-address", freeLocalAddr(t), "run")
		done <- err
	}()
	fresh := waitFile(t, filepath.Join(second, "admin.macaroon"), done)
	client := lnmuxpbconnect.NewServiceClient(http.DefaultClient, "http://"+api)
	getInfo := func(mac string) error {
		req := connect.NewRequest(&lnmuxpb.GetInfoRequest{})
		req.Header().Set("Macaroon", mac)
		_, err := client.GetInfo(t.Context(), req)
		return err
	}
	waitUntil(t, done, func() bool { return connect.CodeOf(getInfo(hex.EncodeToString(fresh))) != connect.CodeUnavailable })
	if err := getInfo(strings.TrimSpace(revoked)); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("the macaroon revoked by the rotation, on a new data directory: %v, want Unauthenticated", err)
	}
	for name, mac := range map[string][]byte{"the rotation's admin.macaroon": current, "the new directory's admin.macaroon": fresh} {
		if err := getInfo(hex.EncodeToString(mac)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}

	// The database restored from before the rotation: refused at start.
	if err := os.RemoveAll(dbDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dbDir, 0o700); err != nil {
		t.Fatal(err)
	}
	copyFiles(t, backup, dbDir)
	api = freeLocalAddr(t)
	ctx, stop = context.WithCancel(t.Context())
	defer stop()
	go func() {
		_, err := lnmuxd(ctx, second, io.Discard, "--listen-address", api, "--instrumentation-address", freeLocalAddr(t), "run")
		done <- err
	}()
	client = lnmuxpbconnect.NewServiceClient(http.DefaultClient, "http://"+api)
	for {
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "root key id") || !strings.Contains(err.Error(), "macaroon rotate") {
				t.Errorf("run on a database restored from before the rotation: %v, want a refusal that points at macaroon rotate", err)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
		if connect.CodeOf(getInfo(hex.EncodeToString(fresh))) != connect.CodeUnavailable {
			stop()
			t.Fatalf("lnmuxd serves on a database restored from before the rotation (run: %v)", <-done)
		}
	}
}

// copyFiles copies the regular files of src into dst and returns dst.
func copyFiles(t *testing.T, src, dst string) string {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}
