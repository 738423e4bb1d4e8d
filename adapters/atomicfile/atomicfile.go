// Package atomicfile writes a file whole or not at all, with the mode it is
// given from its first byte: through a new temporary file beside it
// (created 0600 by os.CreateTemp, never an old one whose mode or link could
// be reused), synced, then renamed over the target. The TLS key and the
// macaroons are written this way.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes data to path with mode, creating the directory (0700) if
// needed.
func Write(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	if err := tmp.Chmod(mode); err != nil {
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
