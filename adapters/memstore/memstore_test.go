package memstore_test

import (
	"testing"
	"time"

	"github.com/lnmux/lnmux/adapters/memstore"
	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
	"github.com/lnmux/lnmux/ports/storetest"
)

// TestContract holds the memory store to the contract of the SQL stores.
func TestContract(t *testing.T) {
	storetest.RunInvoiceStore(t, func(*testing.T) ports.InvoiceStore { return memstore.New() })
	storetest.RunLeader(t, func(*testing.T) ports.Leader { return memstore.NewLeader() })
	storetest.RunMacaroonRootKeyStore(t, func(*testing.T) ports.MacaroonRootKeyStore { return memstore.New() })
}

// TestForgetDropsEvents: a forgotten invoice leaves nothing in the log (the
// memory tests measure lnmux, not the "database"), and no cursor is reused.
func TestForgetDropsEvents(t *testing.T) {
	ctx := t.Context()
	st := memstore.New()
	a, b := storetest.NewInvoice(t, 1), storetest.NewInvoice(t, 1)
	for _, inv := range []domain.Invoice{a, b} {
		if _, err := st.RequestSettle(ctx, inv); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Update(ctx, b.Hash, storetest.Final(b.HTLCs[0].Circuit, true, time.Now())); err != nil {
		t.Fatal(err)
	}
	st.Forget(b.Hash)
	c := storetest.NewInvoice(t, 1)
	if _, err := st.RequestSettle(ctx, c); err != nil {
		t.Fatal(err)
	}
	evs, err := st.ListEvents(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Hash != a.Hash || evs[1].Hash != c.Hash || evs[1].Cursor != 4 {
		t.Fatalf("log after forgetting b: %+v", evs)
	}
}
