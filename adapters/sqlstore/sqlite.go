package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/callbacks"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
	"gorm.io/gorm/migrator"
	"gorm.io/gorm/schema"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteDialector is gorm's view of SQLite through modernc.org/sqlite, the
// pure-Go driver lnd itself links. lnmux cannot use a driver that registers
// the same "sqlite" name (glebarez/go-sqlite does): both would end up in the
// lnmuxd binary next to lnd's packages and the second registration panics.
//
// lnmux only needs gorm's query builder here: the schema comes from the
// versioned SQL migrations, so the migrator is gorm's generic one and never
// used.
type sqliteDialector struct {
	dsn string
}

var (
	_ gorm.Dialector                     = sqliteDialector{}
	_ gorm.ErrorTranslator               = sqliteDialector{}
	_ gorm.SavePointerDialectorInterface = sqliteDialector{}
)

// Name implements gorm.Dialector.
func (sqliteDialector) Name() string { return "sqlite" }

// Initialize opens the connection pool and installs SQLite's statement
// shapes: RETURNING for generated columns (SQLite ≥ 3.35), and no row
// locking clause (a write transaction locks the whole database).
func (d sqliteDialector) Initialize(db *gorm.DB) error {
	pool, err := sql.Open("sqlite", d.dsn)
	if err != nil {
		return err
	}
	db.ConnPool = pool
	callbacks.RegisterDefaultCallbacks(db, &callbacks.Config{
		CreateClauses:        []string{"INSERT", "VALUES", "ON CONFLICT", "RETURNING"},
		UpdateClauses:        []string{"UPDATE", "SET", "FROM", "WHERE", "RETURNING"},
		DeleteClauses:        []string{"DELETE", "FROM", "WHERE", "RETURNING"},
		LastInsertIDReversed: true,
	})
	db.ClauseBuilders["FOR"] = func(clause.Clause, clause.Builder) {}
	return nil
}

// Migrator implements gorm.Dialector.
func (d sqliteDialector) Migrator(db *gorm.DB) gorm.Migrator {
	return migrator.Migrator{Config: migrator.Config{DB: db, Dialector: d}}
}

// DataTypeOf implements gorm.Dialector with SQLite's type affinities.
func (sqliteDialector) DataTypeOf(f *schema.Field) string {
	switch f.DataType { //nolint:exhaustive // partial on purpose: the values without a case take the path after the switch
	case schema.Bool, schema.Int, schema.Uint:
		return "integer"
	case schema.Float:
		return "real"
	case schema.Time:
		return "datetime"
	case schema.Bytes:
		return "blob"
	}
	return "text"
}

// DefaultValueOf implements gorm.Dialector.
func (sqliteDialector) DefaultValueOf(*schema.Field) clause.Expression {
	return clause.Expr{SQL: "NULL"}
}

// BindVarTo implements gorm.Dialector.
func (sqliteDialector) BindVarTo(w clause.Writer, _ *gorm.Statement, _ any) { _ = w.WriteByte('?') }

// QuoteTo implements gorm.Dialector: `table`.`column`.
func (sqliteDialector) QuoteTo(w clause.Writer, s string) {
	for i, part := range strings.Split(s, ".") {
		if i > 0 {
			_ = w.WriteByte('.')
		}
		_ = w.WriteByte('`')
		_, _ = w.WriteString(strings.ReplaceAll(part, "`", "``"))
		_ = w.WriteByte('`')
	}
}

// Explain implements gorm.Dialector (for gorm's logger only).
func (sqliteDialector) Explain(sql string, vars ...any) string {
	return logger.ExplainSQL(sql, nil, `"`, vars...)
}

// SavePoint implements gorm.SavePointerDialectorInterface.
func (sqliteDialector) SavePoint(tx *gorm.DB, name string) error {
	return tx.Exec("SAVEPOINT " + name).Error
}

// RollbackTo implements gorm.SavePointerDialectorInterface.
func (sqliteDialector) RollbackTo(tx *gorm.DB, name string) error {
	return tx.Exec("ROLLBACK TO SAVEPOINT " + name).Error
}

// Translate implements gorm.ErrorTranslator: unique and primary key
// violations become gorm.ErrDuplicatedKey, as on Postgres.
func (sqliteDialector) Translate(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %v", gorm.ErrDuplicatedKey, err) //nolint:errorlint // gorm.ErrDuplicatedKey classifies, as gorm does for Postgres
		}
	}
	return err
}

// isSQLiteBusy tells whether err is SQLITE_BUSY (any extended code):
// another connection holds the lock.
func isSQLiteBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}
