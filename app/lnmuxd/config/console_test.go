package config

import "testing"

func TestConsoleOn(t *testing.T) {
	for _, tc := range []struct {
		enabled, listen string
		want            bool
	}{
		{"auto", "localhost:9190", true},
		{"auto", "127.0.0.1:9190", true},
		{"auto", "[::1]:9190", true},
		{"auto", "0.0.0.0:9190", false},
		{"auto", ":9190", false},
		{"auto", "lnmux.internal:9190", false},
		{"", "127.0.0.2:1", true},
		{"true", "0.0.0.0:9190", true},
		{"false", "localhost:9190", false},
	} {
		cfg := Config{ListenAddress: tc.listen, Console: ConsoleConfig{Enabled: tc.enabled}}
		got, err := cfg.ConsoleOn()
		if err != nil || got != tc.want {
			t.Errorf("enabled=%q listen=%q: %v, %v; want %v", tc.enabled, tc.listen, got, err, tc.want)
		}
	}
	cfg := Config{Console: ConsoleConfig{Enabled: "maybe"}}
	if _, err := cfg.ConsoleOn(); err == nil {
		t.Error("enabled=maybe: no error")
	}
}
