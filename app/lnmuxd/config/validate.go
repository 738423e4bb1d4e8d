package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/lnmux/lnmux/adapters/lnd"
	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/domain"
)

// Checking the configuration: every problem is reported with its key, and
// all of them at once.

// configError is a problem with one key. It never carries a secret value.
type configError struct {
	Key     string
	Line    int // line in the yaml file, 0 if not from the file
	Problem string
}

func (e *configError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s (config file line %d): %s", e.Key, e.Line, e.Problem)
	}
	return e.Key + ": " + e.Problem
}

// configErrors lists every problem found, so that one run shows them all.
type configErrors []error

func (e configErrors) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration:")
	for _, err := range e {
		b.WriteString("\n  - ")
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e configErrors) Unwrap() []error { return e }

func (e *configErrors) add(key, format string, a ...any) {
	*e = append(*e, &configError{Key: key, Problem: fmt.Sprintf(format, a...)})
}

func (e configErrors) err() error {
	if len(e) == 0 {
		return nil
	}
	return e
}

// Validate checks every setting without touching the file system or the
// network. An identity key is checked if set; run also requires one (see
// ValidateRun).
func (c *Config) Validate() error {
	var errs configErrors

	if _, ok := lnd.ChainParams(c.LND.Network); !ok {
		errs.add("lnd.network", "%s", unknownNetwork(c.LND.Network))
	}

	var identity *btcec.PublicKey
	if c.IdentityKey != "" {
		if priv, err := parseIdentityKey(c.IdentityKey); err != nil {
			errs = append(errs, err)
		} else {
			identity = priv.PubKey()
		}
	}

	c.validateNodes(&errs, identity)

	if c.DataDir == "" {
		errs.add("dataDir", "must not be empty")
	}
	if dsn := c.Persistence.Postgres.DSN; dsn != "" {
		if !sqlstore.ValidDSN(dsn) {
			errs.add("persistence.postgres.dsn", "is neither a postgres:// URL nor a key=value connection string")
		}
		if c.Persistence.SQLite.Path != "" {
			errs.add("persistence", "set either persistence.postgres.dsn or persistence.sqlite.path, not both")
		}
	}

	if err := checkHostPort(c.ListenAddress, true); err != nil {
		errs.add("listenAddress", "%v", err)
	}
	for i, o := range c.CORS.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			errs.add(fmt.Sprintf("cors.allowedOrigins[%d]", i), "%v", err)
		}
	}

	c.validateSecurity(&errs)
	c.validateExposure(&errs)

	if err := c.RoutingPolicy.Domain().Validate(); err != nil {
		errs.add("routingPolicy", "%v", err)
	}

	inv := c.Invoice
	if inv.FinalCLTVDelta <= inv.FinalCLTVRejectDelta {
		errs.add("invoice.finalCltvDelta", "must be above invoice.finalCltvRejectDelta (%d), or payments made with the minimum expiry are refused", inv.FinalCLTVRejectDelta)
	}
	if inv.FinalCLTVDelta > maxCLTVDelta {
		errs.add("invoice.finalCltvDelta", "must be at most %d blocks", maxCLTVDelta)
	}
	if inv.AutoFailMargin >= inv.FinalCLTVDelta {
		errs.add("invoice.autoFailMargin", "must be below invoice.finalCltvDelta (%d), or sets are cancelled as soon as they complete", inv.FinalCLTVDelta)
	}
	if inv.HoldTimeout < time.Second {
		errs.add("invoice.holdTimeout", "must be at least 1s")
	}
	if inv.AcceptTimeout < time.Second {
		errs.add("invoice.acceptTimeout", "must be at least 1s")
	}
	if inv.RouteHintGrace < time.Second {
		errs.add("invoice.routeHintGrace", "must be at least 1s")
	}

	if _, err := ParseLevel(c.Logging.Level); err != nil {
		errs.add("logging.level", "%v", err)
	}
	if c.Logging.Format != "text" && c.Logging.Format != "json" {
		errs.add("logging.format", "%q is not one of text, json", c.Logging.Format)
	}

	c.DistributedLock.validate(&errs)

	if e := c.Telemetry.OTLPEndpoint; e != "" {
		if err := checkEndpoint(e); err != nil {
			errs.add("telemetry.otlpEndpoint", "%v", err)
		}
	}
	if c.Telemetry.ServiceName == "" {
		errs.add("telemetry.serviceName", "must not be empty")
	}
	if r := c.Telemetry.SampleRatio; !(r > 0 && r <= 1) {
		errs.add("telemetry.sampleRatio", "must be above 0 and at most 1 (to turn tracing off leave telemetry.otlpEndpoint empty)")
	}
	return errs.err()
}

