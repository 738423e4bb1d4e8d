#!/usr/bin/env bash
# build.sh builds Jaeger (all-in-one, v1.76.0, pinned as a Go tool in this
# module) once into ~/.cache/lnmux/jaeger/<version>/jaeger and prints the
# binary's path. The end-to-end trace test runs it as its OTLP backend.
# Jaeger has a module of its own here: its dependencies would clash with
# lnmux's (lnd's protobuf fork among them).
set -euo pipefail
cd "$(dirname "$0")"
version=$(awk '$1 == "github.com/jaegertracing/jaeger" { print $2 }' go.mod)
dir=${LNMUX_JAEGER_CACHE:-$HOME/.cache/lnmux/jaeger}/$version
bin=$dir/jaeger
if [[ ! -x $bin ]]; then
	mkdir -p "$dir"
	echo "jaeger: building $version into $dir (once; a few minutes)" >&2
	# A private output name: two builds at once (parallel test runs) must
	# not write into one file; the rename publishes a complete binary.
	tmp=$(mktemp "$dir/jaeger.XXXXXX")
	trap 'rm -f "$tmp"' EXIT
	go build -trimpath -o "$tmp" github.com/jaegertracing/jaeger/cmd/jaeger
	chmod 755 "$tmp"
	mv "$tmp" "$bin"
	trap - EXIT
fi
echo "$bin"
