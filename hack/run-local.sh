#!/usr/bin/env bash
# make run-local: a local control plane (etcd, kube-apiserver, kube-controller-manager built from the
# Go module proxy), meshguard's CRD and the real Istio and Linkerd CRDs, the manager, and the samples.
# Runs until interrupted (Ctrl-C); point kubectl at bin/local/kubeconfig meanwhile.
#
# It expects a laptop where anything may already run: the manager's metrics and probe listeners
# take 8080 and 8081 when they are free and other free ports otherwise; processes left alive by a
# previous run that died are stopped first (a previous run that is still running is refused);
# every process it starts is checked to be alive before it says "meshguard is running", and any
# failure prints the tail of the failing log and exits non-zero.
#
# Environment:
#   MESHGUARD_LOCAL_DIR           where the kubeconfig, logs and pid files go (default bin/local)
#   MESHGUARD_LOCAL_MANAGER_ARGS  extra flags for the manager, for example --zap-log-level=debug
#   MESHGUARD_LOCAL_READY_TIMEOUT how long to wait for the samples to become Ready (default 120s)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir=${MESHGUARD_LOCAL_DIR:-"$root/bin/local"}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
ready_timeout=${MESHGUARD_LOCAL_READY_TIMEOUT:-120s}
# One "name pid starttime log" line per process this run started (directly or through localcluster);
# the start time (field 22 of /proc/PID/stat) tells a live process from a reused pid.
pidfile="$dir/processes"
lockfile="$dir/run-local.pid"

# starttime PID prints the process' start time in clock ticks since boot, or nothing when it is gone.
starttime() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null || true; }

