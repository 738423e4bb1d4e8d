package connectrpc

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestLimitsDocumented: the limits table of docs/authentication.md states
// the limits the server enforces.
func TestLimitsDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/authentication.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	srv := NewHTTPServer("127.0.0.1:0", &Handler{})
	for _, row := range []string{
		fmt.Sprintf("| request message | %d KiB |", maxRequestBytes>>10),
		fmt.Sprintf("| request headers | %d KiB |", srv.MaxHeaderBytes>>10),
	} {
		if !strings.Contains(doc, row) {
			t.Errorf("docs/authentication.md lacks the row %q", row)
		}
	}
}
