// Command vulngate reads govulncheck's JSON stream (-format json) on stdin
// and fails when the code calls a vulnerable symbol that the accepted list
// does not name. Findings at package or module level only (the code imports
// or requires the vulnerable module but never calls the vulnerable symbol)
// are counted, not fatal. The accepted list holds one OSV id per line with
// the reason it is accepted: each entry is a decision someone has to revisit,
// so an entry that no longer matches a finding fails the gate as well.
// docs/linting.md says how findings are judged.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// message is the part of govulncheck's JSON protocol the gate reads.
type message struct {
	Config *struct {
		ScannerVersion string `json:"scanner_version"`
		DB             string `json:"db"`
		GoVersion      string `json:"go_version"`
	} `json:"config"`
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string `json:"osv"`
		FixedVersion string `json:"fixed_version"`
		Trace        []struct {
			Module   string `json:"module"`
			Version  string `json:"version"`
			Package  string `json:"package"`
			Function string `json:"function"`
			Receiver string `json:"receiver"`
			Position *struct {
				Filename string `json:"filename"`
				Line     int    `json:"line"`
			} `json:"position"`
		} `json:"trace"`
	} `json:"finding"`
}

// called is one vulnerability whose symbol the code reaches.
type called struct {
	id, summary, module, fixed, example string
}

func main() {
	acceptedPath := flag.String("accepted", "", "file of accepted OSV ids, one per line: ID reason")
	flag.Parse()
	accepted, err := readAccepted(*acceptedPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulngate:", err)
		os.Exit(2)
	}
	calls, imported, err := scan(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulngate:", err)
		os.Exit(2)
	}
	failed := false
	ids := make([]string, 0, len(calls))
	for id := range calls {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := calls[id]
		fixed := c.fixed
		if fixed == "" {
			fixed = "no fixed version"
		}
		if reason, ok := accepted[id]; ok {
			fmt.Printf("accepted %s %s (%s; fixed: %s): %s\n", id, c.module, c.summary, fixed, reason)
			continue
		}
		failed = true
		fmt.Printf("CALLED   %s %s (%s; fixed: %s)\n         e.g. %s\n", id, c.module, c.summary, fixed, c.example)
	}
	for id := range accepted {
		if _, ok := calls[id]; !ok {
			failed = true
			fmt.Printf("STALE    %s is accepted in %s but no longer called: remove the entry\n", id, *acceptedPath)
		}
	}
	fmt.Printf("vulngate: %d vulnerabilities called (%d accepted), %d more in imported or required modules but not called\n",
		len(calls), len(calls)-countUnaccepted(calls, accepted), imported)
	if failed {
		fmt.Println("vulngate: upgrade the module (go get MODULE@FIXED), or accept the finding with a reason in", *acceptedPath)
		os.Exit(1)
	}
}

func countUnaccepted(calls map[string]called, accepted map[string]string) int {
	n := 0
	for id := range calls {
		if _, ok := accepted[id]; !ok {
			n++
		}
	}
	return n
}

// scan reads the stream and returns the called vulnerabilities by id and the
// number of ids found only at package or module level.
func scan(r io.Reader) (map[string]called, int, error) {
	summaries := map[string]string{}
	calls := map[string]called{}
	other := map[string]bool{}
	dec := json.NewDecoder(bufio.NewReader(r))
	sawConfig := false
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, 0, fmt.Errorf("read govulncheck's JSON output: %w", err)
		}
		switch {
		case m.Config != nil:
			sawConfig = true
			fmt.Printf("vulngate: govulncheck %s, %s, database %s\n", m.Config.ScannerVersion, m.Config.GoVersion, m.Config.DB)
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil:
			f := m.Finding
			if len(f.Trace) == 0 || f.Trace[0].Function == "" {
				other[f.OSV] = true
				continue
			}
			if _, seen := calls[f.OSV]; seen {
				continue
			}
			vuln := f.Trace[0]
			c := called{id: f.OSV, module: vuln.Module + "@" + vuln.Version, fixed: f.FixedVersion}
			c.example = describe(f.Trace[len(f.Trace)-1].Package, f.Trace[len(f.Trace)-1].Receiver, f.Trace[len(f.Trace)-1].Function) +
				" → " + describe(vuln.Package, vuln.Receiver, vuln.Function)
			if p := f.Trace[len(f.Trace)-1].Position; p != nil {
				c.example = fmt.Sprintf("%s:%d: %s", p.Filename, p.Line, c.example)
			}
			calls[f.OSV] = c
		}
	}
	if !sawConfig {
		return nil, 0, errors.New("no govulncheck config message on stdin: did govulncheck run?")
	}
	for id, c := range calls {
		c.summary = summaries[id]
		calls[id] = c
		delete(other, id)
	}
	return calls, len(other), nil
}

func describe(pkg, recv, fn string) string {
	if recv != "" {
		return pkg + "." + strings.TrimPrefix(recv, "*") + "." + fn
	}
	return pkg + "." + fn
}

func readAccepted(path string) (map[string]string, error) {
	out := map[string]string{}
	if path == "" {
		return out, nil
	}
	b, err := os.ReadFile(path) //nolint:gosec // the path is the gate's own flag
	if err != nil {
		return nil, fmt.Errorf("read the accepted list: %w", err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, reason, _ := strings.Cut(line, " ")
		if !strings.HasPrefix(id, "GO-") || strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%s:%d: want `GO-YYYY-NNNN reason`, got %q", path, i+1, line)
		}
		out[id] = strings.TrimSpace(reason)
	}
	return out, nil
}
