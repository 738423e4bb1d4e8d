package originaltest_test

import (
	"strings"
	"testing"

	_ "github.com/lnmux/lnmux/adapters/connectrpc/originaltest/coexist"
	"github.com/lnmux/lnmux/internal/original"
	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
)

// originalTypeKept lists the fields of proto/lnmux whose type differs from
// the original's, each marked "Original type" there: int64 where the
// original has uint64, alike in binary (varints) and JSON (decimal
// strings) for the values lnmux sends or accepts (docs/compatibility.md).
var originalTypeKept = map[string]bool{
	"field lnmux.ListInvoicesRequest 1": true, // max_invoices_count
	"field lnmux.Invoice 3":             true, // amount_msat
	"field lnmux.Invoice 5":             true, // settle_requested_at
	"field lnmux.Invoice 6":             true, // finalized_at
}

// TestProtoKeepsOriginalContract: lnmux's own API states every fact of the
// original's wire contract (internal/original), adding only, with the type
// changes above alone. proto/check-original.sh checks the same with buf
// breaking; this runs with go test alone.
func TestProtoKeepsOriginalContract(t *testing.T) {
	allow := func(key, want, got string) bool {
		return originalTypeKept[key] && strings.Replace(want, " uint64 ", " int64 ", 1) == got
	}
	if d := original.Diff(original.Wire.Facts(), original.FileFacts(lnmuxpb.File_lnmux_lnmux_proto), true, allow); len(d) > 0 {
		t.Errorf("proto/lnmux/lnmux.proto breaks the original's contract:\n%s", strings.Join(d, "\n"))
	}
	facts := original.FileFacts(lnmuxpb.File_lnmux_lnmux_proto)
	for k := range originalTypeKept {
		if want := original.Wire.Facts()[k]; facts[k] == want {
			t.Errorf("%s has the original's type again: drop it from originalTypeKept", k)
		}
	}
}
