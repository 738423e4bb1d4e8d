package tlscert_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lnmux/lnmux/adapters/tlscert"
)

func TestLoadOrGenerate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "tls.cert"), filepath.Join(dir, "tls.key")
	now := time.Now()
	cert, created, err := tlscert.LoadOrGenerate(certPath, keyPath, []string{"lnmux.example", "10.1.2.3"}, now)
	if err != nil || !created {
		t.Fatalf("first call: created=%v err=%v", created, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	for _, name := range []string{"localhost", "lnmux.example"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("not valid for %s: %v", name, err)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1", "10.1.2.3"} {
		if err := leaf.VerifyHostname(net.ParseIP(ip).String()); err != nil {
			t.Errorf("not valid for %s: %v", ip, err)
		}
	}
	// The certificate is its own root, as clients pin it.
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost", CurrentTime: now}); err != nil {
		t.Errorf("does not verify against itself: %v", err)
	}
	if st, err := os.Stat(keyPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, %v; want 0600", st.Mode(), err)
	}

	// Kept while current.
	if _, created, err := tlscert.LoadOrGenerate(certPath, keyPath, []string{"lnmux.example"}, now); err != nil || created {
		t.Errorf("second call: created=%v err=%v", created, err)
	}
	// Regenerated for a new name and when about to expire.
	if _, created, err := tlscert.LoadOrGenerate(certPath, keyPath, []string{"other.example"}, now); err != nil || !created {
		t.Errorf("new name: created=%v err=%v", created, err)
	}
	if _, created, err := tlscert.LoadOrGenerate(certPath, keyPath, []string{"other.example"}, now.Add(400*24*time.Hour)); err != nil || !created {
		t.Errorf("near expiry: created=%v err=%v", created, err)
	}
	// A damaged pair is reported, not silently replaced.
	if err := os.WriteFile(keyPath, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tlscert.LoadOrGenerate(certPath, keyPath, nil, now); err == nil {
		t.Error("damaged key accepted")
	}
	if _, err := tlscert.Load(certPath, filepath.Join(dir, "missing")); err == nil {
		t.Error("Load of a missing key succeeded")
	}
}

// TestKeyFileModeDespiteStaleTemp: a leftover tls.key.tmp (a crash, or a
// file someone else made readable, or a link elsewhere) changes nothing:
// the key is written through a new file of its own, mode 0600, and the
// leftover is neither followed nor reused.
func TestKeyFileModeDespiteStaleTemp(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "tls.cert"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(keyPath+".tmp", []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	elsewhere := filepath.Join(t.TempDir(), "outside")
	if err := os.Symlink(elsewhere, certPath+".tmp"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tlscert.LoadOrGenerate(certPath, keyPath, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || !st.Mode().IsRegular() {
		t.Errorf("tls.key mode %v, want a regular file with 0600", st.Mode())
	}
	if st, err := os.Lstat(certPath); err != nil || !st.Mode().IsRegular() {
		t.Errorf("tls.cert: %v, want a regular file (err %v)", st.Mode(), err)
	}
	if _, err := os.Stat(elsewhere); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the certificate was written through the link: %v", err)
	}
}
