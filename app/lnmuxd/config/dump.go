package config

import (
	"log/slog"
	"strings"

	"github.com/ardanlabs/conf/v3"

	"github.com/lnmux/lnmux/adapters/redact"
)

// Dumps of the configuration: every secret masked.

// String lists every setting, one "--flag=value" per line, secrets masked:
// the startup log line. fmt's %v and %+v use it too.
func (c Config) String() string {
	if c.IdentityKey != "" {
		c.IdentityKey = masked
	}
	// conf masks only a URL's user:password; a password in the query or a
	// key=value DSN would be shown, so redact before conf sees it.
	c.Persistence.Postgres.DSN = redact.DSN(c.Persistence.Postgres.DSN)
	s, err := conf.String(&c)
	if err != nil {
		return "config: " + err.Error()
	}
	return s
}

// GoString keeps %#v from printing the secrets.
func (c Config) GoString() string { return c.String() }

// LogValue logs the configuration as a group of its flags, secrets masked.
// The JSON handler would marshal the struct, secrets included, without it.
func (c Config) LogValue() slog.Value {
	var attrs []slog.Attr
	for line := range strings.SplitSeq(c.String(), "\n") {
		k, v, ok := strings.Cut(strings.TrimLeft(strings.TrimSpace(line), "-"), "=")
		if ok && k != "build" && k != "desc" { // conf.Version: logged apart
			attrs = append(attrs, slog.String(k, v))
		}
	}
	return slog.GroupValue(attrs...)
}

// Secrets returns the literal secret strings of the configuration, for the
// redactor to scrub wherever they turn up (an error quoting a DSN, say).
func (c *Config) Secrets() []string {
	var s []string
	if k := c.IdentityKey; k != "" {
		s = append(s, k, strings.ToLower(k), strings.ToUpper(k))
	}
	if dsn := c.Persistence.Postgres.DSN; dsn != "" {
		s = append(s, dsn)
		if p := redact.DSNPassword(dsn); len(p) >= 4 {
			s = append(s, p)
		}
	}
	return s
}
