package pipeline

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/dataplane"
)

// +kubebuilder:rbac:groups="",resources=pods;services,verbs=list;watch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways,verbs=list;watch
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get

// gvkGateway is the Gateway API kind Istio's waypoints are (gateway.networking.k8s.io/v1).
var gvkGateway = schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "Gateway"}

// DataPlaneFacts gathers, per namespace, what places workloads on Istio's data planes: pod
// metadata (labels and two annotations, never specs), Services (labels and selector only) and
// waypoint Gateways. Its own cache holds nothing else, so watching every pod of the cluster costs a
// few hundred bytes a pod.
type DataPlaneFacts struct {
	cache cache.Cache
	// gateways: Gateways are watched, from the start when their CRD was served then, else from
	// the first poll that finds it (gatewaysLater). Until then no waypoint is known, and waypoint-
	// bound pods are placed as ambient without one: fail closed (their L7 rules Unenforceable).
	Gateways atomic.Bool
	// disc and poll: how and how often a Gateway CRD installed after the start is looked for.
	disc   discovery.DiscoveryInterface
	mapper meta.RESTMapper
	poll   time.Duration

	mu        sync.Mutex
	schemaAt  time.Time
	schemaSAs bool
}

// keepPodFacts strips a pod's metadata to what classification reads.
func keepPodFacts(in any) (any, error) {
	o, ok := in.(metav1.Object)
	if !ok {
		return in, nil
	}
	o.SetManagedFields(nil)
	o.SetOwnerReferences(nil)
	a := o.GetAnnotations()
	keep := map[string]string{}
	for _, k := range []string{dataplane.AnnotationSidecarStatus, dataplane.AnnotationRedirection} {
		if v, ok := a[k]; ok {
			if k == dataplane.AnnotationSidecarStatus {
				v = "present" // its JSON can be kilobytes; only its presence matters
			}
			keep[k] = v
		}
	}
	o.SetAnnotations(keep)
	return in, nil
}

// keepServiceFacts strips a Service to its labels and selector.
func keepServiceFacts(in any) (any, error) {
	svc, ok := in.(*corev1.Service)
	if !ok {
		return in, nil
	}
	return &corev1.Service{
		TypeMeta:   svc.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace, Labels: svc.Labels, ResourceVersion: svc.ResourceVersion, UID: svc.UID},
		Spec:       corev1.ServiceSpec{Selector: svc.Spec.Selector},
	}, nil
}

func podMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Pod"))
	return m
}

// NewDataPlaneFacts builds the data plane facts' watches on mgr; poll is how often kinds
// installed later (the Gateway CRD) are looked for.
func NewDataPlaneFacts(mgr ctrl.Manager, poll time.Duration) (*DataPlaneFacts, error) {
	byObject := map[client.Object]cache.ByObject{
		podMeta():         {Transform: keepPodFacts},
		&corev1.Service{}: {Transform: keepServiceFacts},
	}
	disc, err := discovery.NewDiscoveryClientForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("discovery for data plane facts: %w", err)
	}
	f := &DataPlaneFacts{disc: disc, mapper: mgr.GetRESTMapper(), poll: poll}
	if _, err := mgr.GetRESTMapper().RESTMapping(gvkGateway.GroupKind(), gvkGateway.Version); err == nil {
		f.Gateways.Store(true)
	}
	// Gateways (from the start or later) keep everything but managedFields: classification reads
	// their class, labels and annotations.
	c, err := cache.New(mgr.GetConfig(), cache.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), ByObject: byObject,
		DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		return nil, fmt.Errorf("cache for data plane facts: %w", err)
	}
	if err := mgr.Add(c); err != nil {
		return nil, err
	}
	f.cache = c
	return f, nil
}

