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
	"github.com/lnmux/lnmux/app/lnmuxd/config"
	"github.com/lnmux/lnmux/ports"
)

// streamLimits converts the api.* keys.
func streamLimits(c *config.Config) connectrpc.StreamLimits {
	return connectrpc.StreamLimits{
		Total:              c.API.MaxStreams,
		PerClient:          c.API.MaxStreamsPerClient,
		Anonymous:          c.API.MaxAnonymousStreams,
		AnonymousPerClient: c.API.MaxAnonymousStreamsPerClient,
		SlowReaderTimeout:  c.API.SlowReaderTimeout,
	}
}

// macaroonDir is where the macaroons and their root key id live.
func macaroonDir(c *config.Config) string { return c.DataDir }

// rootKeyIDPoll is how often lnmuxd reads the macaroon root key id from
// the database, so that a rotation made by another lnmuxd of the database
// applies here too (docs/authentication.md, "Root key").
const rootKeyIDPoll = 5 * time.Second

// apiAuth opens the macaroon service (its root key id kept in ids, the
// database), writes the default macaroons on first start and after a
// rotation elsewhere, follows the database's id until ctx ends, and
// decides from the address the API actually listens on whether macaroons
// are required.
func apiAuth(ctx context.Context, cfg *config.Config, log *slog.Logger, identityKey []byte, api net.Addr, ids ports.MacaroonRootKeyStore) (connectrpc.Option, error) {
	macs, err := macaroon.New(ctx, identityKey, macaroonDir(cfg), ids)
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
			"macaroon_dir", macaroonDir(cfg), "root_key_id", macs.RootKeyID())
	default:
		log.WarnContext(ctx, "API authentication: macaroons optional because the API listens on loopback only (set auth.requireOnLoopback to require them)",
			"listen", api.String(), "macaroon_dir", macaroonDir(cfg), "root_key_id", macs.RootKeyID())
	}
	if cfg.InstrumentationAllowNonLoopback && !config.IsLoopbackHostPort(cfg.InstrumentationAddress) {
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
func tlsPaths(c *config.Config) (cert, key string, generated bool) {
	if c.TLS.CertPath != "" {
		return c.TLS.CertPath, c.TLS.KeyPath, false
	}
	return filepath.Join(c.DataDir, "tls.cert"), filepath.Join(c.DataDir, "tls.key"), true
}

// apiTLS returns the TLS configuration of the API port, nil without
// tls.enabled.
func apiTLS(ctx context.Context, cfg *config.Config, log *slog.Logger) (*tls.Config, error) {
	if !cfg.TLS.Enabled {
		return nil, nil
	}
	certPath, keyPath, generated := tlsPaths(cfg)
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
func runMacaroon(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string, stdout func(string) error) error {
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
	store, err := sqlstore.Open(ctx, storeConfig(cfg, log))
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
		macs, err := macaroon.New(ctx, key, macaroonDir(cfg), store)
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
		id, err := macaroon.Rotate(ctx, key, macaroonDir(cfg), store)
		if err != nil {
			return err
		}
		macs, err := macaroon.New(ctx, key, macaroonDir(cfg), store)
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
