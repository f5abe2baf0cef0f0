package pipeline

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// Istio's primary-remote and external control plane models
// (https://istio.io/latest/docs/setup/install/multicluster/primary-remote/,
// https://istio.io/latest/docs/setup/install/external-controlplane/): a *remote* cluster runs no
// istiod; its sidecar injector webhook calls the primary's istiod at an external address
// (values.istiodRemote.injectionPath / injectionURL and global.remotePilotAddress), the docs
// annotate its Istio namespace with topology.istio.io/controlPlaneClusters, and the primary reads
// it through istio-reader-service-account, but only for endpoints: "AuthorizationPolicy like any
// other crds must be applied in primary cluster. In primary-remote istio, istiod does not watch
// crds from the other clusters" (istio/istio#31211). Policies written there are read by no
// control plane, so meshguard writes none and says so (Stalled, IstioConfigClusterElsewhere).
//
// The config cluster of the external control plane model has no istiod either, but istiod reads
// its configuration: its Istio validating webhook calls the external istiod
// (values.base.validationURL). Such a cluster is not a remote one.

// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations;validatingwebhookconfigurations,verbs=list
// +kubebuilder:rbac:groups="",resources=serviceaccounts,resourceNames=istio-reader-service-account,verbs=get

const (
	// istioReaderServiceAccount is the account a primary's istiod reads a remote cluster with.
	istioReaderServiceAccount = "istio-reader-service-account"
	// annotationControlPlaneClusters names, on the Istio namespace of a remote cluster, the
	// clusters whose istiod manages it (Istio's primary-remote install docs).
	annotationControlPlaneClusters = "topology.istio.io/controlPlaneClusters"
	// istioRemoteTTL is how long a verdict is reused: the facts change with installs, not per
	// reconcile. The Services and webhook configurations are not cached (that would cache every
	// Service of the Istio namespace), so each look costs three LISTs and a GET; once every five
	// minutes, as the certificate recheck, keeps meshguard near-silent at rest. Profiles stalled
	// on it are looked at again after PendingRequeue and see a new verdict within that time.
	istioRemoteTTL = 5 * time.Minute
)

// istioClusterFacts are what tells a remote cluster from one whose istiod reads its config.
type istioClusterFacts struct {
	// localIstiod names a Service of istiod in the Istio namespace that selects pods here.
	localIstiod string
	// externalInjector names a sidecar injector webhook that calls an URL (not a Service here).
	externalInjector string
	// externalValidator names an Istio validating webhook that calls an URL: istiod elsewhere
	// validates (so reads) this cluster's config.
	externalValidator string
	// controlPlaneClusters is the topology.istio.io/controlPlaneClusters annotation.
	controlPlaneClusters string
	// readerAccount: istio-reader-service-account exists in the Istio namespace.
	readerAccount bool
}

// configElsewhere says why no istiod reads this cluster's Istio policies, or "" when one does
// (or nothing says otherwise: the default is to write).
func (f istioClusterFacts) configElsewhere(istioNamespace string) string {
	if f.localIstiod != "" || f.externalValidator != "" {
		return ""
	}
	var signs []string
	if f.externalInjector != "" {
		signs = append(signs, "the sidecar injector "+f.externalInjector+" calls an istiod outside the cluster")
	}
	if f.controlPlaneClusters != "" {
		signs = append(signs, fmt.Sprintf("namespace %s is managed by the control plane of %s (%s)", istioNamespace, f.controlPlaneClusters, annotationControlPlaneClusters))
	}
	if f.readerAccount && len(signs) > 0 {
		signs = append(signs, istioReaderServiceAccount+" lets a primary read this cluster")
	}
	if len(signs) == 0 {
		return ""
	}
	return fmt.Sprintf("this is a remote cluster of an Istio primary-remote mesh: no istiod runs in %s and %s. "+
		"istiod reads AuthorizationPolicy, PeerAuthentication and RequestAuthentication only from its own (config) cluster (istio/istio#31211), "+
		"so meshguard writes nothing here: apply this profile in the primary cluster", istioNamespace, strings.Join(signs, "; "))
}

// istioRemote remembers the verdict for a while.
type istioRemote struct {
	mu     sync.Mutex
	at     time.Time
	reason string
}

