//go:build !lnmuxtest

package main

import (
	"io"
	"log/slog"
	"testing"
)

func TestNoFailpointInProductionBuild(t *testing.T) {
	t.Setenv("LNMUX_TEST_FAILPOINT", "crash-after-settle-commit")
	if failpoint(slog.New(slog.NewTextHandler(io.Discard, nil))) != nil {
		t.Fatal("a build without -tags lnmuxtest arms the crash failpoint")
	}
}
