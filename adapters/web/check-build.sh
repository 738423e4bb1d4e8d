#!/usr/bin/env bash
# check-build.sh rebuilds the web console (type check + vite build into
# dist/, which lnmuxd embeds) and fails if that changed anything, so the
# committed build always matches console/ and client/. Needs node_modules
# (npm ci here; the Taskfile's web-deps task).
set -euo pipefail
cd "$(dirname "$0")"
if [[ ! -x node_modules/.bin/vite ]]; then
	echo "check-build: adapters/web/node_modules missing; run npm ci in adapters/web" >&2
	exit 1
fi
npm run --silent build >/dev/null
status=0
if ! git diff --exit-code --stat -- dist/; then
	status=1
fi
untracked=$(git ls-files --others --exclude-standard -- dist/)
if [[ -n $untracked ]]; then
	echo "check-build: untracked files in dist/:" >&2
	echo "$untracked" >&2
	status=1
fi
if ((status != 0)); then
	echo "check-build: the console build in adapters/web/dist is out of date; run npm run build there and commit dist/" >&2
fi
exit "$status"
