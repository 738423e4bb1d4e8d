package main

import (
	"strings"
	"testing"
)

// TestInstrumentationOffLoopbackNeedsTheSwitch: pprof and metrics need no
// macaroon, so an instrumentationAddress anyone else may reach is refused
// unless instrumentationAllowNonLoopback says it is meant.
func TestInstrumentationOffLoopbackNeedsTheSwitch(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct {
		addr  string
		allow bool
		ok    bool
	}{
		{"localhost:2112", false, true},
		{"127.0.0.1:2112", false, true},
		{"127.0.0.9:2112", false, true},
		{"[::1]:2112", false, true},
		{"0.0.0.0:2112", false, false},
		{":2112", false, false},
		{"[::]:2112", false, false},
		{"10.1.2.3:2112", false, false},
		{"metrics.internal:2112", false, false},
		{"0.0.0.0:2112", true, true},
		{":2112", true, true},
		{"metrics.internal:2112", true, true},
	} {
		cfg := validConfig(t)
		cfg.InstrumentationAddress = c.addr
		cfg.InstrumentationAllowNonLoopback = c.allow
		err := cfg.Validate()
		switch {
		case c.ok && err != nil:
			t.Errorf("%s allow=%v: refused: %v", c.addr, c.allow, err)
		case !c.ok && err == nil:
			t.Errorf("%s allow=%v: accepted", c.addr, c.allow)
		case !c.ok && !strings.Contains(err.Error(), "instrumentationAllowNonLoopback"):
			t.Errorf("%s: the error does not name the switch: %v", c.addr, err)
		}
	}
	// From the environment too, as the Kubernetes and Docker files set it.
	t.Setenv("LNMUX_INSTRUMENTATION_ADDRESS", "0.0.0.0:2112")
	t.Setenv("LNMUX_INSTRUMENTATION_ALLOW_NON_LOOPBACK", "true")
	cfg := load(t)
	cfg.IdentityKey = testKey
	if err := cfg.Validate(); err != nil {
		t.Errorf("env: %v", err)
	}
}
