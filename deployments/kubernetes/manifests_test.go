// Package kubernetes holds the kustomize deployment of lnmuxd; this test
// checks it without a cluster: every manifest decodes strictly into the
// Kubernetes API types, the names the manifests use of each other exist,
// and lnmuxd accepts the configuration they mount.
package kubernetes_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"
	sigsyaml "sigs.k8s.io/yaml"
)

// kustomization is the subset of kustomize's file this deployment uses;
// decoding it strictly makes a field outside the subset fail the test
// rather than be ignored by it.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Resources          []string    `json:"resources"`
	ConfigMapGenerator []generator `json:"configMapGenerator"`
	SecretGenerator    []generator `json:"secretGenerator"`
}

type generator struct {
	Name  string   `json:"name"`
	Files []string `json:"files"`
}

// keys returns the data keys of the generated object: "key=path" or the
// file's base name.
func (g generator) keys() map[string]string {
	m := map[string]string{}
	for _, f := range g.Files {
		key, path, ok := strings.Cut(f, "=")
		if !ok {
			key, path = filepath.Base(f), f
		}
		m[key] = path
	}
	return m
}

// manifests is the decoded deployment.
type manifests struct {
	k               kustomization
	configMaps      map[string]generator
	secrets         map[string]generator
	deployment      *appsv1.Deployment
	services        []*corev1.Service
	serviceAccounts map[string]*corev1.ServiceAccount
	roles           map[string]*rbacv1.Role
	roleBindings    []*rbacv1.RoleBinding
	pdbs            []*policyv1.PodDisruptionBudget
	networkPolicies []*networkingv1.NetworkPolicy
}

// strictDecoder fails on unknown and duplicate fields.
var strictDecoder = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
	kjson.SerializerOptions{Yaml: true, Strict: true})

func decodeStrict(t *testing.T, what string, doc []byte) runtime.Object {
	t.Helper()
	obj, _, err := strictDecoder.Decode(doc, nil, nil)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return obj
}

// splitYAML splits a multi-document file.
func splitYAML(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func load(t *testing.T) manifests {
	t.Helper()
	data, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := manifests{configMaps: map[string]generator{}, secrets: map[string]generator{},
		serviceAccounts: map[string]*corev1.ServiceAccount{}, roles: map[string]*rbacv1.Role{}}
	if err := sigsyaml.UnmarshalStrict(data, &m.k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if m.k.APIVersion != "kustomize.config.k8s.io/v1beta1" || m.k.Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml is %s %s, want kustomize.config.k8s.io/v1beta1 Kustomization", m.k.APIVersion, m.k.Kind)
	}
	for _, g := range m.k.ConfigMapGenerator {
		m.configMaps[g.Name] = g
	}
	for _, g := range m.k.SecretGenerator {
		m.secrets[g.Name] = g
	}
	for _, res := range m.k.Resources {
		data, err := os.ReadFile(res)
		if err != nil {
			t.Fatalf("resource %s: %v", res, err)
		}
		for i, doc := range splitYAML(data) {
			m.add(t, decodeStrict(t, fmt.Sprintf("%s document %d", res, i+1), doc))
		}
	}
	if m.deployment == nil {
		t.Fatal("no Deployment among the resources")
	}
	return m
}

func (m *manifests) add(t *testing.T, obj runtime.Object) {
	t.Helper()
	switch o := obj.(type) {
	case *appsv1.Deployment:
		if m.deployment != nil {
			t.Fatalf("two Deployments: %s and %s", m.deployment.Name, o.Name)
		}
		m.deployment = o
	case *corev1.Service:
		m.services = append(m.services, o)
	case *corev1.ServiceAccount:
		m.serviceAccounts[o.Name] = o
	case *rbacv1.Role:
		m.roles[o.Name] = o
	case *rbacv1.RoleBinding:
		m.roleBindings = append(m.roleBindings, o)
	case *policyv1.PodDisruptionBudget:
		m.pdbs = append(m.pdbs, o)
	case *networkingv1.NetworkPolicy:
		m.networkPolicies = append(m.networkPolicies, o)
	default:
		t.Fatalf("unexpected kind %T: extend the test to check it", obj)
	}
}

func (m *manifests) container(t *testing.T) *corev1.Container {
	t.Helper()
	cs := m.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("Deployment has %d containers, want 1", len(cs))
	}
	return &cs[0]
}