// validate checks the lock settings; the Lease's only when it is used.
func (d DistributedLockConfig) validate(errs *configErrors) {
	switch d.Type {
	case LockDatabase:
	case LockKubernetes:
		if !d.Enabled.On() {
			break
		}
		if d.Namespace == "" {
			errs.add("distributedLock.namespace", "is required with distributedLock.type kubernetes")
		}
		if d.Name == "" {
			errs.add("distributedLock.name", "is required with distributedLock.type kubernetes")
		}
		if d.ID == "" {
			errs.add("distributedLock.id", "is required with distributedLock.type kubernetes (no POD_NAME and no host name)")
		}
		// client-go's leader election refuses these (jitter 1.2).
		if d.RetryPeriod <= 0 {
			errs.add("distributedLock.retryPeriod", "must be positive")
		}
		if float64(d.RenewDeadline) <= 1.2*float64(d.RetryPeriod) {
			errs.add("distributedLock.renewDeadline", "must be above 1.2 × distributedLock.retryPeriod (%s)", d.RetryPeriod)
		}
		if d.LeaseDuration <= d.RenewDeadline {
			errs.add("distributedLock.leaseDuration", "must be above distributedLock.renewDeadline (%s)", d.RenewDeadline)
		}
	default:
		errs.add("distributedLock.type", "%q is not one of %s, %s", d.Type, LockDatabase, LockKubernetes)
	}
}

// unknownNetwork says that lnd.network is none of the networks lnd knows.
func unknownNetwork(name string) string {
	return fmt.Sprintf("%q is not one of %s", name, strings.Join(lnd.NetworkNames(), ", "))
}

// maxCLTVDelta is lnd's limit on a route's total CLTV (2016 blocks).
const maxCLTVDelta = 2016

// ValidateRun adds what the run command needs: an identity key, and
// macaroon and certificate files it can open.
func (c *Config) ValidateRun() error {
	var errs configErrors
	if c.IdentityKey == "" {
		errs.add("identityKey", "is required to run: set it in the config file or in %s_IDENTITY_KEY", envPrefix)
	}
	for i, n := range c.LND.Nodes {
		for _, f := range []struct{ key, path string }{
			{"macaroonPath", n.MacaroonPath}, {"tlsCertPath", n.TLSCertPath},
		} {
			if f.path == "" {
				continue // reported by Validate
			}
			if err := checkReadableFile(f.path); err != nil {
				errs.add(fmt.Sprintf("lnd.nodes[%d].%s", i, f.key), "%v", err)
			}
		}
	}
	return errs.err()
}

func (c *Config) validateNodes(errs *configErrors, identity *btcec.PublicKey) {
	keys := map[string]int{}
	urls := map[string]int{}
	for i, n := range c.LND.Nodes {
		key := func(field string) string { return fmt.Sprintf("lnd.nodes[%d].%s", i, field) }
		switch pub, err := parseNodeKey(n.PubKey); {
		case err != nil:
			errs.add(key("pubKey"), "%v", err)
		case identity != nil && pub.IsEqual(identity):
			errs.add(key("pubKey"), "is the public key of identityKey: lnmux needs a key of its own")
		default:
			if j, dup := keys[strings.ToLower(n.PubKey)]; dup {
				errs.add(key("pubKey"), "duplicates lnd.nodes[%d]", j)
			} else {
				keys[strings.ToLower(n.PubKey)] = i
			}
		}
		if err := checkHostPort(n.URL, false); err != nil {
			errs.add(key("lndUrl"), "%v", err)
		} else if j, dup := urls[n.URL]; dup {
			errs.add(key("lndUrl"), "duplicates lnd.nodes[%d]", j)
		} else {
			urls[n.URL] = i
		}
		if n.MacaroonPath == "" {
			errs.add(key("macaroonPath"), "is required")
		}
		if n.TLSCertPath == "" {
			errs.add(key("tlsCertPath"), "is required")
		}
	}
}

// parseIdentityKey checks the identity key. Its errors never contain the
// key or any part of it (hex.DecodeString's would quote the bad character).
func parseIdentityKey(s string) (*btcec.PrivateKey, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return nil, &configError{Key: "identityKey", Problem: "must be 64 hex characters (a 32-byte private key)"}
	}
	// PrivKeyFromBytes reduces modulo the curve order without a word, so
	// check the range first: a key ≥ n would silently be another key.
	if domain.ValidateIdentityKey(b) != nil {
		clear(b)
		return nil, &configError{Key: "identityKey", Problem: "is not a valid secp256k1 private key (it must be above 0 and below the curve order)"}
	}
	priv, _ := btcec.PrivKeyFromBytes(b)
	clear(b)
	return priv, nil
}

func parseNodeKey(s string) (*btcec.PublicKey, error) {
	if s == "" {
		return nil, errors.New("is required")
	}
	k, err := domain.ParseNodeKey(s)
	if err != nil {
		return nil, errors.New("must be a 33-byte compressed public key in hex (66 characters starting with 02 or 03)")
	}
	pub, err := btcec.ParsePubKey(k[:])
	if err != nil {
		return nil, errors.New("is not a point on the secp256k1 curve")
	}
	return pub, nil
}

func checkHostPort(s string, emptyHostOK bool) error {
	if s == "" {
		return errors.New("is required (host:port)")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if host == "" && !emptyHostOK {
		return fmt.Errorf("%q has no host", s)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%q has no valid port", s)
	}
	return nil
}

func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an origin: write scheme://host[:port] without a path, or *", o)
	}
	return nil
}

