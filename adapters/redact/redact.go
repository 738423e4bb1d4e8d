// Package redact masks secrets in strings and errors: passwords in database
// connection strings and the secret values lnmuxd is configured with. The
// database adapter and the composition root both use it, so that one rule
// decides what an error message or a log line may show.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces a secret (the same mask ardanlabs/conf prints).
const Mask = "xxxxxx"

// DSN keeps what helps to debug a connection (scheme, host, port, database)
// and drops credentials and parameters. A key=value DSN is masked whole: its
// quoting rules make partial redaction unsafe.
func DSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	if !strings.Contains(dsn, "://") {
		return Mask
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Opaque != "" {
		return Mask
	}
	r := url.URL{Scheme: u.Scheme, User: url.User(Mask), Host: u.Host, Path: u.Path}
	return r.String()
}

// DSNPassword extracts the password of a URL or key=value DSN, "" if none.
func DSNPassword(dsn string) string {
	if strings.Contains(dsn, "://") {
		if u, err := url.Parse(dsn); err == nil {
			if p, ok := u.User.Password(); ok {
				return p
			}
			return u.Query().Get("password")
		}
		return ""
	}
	if m := passwordRE.FindStringSubmatch(dsn); m != nil {
		return strings.Trim(m[2], `'"`)
	}
	return ""
}

var (
	urlUserinfoRE = regexp.MustCompile(`://([^:/@\s]*):([^@\s/]+)@`)
	passwordRE    = regexp.MustCompile(`(?i)(password\s*[=:]\s*)('[^']*'|"[^"]*"|[^\s&;,]+)`)
)

// Scrubber removes known secret values from text, and passwords from URLs
// and key=value strings even when their value is not known.
type Scrubber struct {
	secrets []string
}

// New returns a Scrubber of the given secret values; empty ones, and ones
// the mask itself contains (scrubbing them would never end), are skipped.
func New(secrets ...string) Scrubber {
	var s []string
	for _, v := range secrets {
		if v != "" && !strings.Contains(Mask, v) {
			s = append(s, v)
		}
	}
	return Scrubber{secrets: s}
}

// Scrub masks secrets in s and reports whether it changed anything.
func (r Scrubber) Scrub(s string) (string, bool) {
	out := s
	for _, sec := range r.secrets {
		if strings.Contains(out, sec) {
			out = strings.ReplaceAll(out, sec, Mask)
		}
	}
	if strings.Contains(out, "://") {
		out = urlUserinfoRE.ReplaceAllString(out, "://${1}:"+Mask+"@")
	}
	if strings.Contains(out, "assword") || strings.Contains(out, "ASSWORD") {
		out = passwordRE.ReplaceAllString(out, "${1}"+Mask)
	}
	return out, out != s
}

// Error returns err with its message scrubbed, or err itself when its
// message holds no secret. The result keeps err's chain for errors.Is and
// errors.As.
func Error(err error, r Scrubber) error {
	if err == nil {
		return nil
	}
	if msg, changed := r.Scrub(err.Error()); changed {
		return &redactedError{msg: msg, err: err}
	}
	return err
}

// redactedError is an error whose message had secrets in it.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