func TestManifestsReferenceEachOther(t *testing.T) {
	m := load(t)
	d := m.deployment
	pod := d.Spec.Template
	podLabels := labels.Set(pod.Labels)
	c := m.container(t)

	for _, o := range m.objects() {
		if ns := o.GetNamespace(); ns != m.k.Namespace {
			t.Errorf("%s has namespace %q, kustomization.yaml sets %q", o.GetName(), ns, m.k.Namespace)
		}
	}

	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("Deployment replicas %v, want at least 2 (a hot standby)", d.Spec.Replicas)
	}
	sel, err := metaSelector(d.Spec.Selector.MatchLabels)
	if err != nil || !sel.Matches(podLabels) {
		t.Errorf("Deployment selector %v does not match its pod labels %v", d.Spec.Selector.MatchLabels, pod.Labels)
	}
	if ru := d.Spec.Strategy.RollingUpdate; d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil ||
		ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("Deployment strategy %+v: want a rolling update with maxUnavailable 0", d.Spec.Strategy)
	}

	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, s := range m.services {
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
			t.Errorf("Service %s selects %v, not the pods (%v)", s.Name, s.Spec.Selector, pod.Labels)
		}
		for _, p := range s.Spec.Ports {
			if !portExists(p.TargetPort, ports) {
				t.Errorf("Service %s port %s targets %s, which the container does not expose (%v)", s.Name, p.Name, p.TargetPort.String(), ports)
			}
		}
	}

	for name, probe := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		switch {
		case probe == nil:
			t.Errorf("no %s probe", name)
		case probe.GRPC != nil:
			if !slices.Contains(slices.Collect(maps.Values(ports)), probe.GRPC.Port) {
				t.Errorf("%s probe on port %d, which the container does not expose (%v)", name, probe.GRPC.Port, ports)
			}
		case probe.HTTPGet != nil:
			if !portExists(probe.HTTPGet.Port, ports) {
				t.Errorf("%s probe on port %s, which the container does not expose", name, probe.HTTPGet.Port.String())
			}
		default:
			t.Errorf("%s probe is neither gRPC nor HTTP: %+v", name, probe.ProbeHandler)
		}
	}
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Limits.Cpu().IsZero() ||
		c.Resources.Requests.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("container resources %+v: want cpu and memory requests and limits", c.Resources)
	}

	if len(m.pdbs) != 1 {
		t.Fatalf("%d PodDisruptionBudgets, want 1", len(m.pdbs))
	}
	pdb := m.pdbs[0]
	if s, err := metaSelector(pdb.Spec.Selector.MatchLabels); err != nil || !s.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget selects %v, not the pods (%v)", pdb.Spec.Selector.MatchLabels, pod.Labels)
	}
	if mv := pdb.Spec.MinAvailable; mv == nil || mv.Type != intstr.Int || mv.IntValue() < 1 || mv.IntValue() >= int(*d.Spec.Replicas) {
		t.Errorf("PodDisruptionBudget minAvailable %v: want at least 1 and below the %d replicas, so that one pod at a time may go", mv, *d.Spec.Replicas)
	}

	// RBAC: the pods' service account is bound to the Lease role.
	sa := pod.Spec.ServiceAccountName
	if m.serviceAccounts[sa] == nil {
		t.Errorf("Deployment uses service account %q, which is not among the resources", sa)
	}
	bound := false
	for _, rb := range m.roleBindings {
		if rb.RoleRef.Kind != "Role" || m.roles[rb.RoleRef.Name] == nil {
			t.Errorf("RoleBinding %s refers to %s %q, which is not among the resources", rb.Name, rb.RoleRef.Kind, rb.RoleRef.Name)
			continue
		}
		for _, s := range rb.Subjects {
			if s.Kind == rbacv1.ServiceAccountKind && s.Name == sa && s.Namespace == m.k.Namespace {
				bound = true
			}
		}
	}
	if !bound {
		t.Errorf("no RoleBinding binds a Role to service account %s/%s", m.k.Namespace, sa)
	}

	// Volumes and secrets.
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
		switch {
		case v.ConfigMap != nil:
			if _, ok := m.configMaps[v.ConfigMap.Name]; !ok {
				t.Errorf("volume %s mounts ConfigMap %q, which no generator makes", v.Name, v.ConfigMap.Name)
			}
		case v.Secret != nil:
			if _, ok := m.secrets[v.Secret.SecretName]; !ok {
				t.Errorf("volume %s mounts Secret %q, which no generator makes", v.Name, v.Secret.SecretName)
			}
		}
	}
	for _, vm := range c.VolumeMounts {
		if _, ok := volumes[vm.Name]; !ok {
			t.Errorf("volume mount %s names no volume", vm.Name)
		}
	}
	for _, e := range c.Env {
		if ref := envSecret(e); ref != nil {
			g, ok := m.secrets[ref.Name]
			if !ok {
				t.Errorf("env %s reads Secret %q, which no generator makes", e.Name, ref.Name)
			} else if _, ok := g.keys()[ref.Key]; !ok {
				t.Errorf("env %s reads key %q of Secret %s, which has %v", e.Name, ref.Key, ref.Name, slices.Sorted(maps.Keys(g.keys())))
			}
		}
	}
	if _, err := configPath(m); err != nil {
		t.Error(err)
	}
}

