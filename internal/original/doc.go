// Package original states, as data of this repository, the interfaces the
// original lnmux (bottlepay/lnmux, later NYDIG-OSS/lnmux, as of its commit
// 9a514af of 2024-01-10) published and that its users depend on:
//
//   - Wire: its gRPC API (package, service, methods, messages, fields with
//     their numbers and types, enum values). lnmux_original.proto is
//     rendered from it (go run ./internal/original/genproto) and serves
//     `buf breaking` (proto/check-original.sh) and the generated client of
//     adapters/connectrpc/originaltest.
//   - ConfigKeys and ExampleConfig: its lnmux.yml keys and a file in its
//     shape (app/lnmuxd's compatibility tests).
//   - Migrations: its Postgres schema, version by version
//     (adapters/sqlstore/origdb builds a database from it).
//
// The facts are restated in this repository's own form so that the
// compatibility tests run on any clone. A copy of the original's files,
// named by LNMUX_REFERENCE_DIR, is an optional cross-check: see Reference and
// docs/compatibility.md.
//
// For tests and their tools only.
package original
