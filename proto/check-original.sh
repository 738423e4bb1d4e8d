#!/usr/bin/env bash
# check-original.sh fails if proto/ is not wire- and JSON-compatible with the
# original lnmux API (bottlepay/lnmux): `buf breaking` with the WIRE_JSON
# rules of buf.yaml against internal/original/lnmux_original.proto, the
# repository's own statement of the original's wire contract
# (docs/compatibility.md). No rule is excepted.
#
# Cross-check, optional: when a copy of the original's published files is at
# hand (the directory LNMUX_REFERENCE_DIR names), proto/ is also checked against its
# lnmux-original.proto, and that file and ours must state the same contract
# (`buf breaking` both ways with the PACKAGE rules: same messages, fields,
# numbers, names, types, enum values, services and RPCs). Without a copy the
# first check alone runs.
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root"
buf=(go tool -modfile=deployments/tools/go.mod buf)
ours=internal/original/lnmux_original.proto
"${buf[@]}" breaking proto --against "$ours"

if [[ -n ${LNMUX_REFERENCE_DIR:-} ]]; then
	ref=$LNMUX_REFERENCE_DIR
	if [[ ! -d $ref ]]; then
		echo "check-original: LNMUX_REFERENCE_DIR=$ref is not a directory (unset it to check against the repository's own data only)" >&2
		exit 1
	fi
else
	echo "check-original: checked against $ours (LNMUX_REFERENCE_DIR unset: no copy of the original's files to cross-check with)"
	exit 0
fi
theirs=$ref/lnmux-original.proto
if [[ ! -f $theirs ]]; then
	echo "check-original: $theirs missing in the copy of the original's files" >&2
	exit 1
fi
"${buf[@]}" breaking proto --against "$theirs"
same='{"version":"v2","breaking":{"use":["PACKAGE","WIRE_JSON"]}}'
if ! "${buf[@]}" breaking "$ours" --against "$theirs" --config "$same" ||
	! "${buf[@]}" breaking "$theirs" --against "$ours" --against-config "$same" --config "$same"; then
	echo "check-original: $ours and $theirs state different contracts: correct internal/original/wire.go and run task generate" >&2
	exit 1
fi
echo "check-original: checked against $ours and cross-checked with $theirs"
