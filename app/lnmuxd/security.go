package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/lnmux/lnmux/adapters/connectrpc"
	"github.com/lnmux/lnmux/adapters/macaroon"
	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/adapters/tlscert"
	"github.com/lnmux/lnmux/ports"
)

// AuthConfig controls the macaroons of the API (docs/authentication.md).
type AuthConfig struct {
	RequireOnLoopback bool `conf:"default:false,help:auth.requireOnLoopback: require macaroons even when the API listens on loopback only (they are always required on any other address)" yaml:"requireOnLoopback"`
}

// TLSConfig controls TLS on the API port.
type TLSConfig struct {
	Enabled      bool     `conf:"default:false,help:tls.enabled: serve the API over TLS (gRPC gets HTTP/2 by ALPN)" yaml:"enabled"`
	CertPath     string   `conf:"help:tls.certPath: PEM certificate of the API (with tls.keyPath); when both are empty a self-signed one is generated as <dataDir>/tls.cert" yaml:"certPath"`
	KeyPath      string   `conf:"help:tls.keyPath: PEM private key of tls.certPath (default <dataDir>/tls.key)" yaml:"keyPath"`
	ExtraDomains []string `conf:"help:tls.extraDomains: DNS names or IP addresses the generated certificate is valid for besides localhost/127.0.0.1/::1; semicolon-separated in env and flags" yaml:"extraDomains"`
}

// APIConfig bounds the resources clients may hold, and names the hosts
// browsers may reach the listeners by (exposure.go).
type APIConfig struct {
	MaxStreams                   int           `conf:"default:4096,help:api.maxStreams: long-lived calls (subscriptions and WaitForInvoiceFinalStatus) open at once; more are refused with RESOURCE_EXHAUSTED" yaml:"maxStreams"`
	MaxStreamsPerClient          int           `conf:"default:1024,help:api.maxStreamsPerClient: long-lived calls open at once per client IP address" yaml:"maxStreamsPerClient"`
	MaxAnonymousStreams          int           `conf:"default:64,help:api.maxAnonymousStreams: gRPC health Watch and reflection streams (which need no macaroon) open at once; they never take the slots of api.maxStreams" yaml:"maxAnonymousStreams"`
	MaxAnonymousStreamsPerClient int           `conf:"default:16,help:api.maxAnonymousStreamsPerClient: health Watch and reflection streams open at once per client IP address" yaml:"maxAnonymousStreamsPerClient"`
	SlowReaderTimeout            time.Duration `conf:"default:30s,help:api.slowReaderTimeout: end a call whose client has not taken a response for this long" yaml:"slowReaderTimeout"`
	BodyReadTimeout              time.Duration `conf:"default:10s,help:api.bodyReadTimeout: time a request body may take to arrive after its headers; a slower call fails and its HTTP/1.1 connection is closed" yaml:"bodyReadTimeout"`
	MaxConnections               int           `conf:"default:8192,help:api.maxConnections: connections to the API port open at once; more are closed as soon as they are accepted" yaml:"maxConnections"`
	MaxConnectionsPerClient      int           `conf:"default:2048,help:api.maxConnectionsPerClient: connections to the API port open at once per client IP address" yaml:"maxConnectionsPerClient"`
	AllowedHosts                 []string      `conf:"help:api.allowedHosts: names (or IP addresses) besides localhost and the loopback addresses and the listen host by which browsers may reach a listener that serves without a macaroon (the API while macaroons are optional; the console; a loopback instrumentation port); semicolon-separated in env and flags" yaml:"allowedHosts"`
}

