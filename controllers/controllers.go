package controllers

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/meshguard/meshguard/controllers/floor"
	"github.com/meshguard/meshguard/controllers/pipeline"
	"github.com/meshguard/meshguard/controllers/profile"
)

// MeshSecurityProfileReconciler turns MeshSecurityProfiles into mesh security objects
// (controllers/profile).
type MeshSecurityProfileReconciler = profile.Reconciler

// SetupFloors registers the two controllers of ClusterMeshSecurityProfiles next to the profiles'
// reconciler profiles, whose settings and pipeline they share (before or after its own setup):
// the floor controller (per namespace) and the status controller (per cluster profile). Without
// the ClusterMeshSecurityProfile CRD it registers nothing.
func SetupFloors(mgr ctrl.Manager, profiles *MeshSecurityProfileReconciler, opts controller.Options) error {
	pipe, err := profiles.SharedPipeline(mgr)
	if err != nil {
		return err
	}
	return floor.Setup(mgr, pipe, profiles.MaxRetryBackoff, opts)
}

// FinalizerNamespaceAnnotations guards meshguard's annotations on a profile's Namespace.
const FinalizerNamespaceAnnotations = pipeline.FinalizerNamespaceAnnotations

// AnnotationNamespaceOwner names, on a Namespace, the owner of meshguard's annotations.
const AnnotationNamespaceOwner = pipeline.AnnotationNamespaceOwner

// DefaultCertificateRecheck is how often CA data is checked again when nothing changed.
const DefaultCertificateRecheck = pipeline.DefaultCertificateRecheck

// DefaultMaxRetryBackoff caps the wait before a failed reconcile is tried again.
const DefaultMaxRetryBackoff = pipeline.DefaultMaxRetryBackoff

// DefaultApplyConcurrency is how many objects of one reconcile are applied at once.
const DefaultApplyConcurrency = pipeline.DefaultApplyConcurrency

// CheckMaxRetryBackoff validates the --max-retry-backoff flag.
func CheckMaxRetryBackoff(d time.Duration) error { return pipeline.CheckMaxRetryBackoff(d) }

// WaitForAPIServer blocks until the API server answers and serves meshguard's API
// (pipeline.WaitForAPIServer).
func WaitForAPIServer(ctx context.Context, cfg *rest.Config, maxWait time.Duration, log logr.Logger) error {
	return pipeline.WaitForAPIServer(ctx, cfg, maxWait, log)
}

// WaitingProbes answers the probes while the manager waits for the API server
// (pipeline.WaitingProbes).
func WaitingProbes(addr string) (stop func(), err error) { return pipeline.WaitingProbes(addr) }
