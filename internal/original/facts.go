package original

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Facts are the wire facts of an API, keyed by what they are about
// ("field lnmux.Invoice 3") with what they say ("amount_msat uint64
// json=amountMsat"), so that two descriptions of an API compare as maps.
type Facts map[string]string

// Facts returns c's wire facts.
func (c Contract) Facts() Facts {
	f := Facts{
		"syntax":  "proto3",
		"package": c.Package,
	}
	full := func(name string) string { return c.Package + "." + name }
	svc := full(c.Service)
	f["service "+svc] = ""
	for _, m := range c.Methods {
		f["rpc "+svc+"."+m.Name] = rpcFact(full(m.Request), full(m.Response), false, m.ServerStream)
	}
	for _, e := range c.Enums {
		f["enum "+full(e.Name)] = ""
		for _, v := range e.Values {
			f[fmt.Sprintf("enum value %s %d", full(e.Name), v.Number)] = v.Name
		}
	}
	for _, m := range c.Messages {
		f["message "+full(m.Name)] = ""
		for _, x := range m.Fields {
			typ := x.Type
			switch typ {
			case Bytes, String, Bool, Int64, Uint64:
			default:
				typ = full(typ)
			}
			f[fmt.Sprintf("field %s %d", full(m.Name), x.Number)] = fieldFact(x.Name, typ, x.Repeated, jsonName(x.Name), "")
		}
	}
	return f
}

// FileFacts returns the wire facts of a compiled proto file: everything
// Contract.Facts states, and whatever else the file has that a Contract
// cannot say (more services, nested types, oneofs, proto3 optional, custom
// JSON names), so that a comparison sees it.
func FileFacts(fd protoreflect.FileDescriptor) Facts {
	f := Facts{
		"syntax":  fd.Syntax().String(),
		"package": string(fd.Package()),
	}
	for i := range fd.Services().Len() {
		s := fd.Services().Get(i)
		f["service "+string(s.FullName())] = ""
		for j := range s.Methods().Len() {
			m := s.Methods().Get(j)
			f["rpc "+string(m.FullName())] = rpcFact(string(m.Input().FullName()), string(m.Output().FullName()), m.IsStreamingClient(), m.IsStreamingServer())
		}
	}
	addEnums(f, fd.Enums())
	addMessages(f, fd.Messages())
	for i := range fd.Extensions().Len() {
		f["extension "+string(fd.Extensions().Get(i).FullName())] = ""
	}
	return f
}

func addEnums(f Facts, es protoreflect.EnumDescriptors) {
	for i := range es.Len() {
		e := es.Get(i)
		f["enum "+string(e.FullName())] = ""
		for j := range e.Values().Len() {
			v := e.Values().Get(j)
			f[fmt.Sprintf("enum value %s %d", e.FullName(), v.Number())] = string(v.Name())
		}
	}
}

func addMessages(f Facts, ms protoreflect.MessageDescriptors) {
	for i := range ms.Len() {
		m := ms.Get(i)
		f["message "+string(m.FullName())] = ""
		for j := range m.Fields().Len() {
			x := m.Fields().Get(j)
			typ := x.Kind().String()
			switch x.Kind() {
			case protoreflect.MessageKind, protoreflect.GroupKind:
				typ = string(x.Message().FullName())
			case protoreflect.EnumKind:
				typ = string(x.Enum().FullName())
			default:
			}
			var extra string
			if o := x.ContainingOneof(); o != nil {
				extra = " oneof=" + string(o.Name())
			}
			if x.HasOptionalKeyword() {
				extra += " optional"
			}
			f[fmt.Sprintf("field %s %d", m.FullName(), x.Number())] = fieldFact(string(x.Name()), typ, x.Cardinality() == protoreflect.Repeated, x.JSONName(), extra)
		}
		addEnums(f, m.Enums())
		addMessages(f, m.Messages())
		for j := range m.Extensions().Len() {
			f["extension "+string(m.Extensions().Get(j).FullName())] = ""
		}
	}
}

func rpcFact(req, resp string, clientStream, serverStream bool) string {
	s := req + " -> " + resp
	if clientStream {
		s += " client-stream"
	}
	if serverStream {
		s += " server-stream"
	}
	return s
}

func fieldFact(name, typ string, repeated bool, json, extra string) string {
	s := name + " " + typ + " json=" + json + extra
	if repeated {
		s = "repeated " + s
	}
	return s
}

// jsonName is proto3's default JSON name: underscores dropped, the letter
// after each one upper-cased.
func jsonName(name string) string {
	var b strings.Builder
	up := false
	for _, r := range name {
		switch {
		case r == '_':
			up = true
		case up && 'a' <= r && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
			up = false
		default:
			b.WriteRune(r)
			up = false
		}
	}
	return b.String()
}

// Diff lists, sorted, how got differs from want. With subset, facts got
// has beyond want are no difference (an API that only adds to want). A
// fact of both that differs is reported unless allow (when not nil)
// accepts it.
func Diff(want, got Facts, subset bool, allow func(key, want, got string) bool) []string {
	var out []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("missing %s: %s", k, w))
		case g != w && (allow == nil || !allow(k, w, g)):
			out = append(out, fmt.Sprintf("%s: got %q, want %q", k, g, w))
		}
	}
	if !subset {
		for k, g := range got {
			if _, ok := want[k]; !ok {
				out = append(out, fmt.Sprintf("extra %s: %s", k, g))
			}
		}
	}
	slices.Sort(out)
	return out
}
