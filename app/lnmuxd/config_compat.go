package main

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// The original lnmux (bottlepay/lnmux) reads an lnmux.yml of its own shape.
// An operator switches by replacing the binary, so lnmuxd reads that file
// too: each original key lnmuxd does not know under that name is either
// moved to the key that replaces it (honoured) or dropped with one warning
// that says what replaces it. Anything else unknown stays an error, as for
// every file. docs/compatibility.md lists the keys.

// originalDefaultListen is where the original lnmux listened without
// listenAddress; its clients are configured for it.
const originalDefaultListen = "localhost:19090"

// originalKey is a key of the original lnmux.yml. Paths use "[]" for every
// element of a list (lnd.nodes[].priority).
type originalKey struct {
	path string
	// moveTo, when set, is the key that now holds the value (honoured).
	moveTo string
	// value, when set, translates a scalar value; it returns the new value
	// and a warning ("" if the value means the same here).
	value func(string) (string, string)
	// ignored, when moveTo is empty, says why the key has no effect and
	// what replaces it.
	ignored string
}

var originalKeys = []originalKey{
	{path: "db.dsn", moveTo: "persistence.postgres.dsn"},
	{path: "db.poolSize", ignored: "lnmuxd sizes its Postgres pool itself (at most 10 connections: only settlements write)"},
	{path: "db.minIdleConns", ignored: "lnmuxd sizes its Postgres pool itself"},
	{path: "db.maxConnAge", ignored: "lnmuxd manages its Postgres connections itself"},
	{path: "db.poolTimeout", ignored: "every database call is bounded by lnmuxd's own timeouts"},
	{path: "db.idleTimeout", ignored: "lnmuxd manages its Postgres connections itself"},
	{path: "lnd.timeout", ignored: "lnmuxd bounds each lnd call itself and reconnects with backoff"},
	{path: "lnd.nodes[].priority", ignored: "every node is in each invoice's route hints and the payer picks; there is no preference"},
	// instrumentationAddress is honoured as soon as the Config has it (the
	// instrumentation listener); until then /metrics is on listenAddress.
	{path: "instrumentationAddress", ignored: "this build serves /metrics on listenAddress"},
	{path: "logging.format", value: originalLogFormat},
	{path: "logging.level", value: originalLogLevel},
	{path: "logging.grpcLogging", ignored: "every API call is an OpenTelemetry span (telemetry.otlpEndpoint) and failures are logged"},
	{path: "logging.grpcPayloadLogging", ignored: "payloads are never logged: they carry preimages"},
	// distributedLock.{namespace,name,id,devKubeConfig} are read under the
	// same names; the Lease is used with distributedLock.type kubernetes.
}

// originalLogFormat maps the original's zap encodings: "console" is the
// human-readable one, text here.
func originalLogFormat(v string) (string, string) {
	if strings.EqualFold(strings.TrimSpace(v), "console") {
		return "text", ""
	}
	return v, ""
}

// originalLogLevel maps zap's levels above error, which slog lacks.
func originalLogLevel(v string) (string, string) {
	switch l := strings.ToLower(strings.TrimSpace(v)); l {
	case "dpanic", "panic", "fatal":
		return "error", fmt.Sprintf("level %q is logged as error", l)
	}
	return v, ""
}

// compatWarning is one original key lnmuxd reads differently, logged once
// at start.
type compatWarning struct {
	Key     string
	Line    int
	Message string
}

