package domain

import "testing"

// lastFailure is the last defined reason; update it with failure.go.
const lastFailure = FailInvalidBlinding

func TestFailureReasonString(t *testing.T) {
	if len(failureNames) != int(lastFailure)+1 {
		t.Fatalf("%d names for %d reasons", len(failureNames), lastFailure+1)
	}
	seen := map[string]FailureReason{}
	for r := FailNone; r <= lastFailure; r++ {
		s := r.String()
		if s == "" || s == "unknown failure" {
			t.Errorf("reason %d has no name", r)
		}
		if o, dup := seen[s]; dup {
			t.Errorf("reasons %d and %d share the name %q", o, r, s)
		}
		seen[s] = r
	}
	for _, r := range []FailureReason{lastFailure + 1, 255} {
		if got := r.String(); got != "unknown failure" {
			t.Errorf("FailureReason(%d).String() = %q", r, got)
		}
	}
}
