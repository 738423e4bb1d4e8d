package main

import (
	"strings"
	"testing"
)

// TestBadValueNotEchoed: a value that cannot be read is never quoted in the
// error, whatever its source and type: it may be a secret pasted into the
// wrong setting. The error names the setting instead.
func TestBadValueNotEchoed(t *testing.T) {
	cleanEnv(t)
	prefix := testKey[:7] // yaml.v3 quotes the first 7 bytes of a bad scalar
	cases := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want string // the setting the error must name
	}{
		{name: "int flag", args: []string{"--api-max-streams=" + testKey}, want: "api.maxStreams"},
		{name: "int flag, separate value", args: []string{"--api-max-streams", testKey}, want: "api.maxStreams"},
		{name: "duration flag", args: []string{"--api-slow-reader-timeout=" + testKey}, want: "api.slowReaderTimeout"},
		{name: "float flag", args: []string{"--telemetry-sample-ratio=" + testKey}, want: "telemetry.sampleRatio"},
		{name: "toggle flag", args: []string{"--telemetry-trust-trace-parent=" + testKey}, want: "telemetry.trustTraceParent"},
		{name: "bool flag of a shared name", args: []string{"--tls-enabled=" + testKey}, want: "tls.enabled:"},
		{name: "bool flag", args: []string{"--auto-settle=" + testKey}, want: "autoSettle"},
		{name: "env", env: map[string]string{"LNMUX_API_MAX_STREAMS": testKey}, want: "api.maxStreams"},
		{name: "flag syntax", args: []string{"---identity-key=" + testKey}, want: "---identity-key"},
		{name: "file int", file: "api:\n  maxStreams: " + testKey + "\n", want: "api.maxStreams"},
		{name: "file bool", file: "autoSettle: \"" + testKey + "\"\n", want: "autoSettle"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := c.args
			if c.file != "" {
				args = append([]string{"--config", writeFile(t, "lnmux.yml", c.file)}, args...)
			}
			out, logs, err := runCmd(t, append(args, "version")...)
			if err == nil {
				t.Fatal("no error")
			}
			all := err.Error() + out + logs
			if strings.Contains(all, prefix) {
				t.Errorf("the bad value (a secret) is echoed: %s", all)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error does not name %s: %v", c.want, err)
			}
		})
	}
}
