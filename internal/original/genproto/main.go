// Command genproto writes internal/original/lnmux_original.proto from the
// original lnmux's wire contract in internal/original (task generate runs
// it from the repository's root; -o writes elsewhere).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lnmux/lnmux/internal/original"
)

func main() {
	out := flag.String("o", filepath.Join("internal", "original", original.ProtoFile), "file to write")
	flag.Parse()
	if err := os.WriteFile(*out, []byte(original.Wire.Proto()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "genproto:", err)
		os.Exit(1)
	}
}
