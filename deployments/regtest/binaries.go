package regtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// binaryNames are the daemons and CLIs the cluster needs.
var binaryNames = []string{"btcd", "btcctl", "lnd", "lncli"}

// BinEnv names a directory holding prebuilt btcd, btcctl, lnd and lncli; when
// set, nothing is built.
const BinEnv = "LNMUX_REGTEST_BIN"

// buildScript is the script, relative to the repository root, that builds
// the pinned binaries into the cache and prints their directory.
const buildScript = "deployments/regtest/build.sh"

// Binaries returns the directory holding btcd, btcctl, lnd and lncli: $LNMUX_REGTEST_BIN
// if set, else the versioned cache that deployments/regtest/build.sh fills,
// building the binaries first if they are missing (5–12 minutes cold on 2
// cores; a no-op afterwards). logf, if not nil, receives progress lines.
func Binaries(ctx context.Context, logf func(string, ...any)) (string, error) {
	if dir := os.Getenv(BinEnv); dir != "" {
		return dir, checkBinaries(dir)
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, buildScript))
	// The build dies with us (e.g. go test's timeout); the cache stays
	// consistent because build.sh renames complete results only.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out, stderr bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &stderr
	if logf != nil {
		logf("regtest: locating or building lnd/btcd binaries with %s (a cold build takes 5–12 min)", buildScript)
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("regtest: building the lnd/btcd binaries with %s failed: %w\n%s\n"+
			"Run `bash %s` by hand to see why, or point %s at a directory with btcd, btcctl, lnd and lncli "+
			"(lnd v0.21.3-beta built with tags signrpc walletrpc chainrpc invoicesrpc routerrpc peersrpc dev)",
			buildScript, err, tail(stderr.String(), 4000), buildScript, BinEnv)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	return dir, checkBinaries(dir)
}

func checkBinaries(dir string) error {
	var missing []string
	for _, b := range binaryNames {
		if st, err := os.Stat(filepath.Join(dir, b)); err != nil || st.IsDir() {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("regtest: %s lacks %s; run `bash %s` to build them", dir, strings.Join(missing, ", "), buildScript)
	}
	return nil
}

// repoRoot finds the lnmux checkout: upwards from the working directory
// (tests run in their package directory, the dev command at the root), else
// from this source file's location.
func repoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			if _, err := os.Stat(filepath.Join(dir, buildScript)); err == nil {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("regtest: cannot find the lnmux repository (with " + buildScript +
		") above the working directory; run from inside the checkout or set " + BinEnv)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
