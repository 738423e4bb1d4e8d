//go:build lnmuxtest

package main

import (
	"log/slog"
	"os"
	"syscall"
)

// failpointEnv names a crash point for the end-to-end tests. It exists
// only in binaries built with -tags lnmuxtest (app/e2e builds them so);
// a production build has no failpoint at all (failpoint_prod.go).
const failpointEnv = "LNMUX_TEST_FAILPOINT"

// failpoint returns the settle-commit hook asked for by failpointEnv:
// "crash-after-settle-commit" kills the process with SIGKILL once a
// settlement is durable and before lnd has heard of it.
func failpoint(log *slog.Logger) func() {
	if os.Getenv(failpointEnv) != "crash-after-settle-commit" {
		return nil
	}
	log.Warn("test failpoint armed: lnmuxd kills itself after the next settle commit", "env", failpointEnv)
	return func() {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL cannot be caught; never go on to settle
	}
}
