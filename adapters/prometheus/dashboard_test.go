package prometheus

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/lnmux/lnmux/domain"
	"github.com/lnmux/lnmux/ports"
)

var deployDir = filepath.Join("..", "..", "deployments", "docker")

// metricName matches lnmux's metric names in PromQL.
var metricName = regexp.MustCompile(`\blnmux_[a-z0-9_]+\b`)

// TestDashboardQueriesExistingMetrics reads every PromQL expression of the
// Grafana dashboard and checks that each lnmux_ metric it names is on
// /metrics (histograms by their _bucket/_count/_sum series), so a renamed
// metric cannot leave an empty panel behind.
func TestDashboardQueriesExistingMetrics(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(deployDir, "grafana", "dashboards", "lnmux.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}

	// A scrape with every series present: gauges need stats and a node,
	// labelled counters a value, the RPC histogram a call.
	m := New()
	m.SetStats(func() ports.Stats {
		return ports.Stats{Nodes: []ports.NodeStatus{{Node: domain.NodeKey{2}, Connected: true}}}
	})
	m.HTLCResolved(ports.ActionFail, domain.FailMPPTimeout)
	m.InvoiceFinal(domain.StatusSettled, false)
	api := m.InstrumentRPC(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	api.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/lnmux.Service/AddInvoice", nil))
	exported := map[string]bool{}
	for _, line := range strings.Split(scrape(t, m), "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			exported[strings.Fields(name)[0]] = true
		}
	}

	queried := 0
	for _, p := range dash.Panels {
		if p.Datasource.UID != "prometheus" {
			t.Errorf("panel %q: datasource %q, want the provisioned uid prometheus", p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			names := metricName.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no lnmux metric", p.Title, tg.Expr)
			}
			for _, n := range names {
				queried++
				base := n
				for _, suf := range []string{"_bucket", "_count", "_sum"} {
					if b, ok := strings.CutSuffix(n, suf); ok && exported[b] {
						base = b
					}
				}
				if !exported[base] {
					t.Errorf("panel %q queries %s, which /metrics does not export", p.Title, n)
				}
			}
		}
	}
	if queried == 0 {
		t.Fatal("the dashboard queries nothing")
	}
	// Every lnmux metric is on the dashboard, so a new one is not forgotten.
	for name := range exported {
		if strings.HasPrefix(name, "lnmux_") && !strings.Contains(string(data), name) {
			t.Errorf("metric %s is on no dashboard panel", name)
		}
	}
}

// TestDeploymentFilesParse checks the compose stack and Grafana's
// provisioning: they are not run in CI (no Docker engine), so a typo would
// otherwise surface only on an operator's machine.
func TestDeploymentFilesParse(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Image   string   `yaml:"image"`
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	readYAML(t, filepath.Join(deployDir, "compose.yaml"), &compose)
	for _, s := range []string{"postgres", "tempo", "prometheus", "grafana", "lnmuxd"} {
		if _, ok := compose.Services[s]; !ok {
			t.Errorf("compose.yaml lacks service %s", s)
		}
	}
	// Every file the stack mounts exists.
	for name, s := range compose.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if !strings.HasPrefix(src, "./") || src == "./config" {
				continue // the operator's own configuration
			}
			if _, err := os.Stat(filepath.Join(deployDir, src)); err != nil {
				t.Errorf("service %s mounts %s: %v", name, src, err)
			}
		}
	}

	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, URL string
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(deployDir, "grafana", "provisioning", "datasources", "datasources.yaml"), &ds)
	types := map[string]string{}
	for _, d := range ds.Datasources {
		types[d.Type] = d.UID
		if d.URL == "" {
			t.Errorf("data source %s has no url", d.Name)
		}
	}
	if ds.APIVersion != 1 || types["tempo"] == "" || types["prometheus"] != "prometheus" {
		t.Errorf("data sources: %+v", ds)
	}

	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(deployDir, "grafana", "provisioning", "dashboards", "dashboards.yaml"), &prov)
	if prov.APIVersion != 1 || len(prov.Providers) != 1 || prov.Providers[0].Options.Path != "/var/lib/grafana/dashboards" {
		t.Errorf("dashboard provider: %+v", prov)
	}

	var prom struct {
		ScrapeConfigs []struct {
			MetricsPath string `yaml:"metrics_path"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, filepath.Join(deployDir, "prometheus.yaml"), &prom)
	if len(prom.ScrapeConfigs) == 0 || prom.ScrapeConfigs[0].MetricsPath != "/metrics" {
		t.Errorf("prometheus.yaml: %+v", prom)
	}
	var tempo map[string]any
	readYAML(t, filepath.Join(deployDir, "tempo.yaml"), &tempo)
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Errorf("%s: %v", path, err)
	}
}