// Sources watch pods, Services and Gateways; a change that can move a workload to another data
// plane or waypoint requeues the profiles of its namespace.
func (f *DataPlaneFacts) Sources(mapFn handler.MapFunc) []source.Source {
	relevant := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return !equalMaps(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels()) || !equalMaps(e.ObjectOld.GetAnnotations(), e.ObjectNew.GetAnnotations())
	}}
	out := []source.Source{
		source.Kind[client.Object](f.cache, podMeta(), handler.EnqueueRequestsFromMapFunc(mapFn), relevant),
		source.Kind[client.Object](f.cache, &corev1.Service{}, handler.EnqueueRequestsFromMapFunc(mapFn)),
	}
	// A waypoint may serve other namespaces (istio.io/use-waypoint-namespace): any Gateway
	// change requeues the profiles of its namespace; others pick it up on their next look.
	gateways := source.Kind[client.Object](f.cache, NewUnstructured(gvkGateway), handler.EnqueueRequestsFromMapFunc(mapFn))
	if f.Gateways.Load() {
		return append(out, gateways)
	}
	// Watching a kind whose CRD is missing would keep the controller from starting (its sources
	// must sync first); gatewaysLater starts the same watch once the CRD is served.
	return append(out, &gatewaysLater{f: f, watch: gateways})
}

// gatewaysLater is a source that starts watching Gateways once the API server serves their CRD,
// installed after meshguard started, as pollKinds does for policy kinds (extrakinds.go). It is
// not a SyncingSource: the controller does not wait for it. Once it watches, the informer's first
// list brings every existing Gateway, whose events requeue the profiles of their namespaces.
type gatewaysLater struct {
	f     *DataPlaneFacts
	watch source.Source
}

func (s *gatewaysLater) Start(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	go func() {
		t := time.NewTicker(s.f.poll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if !s.f.gatewayServed() {
				continue
			}
			if err := s.watch.Start(ctx, q); err != nil {
				ctrl.LoggerFrom(ctx).Error(err, "watch Gateways installed after the start")
				continue
			}
			s.f.Gateways.Store(true)
			ctrl.LoggerFrom(ctx).Info("watching Gateways (Istio waypoints): their CRD was installed after the start", "kind", gvkGateway.String())
			return
		}
	}()
	return nil
}

// gatewayServed asks discovery whether the Gateway kind is served now, then makes sure the
// manager's RESTMapper maps it (the cache looks kinds up there).
func (f *DataPlaneFacts) gatewayServed() bool {
	list, err := f.disc.ServerResourcesForGroupVersion(gvkGateway.GroupVersion().String())
	if err != nil || list == nil {
		return false
	}
	for _, r := range list.APIResources {
		if r.Kind == gvkGateway.Kind && !strings.Contains(r.Name, "/") {
			_, err := f.mapper.RESTMapping(gvkGateway.GroupKind(), gvkGateway.Version)
			return err == nil
		}
	}
	return false
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Gather reads the facts of one namespace from the cache.
func (f *DataPlaneFacts) Gather(ctx context.Context, nsLabels map[string]string, namespace string) (*dataplane.Facts, error) {
	out := &dataplane.Facts{Namespace: namespace, NamespaceLabels: nsLabels}
	pods := &metav1.PartialObjectMetadataList{}
	pods.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
	if err := f.cache.List(ctx, pods, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list pods in %s: %w", namespace, err)
	}
	for _, p := range pods.Items {
		if !p.DeletionTimestamp.IsZero() {
			continue
		}
		out.Pods = append(out.Pods, dataplane.Pod{Name: p.Name, Labels: p.Labels, Annotations: p.Annotations})
	}
	var svcs corev1.ServiceList
	if err := f.cache.List(ctx, &svcs, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list services in %s: %w", namespace, err)
	}
	for _, s := range svcs.Items {
		out.Services = append(out.Services, dataplane.Service{Name: s.Name, Labels: s.Labels, Selector: s.Spec.Selector})
	}
	if f.Gateways.Load() {
		// The namespace's Gateways and those of the namespaces its objects point to.
		nss := map[string]bool{namespace: true}
		for _, l := range append([]map[string]string{nsLabels}, labelsOf(out)...) {
			if ns := l[dataplane.LabelUseWaypointNamespace]; ns != "" {
				nss[ns] = true
			}
		}
		names := make([]string, 0, len(nss))
		for ns := range nss {
			names = append(names, ns)
		}
		sort.Strings(names)
		for _, ns := range names {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(gvkGateway.GroupVersion().WithKind("GatewayList"))
			if err := f.cache.List(ctx, list, client.InNamespace(ns)); err != nil {
				return nil, fmt.Errorf("list gateways in %s: %w", ns, err)
			}
			for _, g := range list.Items {
				class, _, _ := unstructured.NestedString(g.Object, "spec", "gatewayClassName")
				out.Gateways = append(out.Gateways, dataplane.Gateway{Namespace: g.GetNamespace(), Name: g.GetName(), ClassName: class, Labels: g.GetLabels(), Annotations: g.GetAnnotations()})
			}
		}
	}
	return out, nil
}

func labelsOf(f *dataplane.Facts) []map[string]string {
	var out []map[string]string
	for _, p := range f.Pods {
		out = append(out, p.Labels)
	}
	for _, s := range f.Services {
		out = append(out, s.Labels)
	}
	return out
}

// schemaRecheck is how long the answer about the installed AuthorizationPolicy schema is reused.
const schemaRecheck = time.Minute

// SourceServiceAccounts says whether the installed AuthorizationPolicy CRD has
// source.serviceAccounts (Istio 1.25+), read from the CRD's schema rather than guessed from a
// version. Unknown (the CRD unreadable) is false: principals, as before.
func (f *DataPlaneFacts) SourceServiceAccounts(ctx context.Context, reader client.Reader) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.schemaAt.IsZero() && time.Since(f.schemaAt) < schemaRecheck {
		return f.schemaSAs
	}
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	f.schemaAt = time.Now()
	f.schemaSAs = false
	if err := reader.Get(ctx, types.NamespacedName{Name: "authorizationpolicies.security.istio.io"}, crd); err != nil {
		if !apierrors.IsNotFound(err) {
			f.schemaAt = time.Time{}
		}
		return false
	}
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		m, _ := v.(map[string]any)
		if m["name"] != "v1" {
			continue
		}
		_, found, _ := unstructured.NestedMap(m, "schema", "openAPIV3Schema", "properties", "spec", "properties", "rules",
			"items", "properties", "from", "items", "properties", "source", "properties", "serviceAccounts")
		f.schemaSAs = found
	}
	return f.schemaSAs
}

