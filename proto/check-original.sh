#!/usr/bin/env bash
# check-original.sh fails if proto/ is not wire- and JSON-compatible with the
# original lnmux API (bottlepay/lnmux lnmux.proto): `buf breaking` with the
# WIRE_JSON rules of buf.yaml against the original's published proto, which
# is kept outside the repository (docs/compatibility.md). No rule is
# excepted.
#
# LNMUX_REFERENCE_DIR overrides where the original's files are (default:
# ../shared/reference beside the repository root).
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root"
ref=${LNMUX_REFERENCE_DIR:-$root/../shared/reference}
original=$ref/lnmux-original.proto
if [[ ! -f $original ]]; then
	echo "check-original: $original missing: put the original lnmux's published interfaces there (or set LNMUX_REFERENCE_DIR)" >&2
	exit 1
fi
go tool -modfile=deployments/tools/go.mod buf breaking proto --against "$original"
