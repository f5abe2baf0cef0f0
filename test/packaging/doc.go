// Package packaging checks meshguard's install paths with the code of their own ecosystems: the
// Helm chart with helm.sh/helm/v4 (load, lint, render), the kustomize configuration with
// sigs.k8s.io/kustomize/api, the OLM bundle with github.com/operator-framework/api's validators,
// the PrometheusRule with Prometheus' PromQL parser and promtool's rule unit tests, and every
// rendered object with server-side dry-run on a local kube-apiserver (Pod Security admission at
// level restricted included).
//
// It is a Go module of its own so that these heavy dependencies stay out of meshguard's go.mod;
// `make test` runs it, its bundle tests check the output of
// the generator `make bundle` runs (hack/bundle, a module of its own).
package packaging
