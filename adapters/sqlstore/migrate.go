package sqlstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

//go:embed migrations
var migrationFiles embed.FS

// Errors of schema versioning, for callers that want to tell them apart.
var (
	// ErrSchemaNotInitialized: the database has no schema_migrations table.
	ErrSchemaNotInitialized = errors.New("database schema not initialized: run `lnmuxd migrate init`, then `lnmuxd migrate up`")
	// ErrSchemaOutdated: migrations known to this build are not applied.
	ErrSchemaOutdated = errors.New("database schema is not up to date: run `lnmuxd migrate up`")
	// ErrSchemaTooNew: the database has migrations this build does not
	// know, so a newer lnmux wrote it.
	ErrSchemaTooNew = errors.New("database schema is newer than this lnmux: upgrade lnmux")
)

const migrationsTable = "schema_migrations"

// Each dialect creates the bookkeeping table itself, so that it exists
// before (and independently of) numbered migrations.
var createMigrationsTable = map[string]string{
	DriverSQLite: `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER  PRIMARY KEY,
    name       TEXT     NOT NULL,
    applied_at DATETIME NOT NULL
)`,
	DriverPostgres: `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT      PRIMARY KEY,
    name       TEXT        NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
)`,
}

// migrationLockKey serialises `migrate up` runs against one Postgres
// database (pg_advisory_xact_lock); SQLite's write lock does it there.
const migrationLockKey int64 = 0x6c6e6d7578_01 // "lnmux", 1

// MigrationStatus describes one migration of this build.
type MigrationStatus struct {
	Version int
	Name    string
	Applied bool
	// AppliedAt is zero while the migration is pending.
	AppliedAt time.Time
}

// String formats the status as one line for `lnmuxd migrate status`.
func (m MigrationStatus) String() string {
	if !m.Applied {
		return fmt.Sprintf("%04d_%s  pending", m.Version, m.Name)
	}
	return fmt.Sprintf("%04d_%s  applied %s", m.Version, m.Name, m.AppliedAt.Format(time.RFC3339))
}

type migration struct {
	version int
	name    string
	sql     string
	// run, when set, is a migration written in Go (adopt.go), run instead
	// of sql in the migration's transaction.
	run func(tx *gorm.DB) error
}

type migrationRow struct {
	Version   int64     `gorm:"column:version;primaryKey;autoIncrement:false"`
	Name      string    `gorm:"column:name"`
	AppliedAt time.Time `gorm:"column:applied_at"`
}

func (migrationRow) TableName() string { return migrationsTable }

// loadMigrations reads the embedded NNNN_name.up.sql files of a dialect in
// version order.
func loadMigrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("embedded migrations for %s: %w", dialect, err)
	}
	var ms []migration
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".up.sql")
		if !ok {
			continue
		}
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("embedded migration %s: name must be NNNN_name.up.sql", e.Name())
		}
		b, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	ms = append(ms, goMigrations[dialect]...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("embedded migrations: version %d appears twice", ms[i].version)
		}
	}
	return ms, nil
}

// Migrator applies the embedded schema migrations. It works on a database
// whose schema is missing or outdated, which Open refuses.
type Migrator struct {
	c          *conn
	migrations []migration
}

// OpenMigrator connects to the database described by cfg without checking
// its schema.
func OpenMigrator(ctx context.Context, cfg Config) (*Migrator, error) {
	c, err := connect(ctx, cfg, 0)
	if err != nil {
		return nil, err
	}
	ms, err := loadMigrations(c.dialect())
	if err != nil {
		_ = c.close()
		return nil, err
	}
	return &Migrator{c: c, migrations: ms}, nil
}

// Close closes the database connection.
func (m *Migrator) Close() error { return m.c.close() }

// Init creates the schema_migrations table. It is idempotent.
func (m *Migrator) Init(ctx context.Context) error {
	err := m.c.db.WithContext(ctx).Exec(createMigrationsTable[m.c.dialect()]).Error
	return m.c.wrap("migrate init", err)
}

// Up applies the pending migrations in version order, each in its own
// transaction, and returns the ones it applied. On a database of the
// original lnmux it runs Init first (adopt.go). Running it again, or
// concurrently, applies nothing twice.
func (m *Migrator) Up(ctx context.Context) ([]MigrationStatus, error) {
	if err := m.initForOriginal(ctx); err != nil {
		return nil, err
	}
	if err := m.requireInit(ctx); err != nil {
		return nil, err
	}
	var done []MigrationStatus
	for _, mg := range m.migrations {
		st, applied, err := m.apply(ctx, mg)
		if err != nil {
			return done, m.c.wrap(fmt.Sprintf("migrate up %04d_%s", mg.version, mg.name), err)
		}
		if applied {
			done = append(done, st)
		}
	}
	return done, nil
}

