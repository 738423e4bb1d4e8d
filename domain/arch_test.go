package domain

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The dependency rule of the hexagon (README, "Architecture"), as an
// allow-list: a layer may depend on the standard library and on what its
// rule names, nothing else. A new dependency is a decision, made here, in
// review, not something that arrives with a helper package.
const modulePath = "github.com/lnmux/lnmux"

// layerRule says what the non-test packages of one layer may depend on.
type layerRule struct {
	name    string
	pattern string // go list pattern of the layer's packages
	// depguard names the rule of .golangci.yml whose allow-list says what
	// the layer's own packages may import directly: one list, read by both
	// the linter and this test.
	depguard string
	// imports are the prefixes of the non-standard import paths the
	// layer's own packages may import directly (filled from depguard).
	imports []string
	// modules are the modules whose packages may appear anywhere in the
	// layer's transitive dependencies (go list -deps), so that nothing
	// arrives indirectly. lnmux's own packages are allowed only as imports.
	modules []string
}

var (
	// The domain is pure: value types and rules, no I/O. It may use pure
	// value and crypto packages; today it needs none of them.
	domainRule = layerRule{
		name:     "domain",
		pattern:  "./domain/...",
		depguard: "domain",
		modules: []string{
			"github.com/btcsuite/btcd/btcec/v2",
			"github.com/btcsuite/btcd/chaincfg/chainhash",
			"github.com/decred/dcrd/dcrec/secp256k1/v4", // btcec's curve
		},
	}
	// The ports are interfaces over domain types.
	portsRule = layerRule{
		name:     "ports",
		pattern:  "./ports/...",
		depguard: "ports",
	}
	// The settlement machine: the domain and the ports' types only.
	machineRule = layerRule{
		name:     "machine",
		pattern:  "./app/core",
		depguard: "machine",
	}
	// The core speaks BOLT 4 (onion peel, failure messages) with lnd's own
	// libraries rather than a copy of them. lnwire alone brings about 140
	// packages (btcwallet, neutrino, tor, testify …): the modules below are
	// that graph, listed so that it cannot grow unnoticed. It holds no
	// persistence, RPC or telemetry technology.
	appRule = layerRule{
		name:     "app",
		pattern:  "./app",
		depguard: "app-core",
		modules: []string{
			"github.com/aead/chacha20",
			"github.com/aead/siphash",
			"github.com/btcsuite/btcd",
			"github.com/btcsuite/btcd/btcec/v2",
			"github.com/btcsuite/btcd/btcutil",
			"github.com/btcsuite/btcd/btcutil/psbt",
			"github.com/btcsuite/btcd/chaincfg/chainhash",
			"github.com/btcsuite/btcd/v2transport",
			"github.com/btcsuite/btclog",
			"github.com/btcsuite/btclog/v2",
			"github.com/btcsuite/btcwallet",
			"github.com/btcsuite/btcwallet/wallet/txauthor",
			"github.com/btcsuite/btcwallet/wallet/txrules",
			"github.com/btcsuite/btcwallet/wallet/txsizes",
			"github.com/btcsuite/btcwallet/walletdb",
			"github.com/btcsuite/btcwallet/wtxmgr",
			"github.com/btcsuite/go-socks",
			"github.com/btcsuite/websocket",
			"github.com/davecgh/go-spew",
			"github.com/decred/dcrd/crypto/blake256",
			"github.com/decred/dcrd/dcrec/secp256k1/v4",
			"github.com/decred/dcrd/lru",
			"github.com/kkdai/bstream",
			"github.com/lightninglabs/gozmq",
			"github.com/lightninglabs/neutrino",
			"github.com/lightninglabs/neutrino/cache",
			"github.com/lightningnetwork/lightning-onion",
			"github.com/lightningnetwork/lnd",
			"github.com/lightningnetwork/lnd/clock",
			"github.com/lightningnetwork/lnd/fn/v2",
			"github.com/lightningnetwork/lnd/queue",
			"github.com/lightningnetwork/lnd/ticker",
			"github.com/lightningnetwork/lnd/tlv",
			"github.com/lightningnetwork/lnd/tor",
			"github.com/miekg/dns",
			"github.com/stretchr/objx",
			"github.com/stretchr/testify",
			"go.yaml.in/yaml/v3",
			"golang.org/x/crypto",
			"golang.org/x/exp",
			"golang.org/x/net",
			"golang.org/x/sync",
			"golang.org/x/sys",
			"golang.org/x/term",
			"pgregory.net/rapid",
		},
	}
	// Packages of the lnd module the core may reach: the wire and hop
	// codecs and what they use, never the RPC layer (lnrpc) or a database.
	forbiddenInAllowedModules = []string{
		"github.com/lightningnetwork/lnd/lnrpc",
		"github.com/lightningnetwork/lnd/channeldb",
		"github.com/lightningnetwork/lnd/kvdb",
		"github.com/lightningnetwork/lnd/sqldb",
	}
)

