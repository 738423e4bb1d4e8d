package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lnmux/lnmux/adapters/connectrpc"
	lnmuxotel "github.com/lnmux/lnmux/adapters/otel"
	lnmuxprom "github.com/lnmux/lnmux/adapters/prometheus"
	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/app"
	"github.com/lnmux/lnmux/app/lnmuxd/config"
	"github.com/lnmux/lnmux/app/lnmuxd/wiring"
)

// shutdownTimeout bounds the graceful stop of the API server and the flush
// of pending spans.
const shutdownTimeout = 10 * time.Second

func storeConfig(c *config.Config, log *slog.Logger) sqlstore.Config {
	driver, dsn := c.Database()
	return sqlstore.Config{Driver: driver, DSN: dsn, Path: c.SQLitePath(), Logger: log}
}

// runMigrate runs "migrate init|up|status" against the configured database.
func runMigrate(ctx context.Context, cfg *config.Config, log *slog.Logger, cmd string) error {
	statuses, err := sqlstore.Migrate(ctx, storeConfig(cfg, log), cmd)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", cmd, err)
	}
	driver, _ := cfg.Database()
	switch cmd {
	case "init":
		log.InfoContext(ctx, "migrations table ready", "driver", driver)
	case "up":
		for _, s := range statuses {
			log.InfoContext(ctx, "migration applied", "migration", s.String())
		}
		log.InfoContext(ctx, "schema up to date", "driver", driver, "applied", len(statuses))
	default:
		for _, s := range statuses {
			log.InfoContext(ctx, "migration", "status", s.String())
		}
	}
	return nil
}