func (m *Migrator) apply(ctx context.Context, mg migration) (MigrationStatus, bool, error) {
	st := MigrationStatus{Version: mg.version, Name: mg.name, Applied: true}
	applied := false
	err := m.c.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if m.c.dialect() == DriverPostgres {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrationLockKey).Error; err != nil {
				return err
			}
		}
		// Checked inside the transaction: another `migrate up` may have
		// applied it since Up read the table.
		var n int64
		if err := tx.Model(&migrationRow{}).Where("version = ?", mg.version).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		run := mg.run
		if run == nil {
			run = func(tx *gorm.DB) error { return tx.Exec(mg.sql).Error }
		}
		if err := run(tx); err != nil {
			return err
		}
		st.AppliedAt = time.Now().UTC().Truncate(time.Microsecond)
		row := migrationRow{Version: int64(mg.version), Name: mg.name, AppliedAt: st.AppliedAt}
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		applied = true
		return nil
	})
	return st, applied, err
}

// Status lists every migration this build knows, applied or pending.
func (m *Migrator) Status(ctx context.Context) ([]MigrationStatus, error) {
	if err := m.requireInit(ctx); err != nil {
		return nil, err
	}
	st, _, err := status(ctx, m.c, m.migrations)
	return st, err
}

func (m *Migrator) requireInit(ctx context.Context) error {
	ok, err := hasMigrationsTable(ctx, m.c)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s: %w", m.c.location(), ErrSchemaNotInitialized)
	}
	return nil
}

func hasMigrationsTable(ctx context.Context, c *conn) (bool, error) {
	var n int64
	var err error
	switch c.dialect() {
	case DriverSQLite:
		err = c.db.WithContext(ctx).Raw(
			"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", migrationsTable).Scan(&n).Error
	default:
		err = c.db.WithContext(ctx).Raw(
			"SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = ?", migrationsTable).Scan(&n).Error
	}
	if err != nil {
		return false, c.wrap("read schema version", err)
	}
	return n > 0, nil
}

// status merges the migrations of this build with the applied ones and
// returns the versions applied in the database that this build lacks.
func status(ctx context.Context, c *conn, ms []migration) ([]MigrationStatus, []int, error) {
	var rows []migrationRow
	if err := c.db.WithContext(ctx).Order("version").Find(&rows).Error; err != nil {
		return nil, nil, c.wrap("read schema version", err)
	}
	applied := make(map[int]migrationRow, len(rows))
	for _, r := range rows {
		applied[int(r.Version)] = r
	}
	out := make([]MigrationStatus, 0, len(ms))
	for _, mg := range ms {
		st := MigrationStatus{Version: mg.version, Name: mg.name}
		if r, ok := applied[mg.version]; ok {
			st.Applied = true
			st.AppliedAt = r.AppliedAt.UTC()
			delete(applied, mg.version)
		}
		out = append(out, st)
	}
	var unknown []int
	for v := range applied {
		unknown = append(unknown, v)
	}
	sort.Ints(unknown)
	return out, unknown, nil
}

// checkSchema fails unless every migration of this build, and no other, is
// applied.
func checkSchema(ctx context.Context, c *conn) error {
	err := schemaDiff(ctx, c)
	for _, e := range []error{ErrSchemaNotInitialized, ErrSchemaOutdated, ErrSchemaTooNew} {
		if errors.Is(err, e) {
			return fmt.Errorf("%s: %w", c.location(), err)
		}
	}
	return err
}

func schemaDiff(ctx context.Context, c *conn) error {
	ms, err := loadMigrations(c.dialect())
	if err != nil {
		return err
	}
	ok, err := hasMigrationsTable(ctx, c)
	if err != nil {
		return err
	}
	if !ok {
		return ErrSchemaNotInitialized
	}
	st, unknown, err := status(ctx, c, ms)
	if err != nil {
		return err
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%w (database has migration %d, this build knows up to %d)", ErrSchemaTooNew, unknown[len(unknown)-1], ms[len(ms)-1].version)
	}
	var pending []string
	for _, s := range st {
		if !s.Applied {
			pending = append(pending, fmt.Sprintf("%04d_%s", s.Version, s.Name))
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w (pending: %s)", ErrSchemaOutdated, strings.Join(pending, ", "))
	}
	return nil
}

// Migrate runs one `lnmuxd migrate` command ("init", "up" or "status") and
// returns the migrations it applied (up) or all of them (status).
func Migrate(ctx context.Context, cfg Config, cmd string) ([]MigrationStatus, error) {
	switch cmd {
	case "init", "up", "status":
	default:
		return nil, fmt.Errorf("unknown migrate command %q (want init, up or status)", cmd)
	}
	m, err := OpenMigrator(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer func() { _ = m.Close() }()
	switch cmd {
	case "init":
		return nil, m.Init(ctx)
	case "up":
		return m.Up(ctx)
	default:
		return m.Status(ctx)
	}
}
