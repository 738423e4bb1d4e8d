package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfig: check-config accepts what run would start with, refuses
// what run would refuse with the same errors, and never opens the database
// (the DSN points at a closed port) nor shows a secret.
func TestCheckConfig(t *testing.T) {
	cleanEnv(t)
	mac := writeFile(t, "node.macaroon", "mac")
	cert := writeFile(t, "node.cert", "cert")
	nodes := "lnd:\n  nodes:\n    - pubKey: 0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798\n" +
		"      lndUrl: lnd:10009\n      macaroonPath: " + mac + "\n      tlsCertPath: " + cert + "\n"
	valid := writeFile(t, "valid.yml", nodes+"logging:\n  format: json\n")
	missingFile := writeFile(t, "missing.yml", strings.ReplaceAll(nodes, mac, filepath.Join(t.TempDir(), "absent.macaroon")))
	typo := writeFile(t, "typo.yml", nodes+"loging:\n  format: json\n")

	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		wantOut string // empty: want an error
		wantErr string
	}{
		{name: "valid", env: map[string]string{"LNMUX_IDENTITY_KEY": testKey, "LNMUX_PERSISTENCE_POSTGRES_DSN": unreachableDSN},
			args: []string{"--config", valid, "check-config"}, wantOut: "OK\n"},
		{name: "unknown environment variable warned", env: map[string]string{"LNMUX_IDENTITY_KEY": testKey, "LNMUX_IDENTITYKEY": "x"},
			args: []string{"--config", valid, "check-config"}, wantOut: "warning: ignoring unknown environment variable LNMUX_IDENTITYKEY\nOK\n"},
		{name: "no identity key", args: []string{"--config", valid, "check-config"}, wantErr: "identityKey: is required to run"},
		{name: "node file missing", env: map[string]string{"LNMUX_IDENTITY_KEY": testKey},
			args: []string{"--config", missingFile, "check-config"}, wantErr: "lnd.nodes[0].macaroonPath"},
		{name: "unknown key", env: map[string]string{"LNMUX_IDENTITY_KEY": testKey},
			args: []string{"--config", typo, "check-config"}, wantErr: "loging (config file line 7): unknown key"},
		{name: "argument after the command", env: map[string]string{"LNMUX_IDENTITY_KEY": testKey},
			args: []string{"--config", valid, "check-config", "extra"}, wantErr: "options go before the command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			out, logs, err := runCmd(t, tc.args...)
			if strings.Contains(out+logs, testKey) || strings.Contains(out+logs, testPass) ||
				(err != nil && (strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), testPass))) {
				t.Fatal("check-config showed a secret")
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got output %q, error %v; want an error containing %q", out, err, tc.wantErr)
				}
				return
			}
			if err != nil || out != tc.wantOut {
				t.Fatalf("got output %q, error %v; want output %q", out, err, tc.wantOut)
			}
		})
	}
}
