package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// The yaml file. ardanlabs/conf v3.10's yaml stage is a plain
// yaml.Unmarshal (unknown keys pass in silence) and conf then applies a
// field's default whenever the field still holds its zero value ("fields
// that are not set to their zero after the yaml is parsed will have the
// defaults ignored", conf/v3/yaml), so a key set to zero cannot be told from
// an absent one. Neither is an option of the library; checkYAML reports
// both, with the key and line, before conf reads the file.

// legacyKeys points users of the original lnmux config at the new keys
// (most are translated before: config_compat.go).
var legacyKeys = map[string]string{
	"db": "the database settings moved to persistence.postgres.dsn and persistence.sqlite.path",
}

// checkYAML reports what conf's yaml stage would get wrong without a word:
// keys that match no field (a typo would be ignored) and keys set to the
// zero value of a field that has a default (conf cannot tell them from
// absent keys and would apply the default). It then decodes strictly to
// report type errors with their line.
func checkYAML(data []byte) error {
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
	w := yamlWalker{lines: map[int]string{}}
	w.walk(root, reflect.TypeFor[Config](), "")
	if len(w.errs) > 0 {
		return w.errs
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	err := dec.Decode(&c)
	var te *yaml.TypeError
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &te):
		// Name the key of each "line N: cannot unmarshal …".
		var errs configErrors
		for _, msg := range te.Errors {
			var line int
			if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil && w.lines[line] != "" {
				_, problem, _ := strings.Cut(msg, ": ")
				errs = append(errs, &configError{Key: w.lines[line], Line: line, Problem: hideQuoted(problem)})
			} else {
				errs = append(errs, errors.New("config file: "+hideQuoted(msg)))
			}
		}
		return errs
	}
	return fmt.Errorf("config file: %w", err)
}

// yamlWalker checks a yaml tree against the Config type.
type yamlWalker struct {
	errs  configErrors
	lines map[int]string // line → key path, to name the keys of decode errors
}

func (w *yamlWalker) walk(n *yaml.Node, t reflect.Type, path string) {
	errs := &w.errs
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
			w.lines[k.Line], w.lines[v.Line] = key, key
			f, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, unknownKey(key, k, fields))
				continue
			}
			if def, ok := confDefault(f); ok && !isZeroAs(f.Type, def) && v.Kind == yaml.ScalarNode && v.ShortTag() != "!!null" {
				if isZeroAs(f.Type, v.Value) {
					*errs = append(*errs, &configError{Key: key, Line: k.Line, Problem: fmt.Sprintf(
						"a zero value cannot be told from an absent key and would become the default %s; remove the key or set another value", def)})
				}
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
	if hint, ok := legacyKeys[key]; ok {
		problem += ": " + hint
	} else {
		for name := range fields {
			if strings.EqualFold(name, k.Value) {
				problem += fmt.Sprintf(" (keys are case-sensitive: did you mean %q?)", name)
			}
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
