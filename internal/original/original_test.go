package original

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"gopkg.in/yaml.v3"

	"github.com/lnmux/lnmux/adapters/connectrpc/originaltest/lnmuxrpc"
)

// TestProtoFileUpToDate: the committed proto is Wire rendered.
func TestProtoFileUpToDate(t *testing.T) {
	got, err := os.ReadFile(ProtoFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != Wire.Proto() {
		t.Errorf("%s is not internal/original/wire.go rendered: run go run ./internal/original/genproto (task generate)", ProtoFile)
	}
}

// TestWireWellFormed: every name Wire refers to exists, and numbers and
// names are unique where proto3 wants them to be.
func TestWireWellFormed(t *testing.T) {
	types := map[string]bool{}
	for _, m := range Wire.Messages {
		if types[m.Name] {
			t.Errorf("type %s twice", m.Name)
		}
		types[m.Name] = true
	}
	for _, e := range Wire.Enums {
		if types[e.Name] {
			t.Errorf("type %s twice", e.Name)
		}
		types[e.Name] = true
		if len(e.Values) == 0 || e.Values[0].Number != 0 {
			t.Errorf("enum %s does not start with 0", e.Name)
		}
	}
	methods := map[string]bool{}
	for _, m := range Wire.Methods {
		if methods[m.Name] || !types[m.Request] || !types[m.Response] {
			t.Errorf("method %+v", m)
		}
		methods[m.Name] = true
	}
	for _, m := range Wire.Messages {
		nums, names := map[int32]bool{}, map[string]bool{}
		for _, f := range m.Fields {
			if nums[f.Number] || names[f.Name] || f.Number < 1 {
				t.Errorf("%s: field %+v", m.Name, f)
			}
			nums[f.Number], names[f.Name] = true, true
			switch f.Type {
			case Bytes, String, Bool, Int64, Uint64:
			default:
				if !types[f.Type] {
					t.Errorf("%s.%s: no type %s", m.Name, f.Name, f.Type)
				}
			}
		}
	}
	if got := jsonName("first_sequence_number"); got != "firstSequenceNumber" {
		t.Errorf("jsonName = %s", got)
	}
}

// buildProto compiles a proto file with the repository's pinned buf.
func buildProto(t *testing.T, file string) *descriptorpb.FileDescriptorProto {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	file, err = filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "set.binpb")
	cmd := exec.Command("go", "tool", "-modfile=deployments/tools/go.mod", "buf", "build", file, "--as-file-descriptor-set", "-o", out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("buf build %s: %v\n%s", file, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.GetFile()) != 1 {
		t.Fatalf("buf build %s: %d files, want 1 (the original imports nothing)", file, len(set.GetFile()))
	}
	return set.GetFile()[0]
}

// TestWireMatchesReference cross-checks Wire with the original's own
// lnmux.proto, when a copy of it is at hand: the same facts, nothing more
// or less on either side.
func TestWireMatchesReference(t *testing.T) {
	ref := ReferenceFile(t, "lnmux-original.proto")
	fd, err := protodesc.NewFile(buildProto(t, ref), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(Wire.Facts(), FileFacts(fd), false, nil); len(d) > 0 {
		t.Errorf("internal/original/wire.go and %s differ:\n%s", ref, strings.Join(d, "\n"))
	}
}

// TestGeneratedClientMatchesWire: the client tests compile
// (adapters/connectrpc/originaltest/lnmuxrpc, generated from ProtoFile)
// states exactly Wire, and the comparison notices each kind of change.
func TestGeneratedClientMatchesWire(t *testing.T) {
	fdp := protodesc.ToFileDescriptorProto(lnmuxrpc.File_lnmux_original_proto)
	if d := Diff(Wire.Facts(), FileFacts(lnmuxrpc.File_lnmux_original_proto), false, nil); len(d) > 0 {
		t.Fatalf("the generated client differs from Wire (task generate):\n%s", strings.Join(d, "\n"))
	}
	for name, change := range map[string]func(f *descriptorpb.FileDescriptorProto){
		"field number": func(f *descriptorpb.FileDescriptorProto) { f.MessageType[1].Field[0].Number = proto.Int32(9) },
		"field type": func(f *descriptorpb.FileDescriptorProto) {
			f.MessageType[1].Field[3].Type = descriptorpb.FieldDescriptorProto_TYPE_INT32.Enum()
		},
		"field name": func(f *descriptorpb.FileDescriptorProto) { f.MessageType[1].Field[0].Name = proto.String("pubkey") },
		"json name":  func(f *descriptorpb.FileDescriptorProto) { f.MessageType[1].Field[0].JsonName = proto.String("pk") },
		"repeated": func(f *descriptorpb.FileDescriptorProto) {
			f.MessageType[1].Field[0].Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
		},
		"enum value":  func(f *descriptorpb.FileDescriptorProto) { f.EnumType[0].Value[3].Number = proto.Int32(4) },
		"rpc stream":  func(f *descriptorpb.FileDescriptorProto) { f.Service[0].Method[0].ServerStreaming = proto.Bool(true) },
		"rpc gone":    func(f *descriptorpb.FileDescriptorProto) { f.Service[0].Method = f.Service[0].Method[1:] },
		"extra field": func(f *descriptorpb.FileDescriptorProto) { f.MessageType[0].Field = f.MessageType[1].Field[:1] },
		"message gone": func(f *descriptorpb.FileDescriptorProto) {
			f.MessageType = slices.DeleteFunc(f.MessageType, func(m *descriptorpb.DescriptorProto) bool { return m.GetName() == "NodeInfo" })
			f.MessageType[1].Field = f.MessageType[1].Field[:2]
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := proto.Clone(fdp).(*descriptorpb.FileDescriptorProto)
			change(f)
			fd, err := protodesc.NewFile(f, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := Diff(Wire.Facts(), FileFacts(fd), false, nil); len(d) == 0 {
				t.Error("no difference seen")
			}
		})
	}
}

// configKeys returns the keys set in a file of the original's shape
// (dotted, [] for list elements), and separately those only present as
// "# key: value" comments (the optional keys of its example).
func configKeys(t *testing.T, data []byte) (set, commented []string) {
	t.Helper()
	flatten := func(data []byte) []string {
		var doc any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		var keys []string
		var walk func(prefix string, v any)
		walk = func(prefix string, v any) {
			switch v := v.(type) {
			case nil:
				// An empty section (all its keys commented out).
			case map[string]any:
				for k, x := range v {
					if prefix != "" {
						k = prefix + "." + k
					}
					walk(k, x)
				}
			case []any:
				for _, x := range v {
					walk(prefix+"[]", x)
				}
			default:
				keys = append(keys, prefix)
			}
		}
		walk("", doc)
		slices.Sort(keys)
		return slices.Compact(keys)
	}
	set = flatten(data)
	uncommented := regexp.MustCompile(`(?m)^(\s*)# (\w+:)`).ReplaceAll(data, []byte("$1$2"))
	for _, k := range flatten(uncommented) {
		if !slices.Contains(set, k) {
			commented = append(commented, k)
		}
	}
	return set, commented
}

// TestExampleConfigKeys: the repository's example uses only keys of
// ConfigKeys, in both its set and its commented-out lines.
func TestExampleConfigKeys(t *testing.T) {
	set, commented := configKeys(t, ExampleConfig)
	if len(set) < 8 || len(commented) < 8 {
		t.Fatalf("example keys %v, commented %v", set, commented)
	}
	for _, k := range append(set, commented...) {
		if !slices.ContainsFunc(ConfigKeys, func(c ConfigKey) bool { return c.Path == k }) {
			t.Errorf("example key %s is not in ConfigKeys", k)
		}
	}
	if !bytes.Contains(ExampleConfig, []byte("Lightning Data/")) {
		t.Error("the example lost its paths with spaces")
	}
}

// TestExampleConfigMatchesReference cross-checks ConfigKeys and
// ExampleConfig with the original's published example, when a copy is at
// hand: every key it sets or comments out is in ConfigKeys, and our example
// sets and comments out the same keys.
func TestExampleConfigMatchesReference(t *testing.T) {
	ref := ReferenceFile(t, "lnmux-original.yml.example")
	data, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	refSet, refCommented := configKeys(t, data)
	for _, k := range append(refSet, refCommented...) {
		if !slices.ContainsFunc(ConfigKeys, func(c ConfigKey) bool { return c.Path == k }) {
			t.Errorf("%s has key %s, which ConfigKeys lacks", ref, k)
		}
	}
	set, commented := configKeys(t, ExampleConfig)
	if !slices.Equal(set, refSet) || !slices.Equal(commented, refCommented) {
		t.Errorf("example.yml sets %v and comments %v; %s sets %v and comments %v", set, commented, ref, refSet, refCommented)
	}
}
