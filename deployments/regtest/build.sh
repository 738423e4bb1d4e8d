#!/usr/bin/env bash
# build.sh builds the pinned regtest daemons (btcd, btcctl, lnd, lncli) from
# the module in ./build into a cache directory keyed by versions and prints
# that bin directory on stdout. The build is skipped when all four binaries
# are already there. Binaries are built into a temporary directory that is
# renamed into place, so a concurrent or interrupted build never leaves a
# partial cache.
#
# The versions are those of ./build/go.mod (lnd v0.21.3-beta and the btcd it
# requires); change them there with `go get module@version`.
#
# Env: LNMUX_REGTEST_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/lnmux/regtest).
set -euo pipefail

LND_TAGS="signrpc walletrpc chainrpc invoicesrpc routerrpc peersrpc dev"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/build"
export GOFLAGS="${GOFLAGS:-} -mod=readonly"
LND_VERSION="$(go list -m -f '{{.Version}}' github.com/lightningnetwork/lnd)"
BTCD_VERSION="$(go list -m -f '{{.Version}}' github.com/btcsuite/btcd)"
cache="${LNMUX_REGTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lnmux/regtest}"
dest="$cache/lnd-${LND_VERSION}_btcd-${BTCD_VERSION}/bin"

have_all() {
	for b in btcd btcctl lnd lncli; do [[ -x "$dest/$b" ]] || return 1; done
}

if have_all; then
	echo "$dest"
	exit 0
fi

mkdir -p "$(dirname "$dest")"
# Serialise builds (go test runs packages in parallel): the second waits and
# then finds the binaries.
if command -v flock >/dev/null; then
	exec 9>"$(dirname "$dest")/build.lock"
	flock 9
	if have_all; then
		echo "$dest"
		exit 0
	fi
fi
tmp="$(mktemp -d "$(dirname "$dest")/bin.tmp.XXXXXX")"
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT

# go build runs in the background so that a TERM or INT (the Go harness
# sends TERM when its test process dies) stops it at once.
pid=
trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null; exit 143' TERM INT
build() { # out pkg [tags]
	echo "building $1 ($2)" >&2
	go build -trimpath ${3:+-tags "$3"} -o "$tmp/$1" "$2" &
	pid=$!
	wait "$pid"
	pid=
}
build btcd github.com/btcsuite/btcd
build btcctl github.com/btcsuite/btcd/cmd/btcctl
build lnd github.com/lightningnetwork/lnd/cmd/lnd "$LND_TAGS"
build lncli github.com/lightningnetwork/lnd/cmd/lncli "$LND_TAGS"

# Another build may have won the race; then keep its result.
if have_all; then
	echo "$dest"
	exit 0
fi
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "$dest"