// runDaemon wires the adapters to the application and runs until ctx is
// done. With the leader lock (distributedLock.enabled) it starts as a hot
// standby: the API serves AddInvoice and GetInfo, every node is connected
// and checked, and the lock is awaited; once held, the store is fenced,
// state recovered and interception starts (standby.go). On ctx's end a
// leader hands over (handover.go). docs/high-availability.md.
func runDaemon(ctx context.Context, cfg *config.Config, log *slog.Logger) (err error) {
	shutdownTracing, err := lnmuxotel.Setup(ctx, lnmuxotel.Config{
		Endpoint:    cfg.Telemetry.OTLPEndpoint,
		ServiceName: cfg.Telemetry.ServiceName,
		Version:     buildVersion(),
		SampleRatio: cfg.Telemetry.SampleRatio,
	})
	if err != nil {
		return err
	}
	defer func() {
		// Flushed last, so that spans of the shutdown itself are kept.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		err = errors.Join(err, shutdownTracing(fctx))
	}()

	key, err := cfg.IdentityKeyBytes()
	if err != nil {
		return err
	}
	chain, err := cfg.ChainParams()
	if err != nil {
		return err
	}
	store, err := sqlstore.Open(ctx, storeConfig(cfg, log))
	if err != nil {
		return err
	}
	defer store.Close()
	var leader leaderLock
	if cfg.DistributedLock.Enabled.On() {
		if leader, err = newLeader(cfg, store, log); err != nil {
			return err
		}
	}

	metrics := lnmuxprom.New()
	lndNodes, err := newNodes(cfg, log)
	if err != nil {
		return err
	}
	// The HTLC path as the wire benchmarks measure it (wiring.NewMux).
	mux, gate, err := wiring.NewMux(wiring.Options{App: app.Config{
		IdentityKey:          key,
		Network:              chain,
		Policy:               cfg.RoutingPolicy.Domain(),
		FinalCLTVDelta:       cfg.Invoice.FinalCLTVDelta,
		FinalCLTVRejectDelta: cfg.Invoice.FinalCLTVRejectDelta,
		HoldTimeout:          cfg.Invoice.HoldTimeout,
		AcceptTimeout:        cfg.Invoice.AcceptTimeout,
		AutoFailMargin:       cfg.Invoice.AutoFailMargin,
		HintGrace:            cfg.Invoice.RouteHintGrace,
		AutoSettle:           cfg.AutoSettle,
		AfterSettleCommit:    failpoint(log),
	}, Nodes: lndNodes, Store: store, Metrics: metrics, Log: log})
	if err != nil {
		return err
	}

	role := newRole(store)
	guard := connectrpc.LeaderOnly(mux, role)
	ln, err := net.Listen("tcp", cfg.ListenAddress)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.ListenAddress, err)
	}
	defer ln.Close()
	required := authRequired(cfg, ln.Addr())
	if err := cfg.CheckCORS(required); err != nil {
		return err
	}
	authOpt, err := apiAuth(ctx, cfg, log, key, ln.Addr(), store)
	if err != nil {
		return err
	}
	tlsCfg, err := apiTLS(ctx, cfg, log)
	if err != nil {
		return err
	}
	rpcOpts := []connectrpc.Option{connectrpc.WithAllowedOrigins(cfg.CORS.AllowedOrigins...),
		authOpt, connectrpc.WithStreamLimits(streamLimits(cfg)), connectrpc.WithHealthChecker(role.health),
		bodyReadTimeout(cfg)}
	if cfg.Telemetry.TrustTraceParent.On() {
		rpcOpts = append(rpcOpts, connectrpc.WithTrustedTraceContext())
	}
	if cfg.Telemetry.OTLPEndpoint == "" {
		// Tracing off: every span would be a no-op, yet otelconnect builds
		// its attribute sets on every call, ~7 % of the server's CPU
		// (docs/benchmarks.md). A trusted caller's trace id still reaches
		// the log lines (logging.go) without it.
		rpcOpts = append(rpcOpts, connectrpc.WithoutTelemetry())
	}
	handler, err := connectrpc.NewHandler(guard, log, rpcOpts...)
	if err != nil {
		return err
	}
	srv := connectrpc.NewHTTPServer(cfg.ListenAddress, handler)
	srv.TLSConfig = tlsCfg
	// The API (with its latency metric) and the web console share the port.
	routes := http.NewServeMux()
	routes.Handle("/", metrics.InstrumentRPC(handler))
	console, err := mountConsole(cfg, routes)
	if err != nil {
		return err
	}
	// Browsers reach the port only by its own names while macaroons are
	// optional (exposure.go).
	if srv.Handler, err = exposeAPI(ctx, cfg, log, routes, required); err != nil {
		return err
	}
	// Metrics, pprof, health and the probes on a listener of their own
	// (instrumentation.go).
	instr, instrLn, err := newInstrumentation(cfg.InstrumentationAddress, metrics.Handler(), handler.Health(), role.readyz(), livez())
	if err != nil {
		return err
	}
	if err := exposeInstrumentation(ctx, cfg, log, instr, instrLn); err != nil {
		_ = instrLn.Close()
		return err
	}
	apiLn := limitConns(cfg, log, ln)
	pub := mux.PubKey()
	log.InfoContext(ctx, "lnmuxd serving", "listen", ln.Addr().String(), "tls", tlsCfg != nil,
		"instrumentation", instrLn.Addr().String(), "pubkey", pub.String(),
		"network", chain.Name, "nodes", len(lndNodes), "auto_settle", cfg.AutoSettle, "console", console,
		"leader_lock", leader != nil)

	g, gctx := errgroup.WithContext(ctx)
	leadDone := make(chan struct{})
	g.Go(func() error {
		defer close(leadDone)
		return lead(gctx, leadDeps{cfg: cfg, log: log, rows: store, leader: leader, mux: mux,
			nodes: standbyNodes(lndNodes), gate: gate, role: role, guard: guard})
	})
	g.Go(func() error {
		var err error
		if tlsCfg != nil {
			err = srv.ServeTLS(apiLn, "", "") // certificates from srv.TLSConfig
		} else {
			err = srv.Serve(apiLn)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("api server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := instr.Serve(instrLn); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("instrumentation server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		// The API stays up while a leader hands over (handover.go), so
		// that the standby guard answers until the new leader intercepts.
		<-leadDone
		log.InfoContext(ctx, "shutting down")
		role.stopping()
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer scancel()
		// The instrumentation port stays up until the API has drained.
		err := srv.Shutdown(sctx)
		return errors.Join(err, instr.Shutdown(sctx))
	})
	return g.Wait()
}

// errLeaderLost ends runDaemon when the leader lock is lost: lnmuxd exits
// non-zero so that its supervisor restarts it, as a standby.
var errLeaderLost = errors.New("leader lock lost: another lnmuxd may lead now; exiting so that a supervisor restarts this one as a standby")

// watchLeadership waits for the leader lock to be lost (or for ctx), then
// stops interception first, waits until the multiplexer has stopped (no
// HTLC is answered by this process any more), and only then fails, which
// stops the API server and exits non-zero. A nil lost never fires.
func watchLeadership(ctx context.Context, log *slog.Logger, lost <-chan struct{}, stopMux func(), muxDone <-chan struct{}) error {
	select {
	case <-ctx.Done():
		return nil
	case <-lost:
	}
	log.ErrorContext(ctx, "leader lock lost: stopping interception")
	stopMux()
	<-muxDone
	log.ErrorContext(ctx, "interception stopped after losing the leader lock: exiting")
	return errLeaderLost
}
