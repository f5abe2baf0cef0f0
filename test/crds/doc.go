// Package crds loads the real CustomResourceDefinitions of the meshes meshguard writes to, from the
// meshes' own sources fetched through the Go module proxy, for envtest, `make run-local` and
// schema checks of rendered objects.
//
//   - Istio: kubernetes/customresourcedefinitions.gen.yaml of the istio.io/api module, at the
//     version meshguard's go.mod requires.
//   - Linkerd: the Helm templates of charts/linkerd-crds in github.com/linkerd/linkerd2 at
//     LinkerdVersion. linkerd2 has no semver tags, and requiring it in go.mod would pull in its
//     whole dependency graph, so it is not a dependency: LinkerdCRDs runs
//     `go mod download github.com/linkerd/linkerd2@LinkerdVersion` (verified against the checksum
//     database like any module) and resolves the templates without Helm; see resolveTemplate for
//     the few template forms it understands. MESHGUARD_LINKERD_CRDS_CHART may name a
//     charts/linkerd-crds directory to use instead (a linkerd2 checkout, or the copy in
//     ../shared/linkerd-crds that the Makefile exports where the module proxy does not serve
//     linkerd2; a copy whose SOURCE.md names another commit than LinkerdVersion is refused).
//     When neither can be had, ErrLinkerdUnavailable says how to provide the chart; only
//     MESHGUARD_SKIP_LINKERD=1 lets callers go on without Linkerd's CRDs.
//
// Every CRD is validated as the API server would (structural schema, a served version, exactly one
// storage version) before it is returned. Validator checks objects against them as the API server
// would on create, including the fields it would default.
package crds