// TestConfigMapHoldsNoSecret: the identity key and the DSN come from the
// Secret, never from the ConfigMap's lnmux.yml.
func TestConfigMapHoldsNoSecret(t *testing.T) {
	m := load(t)
	for _, g := range m.configMaps {
		for key, path := range g.keys() {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := yaml.Unmarshal(data, &doc); err != nil {
				t.Fatalf("ConfigMap %s key %s: %v", g.Name, key, err)
			}
			if _, ok := doc["identityKey"]; ok {
				t.Errorf("ConfigMap %s key %s sets identityKey: it belongs in the Secret", g.Name, key)
			}
			if p, ok := doc["persistence"].(map[string]any); ok {
				if pg, ok := p["postgres"].(map[string]any); ok && pg["dsn"] != nil {
					t.Errorf("ConfigMap %s key %s sets persistence.postgres.dsn: it belongs in the Secret", g.Name, key)
				}
			}
		}
	}
}

// TestRoleNamesTheConfiguredLease: the Role's resourceNames are the Lease
// lnmux.yml elects with.
func TestRoleNamesTheConfiguredLease(t *testing.T) {
	m := load(t)
	path, err := configPath(m)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		DistributedLock struct {
			Type string `yaml:"type"`
			Name string `yaml:"name"`
		} `yaml:"distributedLock"`
	}
	data, err := os.ReadFile(path.source)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.DistributedLock.Type != "kubernetes" || cfg.DistributedLock.Name == "" {
		t.Fatalf("lnmux.yml distributedLock %+v: want type kubernetes and a Lease name", cfg.DistributedLock)
	}
	var names []string
	for _, r := range m.roles {
		for _, rule := range r.Rules {
			names = append(names, rule.ResourceNames...)
		}
	}
	if len(names) == 0 || slices.ContainsFunc(names, func(n string) bool { return n != cfg.DistributedLock.Name }) {
		t.Errorf("Role resourceNames %v, want only the configured Lease %q", names, cfg.DistributedLock.Name)
	}
}

// mountedConfig is the config file the container is started with.
type mountedConfig struct {
	path   string // in the container
	source string // in this directory
}