func (c *Config) validateSecurity(errs *configErrors) {
	if err := checkHostPort(c.InstrumentationAddress, true); err != nil {
		errs.add("instrumentationAddress", "%v", err)
	} else if c.InstrumentationAddress == c.ListenAddress {
		errs.add("instrumentationAddress", "must differ from listenAddress: metrics and pprof get a listener of their own")
	} else if !c.InstrumentationAllowNonLoopback && !isLoopbackHostPort(c.InstrumentationAddress) {
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

// streamLimits converts the api.* keys.
func (c *Config) streamLimits() connectrpc.StreamLimits {
	return connectrpc.StreamLimits{
		Total:              c.API.MaxStreams,
		PerClient:          c.API.MaxStreamsPerClient,
		Anonymous:          c.API.MaxAnonymousStreams,
		AnonymousPerClient: c.API.MaxAnonymousStreamsPerClient,
		SlowReaderTimeout:  c.API.SlowReaderTimeout,
	}
}

// macaroonDir is where the macaroons and their root key id live.
func (c *Config) macaroonDir() string { return c.DataDir }

// rootKeyIDPoll is how often lnmuxd reads the macaroon root key id from
// the database, so that a rotation made by another lnmuxd of the database
// applies here too (docs/authentication.md, "Root key").
const rootKeyIDPoll = 5 * time.Second

// apiAuth opens the macaroon service (its root key id kept in ids, the
// database), writes the default macaroons on first start and after a
// rotation elsewhere, follows the database's id until ctx ends, and
// decides from the address the API actually listens on whether macaroons
// are required.
func apiAuth(ctx context.Context, cfg *Config, log *slog.Logger, identityKey []byte, api net.Addr, ids ports.MacaroonRootKeyStore) (connectrpc.Option, error) {
	macs, err := macaroon.New(ctx, identityKey, cfg.macaroonDir(), ids)
	if err != nil {
		return nil, err
	}
	if err := writeDefaultMacaroons(ctx, log, macs); err != nil {
		return nil, err
	}
	go followRootKeyID(ctx, log, macs)
	required := authRequired(cfg, api)
	switch {
	case required:
		log.InfoContext(ctx, "API authentication: macaroons required", "listen", api.String(),
			"macaroon_dir", cfg.macaroonDir(), "root_key_id", macs.RootKeyID())
	default:
		log.WarnContext(ctx, "API authentication: macaroons optional because the API listens on loopback only (set auth.requireOnLoopback to require them)",
			"listen", api.String(), "macaroon_dir", cfg.macaroonDir(), "root_key_id", macs.RootKeyID())
	}
	if cfg.InstrumentationAllowNonLoopback && !isLoopbackHostPort(cfg.InstrumentationAddress) {
		log.WarnContext(ctx, "instrumentation listens beyond loopback (instrumentationAllowNonLoopback): /metrics and /debug/pprof need no macaroon, keep the port behind a firewall or NetworkPolicy",
			"instrumentation", cfg.InstrumentationAddress)
	}
	return connectrpc.WithAuthorizer(macs, required), nil
}

func writeDefaultMacaroons(ctx context.Context, log *slog.Logger, macs *macaroon.Service) error {
	written, err := macs.WriteDefaults(ctx, time.Now(), false)
	if err != nil {
		return fmt.Errorf("write macaroons: %w", err)
	}
	for _, p := range written {
		log.InfoContext(ctx, "macaroon written", "path", p, "root_key_id", macs.RootKeyID())
	}
	return nil
}

// followRootKeyID keeps the root key id in step with the database until
// ctx ends, logging what changes and, once, a database it cannot read.
func followRootKeyID(ctx context.Context, log *slog.Logger, macs *macaroon.Service) {
	failing := false
	macs.Follow(ctx, rootKeyIDPoll, func(res macaroon.SyncResult, err error) {
		if err != nil {
			if !failing {
				log.WarnContext(ctx, "macaroon root key id: cannot check the database; the id in use stays", "root_key_id", res.ID, "err", err)
			}
			failing = true
			return
		}
		if failing {
			log.InfoContext(ctx, "macaroon root key id: database readable again", "root_key_id", res.ID)
			failing = false
		}
		if res.Restored {
			log.ErrorContext(ctx, "macaroon root key id: the database held a lower id (restored from a backup?); raised it back to the id in use", "root_key_id", res.ID)
		}
		if res.Adopted {
			log.InfoContext(ctx, "macaroon root key rotated by another lnmuxd of the database: every macaroon baked before is refused from now on", "root_key_id", res.ID)
			if err := writeDefaultMacaroons(ctx, log, macs); err != nil {
				log.ErrorContext(ctx, "macaroon root key id: rewriting the default macaroons failed", "err", err)
			}
		}
	})
}

// isLoopback reports whether addr is a loopback address: only processes
// on this machine can reach it.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP != nil && tcp.IP.IsLoopback()
}

// tlsPaths returns the certificate and key files and whether they are the
// generated ones.
func (c *Config) tlsPaths() (cert, key string, generated bool) {
	if c.TLS.CertPath != "" {
		return c.TLS.CertPath, c.TLS.KeyPath, false
	}
	return filepath.Join(c.DataDir, "tls.cert"), filepath.Join(c.DataDir, "tls.key"), true
}

// apiTLS returns the TLS configuration of the API port, nil without
// tls.enabled.
func apiTLS(ctx context.Context, cfg *Config, log *slog.Logger) (*tls.Config, error) {
	if !cfg.TLS.Enabled {
		return nil, nil
	}
	certPath, keyPath, generated := cfg.tlsPaths()
	var cert tls.Certificate
	var err error
	if generated {
		var created bool
		cert, created, err = tlscert.LoadOrGenerate(certPath, keyPath, cfg.TLS.ExtraDomains, time.Now())
		if created {
			log.InfoContext(ctx, "self-signed TLS certificate generated", "cert", certPath, "key", keyPath,
				"extra_domains", strings.Join(cfg.TLS.ExtraDomains, ","))
		}
	} else {
		cert, err = tlscert.Load(certPath, keyPath)
	}
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}, nil
}

