package core

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestMachineIsPure checks the machine's source for what would make it
// depend on anything but its inputs: the clock, goroutines, channels,
// locks, contexts, logging, randomness or I/O (docs/design.md, "The
// machine"). Map iteration is random in Go, so the machine sorts wherever
// the order of a map walk could reach its output; that is checked by the
// simulation replaying seeds, not here.
func TestMachineIsPure(t *testing.T) {
	allowed := []string{"container/heap", "errors", "fmt", "slices", "time",
		"github.com/lnmux/lnmux/domain", "github.com/lnmux/lnmux/ports"}
	// time's types and arithmetic are pure; reading or waiting on the clock
	// is not.
	impure := []string{"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "NewTimer", "NewTicker", "Tick"}

	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !slices.Contains(allowed, path) {
				t.Errorf("%s imports %s: the machine may import only %v", name, path, allowed)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: a go statement: the machine starts no goroutine", fset.Position(n.Pos()))
			case *ast.SelectStmt, *ast.SendStmt, *ast.ChanType:
				t.Errorf("%s: a channel: the machine waits for nothing", fset.Position(n.Pos()))
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok && id.Name == "time" && slices.Contains(impure, n.Sel.Name) {
					t.Errorf("%s: time.%s: the machine reads no clock; inputs carry the time", fset.Position(n.Pos()), n.Sel.Name)
				}
			case *ast.UnaryExpr:
				if n.Op == token.ARROW {
					t.Errorf("%s: a channel receive: the machine waits for nothing", fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
	if checked < 5 {
		t.Fatalf("checked %d files: the test does not look at the machine", checked)
	}
}
