package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/lnmux/lnmux/app/lnmuxd/config"
)

func testLogger(t *testing.T, level, format string) (*slog.Logger, *bytes.Buffer) {
	t.Helper()
	cfg := &config.Config{
		IdentityKey: testKey,
		Logging:     config.LoggingConfig{Level: level, Format: format},
		Persistence: config.PersistenceConfig{Postgres: config.PostgresConfig{DSN: testDSN}},
	}
	var buf bytes.Buffer
	return newLogger(cfg, &buf), &buf
}

func TestLoggerLevelAndFormat(t *testing.T) {
	log, buf := testLogger(t, "warn", "json")
	log.Info("hidden")
	log.Warn("shown", "n", 1)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one line, got %q", buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("not json: %v", err)
	}
	if rec["msg"] != "shown" || rec["level"] != "WARN" || rec["n"] != 1.0 {
		t.Errorf("record = %v", rec)
	}

	log, buf = testLogger(t, "debug", "text")
	log.Debug("dbg")
	if !strings.Contains(buf.String(), "level=DEBUG msg=dbg") {
		t.Errorf("text debug: %q", buf.String())
	}
	for _, l := range []string{"debug", "info", "warn", "error", "INFO"} {
		if _, err := config.ParseLevel(l); err != nil {
			t.Errorf("config.ParseLevel(%q): %v", l, err)
		}
	}
	if _, err := config.ParseLevel("trace"); err == nil {
		t.Error("config.ParseLevel(trace): no error")
	}
}

func TestLoggerTraceIDs(t *testing.T) {
	log, buf := testLogger(t, "info", "json")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x0a, 0x0b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	log.With("component", "mux").InfoContext(ctx, "traced")
	log.InfoContext(context.Background(), "untraced")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var traced, untraced map[string]any
	if err := errors.Join(json.Unmarshal([]byte(lines[0]), &traced), json.Unmarshal([]byte(lines[1]), &untraced)); err != nil {
		t.Fatal(err)
	}
	if traced["trace_id"] != sc.TraceID().String() || traced["span_id"] != sc.SpanID().String() || traced["component"] != "mux" {
		t.Errorf("traced record = %v", traced)
	}
	if _, ok := untraced["trace_id"]; ok {
		t.Errorf("untraced record has a trace id: %v", untraced)
	}
}

func TestLoggerRedaction(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		log, buf := testLogger(t, "debug", format)
		log.Info("keys",
			"identityKey", "abc-identity",
			"identity_key", []byte("abc-bytes"),
			"dsn", "postgres://u:pw-in-dsn@h/db",
			"macaroon", "0201abc-macaroon",
			"password", "pw-field",
			"preimage", "abc-preimage",
			"macaroonPath", "/home/lnd/admin.macaroon",
		)
		log.Info("values",
			"err", errors.New("dial "+testDSN+" failed"),
			"note", "key was "+testKey,
			"upper", strings.ToUpper(testKey),
			"url", "connect to https://admin:pw-in-url@example.com/x",
			"kv", "host=h password=pw-in-kv dbname=d",
		)
		log.Info("message mentions " + testKey)
		log.WithGroup("g").Info("grouped", "dsn", testDSN)

		out := buf.String()
		for _, secret := range []string{
			"abc-identity", "abc-bytes", "pw-in-dsn", "0201abc-macaroon", "pw-field", "abc-preimage",
			testKey, strings.ToUpper(testKey), testPass, "pw-in-url", "pw-in-kv",
		} {
			if strings.Contains(out, secret) {
				t.Errorf("%s log shows %q:\n%s", format, secret, out)
			}
		}
		for _, kept := range []string{"/home/lnd/admin.macaroon", "failed", "example.com", "host=h", "db.internal"} {
			if !strings.Contains(out, kept) {
				t.Errorf("%s log lost %q:\n%s", format, kept, out)
			}
		}
	}
}

func TestSensitiveKey(t *testing.T) {
	for key, want := range map[string]bool{
		"identityKey": true, "IDENTITY_KEY": true, "dsn": true, "postgresDSN": true, "macaroon": true,
		"db_password": true, "preimage": true, "apiToken": true,
		"macaroonPath": false, "tls_cert_path": false, "hash": false, "node": false, "password_file": false,
	} {
		if got := sensitiveKey(key); got != want {
			t.Errorf("sensitiveKey(%q) = %v, want %v", key, got, want)
		}
	}
}
