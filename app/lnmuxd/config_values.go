package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
		// conf keeps the field, type and value unexported, and its
		// message quotes the value, its parser's error often again
		// (conf v3.10 checked; the test fails if a later version moves
		// them).
		v := reflect.ValueOf(fe).Elem()
		name, typ, value := v.FieldByName("fieldName"), v.FieldByName("typeName"), v.FieldByName("value")
		if name.Kind() != reflect.String || typ.Kind() != reflect.String || value.Kind() != reflect.String {
			return errors.New("a setting has a value that cannot be read (not shown: it may be a secret)")
		}
		problem := fmt.Sprintf("the value given (flag, environment or file) is not a valid %s", typeWord(typ.String()))
		prefix := fmt.Sprintf("conf: error assigning to field %s: converting '%s' to type %s. details: ", name, value, typ)
		if details, ok := strings.CutPrefix(fe.Error(), prefix); ok && value.String() != "" {
			// Quoted as the parsers quote it; bare only when long enough
			// not to match ordinary words of the message.
			for _, form := range []string{value.String(), strings.TrimSpace(value.String())} {
				details = strings.ReplaceAll(details, strconv.Quote(form), `"`+masked+`"`)
				details = strings.ReplaceAll(details, "'"+form+"'", "'"+masked+"'")
				if len(form) >= 6 {
					details = strings.ReplaceAll(details, form, masked)
				}
			}
			problem += " (" + details + ")"
		}
		return &configError{Key: settingKeys(name.String(), args), Problem: problem + "; the value is not shown, as it may be a secret"}
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
// (conf names a field by that alone). When several have it, those given by
// a flag in args or by an environment variable are kept, and named "a or
// b" if still more than one.
func settingKeys(name string, args []string) string {
	var keys []string
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for key, f := range yamlFields(t) {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if f.Name == name {
				keys = append(keys, joinKey(path, key))
			} else if ft.Kind() == reflect.Struct && f.Tag.Get("conf") != "-" {
				walk(ft, joinKey(path, key))
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	if len(keys) == 0 {
		return name
	}
	if len(keys) > 1 {
		var given []string
		for _, k := range keys {
			flag := keyFlag(k)
			env := envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
			if _, set := os.LookupEnv(env); set || slices.ContainsFunc(args, func(a string) bool {
				a = strings.TrimLeft(a, "-")
				return a == flag || strings.HasPrefix(a, flag+"=")
			}) {
				given = append(given, k)
			}
		}
		if len(given) > 0 {
			keys = given
		}
	}
	slices.Sort(keys)
	return strings.Join(keys, " or ")
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
func typeWord(typ string) string {
	switch typ {
	case "time.Duration":
		return "duration (like 30s or 5m)"
	case "main.Toggle", "bool":
		return "bool (true or false)"
	case "[]main.NodeConfig":
		return "list of nodes"
	case "float32", "float64":
		return "number"
	case "int", "int32", "int64", "uint", "uint32", "uint64", "uint16", "int16":
		return "integer"
	}
	return typ
}

// quotedValue matches what yaml.v3 quotes of a scalar in a type error
// ("cannot unmarshal !!str `3f9d2c6...` into int").
var quotedValue = regexp.MustCompile("`[^`]*`")

// hideQuoted removes quoted values from a yaml decode message.
func hideQuoted(msg string) string {
	return quotedValue.ReplaceAllString(msg, "(value not shown)")
}