// istioConfigElsewhere reads the facts (around the cache, which holds none of these objects) and
// says why this cluster's Istio policies are read by no istiod, or "".
func (r *Pipeline) istioConfigElsewhere(ctx context.Context) (string, error) {
	r.istioRemote.mu.Lock()
	defer r.istioRemote.mu.Unlock()
	now := r.Now()
	if !r.istioRemote.at.IsZero() && now.Sub(r.istioRemote.at) < istioRemoteTTL {
		return r.istioRemote.reason, nil
	}
	f, err := readIstioClusterFacts(ctx, r.APIReader, r.Client, r.RenderOptions.IstioNamespace)
	if apierrors.IsForbidden(err) {
		// RBAC of an older install: the facts cannot be read, so nothing says that istiod is
		// elsewhere; meshguard writes as it always did.
		f, err = istioClusterFacts{}, nil
	}
	if err != nil {
		return "", err
	}
	r.istioRemote.at, r.istioRemote.reason = now, f.configElsewhere(r.RenderOptions.IstioNamespace)
	return r.istioRemote.reason, nil
}

func readIstioClusterFacts(ctx context.Context, c, cached client.Reader, ns string) (istioClusterFacts, error) {
	var f istioClusterFacts
	var svcs corev1.ServiceList
	if err := c.List(ctx, &svcs, client.InNamespace(ns)); err != nil {
		return f, fmt.Errorf("list Services in %s: %w", ns, err)
	}
	for _, s := range svcs.Items {
		// A remote cluster may have an istiod Service without selector, whose Endpoints point at
		// the primary (global.remotePilotAddress): only a selecting one runs istiod here.
		if (s.Name == "istiod" || strings.HasPrefix(s.Name, "istiod-")) && len(s.Spec.Selector) > 0 {
			f.localIstiod = s.Name
		}
	}
	var mwcs admissionregistrationv1.MutatingWebhookConfigurationList
	if err := c.List(ctx, &mwcs); err != nil {
		return f, fmt.Errorf("list MutatingWebhookConfigurations: %w", err)
	}
	var injectors []string
	for _, m := range mwcs.Items {
		if !strings.HasPrefix(m.Name, "istio-sidecar-injector") && !strings.HasPrefix(m.Name, "istiod-") && !strings.HasPrefix(m.Name, "istio-revision-tag-") {
			continue
		}
		for _, w := range m.Webhooks {
			if w.ClientConfig.URL != nil && w.ClientConfig.Service == nil {
				injectors = append(injectors, m.Name)
				break
			}
		}
	}
	sort.Strings(injectors)
	if len(injectors) > 0 {
		f.externalInjector = injectors[0]
	}
	var vwcs admissionregistrationv1.ValidatingWebhookConfigurationList
	if err := c.List(ctx, &vwcs); err != nil {
		return f, fmt.Errorf("list ValidatingWebhookConfigurations: %w", err)
	}
	for _, v := range vwcs.Items {
		if !strings.HasPrefix(v.Name, "istio") {
			continue
		}
		for _, w := range v.Webhooks {
			if w.ClientConfig.URL != nil && w.ClientConfig.Service == nil {
				f.externalValidator = v.Name
			}
		}
	}
	// The namespace's annotations from the cache of every Namespace's metadata (CacheOptions):
	// no read of its own.
	nsObj := NamespaceMeta()
	if err := cached.Get(ctx, client.ObjectKey{Name: ns}, nsObj); err != nil && !apierrors.IsNotFound(err) {
		return f, fmt.Errorf("get namespace %s: %w", ns, err)
	}
	f.controlPlaneClusters = nsObj.Annotations[annotationControlPlaneClusters]
	sa := &corev1.ServiceAccount{}
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: istioReaderServiceAccount}, sa)
	switch {
	case err == nil:
		f.readerAccount = true
	case !apierrors.IsNotFound(err):
		return f, fmt.Errorf("get ServiceAccount %s/%s: %w", ns, istioReaderServiceAccount, err)
	}
	return f, nil
}

// IstioRemoteStop stops an Istio profile's reconcile in a remote cluster, its reason in obs (the
// profile stalls; looked at again after PendingRequeue, in case istiod comes here).
func (r *Pipeline) IstioRemoteStop(ctx context.Context, p *v1alpha1.MeshSecurityProfile, obs *Observation) (bool, error) {
	if p.Spec.GetMesh() != v1alpha1.MeshIstio || r.APIReader == nil {
		return false, nil
	}
	reason, err := r.istioConfigElsewhere(ctx)
	if err != nil {
		return false, err
	}
	obs.configElsewhere = reason
	return reason != "", nil
}

// IstioRemoteStopped is IstioRemoteStop for a step that collects errors in obs (the floors').
func (r *Pipeline) IstioRemoteStopped(ctx context.Context, p *v1alpha1.MeshSecurityProfile, obs *Observation) bool {
	stop, err := r.IstioRemoteStop(ctx, p, obs)
	if err != nil {
		obs.ApplyErrs = append(obs.ApplyErrs, err)
		return true
	}
	return stop
}
