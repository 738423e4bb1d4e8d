package original

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// ReferenceEnv names the directory of a copy of the original's published
// files (lnmux-original.proto, lnmux-original.yml.example,
// original-migrations/), kept outside the repository.
const ReferenceEnv = "LNMUX_REFERENCE_DIR"

// Reference returns the directory of a copy of the original's files for
// the optional cross-check of this package's data against them: the
// directory ReferenceEnv names (the test fails if it does not exist: it was
// asked for). ok is false when it is unset; the tests then rest on this
// package's data alone.
func Reference(t testing.TB) (dir string, ok bool) {
	t.Helper()
	if dir := os.Getenv(ReferenceEnv); dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			t.Fatalf("%s=%s is not a directory: unset it to test without the original's files", ReferenceEnv, dir)
		}
		return dir, true
	}
	return "", false
}

// ReferenceFile returns the path of name in the reference copy, or skips
// the test when there is no copy. A copy without the file fails the test.
func ReferenceFile(t testing.TB, name string) string {
	t.Helper()
	dir, ok := Reference(t)
	if !ok {
		t.Skipf("no copy of the original's files (%s unset): nothing to cross-check; the other tests use the repository's own statement of them", ReferenceEnv)
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the copy of the original's files in %s lacks %s: %v", dir, name, err)
	}
	return p
}

// moduleRoot is the directory of the go.mod above the working directory
// (a test's is its package's directory).
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}
