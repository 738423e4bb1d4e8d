package kubernetes_test

import (
	"net"
	"os"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestInstrumentationPortGuarded: the instrumentation port (metrics,
// pprof, health) needs no macaroon. When lnmux.yml binds it beyond
// loopback, a NetworkPolicy must select the pods for ingress, let no one
// but named sources reach that port, and still let the API port in.
func TestInstrumentationPortGuarded(t *testing.T) {
	m := load(t)
	cfgFile, err := configPath(m)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(cfgFile.source)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		InstrumentationAddress string `yaml:"instrumentationAddress"`
	}
	if err := yaml.Unmarshal(src, &cfg); err != nil {
		t.Fatal(err)
	}
	host, portText, err := net.SplitHostPort(cfg.InstrumentationAddress)
	if err != nil {
		t.Fatalf("instrumentationAddress %q: %v", cfg.InstrumentationAddress, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return // nothing outside the pod reaches it
	}
	c := m.container(t)
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	instr, api := ports["metrics"], ports["api"]
	if portText != "2112" || instr != 2112 || api == 0 {
		t.Fatalf("instrumentationAddress %s, container ports %v: want the metrics port 2112 and an api port", cfg.InstrumentationAddress, ports)
	}
	opens := func(r networkingv1.NetworkPolicyIngressRule, port int32) bool {
		if len(r.Ports) == 0 {
			return true
		}
		return slices.ContainsFunc(r.Ports, func(p networkingv1.NetworkPolicyPort) bool {
			if p.Port == nil {
				return true
			}
			if p.Port.StrVal != "" {
				return ports[p.Port.StrVal] == port
			}
			return p.Port.IntVal == port
		})
	}
	podLabels := labels.Set(m.deployment.Spec.Template.Labels)
	var guarding, apiOpen, scrapers bool
	for _, np := range m.networkPolicies {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			t.Fatalf("NetworkPolicy %s: %v", np.Name, err)
		}
		if !sel.Matches(podLabels) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			continue
		}
		guarding = true
		for i, r := range np.Spec.Ingress {
			if opens(r, instr) {
				if len(r.From) == 0 {
					t.Errorf("NetworkPolicy %s ingress[%d] opens the instrumentation port %d to every source", np.Name, i, instr)
				} else {
					scrapers = true
				}
			}
			if opens(r, api) {
				apiOpen = true
			}
		}
	}
	if !guarding {
		t.Fatalf("instrumentationAddress %s is not loopback, and no NetworkPolicy restricts ingress to the pods %v", cfg.InstrumentationAddress, podLabels)
	}
	if !apiOpen {
		t.Errorf("no NetworkPolicy rule lets the API port %d in: the Service would reach nothing", api)
	}
	if !scrapers {
		t.Errorf("no NetworkPolicy rule lets Prometheus reach the instrumentation port %d", instr)
	}
}