# alive PID STARTTIME: the process is running and is the one recorded (not a reused pid).
alive() { [[ -n "$1" && "$(starttime "$1")" == "$2" ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# fail MESSAGE [LOG]: print the message and the tail of the log, then exit non-zero (the EXIT trap
# stops what was started).
fail() {
  echo "run-local: $1" >&2
  if [[ -n "${2:-}" && -f "$2" ]]; then
    echo "--- last lines of $2 ---" >&2
    tail -n 80 "$2" >&2
    echo "---" >&2
    # Said again after the log, so that a reader who sees only the end sees why.
    echo "run-local: $1" >&2
  fi
  exit 1
}

# record NAME PID LOG: remember a started process for the liveness checks and for the next run.
record() { echo "$1 $2 $(starttime "$2") $3" >>"$pidfile"; }

# stop_recorded: stop the processes of $pidfile that are still alive, newest first (the manager
# before the control plane, kube-apiserver before etcd); $pidfile.stopped keeps the list.
stop_recorded() {
  [[ -f "$pidfile" ]] || return 0
  local lines=() line name pid st _log i
  mapfile -t lines <"$pidfile"
  for ((i=${#lines[@]}-1; i>=0; i--)); do
    read -r name pid st _log <<<"${lines[i]}"
    alive "$pid" "$st" || continue
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do alive "$pid" "$st" || break; sleep 0.1; done
    if alive "$pid" "$st"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  mv -f "$pidfile" "$pidfile.stopped"
}

# check_alive: every recorded process is still running; otherwise fail with its log.
check_alive() {
  local name pid st log
  while read -r name pid st log; do
    alive "$pid" "$st" || fail "$name (pid $pid) is not running any more" "$log"
  done <"$pidfile"
}

# free_port PREFERRED: PREFERRED when nothing listens on it, else another port nothing listens on,
# chosen below the kernel's ephemeral range: a port inside it can be the local end of any outgoing
# connection (kubectl's, the manager's own to the API server) between the check and the bind.
random_port() {
  local low=32768
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  ((low > 21000)) || low=32768
  echo $((20000 + RANDOM % (low - 20000)))
}
free_port() {
  local p=$1
  for _ in $(seq 1 50); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    p=$(random_port)
  done
  fail "no free local port found for the manager's listeners"
}

# A previous run: refuse while its script still runs (it owns the directory), clean up after it
# when it died and left processes behind.
if [[ -f "$lockfile" ]]; then
  read -r prev prev_st <"$lockfile" || true
  if alive "${prev:-}" "${prev_st:-}"; then
    fail "a previous make run-local (pid $prev) is still running with $dir: stop it first (Ctrl-C in its terminal, or kill -INT $prev)"
  fi
fi
if [[ -f "$pidfile" ]]; then
  echo "stopping processes left running by a previous make run-local that did not stop them:"
  sed 's/^/  /' "$pidfile"
  stop_recorded
fi
echo "$$ $(starttime $$)" >"$lockfile"

assets=$(hack/build-controlplane.sh)
# Linkerd's CRDs (installed by bin/localcluster through test/testenv): make exports the chart; when
# the script runs on its own, use ../shared/linkerd-crds as make would.
if [[ -z "${MESHGUARD_LINKERD_CRDS_CHART:-}" && -d "$root/../shared/linkerd-crds" ]]; then
  export MESHGUARD_LINKERD_CRDS_CHART="$(cd "$root/../shared/linkerd-crds" && pwd)"
fi
export PATH="$assets:$PATH"
export KUBECONFIG="$dir/kubeconfig"
rm -f "$KUBECONFIG"
: >"$pidfile"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  echo
  echo "stopping meshguard and the local control plane"
  stop_recorded
  rm -f "$lockfile"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

echo "building the manager and the local cluster"
go build -o bin/manager .
go build -o bin/localcluster ./hack/localcluster

echo "starting the local control plane (logs: $dir/localcluster.log)"
KUBEBUILDER_ASSETS="$assets" bin/localcluster --dir "$dir" >"$dir/localcluster.log" 2>&1 &
localcluster=$!
record localcluster "$localcluster" "$dir/localcluster.log"
for _ in $(seq 1 240); do
  [[ -f "$KUBECONFIG" ]] && break
  alive "$localcluster" "$(starttime "$localcluster")" || break
  sleep 0.5
done
[[ -f "$KUBECONFIG" ]] || fail "the control plane did not start" "$dir/localcluster.log"
# etcd, kube-apiserver and kube-controller-manager: localcluster's children, recorded in the order
# it started them and before localcluster itself, so that stop_recorded interrupts localcluster
# first (it stops them in order) and only then whatever it left, kube-apiserver before etcd.
for child in $(pgrep -P "$localcluster" | sort -n); do
  comm=$(cat "/proc/$child/comm" 2>/dev/null || echo "$child")
  log="$dir/localcluster.log"
  [[ "$comm" == kube-controller* ]] && log="$dir/kube-controller-manager.log"
  echo "$comm $child $(starttime "$child") $log"
done >"$pidfile.new"
cat "$pidfile" >>"$pidfile.new" && mv "$pidfile.new" "$pidfile"

# A port free when chosen can be taken before the manager binds it (another program starting at
# the same moment): then new ports are chosen, at most three times.
for attempt in 1 2 3; do
  # After a failed bind, the preferred ports are not tried again (they may look free and not be).
  want_metrics=8080 want_probe=8081
  if [[ $attempt -gt 1 ]]; then want_metrics=$(random_port) want_probe=$(random_port); fi
  metrics_port=$(free_port "$want_metrics")
  probe_port=$(free_port "$want_probe")
  [[ "$probe_port" != "$metrics_port" ]] || probe_port=$(free_port $((metrics_port + 1)))
  [[ "$metrics_port" == 8080 && "$probe_port" == 8081 ]] || echo "ports 8080/8081 are taken: the manager's metrics are on $metrics_port, its probes on $probe_port"
  echo "starting meshguard (logs: $dir/manager.log)"
  # shellcheck disable=SC2086 # MESHGUARD_LOCAL_MANAGER_ARGS is a list of flags
  bin/manager --metrics-bind-address="127.0.0.1:$metrics_port" --health-probe-bind-address="127.0.0.1:$probe_port" \
    ${MESHGUARD_LOCAL_MANAGER_ARGS:-} >"$dir/manager.log" 2>&1 &
  manager=$!
  record manager "$manager" "$dir/manager.log"
  manager_st=$(starttime "$manager")
  port_taken=
  for _ in $(seq 1 240); do
    if ! alive "$manager" "$manager_st"; then
      wait "$manager" && rc=0 || rc=$?
      if [[ $attempt -lt 3 ]] && grep -q "address already in use" "$dir/manager.log"; then
        port_taken=1
        # The manager that exited is no longer one of this run's processes (check_alive would
        # otherwise report it as dead after the retry came up).
        sed -i "/^manager $manager /d" "$pidfile"
        echo "a port was taken before the manager bound it: choosing others"
        break
      fi
      fail "the manager exited at start (exit code $rc)" "$dir/manager.log"
    fi
    curl -fsS -o /dev/null "http://127.0.0.1:$probe_port/readyz" 2>/dev/null && break
    sleep 0.5
  done
  [[ -n "$port_taken" ]] || break
done
curl -fsS -o /dev/null "http://127.0.0.1:$probe_port/readyz" 2>/dev/null || fail "the manager is not ready at http://127.0.0.1:$probe_port/readyz" "$dir/manager.log"

echo "creating sample mesh CAs (no istiod or Linkerd runs here) and applying config/samples/"
kubectl apply --server-side -f config/samples/namespaces.yaml >/dev/null
kubectl apply --server-side -f config/samples/ambient/namespace.yaml >/dev/null
# team-a has no profile of its own: the platform floor protects it, and needs the mesh roots there too.
go run ./hack/samplemesh --kubeconfig "$KUBECONFIG" --namespaces shop,legacy,api,payments,orders,team-a,reviews
kubectl apply --server-side -k config/samples/
# The ambient sample: a namespace with a waypoint (Gateway API CRDs installed above).
kubectl apply --server-side -f config/samples/ambient/reviews.yaml
echo
echo "waiting for the profiles and the cluster profiles to become Ready"
if ! kubectl wait --for=condition=Ready msp --all -A --timeout="$ready_timeout" ||
  ! kubectl wait --for=condition=Ready cmsp --all --timeout="$ready_timeout"; then
  kubectl get msp -A -o wide || true
  kubectl get cmsp -o wide || true
  fail "not every sample profile and cluster profile became Ready within $ready_timeout" "$dir/manager.log"
fi
echo
kubectl get msp -A -o wide
kubectl get cmsp -o wide
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
echo "data plane and enforcement of reviews/reviews (ambient, with a waypoint):"
kubectl get msp -n reviews reviews -o jsonpath='  pods per data plane: {.status.dataPlane}{"\n"}{range .status.enforcement[*]}  {.rule}: {.enforcedBy} {.reason}{"\n"}{end}'
echo "expectations of orders/baseline (spec.expectations, answered against the live policies):"
kubectl get msp -n orders baseline -o jsonpath='{range .status.expectations[*]}  {.name}: want {.want}, got {.got} ({.layer}: {.decidedBy[*]}){"\n"}{end}'

# Said only when every process started is still running and the manager still answers.
check_alive
curl -fsS -o /dev/null "http://127.0.0.1:$probe_port/readyz" 2>/dev/null || fail "the manager stopped answering at http://127.0.0.1:$probe_port/readyz" "$dir/manager.log"
cat <<MSG

meshguard is running on the local control plane (metrics: http://127.0.0.1:$metrics_port/metrics,
probes: http://127.0.0.1:$probe_port/readyz). In another shell:
  export KUBECONFIG=$KUBECONFIG PATH=$assets:\$PATH
  kubectl get msp -A -o wide
  kubectl describe msp -n shop baseline
Press Ctrl-C to stop.
MSG
# Until Ctrl-C, or until the manager or the control plane dies (then say which, with its log).
while check_alive; do sleep 1; done