// TestArchitecture lists the non-test dependencies of domain, ports and the
// app core package with `go list -deps` and fails on each one its layer's
// allow-list does not name. app/lnmuxd (the composition root) and app/e2e
// (tests) may use anything.
func TestArchitecture(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list; skipped in -short mode")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the architecture test runs `go list -deps` and needs the go command on PATH: %v", err)
	}
	root := moduleRoot(t, goBin)

	lint, err := os.ReadFile(filepath.Join(root, ".golangci.yml"))
	if err != nil {
		t.Fatalf("read the depguard rules: %v", err)
	}
	for _, rule := range []layerRule{domainRule, portsRule, machineRule, appRule} {
		t.Run(rule.name, func(t *testing.T) {
			rule.imports = depguardAllow(string(lint), rule.depguard)
			if len(rule.imports) == 0 {
				t.Fatalf(".golangci.yml has no depguard rule %q with an allow-list", rule.depguard)
			}
			graph, err := listDeps(goBin, root, rule.pattern)
			if err != nil {
				t.Fatalf("go list -deps %s: %v", rule.pattern, err)
			}
			if len(graph.roots) == 0 {
				t.Fatalf("go list -deps %s matched no package", rule.pattern)
			}
			for _, v := range graph.violations(rule) {
				t.Error(v)
			}
		})
	}
}

// TestArchitectureMatcher checks the rule itself on a made-up graph, so that
// a passing TestArchitecture means something.
func TestArchitectureMatcher(t *testing.T) {
	rule := layerRule{
		name:    "core",
		imports: []string{"github.com/ok/lib", modulePath + "/domain"},
		modules: []string{"github.com/ok/lib", "github.com/ok/dep"},
	}
	pkg := func(path, module string, imports ...string) pkgInfo {
		return pkgInfo{path: path, module: module, imports: imports}
	}
	g := depGraph{
		roots: []string{modulePath + "/core", modulePath + "/core/sub"},
		pkgs: map[string]pkgInfo{
			modulePath + "/core":       pkg(modulePath+"/core", modulePath, "fmt", "github.com/ok/lib", modulePath+"/domain"),
			modulePath + "/core/sub":   pkg(modulePath+"/core/sub", modulePath, modulePath+"/adapters/x", "github.com/ok/dep/y"),
			"fmt":                      {path: "fmt", std: true},
			modulePath + "/domain":     pkg(modulePath+"/domain", modulePath),
			modulePath + "/adapters/x": pkg(modulePath+"/adapters/x", modulePath),
			"github.com/ok/lib":        pkg("github.com/ok/lib", "github.com/ok/lib", "github.com/ok/dep/y", "github.com/bad/z"),
			"github.com/ok/dep/y":      pkg("github.com/ok/dep/y", "github.com/ok/dep"),
			"github.com/bad/z":         pkg("github.com/bad/z", "github.com/bad/z"),
		},
	}
	got := g.violations(rule)
	want := []string{
		// A direct import of an allowed module is still not on the import list.
		"core: " + modulePath + "/core/sub imports github.com/ok/dep/y, which is not on core's import allow-list",
		// lnmux packages are allowed only as imports.
		"core: " + modulePath + "/core/sub imports " + modulePath + "/adapters/x, which is not on core's import allow-list",
		// An indirect dependency outside the allowed modules.
		"core: depends on github.com/bad/z (module github.com/bad/z), which is not on core's module allow-list; import chain: " +
			modulePath + "/core → github.com/ok/lib → github.com/bad/z",
	}
	var gotMsgs []string
	for _, v := range got {
		gotMsgs = append(gotMsgs, v.Error())
	}
	slices.Sort(gotMsgs)
	slices.Sort(want)
	if !slices.Equal(gotMsgs, want) {
		t.Errorf("violations:\n got  %q\n want %q", gotMsgs, want)
	}
}

type pkgInfo struct {
	path, module string
	std          bool
	imports      []string
}

type depGraph struct {
	roots []string           // packages matched by the pattern
	pkgs  map[string]pkgInfo // every listed package
}

