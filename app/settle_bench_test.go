package app

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lnmux/lnmux/adapters/sqlstore"
	"github.com/lnmux/lnmux/adapters/sqlstore/pgtest"
	"github.com/lnmux/lnmux/domain"
)

// BenchmarkSettleInvoice measures SettleInvoice with 64 concurrent callers
// through the app and the SQL store: the settlement write (group commit,
// docs/store.md), then the settle answers to the nodes. Accepted sets of
// one HTLC are prepared before the timer starts. Postgres is a cluster of
// its own with fsync and synchronous_commit on; batch=1 stores each
// settlement in its own transaction, as before the group commit.
//
//	go test -run XXX -bench SettleInvoice -benchtime 2000x ./app
func BenchmarkSettleInvoice(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchSettleInvoiceBatches(b, func(b *testing.B) sqlstore.Config {
			return sqlstore.Config{Driver: sqlstore.DriverSQLite, Path: filepath.Join(b.TempDir(), "lnmux.db")}
		})
	})
	b.Run("postgres", func(b *testing.B) {
		cluster, err := pgtest.StartWith(pgtest.Options{Durable: true})
		if err != nil {
			b.Fatalf("durable postgres: %v", err)
		}
		b.Cleanup(func() {
			if !cluster.External {
				_ = cluster.Stop()
			}
		})
		benchSettleInvoiceBatches(b, func(b *testing.B) sqlstore.Config {
			dsn, err := cluster.CreateDatabase(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			return sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn + "&synchronous_commit=on", MaxOpenConns: 16}
		})
	})
}

func benchSettleInvoiceBatches(b *testing.B, config func(b *testing.B) sqlstore.Config) {
	for _, batch := range []int{1, 128} {
		b.Run(fmt.Sprintf("batch=%d/callers=64", batch), func(b *testing.B) {
			cfg := config(b)
			cfg.MaxSettleBatch = batch
			benchSettleInvoice(b, cfg, 64)
		})
	}
}

func benchSettleInvoice(b *testing.B, cfg sqlstore.Config, callers int) {
	for _, cmd := range []string{"init", "up"} {
		if _, err := sqlstore.Migrate(b.Context(), cfg, cmd); err != nil {
			b.Fatalf("migrate %s: %v", cmd, err)
		}
	}
	st, err := sqlstore.Open(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	// Writes and answers run on goroutines of their own, as in lnmuxd.
	h := newHarness(b, 2, func(c *Config) { c.Go = nil })
	h.restartWith(st)

	var mu sync.Mutex
	accepted := map[domain.PaymentHash]domain.SetID{}
	all := make(chan struct{})
	acc := h.subscribe()
	go func() {
		for ev := range acc {
			mu.Lock()
			accepted[ev.Hash] = ev.SetID
			if len(accepted) == b.N {
				close(all)
			}
			mu.Unlock()
		}
	}()
	hashes := make([]domain.PaymentHash, b.N)
	for i := range hashes {
		inv := h.invoice(1000, time.Hour)
		hashes[i] = inv.Hash
		h.send(h.build(inv, part{node: h.nodes[i%2], amount: 1000}))
	}
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d sets accepted", len(accepted), b.N)
	}

	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range callers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(hashes)) {
					return
				}
				mu.Lock()
				set := accepted[hashes[i]]
				mu.Unlock()
				if err := h.mux.SettleInvoice(b.Context(), hashes[i], set); err != nil {
					b.Errorf("settle invoice: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "settles/s")
}
