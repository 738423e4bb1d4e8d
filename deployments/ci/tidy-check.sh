#!/usr/bin/env bash
# tidy-check.sh fails if go.mod or go.sum of the main module or of a tools
# module is not what `go mod tidy` would write: a dependency the code no
# longer uses, or one it uses without a requirement, shows up here before it
# surprises a build. Fix with `go mod tidy` in the module named.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
status=0
while read -r mod; do
	dir=$(dirname "$mod")
	if ! diff=$(cd "$dir" && go mod tidy -diff 2>&1); then
		echo "go mod tidy: $dir is not tidy (run: cd $dir && go mod tidy):" >&2
		echo "$diff" >&2
		status=1
	fi
# deployments/tools/jaeger only builds the Jaeger binary for the trace
# tests; tidying it would add the test-only requirements of all of Jaeger's
# dependencies (hundreds of go.sum lines) that the build never needs.
done < <(git ls-files '*go.mod' | grep -v -e node_modules -e '^deployments/tools/jaeger/')
exit $status
