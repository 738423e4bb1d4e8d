package redact

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

const (
	testPass = "s3cr3t-pass"
	testDSN  = "postgres://lnmux:" + testPass + "@db.internal:5432/lnmux?sslmode=disable"
)

func TestDSN(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "empty", in: "", want: ""},
		{name: "url with password", in: testDSN, want: "postgres://xxxxxx@db.internal:5432/lnmux"},
		{name: "password in the query", in: "postgres://h/db?password=" + testPass, want: "postgres://xxxxxx@h/db"},
		{name: "key=value", in: "user=a password=" + testPass, want: Mask},
		{name: "opaque url", in: "postgres:opaque" + testPass, want: Mask},
	}
	for _, tt := range tests {
		if got := DSN(tt.in); got != tt.want {
			t.Errorf("%s: DSN(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestDSNPassword(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "url userinfo", in: testDSN, want: testPass},
		{name: "url query", in: "postgres://h/db?password=" + testPass, want: testPass},
		{name: "key=value quoted", in: "user=a password='" + testPass + "' host=h", want: testPass},
		{name: "none", in: "postgres://h/db", want: ""},
	}
	for _, tt := range tests {
		if got := DSNPassword(tt.in); got != tt.want {
			t.Errorf("%s: DSNPassword(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestErrorScrubsAndKeepsChain(t *testing.T) {
	base := errors.New("connect " + testDSN)
	err := Error(fmt.Errorf("open store: %w", base), New(testDSN))
	if strings.Contains(err.Error(), testPass) {
		t.Errorf("Error() = %q, want the password masked", err)
	}
	if !errors.Is(err, base) {
		t.Errorf("errors.Is(redacted, base) = false, want true")
	}
	if plain := errors.New("plain"); Error(plain, New(testDSN)) != plain { //nolint:errorlint // identity is the point: the very same error value comes back
		t.Error("an error without secrets should come back unchanged")
	}
}

func TestScrubUnknownPasswords(t *testing.T) {
	got, changed := New().Scrub("dial postgres://u:" + testPass + "@h/db and password=" + testPass)
	if !changed || strings.Contains(got, testPass) {
		t.Errorf("Scrub = %q (changed %v), want every password masked", got, changed)
	}
}
