package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// jaeger is a Jaeger all-in-one process (v1.76.0, built once by
// deployments/tools/jaeger/build.sh) with in-memory storage: lnmuxd exports
// to its OTLP/gRPC port and the tests read traces back through its query
// API, as an operator's Jaeger UI would.
type jaeger struct {
	otlp  string // host:port of the OTLP/gRPC receiver
	query string // base URL of the query API
}

const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: %[1]s
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: %[2]s
    grpc:
      endpoint: %[3]s
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[4]s
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

func startJaeger(t *testing.T) *jaeger {
	t.Helper()
	out, err := exec.Command("bash", filepath.Join("..", "..", "deployments", "tools", "jaeger", "build.sh")).Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("build jaeger (deployments/tools/jaeger/build.sh): %v\n%s", err, stderr)
	}
	bin := strings.TrimSpace(string(out))
	health, query, grpcQuery, otlp := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, health, query, grpcQuery, otlp), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "jaeger.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	j := &jaeger{otlp: otlp, query: "http://" + query}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("jaeger exited at start:\n%s", log)
		default:
		}
		res, err := http.Get("http://" + health + "/status")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("jaeger not healthy within 60s:\n%s", log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return j
}

// jTrace and jSpan are Jaeger's query API JSON (/api/traces).
type jTrace struct {
	TraceID string  `json:"traceID"`
	Spans   []jSpan `json:"spans"`
}

type jSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	StartTime int64 `json:"startTime"`
	Duration  int64 `json:"duration"`
	Tags      []struct {
		Key   string `json:"key"`
		Type  string `json:"type"`
		Value any    `json:"value"`
	} `json:"tags"`
}

// tag returns a tag's value as text ("" when absent).
func (s jSpan) tag(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			if f, ok := t.Value.(float64); ok { // JSON numbers: int64 tags
				return strconv.FormatFloat(f, 'f', -1, 64)
			}
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// parent is the span's CHILD_OF reference ("" for a root span).
func (s jSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// links are the span's FOLLOWS_FROM references (OTLP links) as trace/span.
func (s jSpan) links() []string {
	var out []string
	for _, r := range s.References {
		if r.RefType == "FOLLOWS_FROM" {
			out = append(out, r.TraceID+"/"+r.SpanID)
		}
	}
	return out
}

func (j *jaeger) get(t *testing.T, path string, q url.Values) []jTrace {
	t.Helper()
	u := j.query + path
	if q != nil {
		u += "?" + q.Encode()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("jaeger query %s: %v", path, err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		return nil
	}
	var body struct {
		Data []jTrace `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("jaeger query %s: %d %v", path, res.StatusCode, err)
	}
	return body.Data
}

// find returns the spans of service whose tags match, from every trace
// that has one, polling until ok accepts what was found (spans arrive in
// batches) or a minute passes.
func (j *jaeger) find(t *testing.T, service string, tags map[string]string, ok func([]jTrace) bool) []jTrace {
	t.Helper()
	tj, _ := json.Marshal(tags)
	q := url.Values{"service": {service}, "tags": {string(tj)}, "limit": {"100"}, "lookback": {"1h"}}
	deadline := time.Now().Add(time.Minute)
	for {
		got := j.get(t, "/api/traces", q)
		if ok(got) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(time.Second)
	}
}

// trace fetches one whole trace, polling until ok accepts it.
func (j *jaeger) trace(t *testing.T, id string, ok func(jTrace) bool) jTrace {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got := j.get(t, "/api/traces/"+id, nil)
		if len(got) == 1 && ok(got[0]) {
			return got[0]
		}
		if time.Now().After(deadline) {
			if len(got) == 1 {
				return got[0]
			}
			t.Fatalf("trace %s not in jaeger", id)
		}
		time.Sleep(time.Second)
	}
}
