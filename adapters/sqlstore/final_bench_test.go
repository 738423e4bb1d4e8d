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

// BenchmarkSettleThenFinal measures whole invoices per second through the
// store: each of many concurrent callers stores a settle request (group
// commit) and then its final status (an Update that changes the status:
// since the event log, one that holds the sequence lock through its
// COMMIT, docs/store.md "The event log"). On SQLite and on a Postgres
// cluster of its own with fsync and synchronous_commit on.
//
//	go test -run XXX -bench SettleThenFinal ./adapters/sqlstore
func BenchmarkSettleThenFinal(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		for _, callers := range []int{1, 64} {
			b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
				benchSettleThenFinal(b, Config{Driver: DriverSQLite, Path: filepath.Join(b.TempDir(), "lnmux.db")}, callers)
			})
		}
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
		for _, callers := range []int{1, 64} {
			b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
				dsn, err := cluster.CreateDatabase(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				benchSettleThenFinal(b, Config{Driver: DriverPostgres, DSN: dsn + "&synchronous_commit=on", MaxOpenConns: 16}, callers)
			})
		}
	})
}

func benchSettleThenFinal(b *testing.B, cfg Config, callers int) {
	st := openMigrated(b, cfg)
	invs := make([]domain.Invoice, b.N)
	for i := range invs {
		invs[i] = settleRequest(b)
	}
	final := func(inv *domain.Invoice) error {
		_, err := inv.ApplyFinal(inv.HTLCs[0].Circuit, true, time.Now())
		return err
	}
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
				if _, err := st.Update(b.Context(), invs[i].Hash, final); err != nil {
					b.Errorf("final: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "invoices/s")
}