// runMacaroon runs "macaroon bake|rotate".
func runMacaroon(ctx context.Context, cfg *Config, log *slog.Logger, args []string, stdout func(string) error) error {
	if len(args) == 0 {
		return errors.New("macaroon needs a subcommand: bake or rotate")
	}
	key, err := cfg.IdentityKeyBytes()
	if err != nil {
		return err
	}
	switch args[0] {
	case "bake", "rotate":
	default:
		return fmt.Errorf("unknown macaroon subcommand %q: want bake or rotate", args[0])
	}
	// The root key id is kept in the database.
	store, err := sqlstore.Open(ctx, cfg.storeConfig(log))
	if err != nil {
		return err
	}
	defer store.Close()
	switch args[0] {
	case "bake":
		opts, err := parseBakeArgs(args[1:])
		if err != nil {
			return err
		}
		macs, err := macaroon.New(ctx, key, cfg.macaroonDir(), store)
		if err != nil {
			return err
		}
		mac, err := macs.Bake(ctx, time.Now(), opts.validFor, opts.scopes...)
		if err != nil {
			return err
		}
		if opts.out != "" {
			if err := macaroon.WriteFile(opts.out, mac); err != nil {
				return err
			}
			log.InfoContext(ctx, "macaroon written", "path", opts.out, "scopes", fmt.Sprint(opts.scopes), "valid_for", opts.validFor.String())
			return nil
		}
		return stdout(fmt.Sprintf("%x", mac))
	case "rotate":
		if len(args) > 1 {
			return fmt.Errorf("unexpected argument %q after macaroon rotate", args[1])
		}
		id, err := macaroon.Rotate(ctx, key, cfg.macaroonDir(), store)
		if err != nil {
			return err
		}
		macs, err := macaroon.New(ctx, key, cfg.macaroonDir(), store)
		if err != nil {
			return err
		}
		written, err := macs.WriteDefaults(ctx, time.Now(), true)
		if err != nil {
			return err
		}
		log.InfoContext(ctx, "macaroon root key rotated: every macaroon baked before is refused from now on, by a running lnmuxd on this host at once and by every other lnmuxd of the database within "+rootKeyIDPoll.String(),
			"root_key_id", id, "rewritten", strings.Join(written, ","))
		return nil
	}
	return nil
}

type bakeOpts struct {
	scopes   []ports.Scope
	validFor time.Duration
	out      string
}

// parseBakeArgs reads "--scope invoice[,readonly] [--valid-for 24h]
// [--out file]".
func parseBakeArgs(args []string) (bakeOpts, error) {
	var o bakeOpts
	fs := flag.NewFlagSet("macaroon bake", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Func("scope", "scopes, comma-separated: admin, readonly, invoice", func(v string) error {
		for s := range strings.SplitSeq(v, ",") {
			scope := ports.Scope(strings.TrimSpace(s))
			if _, err := scope.Permissions(); err != nil {
				return err
			}
			o.scopes = append(o.scopes, scope)
		}
		return nil
	})
	fs.DurationVar(&o.validFor, "valid-for", 0, "validity (0: until the next rotation)")
	fs.StringVar(&o.out, "out", "", "write the macaroon (binary) to this file instead of printing it in hex")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("macaroon bake: %w (usage: macaroon bake --scope admin|readonly|invoice[,…] [--valid-for 24h] [--out file])", err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("macaroon bake: unexpected argument %q", fs.Arg(0))
	}
	if len(o.scopes) == 0 {
		return o, errors.New("macaroon bake: --scope is required (admin, readonly, invoice; comma-separated to combine)")
	}
	if o.validFor < 0 {
		return o, errors.New("macaroon bake: --valid-for must not be negative")
	}
	return o, nil
}
