#!/usr/bin/env bash
# ensure-deps.sh installs what the test suite needs on a fresh Debian machine:
# PostgreSQL server binaries (the tests start their own throwaway cluster)
# and Chromium (the web console's browser tests drive it headless; no tool
# may download a browser of its own). Go tools come from the module proxy
# and npm packages from the npm registry, through the Taskfile.
set -euo pipefail

missing=()
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && [[ -z ${LNMUX_TEST_POSTGRES_DSN:-} ]]; then
	missing+=(postgresql)
fi
if [[ -z ${LNMUX_TEST_CHROMIUM:-} ]] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
	missing+=(chromium)
fi
if ((${#missing[@]} == 0)); then
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "ensure-deps: missing ${missing[*]}; install Debian's packages (as root: apt-get install -y ${missing[*]})," \
		"or set LNMUX_TEST_POSTGRES_DSN / LNMUX_TEST_CHROMIUM" >&2
	exit 1
fi
echo "ensure-deps: installing Debian ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
# The postgresql package starts a cluster of its own; the tests do not use it.
if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v pg_ctlcluster >/dev/null; then
	for v in /usr/lib/postgresql/*; do
		pg_ctlcluster "$(basename "$v")" main stop 2>/dev/null || true
	done
fi
