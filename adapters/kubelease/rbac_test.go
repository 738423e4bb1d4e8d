package kubelease_test

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	sigsyaml "sigs.k8s.io/yaml"
)

// roleFile is the Role the Kubernetes deployment grants lnmuxd.
const roleFile = "../../deployments/kubernetes/role.yaml"

// permission is one RBAC grant: a verb on a resource, for one name or ""
// for any.
type permission struct {
	group, resource, verb, name string
}

func (p permission) String() string {
	return fmt.Sprintf("%s %s.%s %q", p.verb, p.resource, p.group, p.name)
}

// TestRoleGrantsExactlyWhatTheElectorUses runs a whole election on the fake
// clientset (first start creates the Lease, the holder renews, a standby
// watches, the holder releases, the standby takes over, a candidate gives
// up) and compares the calls it recorded with the Role of
// deployments/kubernetes: every call must be granted, and every grant used.
func TestRoleGrantsExactlyWhatTheElectorUses(t *testing.T) {
	client := fake.NewClientset()
	a := waitAcquired(t, "a", acquireAsync(t, newElector(t, longLease("a"), client)))
	second := acquireAsync(t, newElector(t, longLease("b"), client))
	waitRenewals(t, client, 2)
	a.release()
	waitAcquired(t, "b", second)
	used := map[permission]bool{}
	for _, act := range client.Actions() {
		p := permission{group: act.GetResource().Group, resource: act.GetResource().Resource, verb: act.GetVerb()}
		if act.GetSubresource() != "" {
			p.resource += "/" + act.GetSubresource()
		}
		switch a := act.(type) {
		case k8stesting.GetAction:
			p.name = a.GetName()
		case k8stesting.UpdateAction:
			p.name = nameOf(t, a.GetObject())
		}
		used[p] = true
	}

	var calls []string
	for p := range used {
		calls = append(calls, p.String())
	}
	sort.Strings(calls)
	t.Logf("calls of the elector: %v", calls)

	data, err := os.ReadFile(roleFile)
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.Role
	if err := sigsyaml.UnmarshalStrict(data, &role); err != nil {
		t.Fatalf("%s: %v", roleFile, err)
	}
	if role.Kind != "Role" {
		t.Fatalf("%s holds a %s, want a Role", roleFile, role.Kind)
	}

	granted := func(p permission) bool {
		for _, r := range role.Rules {
			if slices.Contains(r.APIGroups, p.group) && slices.Contains(r.Resources, p.resource) && slices.Contains(r.Verbs, p.verb) &&
				(len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, p.name)) {
				return true
			}
		}
		return false
	}
	var missing []string
	for p := range used {
		if !granted(p) {
			missing = append(missing, p.String())
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the elector calls what %s does not grant: %v", roleFile, missing)
	}
	// Every grant is used, with the names it is limited to.
	for _, r := range role.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					names := r.ResourceNames
					if len(names) == 0 {
						names = []string{""}
					}
					for _, n := range names {
						p := permission{group: g, resource: res, verb: v, name: n}
						if !usedAs(used, p) {
							t.Errorf("%s grants %s, which the elector never uses", roleFile, p)
						}
					}
				}
			}
		}
	}
	if got := holder(t, client); got != "b" {
		t.Fatalf("lease holder %q at the end of the election, want b", got)
	}
}

// usedAs tells whether a call matches the grant p; a grant for any name
// ("") is used by a call for any name.
func usedAs(used map[permission]bool, p permission) bool {
	for u := range used {
		if u.group == p.group && u.resource == p.resource && u.verb == p.verb && (p.name == "" || u.name == p.name) {
			return true
		}
	}
	return false
}

func nameOf(t *testing.T, obj interface{}) string {
	t.Helper()
	m, ok := obj.(interface{ GetName() string })
	if !ok {
		t.Fatalf("updated object %T has no name", obj)
	}
	return m.GetName()
}
