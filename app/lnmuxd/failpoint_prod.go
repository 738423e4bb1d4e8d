//go:build !lnmuxtest

package main

import "log/slog"

// failpoint is the production build's: no crash point exists, whatever the
// environment says (the test build's is in failpoint_lnmuxtest.go).
func failpoint(*slog.Logger) func() { return nil }
