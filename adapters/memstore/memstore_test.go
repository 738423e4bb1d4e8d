package memstore_test

import (
	"testing"

	"github.com/lnmux/lnmux/adapters/memstore"
	"github.com/lnmux/lnmux/ports"
	"github.com/lnmux/lnmux/ports/storetest"
)

// TestContract holds the memory store to the contract of the SQL stores.
func TestContract(t *testing.T) {
	storetest.RunInvoiceStore(t, func(*testing.T) ports.InvoiceStore { return memstore.New() })
	storetest.RunLeader(t, func(*testing.T) ports.Leader { return memstore.NewLeader() })
	storetest.RunMacaroonRootKeyStore(t, func(*testing.T) ports.MacaroonRootKeyStore { return memstore.New() })
}
