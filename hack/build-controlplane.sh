#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager, kubectl) from the
# Go module proxy into bin/controlplane-<kubernetes version>/ and prints that directory.
# The versions are pinned in hack/controlplane/go.mod. A cached binary is reused only when the
# version it reports matches the pin (a stale or foreign binary is rebuilt), and a KUBEBUILDER_ASSETS
# directory that already holds etcd and kube-apiserver is used as it is.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/hack/controlplane"
version=$(awk '$1=="k8s.io/kubernetes"{print $2; exit}' "$mod/go.mod")
etcd_version=$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2; exit}' "$mod/go.mod")
out="$root/bin/controlplane-$version"
bins=(etcd kube-apiserver kube-controller-manager kubectl)

if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/etcd" && -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]]; then
  echo "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS" >&2
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

# pinned reports whether a cached binary was built from the pinned version. Every binary is built
# with -trimpath from hack/controlplane, so `go version -m` names the module version it came from.
pinned() {
  local b=$1 want
  case "$b" in
    etcd) want="go.etcd.io/etcd/server/v3	$etcd_version" ;;
    *) want="k8s.io/kubernetes	$version" ;;
  esac
  go version -m "$out/$b" 2>/dev/null | grep -qF "$want"
}

missing=()
for b in "${bins[@]}"; do
  if [[ -x "$out/$b" ]] && pinned "$b"; then continue; fi
  [[ -e "$out/$b" ]] && echo "  $out/$b is not built from the pinned version: rebuilding it" >&2
  missing+=("$b")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "$out"
  exit 0
fi

mkdir -p "$out"
ldflags="-X k8s.io/component-base/version.gitVersion=$version"
start=$(date +%s)
echo "building ${missing[*]} $version from the Go module proxy into $out (cold: about 10-15 minutes on 2 cores)" >&2
cd "$mod"
for b in "${missing[@]}"; do
  case "$b" in
    etcd) pkg=go.etcd.io/etcd/server/v3 ;;
    kubectl) pkg=k8s.io/kubernetes/cmd/kubectl ;;
    *) pkg=k8s.io/kubernetes/cmd/$b ;;
  esac
  # Build to a temporary name first so that an interrupted build never leaves a broken binary.
  go build -trimpath -ldflags "$ldflags" -o "$out/.$b.tmp" "$pkg"
  mv "$out/.$b.tmp" "$out/$b"
  echo "  built $b" >&2
done
echo "control plane built in $(( $(date +%s) - start ))s" >&2
echo "$out"