// DataPlaneStatus counts the namespace's pods per data plane.
func DataPlaneStatus(f *dataplane.Facts) *v1alpha1.DataPlaneStatus {
	if f == nil {
		return nil
	}
	sum := dataplane.Summary(f)
	st := &v1alpha1.DataPlaneStatus{
		Sidecar:  int32(len(sum[dataplane.Sidecar])),
		Ambient:  int32(len(sum[dataplane.Ambient])),
		Waypoint: int32(len(sum[dataplane.Waypoint])),
		Unmeshed: int32(len(sum[dataplane.Unmeshed])),
	}
	seen := map[string]bool{}
	for _, w := range dataplane.Select(f, nil).Workloads {
		for _, wp := range w.Waypoints {
			seen[wp.Namespace+"/"+wp.Name] = true
		}
	}
	for k := range seen {
		st.Waypoints = append(st.Waypoints, k)
	}
	sort.Strings(st.Waypoints)
	if len(st.Waypoints) > 16 {
		st.Waypoints = st.Waypoints[:16]
	}
	return st
}

// notBound reads Istio's ZtunnelAccepted and WaypointAccepted conditions on the generated
// AuthorizationPolicies that bind ambient workloads (pilot/pkg/serviceregistry/ambient/
// policies.go; pilot/pkg/model/service.go): one that Istio says it did not bind protects nothing.
func (r *Pipeline) notBound(ctx context.Context, namespace string, names []string) []string {
	var out []string
	for _, name := range names {
		ap := NewUnstructured(gvkAuthorizationPolicy)
		if err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, ap); err != nil {
			continue // missing objects are reported by their resource rows
		}
		conds, _, _ := unstructured.NestedSlice(ap.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			t, _ := m["type"].(string)
			if (t != "ZtunnelAccepted" && t != "WaypointAccepted") || m["status"] != "False" {
				continue
			}
			reason, _ := m["reason"].(string)
			msg, _ := m["message"].(string)
			out = append(out, fmt.Sprintf("Istio did not bind AuthorizationPolicy %s: %s=False (%s) %s", name, t, reason, strings.TrimSpace(msg)))
		}
	}
	sort.Strings(out)
	return out
}

var gvkAuthorizationPolicy = schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "AuthorizationPolicy"}
