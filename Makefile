# meshguard — a Kubernetes operator that turns one MeshSecurityProfile per namespace into the mesh's
# own security objects. `make help` lists the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

IMG ?= ghcr.io/meshguard/meshguard:dev
GO ?= go
CONTROLLER_GEN := $(GO) tool controller-gen
# The control plane binaries (etcd, kube-apiserver, kube-controller-manager, kubectl), built from the
# Go module proxy and cached under bin/; KUBEBUILDER_ASSETS wins when set.
ASSETS = $(shell hack/build-controlplane.sh)
# Linkerd's CRD chart for test, run-local, bench and CI: ../shared/linkerd-crds (linkerd2's
# charts/linkerd-crds at the commit test/crds pins; test/crds refuses a copy of another commit)
# when it exists beside the clone, because the Go module proxy may not serve linkerd2. Without
# it the pinned module is downloaded; when neither works the Linkerd tests fail and say how to
# provide the chart, unless MESHGUARD_SKIP_LINKERD=1 is set on purpose.
SHARED_LINKERD_CRDS := $(abspath $(wildcard $(dir $(abspath $(lastword $(MAKEFILE_LIST))))../shared/linkerd-crds))
MESHGUARD_LINKERD_CRDS_CHART ?= $(SHARED_LINKERD_CRDS)
export MESHGUARD_LINKERD_CRDS_CHART
# envtest waits 20 s for etcd and kube-apiserver by default; `go test ./...` starts several control planes
# at once on a 2-core machine, where a cold start can take longer.
KUBEBUILDER_CONTROLPLANE_START_TIMEOUT ?= 120s
export KUBEBUILDER_CONTROLPLANE_START_TIMEOUT

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate the CRD and RBAC manifests from the API types and markers.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=manager-role paths=./controllers/... output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object paths=./api/...

.PHONY: fmt
fmt: ## Run go fmt.
	$(GO) fmt ./...

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...

# What `make manifests generate` writes. verify-generated checks only these paths, so that a
# developer's unrelated uncommitted work never fails it.
GENERATED := config/crd/bases config/rbac/role.yaml api/v1alpha1/zz_generated.deepcopy.go

.PHONY: verify-generated
verify-generated: manifests generate ## Fail when the committed generated files are stale (CRD, RBAC, DeepCopy).
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
		git status --short -- $(GENERATED); git --no-pager diff --stat -- $(GENERATED); \
		echo "generated files differ from what the code generates: commit the output of make manifests generate"; exit 1; \
	fi

.PHONY: lint
lint: ## golangci-lint, built from its Go module (hack/tools/golangci-lint/go.mod); linters and why in .golangci.yml.
	$(GO) tool -modfile=hack/tools/golangci-lint/go.mod golangci-lint run ./...

.PHONY: controlplane
controlplane: ## Build (once) the local control plane binaries into bin/controlplane-<version>.
	@hack/build-controlplane.sh

# Everything CI runs, in this order (one line: every part is named here).
.PHONY: test
test: manifests generate verify-generated vet lint test-packaging test-crosscheck test-go test-fuzz test-audit test-faults ## Regenerate and verify, lint, then every test suite (what CI runs).

.PHONY: test-go
test-go: controlplane ## Every package of the root module: unit, golden, envtest integration and end-to-end (the fault scenarios run in test-faults).
	KUBEBUILDER_ASSETS="$(ASSETS)" $(GO) test $$($(GO) list ./... | grep -v /test/faults) -count=1 -timeout 40m

.PHONY: test-packaging
test-packaging: controlplane ## Helm chart, kustomize, OLM bundle and Prometheus rules checked with their own ecosystems' code (nested module test/packaging).
	cd test/packaging && KUBEBUILDER_ASSETS="$(ASSETS)" $(GO) test ./... -count=1 -timeout 30m

# The NetworkPolicy cross-check against np-guard's netpol-analyzer lives in its own module
# (test/crosscheck); the analyzer's module is not in the checksum database.
.PHONY: test-crosscheck
test-crosscheck: ## Cross-check rendered NetworkPolicies and `manager explain` with netpol-analyzer on generated profiles.
	cd test/crosscheck && GONOSUMDB=github.com/np-guard $(GO) test ./... -count=1 -timeout 20m -v -run . | grep -v '^=== RUN'

# The fault scenarios (test/faults, issue 12) at full size, run by `make test` (a plain `go test ./test/faults`
# runs them with 20 profiles).
MESHGUARD_FAULTS_PROFILES ?= 50
MESHGUARD_FAULTS_APISERVER_PROFILES ?= 200

.PHONY: test-faults
test-faults: controlplane ## Fault scenarios at full size (kube-apiserver killed while 200 profiles converge, etcd stopped, managers killed, 429/500 proxy, deletions, a fight).
	KUBEBUILDER_ASSETS="$(ASSETS)" MESHGUARD_FAULTS_PROFILES=$(MESHGUARD_FAULTS_PROFILES) \
		MESHGUARD_FAULTS_APISERVER_PROFILES=$(MESHGUARD_FAULTS_APISERVER_PROFILES) MESHGUARD_FAULTS_FIGHT_SECONDS=60 \
		$(GO) test ./test/faults/ -count=1 -timeout 60m -v -run . | grep --line-buffered -v '^=== RUN'

.PHONY: test-unit
test-unit: ## Only the tests that need no control plane: every package's pure tests (the controllers' without their envtest suite).
	$(GO) test ./api/... ./internal/... ./config/... ./test/repo/... ./test/crds/... ./test/authzcheck/... ./test/floorcheck/... . -count=1
	$(GO) test ./controllers/... -skip '^TestControllers$$' -count=1

