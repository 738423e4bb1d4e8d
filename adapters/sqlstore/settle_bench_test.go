package sqlstore

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lnmux/lnmux/adapters/sqlstore/pgtest"
	"github.com/lnmux/lnmux/domain"
)

// BenchmarkSettle measures settle requests per second through the store
// with many concurrent callers, with the group commit (MaxSettleBatch 128,
// the default) and without it (1: one transaction per request), on SQLite
// and on a Postgres cluster of its own with fsync and synchronous_commit on.
// It reports settles/s and the mean settles per transaction.
//
//	go test -run XXX -bench Settle ./adapters/sqlstore
func BenchmarkSettle(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchSettleMatrix(b, func(b *testing.B) Config {
			return Config{Driver: DriverSQLite, Path: filepath.Join(b.TempDir(), "lnmux.db")}
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
		benchSettleMatrix(b, func(b *testing.B) Config {
			dsn, err := cluster.CreateDatabase(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			return Config{Driver: DriverPostgres, DSN: dsn + "&synchronous_commit=on", MaxOpenConns: 16}
		})
	})
}

func benchSettleMatrix(b *testing.B, config func(b *testing.B) Config) {
	for _, batch := range []int{1, defaultMaxSettleBatch} {
		for _, callers := range benchCallers {
			b.Run(fmt.Sprintf("batch=%d/callers=%d", batch, callers), func(b *testing.B) {
				cfg := config(b)
				cfg.MaxSettleBatch = batch
				benchSettle(b, cfg, callers)
			})
		}
	}
}

func benchSettle(b *testing.B, cfg Config, callers int) {
	st := openMigrated(b, cfg)
	invs := make([]domain.Invoice, b.N)
	for i := range invs {
		invs[i] = settleRequest(b)
	}
	batches, settles := st.settles.batches.Load(), st.settles.settles.Load()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range callers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(invs)) {
					return
				}
				if _, err := st.RequestSettle(b.Context(), invs[i]); err != nil {
					b.Errorf("request settle: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "settles/s")
	if n := st.settles.batches.Load() - batches; n > 0 {
		b.ReportMetric(float64(st.settles.settles.Load()-settles)/float64(n), "settles/tx")
		if f := st.settles.oneByOne.Load(); f > 0 {
			b.Errorf("%d batches fell back to inserting one request at a time", f)
		}
	}
}

var benchCallers = []int{1, 64, 256}
