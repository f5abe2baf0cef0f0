#!/usr/bin/env bash
# Builds Kyverno's background controller (the peer `make bench` compares meshguard with) from the
# Go module proxy into bin/kyverno-<version>/background-controller and prints the binary's path.
# The version is pinned in hack/kyverno/go.mod. The cold build takes about 10 minutes and 3 GB of
# memory on 2 cores, so it runs at the lowest CPU priority; a cached binary of the pinned version
# is reused.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/hack/kyverno"
version=$(awk '$1=="github.com/kyverno/kyverno"{print $2; exit}' "$mod/go.mod")
out="$root/bin/kyverno-$version"
bin="$out/background-controller"

if [[ -x "$bin" ]] && go version -m "$bin" 2>/dev/null | grep -qF "github.com/kyverno/kyverno	$version"; then
  echo "$bin"
  exit 0
fi
mkdir -p "$out"
start=$(date +%s)
echo "building Kyverno $version background-controller from the Go module proxy into $out (cold: about 10 minutes, 3 GB)" >&2
cd "$mod"
# Build to a temporary name first so that an interrupted build never leaves a broken binary.
nice -n 19 go build -trimpath -o "$out/.background-controller.tmp" github.com/kyverno/kyverno/cmd/background-controller
mv "$out/.background-controller.tmp" "$bin"
echo "Kyverno built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
