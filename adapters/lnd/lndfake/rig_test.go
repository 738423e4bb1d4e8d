package lndfake_test

import (
	"context"
	"testing"
	"time"

	"github.com/lnmux/lnmux/adapters/lnd/lndfake"
)

// TestRigSettlesEverySet: multi-part payments over three fake nodes, offered
// on the interceptor streams, are all settled by lnmux through the real
// adapter with their preimages, and lnd's final events make every invoice
// SETTLED in the store.
func TestRigSettlesEverySet(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute) // only a hang fails
	defer cancel()
	rig, err := lndfake.NewRig(ctx, lndfake.RigConfig{Nodes: 3, Parts: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer rig.Close()
	const sets = 30
	offers, err := rig.Build(ctx, sets)
	if err != nil {
		t.Fatal(err)
	}
	res, err := rig.Run(ctx, offers, 0, 64)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) > 0 {
		t.Fatalf("%d HTLCs not settled with their preimage, first: %s", len(res.Failures), res.Failures[0])
	}
	if res.HTLCs != sets*5 || len(res.Latency) != sets*5 {
		t.Fatalf("%d HTLCs answered of %d, want all", len(res.Latency), sets*5)
	}
	if err := rig.WaitSettled(ctx, sets); err != nil {
		t.Fatal(err)
	}
}
