#!/usr/bin/env bash
# check-generated.sh regenerates the API code with buf and fails if that
# changed anything under proto/ or adapters/connectrpc/originaltest/
# (modified, deleted or new untracked files),
# so committed generated code always matches the .proto sources.
#
# Run from anywhere inside the repository. Needs the local plugins in .bin/
# (see buf.gen.yaml) and git.
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root"

for p in protoc-gen-go protoc-gen-connect-go; do
	if [[ ! -x .bin/$p ]]; then
		echo "check-generated: .bin/$p missing; install it as buf.gen.yaml explains" >&2
		exit 1
	fi
done

buf=(go tool -modfile=deployments/tools/go.mod buf)
"${buf[@]}" lint
"${buf[@]}" generate
# The test-only client of the original API (adapters/connectrpc/originaltest).
ref=${LNMUX_REFERENCE_DIR:-$root/../shared/reference}
original=adapters/connectrpc/originaltest
"${buf[@]}" generate --template "$original/buf.gen.yaml" "$ref/lnmux-original.proto"

status=0
if ! git diff --exit-code --stat -- proto/ "$original/"; then
	status=1
fi
untracked=$(git ls-files --others --exclude-standard -- 'proto/*.go' "$original/*.go")
if [[ -n $untracked ]]; then
	echo "check-generated: untracked generated files under proto/:" >&2
	echo "$untracked" >&2
	status=1
fi
if ((status != 0)); then
	echo "check-generated: generated code is out of date; run buf generate and commit the result" >&2
fi
exit "$status"