func checkEndpoint(e string) error {
	if !strings.Contains(e, "://") {
		return checkHostPort(e, false)
	}
	u, err := url.Parse(e)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be host:port or an http(s) URL")
	}
	return nil
}

func checkReadableFile(path string) error {
	st, err := os.Stat(path) //nolint:gosec // the operator names the file in the config
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path) //nolint:gosec // the operator names the file in the config
	if err != nil {
		return err
	}
	return f.Close()
}

func (c *Config) validateSecurity(errs *configErrors) {
	if err := checkHostPort(c.InstrumentationAddress, true); err != nil {
		errs.add("instrumentationAddress", "%v", err)
	} else if c.InstrumentationAddress == c.ListenAddress {
		errs.add("instrumentationAddress", "must differ from listenAddress: metrics and pprof get a listener of their own")
	} else if !c.InstrumentationAllowNonLoopback && !IsLoopbackHostPort(c.InstrumentationAddress) {
		errs.add("instrumentationAddress", "%s is not a loopback address (localhost, 127.0.0.0/8, ::1): whoever reaches it reads heap profiles and goroutine dumps without a macaroon; "+
			"set instrumentationAllowNonLoopback: true once a firewall or NetworkPolicy keeps it to the scrapers and probes", c.InstrumentationAddress)
	}
	if (c.TLS.CertPath == "") != (c.TLS.KeyPath == "") {
		errs.add("tls", "set both tls.certPath and tls.keyPath, or neither (to use the generated certificate)")
	}
	if c.TLS.CertPath != "" && len(c.TLS.ExtraDomains) > 0 {
		errs.add("tls.extraDomains", "applies to the generated certificate only, not to tls.certPath")
	}
	for i, d := range c.TLS.ExtraDomains {
		if d == "" || strings.ContainsAny(d, " /:") && net.ParseIP(d) == nil {
			errs.add(fmt.Sprintf("tls.extraDomains[%d]", i), "%q is neither a DNS name nor an IP address", d)
		}
	}
	if c.API.MaxStreams < 1 {
		errs.add("api.maxStreams", "must be at least 1")
	}
	if c.API.MaxStreamsPerClient < 1 {
		errs.add("api.maxStreamsPerClient", "must be at least 1")
	}
	if c.API.SlowReaderTimeout < time.Second {
		errs.add("api.slowReaderTimeout", "must be at least 1s")
	}
}

// errCORSWithoutMacaroons explains why cors.allowedOrigins is refused
// while macaroons are optional.
const errCORSWithoutMacaroons = "is allowed only when macaroons are required: the API listens on loopback, " +
	"where calls without a macaroon are let through, so a page of an allowed origin could settle and cancel payments " +
	"in the operator's browser; set auth.requireOnLoopback: true (pages then send a macaroon) or leave cors.allowedOrigins empty"

// validateExposure checks the api.* keys of this file and that browsers of
// other origins are allowed only where macaroons are required.
func (c *Config) validateExposure(errs *configErrors) {
	for i, h := range c.API.AllowedHosts {
		if err := checkAllowedHost(h); err != nil {
			errs.add(fmt.Sprintf("api.allowedHosts[%d]", i), "%v", err)
		}
	}
	if len(c.CORS.AllowedOrigins) > 0 && !c.Auth.RequireOnLoopback && IsLoopbackHostPort(c.ListenAddress) {
		errs.add("cors.allowedOrigins", "%s", errCORSWithoutMacaroons)
	}
	if c.API.MaxAnonymousStreams < 1 {
		errs.add("api.maxAnonymousStreams", "must be at least 1")
	}
	if c.API.MaxAnonymousStreamsPerClient < 1 {
		errs.add("api.maxAnonymousStreamsPerClient", "must be at least 1")
	}
	if c.API.BodyReadTimeout <= 0 {
		errs.add("api.bodyReadTimeout", "must be positive")
	}
	if c.API.MaxConnections < 1 {
		errs.add("api.maxConnections", "must be at least 1")
	}
	if c.API.MaxConnectionsPerClient < 1 {
		errs.add("api.maxConnectionsPerClient", "must be at least 1")
	}
}

// checkAllowedHost accepts a DNS name or an IP address, without port.
func checkAllowedHost(h string) error {
	bare := strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if net.ParseIP(bare) != nil {
		return nil
	}
	if h == "" || strings.ContainsAny(h, " /\\@*?#:[]") {
		return fmt.Errorf("%q is neither a DNS name nor an IP address (write it without scheme and port)", h)
	}
	return nil
}

// CheckCORS applies the rule of validateExposure to the address actually
// bound (required: whether macaroons are required there): a host name that
// resolves to loopback passes validation.
func (c *Config) CheckCORS(required bool) error {
	if len(c.CORS.AllowedOrigins) > 0 && !required {
		return &configError{Key: "cors.allowedOrigins", Problem: errCORSWithoutMacaroons}
	}
	return nil
}

// ParseLevel accepts the four level names of logging.level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("%q is not one of debug, info, warn, error", s)
}
