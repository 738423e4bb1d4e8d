#!/usr/bin/env bash
# vulncheck.sh runs govulncheck (pinned in deployments/tools/vuln/go.mod) on
# every package of the main module against a local copy of the Go
# vulnerability database, and fails on a vulnerability whose symbol the code
# calls unless deployments/tools/vuln/accepted.txt names it with a reason.
#
# The database's public server cannot be reached from the build machines, but
# its source, golang.org/x/vulndb, is a Go module on the proxy: its data/osv
# folder holds every report as an OSV file. The pinned module version is the
# database version; vulndb's own indexdb command builds the v1 database
# (index/db.json, index/modules.json, ID/GO-*.json) from it once into
# ~/.cache/lnmux/vulndb/<version>. Upgrade the database with
#   (cd deployments/tools/vuln && go get golang.org/x/vulndb@latest && go mod tidy)
# docs/linting.md says how findings are judged.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
mod=$root/deployments/tools/vuln/go.mod
version=$(awk '$1 == "golang.org/x/vulndb" { print $2 }' "$mod")
db=${LNMUX_VULNDB_CACHE:-$HOME/.cache/lnmux/vulndb}/$version
if [[ ! -s $db/index/db.json ]]; then
	echo "vulncheck: building the vulnerability database $version into $db (once)" >&2
	src=$(cd deployments/tools/vuln && go mod download golang.org/x/vulndb && go list -m -f '{{.Dir}}' golang.org/x/vulndb)
	mkdir -p "$(dirname "$db")"
	tmp=$(mktemp -d "$db.tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	go tool -modfile="$mod" indexdb -vulns "$src/data/osv" -out "$tmp"
	# The reports' own timestamps come from vulndb's git history, which a
	# module zip lacks: stamp the database with the pseudo-version's time so
	# govulncheck reports how old the data is.
	stamp=$(sed -E 's/.*-([0-9]{14})-[0-9a-f]{12}$/\1/' <<<"$version")
	printf '{"modified":"%s-%s-%sT%s:%s:%sZ"}' "${stamp:0:4}" "${stamp:4:2}" "${stamp:6:2}" "${stamp:8:2}" "${stamp:10:2}" "${stamp:12:2}" >"$tmp/index/db.json"
	gzip -c "$tmp/index/db.json" >"$tmp/index/db.json.gz"
	rm -rf "$db"
	mv "$tmp" "$db"
	trap - EXIT
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# govulncheck exits non-zero when it finds something; the gate decides.
go tool -modfile="$mod" govulncheck -db "file://$db" -format json ./... >"$out" || true
(cd deployments/tools/vuln && go run ./vulngate -accepted "$root/deployments/tools/vuln/accepted.txt") <"$out"
