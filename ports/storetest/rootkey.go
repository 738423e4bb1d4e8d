package storetest

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

// RunMacaroonRootKeyStore runs the contract of ports.MacaroonRootKeyStore.
// open must return a new, empty store each time it is called.
func RunMacaroonRootKeyStore(t *testing.T, open func(t *testing.T) ports.MacaroonRootKeyStore) {
	t.Run("MacaroonRootKeyID", func(t *testing.T) { testRootKeyID(t, open(t)) })
	t.Run("MacaroonRootKeyIDConcurrent", func(t *testing.T) { testRootKeyIDConcurrent(t, open(t)) })
}

func testRootKeyID(t *testing.T, st ports.MacaroonRootKeyStore) {
	ctx := t.Context()
	if id, ok, err := st.MacaroonRootKeyID(ctx); err != nil || ok || id != 0 {
		t.Fatalf("new store: id %d ok %v err %v, want none stored", id, ok, err)
	}
	// 0 is an id like any other: stored, it is no longer "never set".
	if id, err := st.RaiseMacaroonRootKeyID(ctx, 0); err != nil || id != 0 {
		t.Fatalf("raise to 0: %d %v", id, err)
	}
	if id, ok, err := st.MacaroonRootKeyID(ctx); err != nil || !ok || id != 0 {
		t.Fatalf("after raise to 0: id %d ok %v err %v", id, ok, err)
	}
	for _, step := range []struct{ raise, want uint64 }{{3, 3}, {1, 3}, {3, 3}, {7, 7}, {0, 7}, {math.MaxInt64, math.MaxInt64}} {
		id, err := st.RaiseMacaroonRootKeyID(ctx, step.raise)
		if err != nil || id != step.want {
			t.Fatalf("raise to %d: %d %v, want %d (the id never goes back)", step.raise, id, err, step.want)
		}
		if got, ok, err := st.MacaroonRootKeyID(ctx); err != nil || !ok || got != step.want {
			t.Fatalf("after raise to %d: %d %v %v, want %d", step.raise, got, ok, err, step.want)
		}
	}
	if _, err := st.RaiseMacaroonRootKeyID(ctx, math.MaxInt64+1); !errors.Is(err, domain.ErrInvalidArgument) {
		t.Errorf("raise beyond 2^63-1: %v, want ErrInvalidArgument", err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.RaiseMacaroonRootKeyID(done, math.MaxInt64); err == nil {
		t.Error("raise with a done context: no error")
	}
	if _, _, err := st.MacaroonRootKeyID(done); err == nil {
		t.Error("read with a done context: no error")
	}
}

// testRootKeyIDConcurrent: racing raises (two replicas adopting their
// files, two rotations) end at the highest, and each returns at least its
// own id.
func testRootKeyIDConcurrent(t *testing.T, st ports.MacaroonRootKeyStore) {
	ctx := t.Context()
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range uint64(n) {
		wg.Go(func() {
			got, err := st.RaiseMacaroonRootKeyID(ctx, i)
			if err == nil && got < i {
				err = errors.New("a raise returned less than its id")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if id, ok, err := st.MacaroonRootKeyID(ctx); err != nil || !ok || id != n-1 {
		t.Fatalf("after concurrent raises: %d %v %v, want %d", id, ok, err, n-1)
	}
}
