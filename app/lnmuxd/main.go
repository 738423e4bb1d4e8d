// Command lnmuxd is the Lightning multiplexer daemon: the composition root
// that reads the configuration and wires the application to its adapters.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/ardanlabs/conf/v3"

	"github.com/lnmux/lnmux/adapters/redact"
	"github.com/lnmux/lnmux/app/lnmuxd/config"
)

// version is set at build time:
//
//	go build -ldflags "-X main.version=v1.2.3" ./app/lnmuxd
var version = "dev"

const (
	progName    = "lnmuxd"
	description = "lnmuxd: Lightning multiplexer, one virtual node in front of a cluster of LND nodes"
)

// buildVersion is the ldflags version, else the module version when built
// with go install, else "dev".
func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

const usageHeader = `Usage: lnmuxd [options...] <command>

Commands:
  run             connect to the LND nodes and serve the API
  migrate init    prepare an empty database for migrations
  migrate up      apply every pending database migration
  migrate status  show the applied and the pending migrations
  check-config    validate the configuration as run does, without connecting anywhere; print OK
  macaroon bake --scope admin|readonly|invoice[,...] [--valid-for 24h] [--out file]
                  print (hex) or write a new API macaroon
  macaroon rotate invalidate every macaroon (the id is kept in the database) and rewrite the three in dataDir
  version         print the version
  help            print this help

Options go before the command: lnmuxd -c lnmux.yml run
Each option is also a key of the yaml file given with -c (its description
starts with the key) and an environment variable (listed below).
Precedence: flags > environment > config file > defaults.
`

// withUsageHeader replaces conf's one-line usage with ours.
func withUsageHeader(confUsage string) string {
	if _, rest, ok := strings.Cut(confUsage, "\n\n"); ok {
		confUsage = rest
	}
	return usageHeader + "\n" + confUsage
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, progName+":", err)
		os.Exit(1)
	}
}

// run parses the configuration and runs the command in args (the command
// line without the program name). Logs go to stderr; stdout gets only what
// a command prints (help, version).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	cfg, text, err := config.Load(args, conf.Version{Build: buildVersion(), Desc: description})
	switch {
	case errors.Is(err, conf.ErrHelpWanted):
		_, err = fmt.Fprintln(stdout, withUsageHeader(text))
		return err
	case errors.Is(err, conf.ErrVersionWanted):
		_, err = fmt.Fprintln(stdout, text)
		return err
	case err != nil:
		return err
	}
	// Errors of the commands below may quote anything; scrub the secrets.
	defer func() {
		if err != nil {
			err = redactError(err, newRedactor(cfg.Secrets()...))
		}
	}()

	cmd := cfg.Args
	if slices.Contains(cmd, "-h") || slices.Contains(cmd, "--help") {
		cmd = conf.Args{"help"} // "lnmuxd run --help": conf stopped at "run"
	}
	switch cmd.Num(0) {
	case "":
		return errors.New("no command given: want run, migrate, macaroon or version (see lnmuxd --help)")

	case "help":
		u, err := config.Usage(cfg)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, withUsageHeader(u))
		return err

	case "version":
		if err := noMoreArgs(cmd, 1); err != nil {
			return err
		}
		_, err := fmt.Fprintln(stdout, progName, buildVersion())
		return err

	case "run":
		if err := noMoreArgs(cmd, 1); err != nil {
			return err
		}
		if err := errors.Join(cfg.Validate(), cfg.ValidateRun()); err != nil {
			return err
		}
		log := newLogger(cfg, stderr)
		logStart(ctx, log, cfg, "run")
		if len(cfg.LND.Nodes) == 0 {
			log.WarnContext(ctx, "no LND nodes configured: invoices carry no route hints and no HTLC can arrive")
		}
		return runDaemon(ctx, cfg, log)

	case "check-config":
		return runCheckConfig(cfg, cmd, stdout)

	case "macaroon":
		if err := cfg.Validate(); err != nil {
			return err
		}
		log := newLogger(cfg, stderr)
		return runMacaroon(ctx, cfg, log, cmd[1:], func(s string) error {
			_, err := fmt.Fprintln(stdout, s)
			return err
		})

	case "migrate":
		sub := cmd.Num(1)
		switch sub {
		case "init", "up", "status":
		case "":
			return errors.New("migrate needs a subcommand: init, up or status")
		default:
			return fmt.Errorf("unknown migrate subcommand %q: want init, up or status", sub)
		}
		if err := noMoreArgs(cmd, 2); err != nil {
			return err
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
		log := newLogger(cfg, stderr)
		logStart(ctx, log, cfg, "migrate "+sub)
		return runMigrate(ctx, cfg, log, sub)

	default:
		return fmt.Errorf("unknown command %q: want run, migrate, macaroon or version (see lnmuxd --help)", cmd.Num(0))
	}
}

func noMoreArgs(cmd conf.Args, n int) error {
	if len(cmd) > n {
		return fmt.Errorf("unexpected argument %q after %q: options go before the command", cmd[n], strings.Join(cmd[:n], " "))
	}
	return nil
}

func logStart(ctx context.Context, log *slog.Logger, cfg *config.Config, command string) {
	driver, _ := cfg.Database()
	log.InfoContext(ctx, "starting lnmuxd", "version", buildVersion(), "command", command,
		"database", driver, "config", cfg)
	for _, w := range cfg.Warnings() {
		log.WarnContext(ctx, "original lnmux config key read differently", "key", w.Key, "line", w.Line, "what", w.Message)
	}
	for _, name := range config.UnknownEnv(cfg, os.Environ()) {
		log.WarnContext(ctx, "ignoring unknown environment variable", "name", name)
	}
}

// redactError scrubs the configured secrets from an error's message and
// keeps its chain for errors.Is.
func redactError(err error, r redactor) error { return redact.Error(err, r.Scrubber) }
