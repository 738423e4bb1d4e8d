package domain

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Dependency rules of the hexagon (STYLE.md 1): the core never depends on
// persistence, RPC or telemetry technology, and the domain on nothing of
// lnmux but itself.
var (
	coreForbidden = []string{
		"gorm.io",
		"connectrpc.com",
		"google.golang.org/grpc",
		"go.opentelemetry.io",
		"github.com/lightningnetwork/lnd/lnrpc",
	}
	domainForbidden = []string{
		"github.com/lnmux/lnmux/adapters",
		"github.com/lnmux/lnmux/app",
	}
)

// TestArchitecture lists the non-test dependencies of domain, ports and the
// app core package with `go list -deps` and fails on a forbidden one.
func TestArchitecture(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list; skipped in -short mode")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the architecture test runs `go list -deps` and needs the go command on PATH: %v", err)
	}
	root := moduleRoot(t, goBin)

	tests := []struct {
		pattern   string
		forbidden []string
		// optional: skip if the pattern has no package yet.
		optional bool
	}{
		{"./domain/...", append(append([]string{}, coreForbidden...), domainForbidden...), false},
		{"./ports/...", coreForbidden, false},
		{"./app", coreForbidden, true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			graph, err := listDeps(goBin, root, tt.pattern)
			if err != nil {
				if tt.optional && noPackage(err) {
					t.Skipf("%s has no Go package yet: %v", tt.pattern, err)
				}
				t.Fatalf("go list -deps %s: %v", tt.pattern, err)
			}
			if len(graph.roots) == 0 {
				t.Fatalf("go list -deps %s matched no package", tt.pattern)
			}
			for _, v := range graph.violations(tt.forbidden) {
				t.Errorf("%s must not depend on %s (forbidden prefix %q); import chain: %s",
					v.chain[0], v.pkg, v.prefix, strings.Join(v.chain, " → "))
			}
		})
	}
}

// TestArchitectureMatcher checks the rule itself on a made-up graph, so that
// a passing TestArchitecture means something.
func TestArchitectureMatcher(t *testing.T) {
	g := depGraph{
		roots: []string{"github.com/lnmux/lnmux/domain", "github.com/lnmux/lnmux/domain/sub"},
		imports: map[string][]string{
			"github.com/lnmux/lnmux/domain":     {"fmt", "github.com/x/helper"},
			"github.com/lnmux/lnmux/domain/sub": {"github.com/lnmux/lnmux/appliance"},
			"github.com/x/helper":               {"gorm.io/gorm", "google.golang.org/grpcish"},
			"gorm.io/gorm":                      {"database/sql"},
		},
	}
	got := g.violations([]string{"gorm.io", "google.golang.org/grpc", "github.com/lnmux/lnmux/app"})
	if len(got) != 1 {
		t.Fatalf("violations = %+v, want only gorm.io/gorm", got)
	}
	want := "github.com/lnmux/lnmux/domain → github.com/x/helper → gorm.io/gorm"
	if v := got[0]; v.pkg != "gorm.io/gorm" || v.prefix != "gorm.io" || strings.Join(v.chain, " → ") != want {
		t.Errorf("violation = %+v, want chain %s", v, want)
	}

	for _, tt := range []struct {
		msg  string
		want bool
	}{
		{"no Go files in /work/main/app", true},
		{"stat /work/main/app: directory not found", true},
		{"package github.com/lnmux/lnmux/app is not in std", true},
		{"cannot find package", true},
		{"app/x.go:3:8: package gorm.io/gorm is not in std", false},
		{"app/x.go:1:1: expected 'package', found 'EOF'", false},
	} {
		if got := noPackage(errors.New(tt.msg)); got != tt.want {
			t.Errorf("noPackage(%q) = %v, want %v", tt.msg, got, tt.want)
		}
	}
}

type depGraph struct {
	roots   []string            // packages matched by the pattern
	imports map[string][]string // every listed package's direct imports
}

type violation struct {
	pkg, prefix string
	chain       []string // from a root to pkg
}

// violations returns each forbidden dependency once, with the shortest
// import chain that reaches it from a root.
func (g depGraph) violations(forbidden []string) []violation {
	var out []violation
	prev := map[string]string{}
	seen := map[string]bool{}
	queue := append([]string{}, g.roots...)
	for _, r := range g.roots {
		seen[r] = true
	}
	for len(queue) > 0 {
		pkg := queue[0]
		queue = queue[1:]
		if prefix, bad := matchPrefix(pkg, forbidden); bad {
			chain := []string{pkg}
			for p, ok := prev[pkg]; ok; p, ok = prev[p] {
				chain = append([]string{p}, chain...)
			}
			out = append(out, violation{pkg: pkg, prefix: prefix, chain: chain})
			continue
		}
		for _, imp := range g.imports[pkg] {
			if !seen[imp] {
				seen[imp] = true
				prev[imp] = pkg
				queue = append(queue, imp)
			}
		}
	}
	return out
}

// matchPrefix reports whether pkg is one of the prefixes or below one of
// them, on import path boundaries ("google.golang.org/grpc" does not match
// "google.golang.org/grpcish").
func matchPrefix(pkg string, prefixes []string) (string, bool) {
	for _, p := range prefixes {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return p, true
		}
	}
	return "", false
}

// noPackage reports whether go list failed because the pattern names no Go
// package, rather than because a package is broken.
func noPackage(err error) bool {
	msg := err.Error()
	for _, s := range []string{"no Go files in", "no non-test Go files in", "directory not found", "cannot find package", "matched no packages"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	// "package github.com/lnmux/lnmux/app is not in std": the directory is
	// missing. The same words after a file position come from a bad import.
	return strings.HasPrefix(msg, "package ") && strings.Contains(msg, " is not in std")
}

func moduleRoot(t *testing.T, goBin string) string {
	t.Helper()
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == "/dev/null" {
		t.Fatal("go env GOMOD: not inside the lnmux module")
	}
	return filepath.Dir(gomod)
}

func listDeps(goBin, root, pattern string) (depGraph, error) {
	cmd := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}}\t{{.DepOnly}}\t{{join .Imports \" \"}}", pattern)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return depGraph{}, errors.New(msg)
	}
	g := depGraph{imports: map[string][]string{}}
	for line := range strings.Lines(stdout.String()) {
		fields := strings.SplitN(strings.TrimRight(line, "\n"), "\t", 3)
		if len(fields) != 3 {
			continue
		}
		g.imports[fields[0]] = strings.Fields(fields[2])
		if fields[1] == "false" {
			g.roots = append(g.roots, fields[0])
		}
	}
	return g, nil
}
