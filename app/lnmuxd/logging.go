package main

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/lnmux/lnmux/adapters/redact"
	"github.com/lnmux/lnmux/app/lnmuxd/config"
)

// newLogger builds the process logger from cfg.Logging, writing to w. Every
// attribute passes through the redaction net, and records logged with a
// context that carries an OpenTelemetry span get its trace_id and span_id.
// cfg must have been validated (an unknown level falls back to info).
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	level, _ := config.ParseLevel(cfg.Logging.Level)
	opts := &slog.HandlerOptions{
		Level:       level,
		AddSource:   cfg.Logging.WithCaller,
		ReplaceAttr: newRedactor(cfg.Secrets()...).replaceAttr,
	}
	var h slog.Handler
	if cfg.Logging.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(traceHandler{h})
}

// traceHandler adds the active span's ids to each record. Under WithGroup
// they land inside the group, like any attribute added at log time.
type traceHandler struct {
	slog.Handler
}

// Handle adds trace_id and span_id when ctx carries a valid span context.
func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(
			slog.String("trace_id", sc.TraceID().String()),
			slog.String("span_id", sc.SpanID().String()),
		)
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper around the derived handler.
func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the wrapper around the derived handler.
func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

// redactor is the safety net of the logs: it masks attributes whose key
// names a secret, scrubs the configured secret values from any string or
// error, and masks passwords in URLs and key=value strings. Code should
// not log secrets in the first place; this catches the slips.
type redactor struct {
	redact.Scrubber
}

func newRedactor(secrets ...string) redactor { return redactor{redact.New(secrets...)} }

// sensitiveWords mark an attribute key as naming a secret. Preimages are
// secrets until their HTLCs settle (docs/design.md, I1).
var sensitiveWords = []string{
	"identitykey", "privatekey", "privkey", "password", "passwd", "secret",
	"token", "macaroon", "preimage", "dsn", "apikey", "authorization",
}

func sensitiveKey(key string) bool {
	n := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return -1
	}, key)
	// A path names where a secret is, which is useful and not secret.
	if strings.HasSuffix(n, "path") || strings.HasSuffix(n, "file") || strings.HasSuffix(n, "dir") {
		return false
	}
	for _, w := range sensitiveWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

func isDSNKey(key string) bool { return strings.Contains(strings.ToLower(key), "dsn") }

// replaceAttr is the slog ReplaceAttr hook. slog calls it for the built-in
// attributes too, so the message is scrubbed as well.
func (r redactor) replaceAttr(_ []string, a slog.Attr) slog.Attr {
	if sensitiveKey(a.Key) {
		if isDSNKey(a.Key) && a.Value.Kind() == slog.KindString {
			return slog.String(a.Key, redact.DSN(a.Value.String()))
		}
		return slog.String(a.Key, redact.Mask)
	}
	switch a.Value.Kind() { //nolint:exhaustive // partial on purpose: the values without a case take the path after the switch
	case slog.KindString:
		if s, ok := r.Scrub(a.Value.String()); ok {
			a.Value = slog.StringValue(s)
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok && err != nil {
			if s, ok := r.Scrub(err.Error()); ok {
				a.Value = slog.StringValue(s)
			}
		}
	}
	return a
}
