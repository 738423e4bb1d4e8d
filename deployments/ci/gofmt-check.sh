#!/usr/bin/env bash
# gofmt-check.sh fails if a tracked Go file (generated code aside) is not
# gofmt-formatted.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
files=$(git ls-files '*.go' | grep -v -E '\.(pb|connect)\.go$' || true)
bad=$(gofmt -l $files)
if [[ -n $bad ]]; then
	echo "gofmt: these files need formatting (gofmt -w):" >&2
	echo "$bad" >&2
	exit 1
fi
