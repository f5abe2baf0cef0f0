#!/usr/bin/env bash
# make run-local: a local control plane (etcd, kube-apiserver, kube-controller-manager built from the
# Go module proxy), meshguard's CRD and the real Istio and Linkerd CRDs, the manager, and the samples.
# Runs until interrupted (Ctrl-C); point kubectl at bin/local/kubeconfig meanwhile.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir="$root/bin/local"
mkdir -p "$dir"
assets=$(hack/build-controlplane.sh)
# Linkerd's CRDs (installed by bin/localcluster through test/testenv): make exports the chart; when
# the script runs on its own, use ../shared/linkerd-crds as make would.
if [[ -z "${MESHGUARD_LINKERD_CRDS_CHART:-}" && -d "$root/../shared/linkerd-crds" ]]; then
  export MESHGUARD_LINKERD_CRDS_CHART="$(cd "$root/../shared/linkerd-crds" && pwd)"
fi
export PATH="$assets:$PATH"
export KUBECONFIG="$dir/kubeconfig"
rm -f "$KUBECONFIG"

pids=()
cleanup() {
  trap - EXIT INT TERM
  echo
  echo "stopping meshguard and the local control plane"
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -INT "${pids[i]}" 2>/dev/null || true; wait "${pids[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

echo "starting the local control plane (logs: $dir/localcluster.log)"
go build -o bin/localcluster ./hack/localcluster
KUBEBUILDER_ASSETS="$assets" bin/localcluster --dir "$dir" >"$dir/localcluster.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do [[ -f "$KUBECONFIG" ]] && break; sleep 0.5; done
[[ -f "$KUBECONFIG" ]] || { echo "control plane did not start:"; cat "$dir/localcluster.log"; exit 1; }

echo "starting meshguard (logs: $dir/manager.log)"
bin/manager --metrics-bind-address=127.0.0.1:8080 --health-probe-bind-address=127.0.0.1:8081 >"$dir/manager.log" 2>&1 &
pids+=($!)

echo "creating sample mesh CAs (no istiod or Linkerd runs here) and applying config/samples/"
kubectl apply --server-side -f config/samples/namespaces.yaml >/dev/null
go run ./hack/samplemesh --kubeconfig "$KUBECONFIG" --namespaces shop,legacy,api,payments
kubectl apply --server-side -k config/samples/
echo
echo "waiting for the profiles to become Ready"
kubectl wait --for=condition=Ready msp --all -A --timeout=60s || true
echo
kubectl get msp -A -o wide
echo
echo "generated objects:"
kubectl get peerauthentications,requestauthentications,authorizationpolicies.security.istio.io,networkpolicies \
  -A -l app.kubernetes.io/managed-by=meshguard
if kubectl get crd servers.policy.linkerd.io >/dev/null 2>&1; then
  kubectl get servers.policy.linkerd.io,authorizationpolicies.policy.linkerd.io,meshtlsauthentications,networkauthentications,httproutes.policy.linkerd.io \
    -A -l app.kubernetes.io/managed-by=meshguard
fi
echo
echo "Linkerd default inbound policy set by meshguard:"
kubectl get namespace payments -o jsonpath='{.metadata.name}: {.metadata.annotations.config\.linkerd\.io/default-inbound-policy}{"\n"}'
echo
echo "certificates of shop/baseline:"
kubectl get msp -n shop baseline -o jsonpath='{range .status.certificates[*]}  {.role} {.subject}: {.state}, expires {.notAfter}{"\n"}{end}'
echo "certificates of payments/baseline:"
kubectl get msp -n payments baseline -o jsonpath='{range .status.certificates[*]}  {.role} {.subject}: {.state}, expires {.notAfter}{"\n"}{end}'
cat <<MSG

meshguard is running on the local control plane. In another shell:
  export KUBECONFIG=$KUBECONFIG PATH=$assets:\$PATH
  kubectl get msp -A -o wide
  kubectl describe msp -n shop baseline
Press Ctrl-C to stop.
MSG
wait "${pids[1]}"