// configPath finds the file of "--config PATH" in the container's args
// among the ConfigMap volumes' keys.
func configPath(m manifests) (mountedConfig, error) {
	c := m.deployment.Spec.Template.Spec.Containers[0]
	i := slices.Index(c.Args, "--config")
	if i < 0 || i+1 >= len(c.Args) {
		return mountedConfig{}, fmt.Errorf("container args %q: want --config PATH before the command", c.Args)
	}
	want := c.Args[i+1]
	for _, vm := range c.VolumeMounts {
		for _, v := range m.deployment.Spec.Template.Spec.Volumes {
			if v.Name != vm.Name || v.ConfigMap == nil {
				continue
			}
			for key, src := range m.configMaps[v.ConfigMap.Name].keys() {
				if filepath.Join(vm.MountPath, key) == want {
					return mountedConfig{path: want, source: src}, nil
				}
			}
		}
	}
	return mountedConfig{}, fmt.Errorf("--config %s is no key of a mounted ConfigMap", want)
}

// TestLnmuxdAcceptsTheMountedConfig runs "lnmuxd check-config" on the
// mounted lnmux.yml, in a directory laid out as the pod's volumes are
// (the ConfigMap's files, a file for each key of a mounted Secret, the
// emptyDirs), with the container's environment: the Secret's keys get test
// values, the downward API a pod's.
func TestLnmuxdAcceptsTheMountedConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds lnmuxd")
	}
	m := load(t)
	c := m.container(t)
	cfgFile, err := configPath(m)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	in := func(p string) string { return filepath.Join(root, p) }

	// The volumes.
	var mounts []string
	volumes := map[string]corev1.Volume{}
	for _, v := range m.deployment.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	for _, vm := range c.VolumeMounts {
		mounts = append(mounts, vm.MountPath)
		if err := os.MkdirAll(in(vm.MountPath), 0o700); err != nil {
			t.Fatal(err)
		}
		if s := volumes[vm.Name].Secret; s != nil {
			for key := range m.secrets[s.SecretName].keys() {
				if err := os.WriteFile(filepath.Join(in(vm.MountPath), key), []byte("test "+key), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// Paths in the file point into root instead of /.
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	var pairs []string
	for _, p := range mounts {
		pairs = append(pairs, p, in(p))
	}
	src, err := os.ReadFile(cfgFile.source)
	if err != nil {
		t.Fatal(err)
	}
	rooted := []byte(strings.NewReplacer(pairs...).Replace(string(src)))

	// The environment.
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LNMUX_") {
			env = append(env, kv)
		}
	}
	for _, e := range c.Env {
		v, err := envValue(e, m.k.Namespace)
		if err != nil {
			t.Fatal(err)
		}
		env = append(env, e.Name+"="+v)
	}

	lnmuxd := filepath.Join(root, "lnmuxd")
	build := exec.Command("go", "build", "-o", lnmuxd, "./app/lnmuxd")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./app/lnmuxd: %v\n%s", err, out)
	}
	check := func(config []byte) (string, error) {
		path := in(cfgFile.path)
		if err := os.WriteFile(path, config, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(lnmuxd, "--config", path, "check-config")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := check(rooted)
	if err != nil {
		t.Fatalf("lnmuxd check-config refused %s: %v\n%s", cfgFile.source, err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[len(lines)-1] != "OK" {
		t.Fatalf("lnmuxd check-config printed %q, want OK last", out)
	}
	for _, l := range lines[:len(lines)-1] {
		t.Errorf("lnmuxd check-config warned: %s", l)
	}
}

// testIdentityKey is a valid secp256k1 key for the Secret's identity-key.
const testIdentityKey = "5b8a2f9e4c1d7a3b6e0f8c2d5a9b1e4f7c0a3d6b9e2f5c8a1d4b7e0c3f6a9d2b"

// envValue resolves a container variable as the kubelet would, with test
// values for the Secret.
func envValue(e corev1.EnvVar, namespace string) (string, error) {
	if e.ValueFrom == nil {
		return e.Value, nil
	}
	switch vf := e.ValueFrom; {
	case vf.SecretKeyRef != nil:
		switch vf.SecretKeyRef.Key {
		case "identity-key":
			return testIdentityKey, nil
		case "postgres-dsn":
			// Never connected to: check-config opens nothing.
			return "postgres://lnmux:test@127.0.0.1:1/lnmux?sslmode=disable", nil
		}
		return "", fmt.Errorf("env %s: no test value for Secret key %s", e.Name, vf.SecretKeyRef.Key)
	case vf.FieldRef != nil:
		switch vf.FieldRef.FieldPath {
		case "metadata.name":
			return "lnmuxd-5d4f8b7c9-x2k7q", nil
		case "metadata.namespace":
			return namespace, nil
		}
		return "", fmt.Errorf("env %s: no test value for field %s", e.Name, vf.FieldRef.FieldPath)
	case vf.ResourceFieldRef != nil:
		return "1073741824", nil
	}
	return "", fmt.Errorf("env %s: unsupported valueFrom %+v", e.Name, e.ValueFrom)
}

// TestKustomizeBuild renders the deployment with kustomize (kubectl's, when
// installed) and decodes the output strictly: it checks what the test's own
// reading of kustomization.yaml cannot, the generators and kustomize's
// renaming of what refers to them.
func TestKustomizeBuild(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed: the manifests are checked by the other tests only")
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(".")); err != nil {
		t.Fatal(err)
	}
	m := load(t)
	for _, g := range m.secrets {
		for _, path := range g.keys() {
			if err := os.WriteFile(filepath.Join(dir, path), []byte("test"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	var stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, stderr.String())
	}
	generated := map[string]string{} // base name → generated name
	var deployment *appsv1.Deployment
	for i, doc := range splitYAML(out) {
		switch o := decodeStrict(t, fmt.Sprintf("rendered document %d", i+1), doc).(type) {
		case *corev1.ConfigMap:
			generated[baseName(o.Name)] = o.Name
		case *corev1.Secret:
			generated[baseName(o.Name)] = o.Name
		case *appsv1.Deployment:
			deployment = o
		}
	}
	if deployment == nil {
		t.Fatal("no Deployment rendered")
	}
	var refs []string
	for _, v := range deployment.Spec.Template.Spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			refs = append(refs, v.ConfigMap.Name)
		case v.Secret != nil:
			refs = append(refs, v.Secret.SecretName)
		}
	}
	for _, e := range deployment.Spec.Template.Spec.Containers[0].Env {
		if ref := envSecret(e); ref != nil {
			refs = append(refs, ref.Name)
		}
	}
	for _, r := range refs {
		if generated[baseName(r)] != r {
			t.Errorf("rendered Deployment refers to %q; kustomize generated %q", r, generated[baseName(r)])
		}
	}
}

// baseName drops kustomize's hash suffix.
func baseName(n string) string {
	if i := strings.LastIndex(n, "-"); i > 0 && len(n)-i == 11 {
		return n[:i]
	}
	return n
}

func (m *manifests) objects() []interface {
	GetName() string
	GetNamespace() string
} {
	var out []interface {
		GetName() string
		GetNamespace() string
	}
	out = append(out, m.deployment)
	for _, s := range m.services {
		out = append(out, s)
	}
	for _, s := range m.serviceAccounts {
		out = append(out, s)
	}
	for _, r := range m.roles {
		out = append(out, r)
	}
	for _, r := range m.roleBindings {
		out = append(out, r)
	}
	for _, p := range m.pdbs {
		out = append(out, p)
	}
	for _, p := range m.networkPolicies {
		out = append(out, p)
	}
	return out
}

func envSecret(e corev1.EnvVar) *corev1.SecretKeySelector {
	if e.ValueFrom == nil {
		return nil
	}
	return e.ValueFrom.SecretKeyRef
}

func portExists(p intstr.IntOrString, ports map[string]int32) bool {
	if p.Type == intstr.String {
		_, ok := ports[p.StrVal]
		return ok
	}
	return slices.Contains(slices.Collect(maps.Values(ports)), p.IntVal)
}

func metaSelector(match map[string]string) (labels.Selector, error) {
	if len(match) == 0 {
		return nil, errors.New("empty selector")
	}
	return labels.SelectorFromSet(match), nil
}