// violations returns each import of a root that is not on the rule's
// import list, and each transitive dependency outside the rule's modules,
// with the shortest import chain that reaches it from a root.
func (g depGraph) violations(rule layerRule) []error {
	var out []error
	isRoot := map[string]bool{}
	for _, r := range g.roots {
		isRoot[r] = true
	}
	for _, r := range g.roots {
		for _, imp := range g.pkgs[r].imports {
			p := g.pkgs[imp]
			if p.std || isRoot[imp] || importAllowed(rule, imp) {
				continue
			}
			out = append(out, fmt.Errorf("%s: %s imports %s, which is not on %s's import allow-list", rule.name, r, imp, rule.name))
		}
	}

	prev := map[string]string{}
	seen := map[string]bool{}
	queue := append([]string{}, g.roots...)
	for _, r := range g.roots {
		seen[r] = true
	}
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		p := g.pkgs[path]
		if !p.std && !isRoot[path] && !allowedDep(rule, p) {
			// A direct import off the import list is reported above already.
			if !isRoot[prev[path]] || importAllowed(rule, path) {
				chain := []string{path}
				for q, ok := prev[path]; ok; q, ok = prev[q] {
					chain = append([]string{q}, chain...)
				}
				out = append(out, fmt.Errorf("%s: depends on %s (module %s), which is not on %s's module allow-list; import chain: %s",
					rule.name, path, p.module, rule.name, strings.Join(chain, " → ")))
			}
			continue
		}
		for _, imp := range p.imports {
			if !seen[imp] {
				seen[imp] = true
				prev[imp] = path
				queue = append(queue, imp)
			}
		}
	}
	return out
}

// allowedDep reports whether a non-standard package may be in the layer's
// dependency graph: lnmux's own packages only if the layer may import them,
// others if their module is allowed.
func allowedDep(rule layerRule, p pkgInfo) bool {
	if p.module == modulePath {
		return importAllowed(rule, p.path)
	}
	for _, bad := range forbiddenInAllowedModules {
		if p.path == bad || strings.HasPrefix(p.path, bad+"/") {
			return false
		}
	}
	return slices.Contains(rule.modules, p.module)
}

// importAllowed reports whether the layer may import path directly. Like
// depguard, an allow-list entry is a prefix.
func importAllowed(rule layerRule, path string) bool {
	for _, a := range rule.imports {
		if strings.HasPrefix(path, a) {
			return true
		}
	}
	return false
}

// depguardAllow returns the allow-list of depguard rule name in the text of
// .golangci.yml, without $gostd. It reads just the layout that file uses
// (rules at eight spaces, their keys at ten, list items at twelve), which
// TestDepguardAllowRead pins.
func depguardAllow(yml, name string) []string {
	var out []string
	inRule, inAllow := false, false
	for _, line := range strings.Split(yml, "\n") {
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
			continue
		case indent == 8:
			inRule, inAllow = trimmed == name+":", false
		case inRule && indent == 10:
			inAllow = trimmed == "allow:"
		case inRule && inAllow && indent == 12 && strings.HasPrefix(trimmed, "- "):
			item := strings.Trim(strings.TrimSpace(strings.TrimPrefix(trimmed, "- ")), `"'`)
			if item != "$gostd" {
				out = append(out, item)
			}
		case indent < 8:
			inRule, inAllow = false, false
		}
	}
	return out
}

// TestDepguardAllowRead pins what depguardAllow reads from the real file.
func TestDepguardAllowRead(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command")
	}
	lint, err := os.ReadFile(filepath.Join(moduleRoot(t, goBin), ".golangci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	got := depguardAllow(string(lint), "ports")
	want := []string{modulePath + "/domain", modulePath + "/ports"}
	if !slices.Equal(got, want) {
		t.Errorf("ports allow-list read as %q, want %q", got, want)
	}
	if core := depguardAllow(string(lint), "app-core"); !slices.Contains(core, "github.com/lightningnetwork/lnd/lnwire") {
		t.Errorf("app-core allow-list read as %q", core)
	}
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
	const format = "{{.ImportPath}}\t{{.Standard}}\t{{.DepOnly}}\t{{if .Module}}{{.Module.Path}}{{end}}\t{{join .Imports \" \"}}"
	cmd := exec.Command(goBin, "list", "-deps", "-f", format, pattern)
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
	// "C" (cgo) is imported by the standard library but not listed.
	g := depGraph{pkgs: map[string]pkgInfo{"C": {path: "C", std: true}}}
	for line := range strings.Lines(stdout.String()) {
		fields := strings.SplitN(strings.TrimRight(line, "\n"), "\t", 5)
		if len(fields) != 5 {
			continue
		}
		g.pkgs[fields[0]] = pkgInfo{
			path:    fields[0],
			std:     fields[1] == "true",
			module:  fields[3],
			imports: strings.Fields(fields[4]),
		}
		if fields[2] == "false" {
			g.roots = append(g.roots, fields[0])
		}
	}
	return g, nil
}
