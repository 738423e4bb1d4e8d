package main

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lnmux/lnmux/app/lnmuxd/config"
	"github.com/lnmux/lnmux/ports"
)

// lockedBuffer is a log sink safe for the node's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestNodeLogLinesNameTheNodeOnce: the lnd adapter names its node in every
// line; lnmuxd must not add a second node= of its own.
func TestNodeLogLinesNameTheNodeOnce(t *testing.T) {
	cleanEnv(t)
	cfg := validConfig(t)
	dir := t.TempDir()
	// Nothing listens there and the files do not exist: the node fails
	// to connect and logs it.
	cfg.LND.Nodes = []config.NodeConfig{{PubKey: nodeKey(t, 1), URL: "127.0.0.1:1",
		MacaroonPath: filepath.Join(dir, "admin.macaroon"), TLSCertPath: filepath.Join(dir, "tls.cert")}}
	var out lockedBuffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	nodes, err := newNodes(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// The first status report comes after the failed attempt's log line.
	_ = nodes[0].Standby(ctx, func(ports.NodeStatus) { cancel() })
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("the node logged nothing")
	}
	for _, l := range lines {
		if n := strings.Count(l, " node="); n != 1 {
			t.Errorf("node= %d times in %q", n, l)
		}
	}
}
