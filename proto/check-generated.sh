#!/usr/bin/env bash
# check-generated.sh regenerates the API code with buf and fails if that
# changed anything under proto/, adapters/connectrpc/originaltest/,
# internal/original/lnmux_original.proto or in the TypeScript client's
# adapters/web/client/gen/ (modified, deleted or new untracked files),
# so committed generated code always matches the .proto sources.
#
# Run from anywhere inside the repository. Needs the local plugins in .bin/
# (see buf.gen.yaml) and git.
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root"

for p in .bin/protoc-gen-go .bin/protoc-gen-connect-go adapters/web/node_modules/.bin/protoc-gen-es; do
	if [[ ! -x $p ]]; then
		echo "check-generated: $p missing; install it as buf.gen.yaml explains (protoc-gen-es: npm ci in adapters/web)" >&2
		exit 1
	fi
done

buf=(go tool -modfile=deployments/tools/go.mod buf)
"${buf[@]}" lint
"${buf[@]}" generate
# The original API's proto, rendered from internal/original, and its
# test-only client (adapters/connectrpc/originaltest).
go run ./internal/original/genproto
original=adapters/connectrpc/originaltest
"${buf[@]}" generate --template "$original/buf.gen.yaml"

status=0
if ! git diff --exit-code --stat -- proto/ "$original/" internal/original/lnmux_original.proto adapters/web/client/gen/; then
	status=1
fi
untracked=$(git ls-files --others --exclude-standard -- 'proto/*.go' "$original/*.go" 'adapters/web/client/gen/*.ts')
if [[ -n $untracked ]]; then
	echo "check-generated: untracked generated files:" >&2
	echo "$untracked" >&2
	status=1
fi
if ((status != 0)); then
	echo "check-generated: generated code is out of date; run buf generate and commit the result" >&2
fi
exit "$status"
