package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// The yaml file. conf's own yaml stage (conf/v3/yaml, v3.10) is a plain
// yaml.Unmarshal into the struct before conf applies defaults, environment
// and flags; readYAML is that stage done strictly, so conf gets no parser.
// Two things conf would get wrong without a word are errors here, with the
// key and line: a key that matches no field (a typo would be ignored), and
// a key set to the zero value of a field whose default is not zero (conf
// applies a field's default whenever the field is still zero after the yaml
// stage, so that key would silently get the default).

// legacyKeys say what an old key of the wrong shape should be.
var legacyKeys = map[string]string{
	"db": "must be a section with dsn as in the original lnmux; lnmuxd's own keys are persistence.postgres.dsn and persistence.sqlite.path",
}

// readYAML decodes a yaml config file into cfg, reporting every unknown
// key, zero value for a default and type error at once, then applies the
// original lnmux's keys (compat.go).
func readYAML(data []byte, cfg *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode && root.ShortTag() != "!!null" {
		return fmt.Errorf("config file line %d: the top level must be a mapping of keys", root.Line)
	}
	w := yamlWalker{lines: map[int]string{}, keys: map[string]int{}}
	w.walk(root, reflect.TypeFor[Config](), "")
	if len(w.errs) > 0 {
		return w.errs
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(cfg)
	var te *yaml.TypeError
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return cfg.readOriginal(w.keys)
	case errors.As(err, &te):
		// Name the key of each "line N: cannot unmarshal …".
		var errs configErrors
		for _, msg := range te.Errors {
			var line int
			if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil && w.lines[line] != "" {
				key := w.lines[line]
				_, problem, _ := strings.Cut(msg, ": ")
				if problem = hideQuoted(problem); legacyKeys[key] != "" {
					problem = legacyKeys[key]
				}
				errs = append(errs, &configError{Key: key, Line: line, Problem: problem})
			} else {
				errs = append(errs, errors.New("config file: "+hideQuoted(msg)))
			}
		}
		return errs
	}
	return fmt.Errorf("config file: %w", err)
}

// quotedValue matches what yaml.v3 quotes of a scalar in a type error
// ("cannot unmarshal !!str `3f9d2c6...` into int"): the value may be a
// secret in the wrong place.
var quotedValue = regexp.MustCompile("`[^`]*`")

func hideQuoted(msg string) string {
	return quotedValue.ReplaceAllString(msg, "(value not shown)")
}

// yamlWalker checks a yaml tree against the Config type.
type yamlWalker struct {
	errs  configErrors
	lines map[int]string // line → key path, to name the keys of decode errors
	keys  map[string]int // key path (lists indexed: a[0].b) → line
}

func (w *yamlWalker) walk(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" { // merge key: its keys are checked by the strict decode
				continue
			}
			key := joinKey(path, k.Value)
			w.lines[k.Line], w.lines[v.Line], w.keys[key] = key, key, k.Line
			f, ok := fields[k.Value]
			if !ok {
				w.errs = append(w.errs, unknownKey(key, k, fields))
				continue
			}
			if def, ok := confDefault(f); ok && !isZeroAs(f.Type, def) && v.Kind == yaml.ScalarNode && v.ShortTag() != "!!null" && isZeroAs(f.Type, v.Value) {
				w.errs = append(w.errs, &configError{Key: key, Line: k.Line, Problem: fmt.Sprintf(
					"a zero value cannot be told from an absent key and would become the default %s; remove the key or set another value", def)})
			}
			w.walk(v, f.Type, key)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			key := fmt.Sprintf("%s[%d]", path, i)
			w.lines[item.Line] = key
			w.walk(item, t.Elem(), key)
		}
	}
}

func unknownKey(key string, k *yaml.Node, fields map[string]reflect.StructField) error {
	problem := "unknown key"
	for name := range fields {
		if strings.EqualFold(name, k.Value) {
			problem += fmt.Sprintf(" (keys are case-sensitive: did you mean %q?)", name)
		}
	}
	return &configError{Key: key, Line: k.Line, Problem: problem}
}

// yamlFields maps the yaml names of t's fields (as yaml.v3 derives them) to
// the fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := make(map[string]reflect.StructField)
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name)
		}
		m[name] = f
	}
	return m
}

// isZeroAs reports whether the scalar s decodes to the zero value of t.
func isZeroAs(t reflect.Type, s string) bool {
	ptr := reflect.New(t)
	return yaml.Unmarshal([]byte(s), ptr.Interface()) == nil && ptr.Elem().IsZero()
}

// confDefault returns the default of a conf-tagged field.
func confDefault(f reflect.StructField) (string, bool) {
	for part := range strings.SplitSeq(f.Tag.Get("conf"), ",") {
		if v, ok := strings.CutPrefix(part, "default:"); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
