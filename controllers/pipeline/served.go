package pipeline

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// servedTTL is how long an answer of discovery about one kind is reused: profiles failing on the
// same removed CRD ask once, not once each.
const servedTTL = 5 * time.Second

// servedKinds asks discovery whether the API server still serves a kind. The manager's RESTMapper
// never forgets a kind it has mapped, so a CRD deleted while meshguard runs still maps, and every
// request for its objects fails; discovery tells that apart from a failure worth retrying.
type servedKinds struct {
	Disc    discovery.DiscoveryInterface
	mu      sync.Mutex
	answers map[schema.GroupVersionKind]servedAnswer
}

type servedAnswer struct {
	served bool
	at     time.Time
}

func (s *servedKinds) Served(gvk schema.GroupVersionKind, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.answers[gvk]; ok && now.Sub(a.at) < servedTTL {
		return a.served, nil
	}
	list, err := s.Disc.ServerResourcesForGroupVersion(gvk.GroupVersion().String())
	if err != nil && !apierrors.IsNotFound(err) {
		return false, err
	}
	served := false
	if list != nil {
		for _, r := range list.APIResources {
			if r.Kind == gvk.Kind && !strings.Contains(r.Name, "/") {
				served = true
			}
		}
	}
	if s.answers == nil {
		s.answers = map[schema.GroupVersionKind]servedAnswer{}
	}
	s.answers[gvk] = servedAnswer{served: served, at: now}
	return served, nil
}

// crdTerminating is the API server's answer to a write of a kind whose CRD is being deleted
// (k8s.io/apiextensions-apiserver customresource_handler.go).
func crdTerminating(err error) bool {
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "custom resource definition is terminating")
}

// notServed turns the rows that failed because their kind is no longer served (its CRD was
// removed, or is being removed) into rows waiting for the mesh's CRDs: a state the status
// reports and the reconciler looks at again later (PendingRequeue), not an error to retry at once.
// Rows refused because the namespace is being deleted are not errors either: the profile goes
// with its namespace.
func (r *Pipeline) notServed(_ context.Context, rows []childResult) []childResult {
	if r.ServedKinds == nil {
		return rows
	}
	for i := range rows {
		row := &rows[i]
		if row.Err == nil {
			continue
		}
		if apierrors.HasStatusCause(row.Err, corev1.NamespaceTerminatingCause) {
			// The namespace is being deleted, and the profile with it: nothing to retry.
			*row = childResult{row: v1alpha1.ResourceStatus{
				APIVersion: row.row.APIVersion, Kind: row.row.Kind, Name: row.row.Name,
				State: v1alpha1.ResourcePending, Message: "not created: the namespace is being deleted",
			}}
			continue
		}
		gvk := schema.FromAPIVersionAndKind(row.row.APIVersion, row.row.Kind)
		mesh := meshOf(gvk)
		if mesh == "" || !(apierrors.IsNotFound(row.Err) || meta.IsNoMatchError(row.Err) || crdTerminating(row.Err)) {
			continue
		}
		if !crdTerminating(row.Err) {
			if served, err := r.ServedKinds.Served(gvk, r.Now()); err != nil || served {
				continue
			}
		}
		*row = childResult{
			row: v1alpha1.ResourceStatus{
				APIVersion: row.row.APIVersion, Kind: row.row.Kind, Name: row.row.Name,
				State:   v1alpha1.ResourcePending,
				Message: fmt.Sprintf("%s is not served by the API server (its CRD was removed): install the %s CRDs", gvk.GroupKind(), mesh),
			},
			pendingOn: mesh,
		}
	}
	return rows
}