# How long `make test-fuzz` runs each fuzzer (go test -fuzztime: a duration, or Nx executions).
FUZZTIME ?= 20s
# The fuzzers: package and fuzz target. `go test -fuzz` runs one target of one package at a time.
FUZZERS := ./internal/render:FuzzRender ./internal/certs:FuzzCheckLinkerd ./internal/certs:FuzzCheckIstio

.PHONY: test-fuzz
test-fuzz: ## Run each fuzzer for FUZZTIME (the seed corpora in testdata/fuzz/ also run in every go test).
	@for f in $(FUZZERS); do \
	  echo "fuzzing $${f#*:} in $${f%%:*} for $(FUZZTIME)"; \
	  $(GO) test "$${f%%:*}" -run '^$$' -fuzz "^$${f#*:}\$$" -fuzztime $(FUZZTIME) -parallel 2 2>&1 | tail -n 3; \
	done

.PHONY: test-audit
test-audit: ## kube-score and kubeaudit (built from hack/tools/audit/) on kustomize config/default; fails on critical findings.
	hack/audit.sh

.PHONY: test-update-golden
test-update-golden: ## Rewrite internal/render/testdata/*.golden.yaml from the current output (review the diff!).
	$(GO) test ./internal/render -run TestGolden -update -count=1

.PHONY: verify
verify: manifests generate fmt chart bundle ## Regenerate everything and fail if the tree changed.
	git diff --exit-code

# Edits of generated objects that BenchmarkDriftRestore makes (MESHGUARD_BENCH_EDITS=50 make bench).
MESHGUARD_BENCH_EDITS ?= 200

.PHONY: bench
bench: controlplane kyverno ## Benchmarks: drift restoration, the scale table (docs/performance.md; MESHGUARD_SCALE_N=100,1000 ...), floors, render.
	KUBEBUILDER_ASSETS="$(ASSETS)" $(GO) test ./test/e2e/ -run '^$$' -bench . -benchtime $(MESHGUARD_BENCH_EDITS)x -count=1 -timeout 30m
	$(MAKE) bench-scale
	KUBEBUILDER_ASSETS="$(ASSETS)" $(GO) test ./test/scale/ -run '^$$' -bench 'BenchmarkFloor' -benchtime 1x -count=1 -timeout 60m
	$(GO) test ./internal/render/ -run '^$$' -bench . -benchmem -count=1

.PHONY: bench-scale
bench-scale: controlplane kyverno ## The scale table alone: meshguard beside a bare client-go writer and Kyverno (docs/performance.md).
	KUBEBUILDER_ASSETS="$(ASSETS)" $(GO) test ./test/scale/ -run '^$$' -bench BenchmarkScale -benchtime 1x -count=1 -timeout 180m

.PHONY: kyverno
kyverno: ## Build (once) Kyverno's background controller, make bench's peer, into bin/kyverno-<version> (cold: ~10 min, 3 GB).
	@hack/build-kyverno.sh >/dev/null

##@ Build

.PHONY: build
build: ## Build the manager binary into bin/manager.
	$(GO) build -o bin/manager .

.PHONY: run
run: manifests generate ## Run the manager against the cluster of the current kubeconfig.
	$(GO) run . --metrics-bind-address=:8080 --health-probe-bind-address=:8081

.PHONY: run-local
run-local: build controlplane ## Start a local control plane, install the CRDs, run meshguard, apply the samples.
	hack/run-local.sh

.PHONY: docker-build
docker-build: ## Build the container image IMG (needs a Docker engine).
	docker build -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the container image IMG (needs a Docker engine logged in to its registry).
	docker push $(IMG)

##@ Deployment

.PHONY: install
install: manifests ## Install the CRD into the cluster of the current kubeconfig.
	kubectl apply --server-side -f config/crd/bases

.PHONY: uninstall
uninstall: ## Remove the CRD (and every profile) from the cluster.
	kubectl delete -f config/crd/bases --ignore-not-found

.PHONY: deploy
deploy: manifests ## Deploy meshguard (CRD, RBAC, Deployment) running IMG into the cluster of the current kubeconfig.
	hack/image-overlay.sh $(IMG) bin/deploy
	kubectl apply --server-side -k bin/deploy

.PHONY: undeploy
undeploy: ## Remove the deployment.
	kubectl delete -k config/default --ignore-not-found

.PHONY: chart
chart: manifests ## Copy the CRD, the manager's RBAC, the alerts and the dashboard from config/ into charts/meshguard.
	cp config/crd/bases/*.yaml charts/meshguard/files/crds/
	cp config/rbac/role.yaml charts/meshguard/files/role.yaml
	cp config/rbac/profile_aggregated_roles.yaml charts/meshguard/files/profile_aggregated_roles.yaml
	cp config/prometheus/alerts.yaml charts/meshguard/files/alerts.yaml
	cp config/prometheus/grafana-dashboard.json charts/meshguard/files/grafana-dashboard.json

.PHONY: bundle
bundle: manifests chart ## Generate the OLM bundle (bundle/, bundle.Dockerfile) from config/ (hack/bundle, a module of its own).
	cd hack/bundle && $(GO) run . ../..

.PHONY: deploy-monitoring
deploy-monitoring: ## Add the metrics Service, ServiceMonitor and alerts (needs the Prometheus Operator's CRDs).
	kubectl apply --server-side -k config/prometheus