// translateOriginal rewrites the original lnmux's keys in a yaml config
// file into lnmuxd's and returns the rewritten file with a warning per key
// that is not honoured as written. A file without original keys comes back
// unchanged.
func translateOriginal(data []byte) ([]byte, []compatWarning, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return data, nil, nil // checkYAML reports what is wrong
	}
	root := doc.Content[0]
	if yamlGet(root, "db") == nil && !hasOriginalKeys(root) {
		return data, nil, nil
	}
	var warns []compatWarning
	var errs configErrors
	changed := false
	for _, k := range originalKeys {
		if configHasKey(k.path) && k.moveTo == "" && k.value == nil {
			continue // this build honours it under the same name
		}
		for _, m := range yamlFind(root, k.path) {
			changed = true
			switch {
			case k.moveTo != "":
				if yamlGetPath(root, k.moveTo) != nil {
					errs = append(errs, &configError{Key: m.path, Line: m.key.Line, Problem: "is the original lnmux's name of " + k.moveTo + ", which is set too: keep one"})
					continue
				}
				yamlDelete(m.parent, m.key.Value)
				yamlSetPath(root, k.moveTo, m.value)
			case k.value != nil:
				if m.value.Kind != yaml.ScalarNode {
					continue // checkYAML reports the type
				}
				v, warn := k.value(m.value.Value)
				m.value.Value = v
				if warn != "" {
					warns = append(warns, compatWarning{Key: m.path, Line: m.key.Line, Message: warn})
				}
			default:
				yamlDelete(m.parent, m.key.Value)
				warns = append(warns, compatWarning{Key: m.path, Line: m.key.Line, Message: "ignored: " + k.ignored})
			}
		}
	}
	// What is left of the original's db section is unknown.
	if db := yamlGet(root, "db"); db != nil {
		if db.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(db.Content); i += 2 {
				k := db.Content[i]
				errs = append(errs, &configError{Key: "db." + k.Value, Line: k.Line, Problem: "unknown key"})
			}
		}
		if len(errs) == 0 && (db.Kind == yaml.MappingNode || db.ShortTag() == "!!null") {
			yamlDelete(root, "db")
		}
	}
	if len(errs) > 0 {
		return nil, nil, errs
	}
	// The original listened on another port by default: keep its clients
	// working unless the file says where to listen.
	if yamlGet(root, "listenAddress") == nil {
		yamlSetPath(root, "listenAddress", &yaml.Node{Kind: yaml.ScalarNode, Value: originalDefaultListen})
		warns = append(warns, compatWarning{Key: "listenAddress", Message: "not set in an original lnmux config: listening on the original's default " +
			originalDefaultListen + " instead of lnmuxd's localhost:9190; set listenAddress to choose"})
		changed = true
	}
	if !changed {
		return data, warns, nil
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, nil, fmt.Errorf("config file: %w", err)
	}
	return out, warns, nil
}

// hasOriginalKeys reports whether the file uses a key only the original
// lnmux knows, which marks it as an original config.
func hasOriginalKeys(root *yaml.Node) bool {
	for _, k := range originalKeys {
		if k.moveTo == "" && k.value == nil && !configHasKey(k.path) && len(yamlFind(root, k.path)) > 0 {
			return true
		}
	}
	return false
}

// configHasKey reports whether the Config has the yaml key path.
func configHasKey(path string) bool {
	t := reflect.TypeFor[Config]()
	for part := range strings.SplitSeq(path, ".") {
		name, list := strings.CutSuffix(part, "[]")
		f, ok := yamlFields(t)[name]
		if !ok {
			return false
		}
		t = f.Type
		if list {
			if t.Kind() != reflect.Slice {
				return false
			}
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return true
		}
	}
	return true
}

// yamlMatch is one occurrence of a key in the tree.
type yamlMatch struct {
	path       string // with list indices, for messages
	parent     *yaml.Node
	key, value *yaml.Node
}

// yamlFind returns every occurrence of path ("a.b", "a[].b") under n.
func yamlFind(n *yaml.Node, path string) []yamlMatch {
	return yamlFindIn(n, strings.Split(path, "."), "")
}

func yamlFindIn(n *yaml.Node, parts []string, prefix string) []yamlMatch {
	name, list := strings.CutSuffix(parts[0], "[]")
	k, v := yamlGetKV(n, name)
	if v == nil {
		return nil
	}
	key := joinKey(prefix, name)
	if len(parts) == 1 {
		return []yamlMatch{{path: key, parent: n, key: k, value: v}}
	}
	if !list {
		return yamlFindIn(v, parts[1:], key)
	}
	if v.Kind != yaml.SequenceNode {
		return nil
	}
	var out []yamlMatch
	for i, item := range v.Content {
		out = append(out, yamlFindIn(item, parts[1:], fmt.Sprintf("%s[%d]", key, i))...)
	}
	return out
}

func yamlGetKV(n *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

func yamlGet(n *yaml.Node, key string) *yaml.Node {
	_, v := yamlGetKV(n, key)
	return v
}

func yamlGetPath(n *yaml.Node, path string) *yaml.Node {
	for part := range strings.SplitSeq(path, ".") {
		if n = yamlGet(n, part); n == nil {
			return nil
		}
	}
	return n
}

func yamlDelete(n *yaml.Node, key string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content = slices.Delete(n.Content, i, i+2)
			return
		}
	}
}

// yamlSetPath sets path to v, creating the mappings on the way (and
// replacing a null section such as "logging:" with only comments).
func yamlSetPath(n *yaml.Node, path string, v *yaml.Node) {
	parts := strings.Split(path, ".")
	for _, part := range parts[:len(parts)-1] {
		next := yamlGet(n, part)
		if next == nil || next.Kind != yaml.MappingNode {
			yamlDelete(n, part)
			next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: part}, next)
		}
		n = next
	}
	yamlDelete(n, parts[len(parts)-1])
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: parts[len(parts)-1]}, v)
}
