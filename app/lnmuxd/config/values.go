package config

import (
	"errors"
	"fmt"
	"go/token"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/ardanlabs/conf/v3"
)

// A value that cannot be read is never quoted in an error: it may be a
// secret given to the wrong setting (an identity key pasted after
// --api-max-streams=). The errors name the setting instead. The secrets
// of the configuration are only known once it has been read, so the usual
// scrubbing (redactError) cannot apply here.

// hideBadValue rewrites an error of conf's parse without the value it
// quotes. args is the command line, to tell apart settings of the same Go
// name.
func hideBadValue(err error, args []string) error {
	if fe, ok := errors.AsType[*conf.FieldError](err); ok {
		// conf names the field by its Go name only, and quotes the value
		// after it (v3.10: "conf: error assigning to field NAME: converting
		// 'VALUE' to type …"); keep the name, drop the rest.
		rest, _ := strings.CutPrefix(fe.Error(), "conf: error assigning to field ")
		name, _, _ := strings.Cut(rest, ":")
		if !token.IsIdentifier(name) {
			return errors.New("a setting has a value that cannot be read (not shown: it may be a secret)")
		}
		keys, typ := settingKeys(name, args)
		return &configError{Key: keys, Problem: "the value given (flag or environment) is not a valid " + typeWord(typ) +
			"; the value is not shown, as it may be a secret"}
	}
	msg := err.Error()
	if i := strings.Index(msg, "bad flag syntax: "); i >= 0 {
		flag, _, hasValue := strings.Cut(msg[i+len("bad flag syntax: "):], "=")
		if hasValue {
			flag += "=" + masked
		}
		return fmt.Errorf("bad flag syntax: %s", flag)
	}
	return err
}

// settingKeys returns the key of the Config field with the Go name name
// (conf names a field by that alone), and its type. When several have it,
// those given by a flag in args or by an environment variable are kept,
// and named "a or b" if still more than one.
func settingKeys(name string, args []string) (string, reflect.Type) {
	fields := map[string]reflect.Type{}
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for key, f := range yamlFields(t) {
			if f.Tag.Get("conf") == "-" {
				continue
			}
			if f.Name == name {
				fields[joinKey(path, key)] = f.Type
			} else if f.Type.Kind() == reflect.Struct {
				walk(f.Type, joinKey(path, key))
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	keys := slices.Sorted(maps.Keys(fields))
	if len(keys) == 0 {
		return name, nil
	}
	if given := slices.DeleteFunc(slices.Clone(keys), func(k string) bool {
		flag := keyFlag(k)
		env := envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
		_, set := os.LookupEnv(env)
		return !set && !slices.ContainsFunc(args, func(a string) bool {
			a = strings.TrimLeft(a, "-")
			return a == flag || strings.HasPrefix(a, flag+"=")
		})
	}); len(given) > 0 {
		keys = given
	}
	return strings.Join(keys, " or "), fields[keys[0]]
}

// keyFlag is the flag of a key as conf derives it: api.maxStreams →
// api-max-streams.
func keyFlag(key string) string {
	var b strings.Builder
	for i, r := range key {
		switch {
		case r == '.':
			b.WriteByte('-')
		case unicode.IsUpper(r):
			if i > 0 && key[i-1] != '.' && !unicode.IsUpper(rune(key[i-1])) {
				b.WriteByte('-')
			}
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// typeWord describes a field type for an operator.
func typeWord(t reflect.Type) string {
	switch t {
	case nil:
		return "value"
	case reflect.TypeFor[Toggle]():
		return "bool (true or false)"
	case reflect.TypeFor[[]NodeConfig]():
		return "list of nodes, each pubKey@host:port,macaroonPath,tlsCertPath (separated by semicolons)"
	case reflect.TypeFor[time.Duration]():
		return "duration (like 30s or 5m)"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "bool (true or false)"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Int, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	default:
		return t.String()
	}
}
