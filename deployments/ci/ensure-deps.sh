#!/usr/bin/env bash
# ensure-deps.sh installs what the test suite needs on a fresh Debian machine:
# PostgreSQL server binaries (the tests start their own throwaway cluster).
# Go tools come from the module proxy through the Taskfile.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
	exit 0
fi
if [[ -n ${LNMUX_TEST_POSTGRES_DSN:-} ]]; then
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "ensure-deps: PostgreSQL is missing; install Debian's postgresql (as root: apt-get install -y postgresql) or set LNMUX_TEST_POSTGRES_DSN" >&2
	exit 1
fi
echo "ensure-deps: installing Debian postgresql" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql >/dev/null
# The package starts a cluster of its own; the tests do not use it.
if command -v pg_ctlcluster >/dev/null; then
	for v in /usr/lib/postgresql/*; do
		pg_ctlcluster "$(basename "$v")" main stop 2>/dev/null || true
	done
fi
