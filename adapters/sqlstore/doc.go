// Package sqlstore is the persistence adapter: it implements
// ports.InvoiceStore and ports.Leader with gorm on Postgres or on an embedded
// SQLite file.
//
// The schema is versioned: embedded SQL files per dialect are applied by a
// Migrator (lnmuxd migrate init|up|status), never implicitly, and Open refuses
// a database whose schema is not exactly the one this build knows.
package sqlstore
