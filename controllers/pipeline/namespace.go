package pipeline

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/meshsem"
	"github.com/meshguard/meshguard/internal/render"
)

// FinalizerNamespaceAnnotations makes deleting a profile wait until meshguard has removed the
// annotations it set on the profile's Namespace (Linkerd's default inbound policy). The Namespace
// is not the profile's child, so the garbage collector would not clean it.
const FinalizerNamespaceAnnotations = "security.meshguard.dev/namespace-annotations"

// AnnotationNamespaceOwner marks the namespace annotations as meshguard's: with it, a different
// value is drift to restore; without it, a value someone else set first is a conflict to report.
const AnnotationNamespaceOwner = "security.meshguard.dev/annotations-owner"

// linkerdProxyPolicyEnv is the proxy's environment variable that Linkerd's injector fills from the
// default-inbound-policy annotation when a pod starts.
const linkerdProxyPolicyEnv = "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY"

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=list
// +kubebuilder:rbac:groups=security.meshguard.dev,resources=meshsecurityprofiles,verbs=update;patch

// applyNamespaceAnnotations makes the Namespace carry exactly the annotations render asked for,
// owning only those keys (server-side apply) under the owner's mark, and reports them as a
// Namespace row. mayHold says whether meshguard's annotations there may be the owner's, to be
// removed when render asks for none (a profile's finalizer says so).
func (r *Pipeline) applyNamespaceAnnotations(ctx context.Context, o owner, intent *v1alpha1.MeshSecurityProfile, mayHold bool, want map[string]string) *childResult {
	if len(want) == 0 && !mayHold {
		return nil
	}
	namespace := intent.Namespace
	res := &childResult{row: v1alpha1.ResourceStatus{APIVersion: "v1", Kind: "Namespace", Name: namespace}}
	ns := &corev1.Namespace{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
		return failedPtr(res, fmt.Errorf("get Namespace %s: %w", namespace, err))
	}
	var differ []string
	for k, v := range want {
		got, ok := ns.Annotations[k]
		switch {
		case ok && got != v && ns.Annotations[AnnotationNamespaceOwner] != o.label():
			res.row.State = v1alpha1.ResourceConflict
			res.row.Message = fmt.Sprintf("annotation %s=%s was set by someone else (%s); left untouched: remove it to let meshguard set %s", k, got, managerOf(ns, k), v)
			return res
		case got != v:
			differ = append(differ, fmt.Sprintf("metadata.annotations[%s]: %s → %s", k, v, orNone(got, ok)))
		}
	}
	sort.Strings(differ)
	if Audits(&intent.Spec) {
		res.row.State = v1alpha1.ResourceInSync
		if len(differ) > 0 {
			res.row.State, res.row.Message = v1alpha1.ResourceDrifted, "Audit mode, not written: "+strings.Join(differ, "; ")
		}
		return res
	}
	if len(differ) > 0 || len(want) == 0 {
		if err := r.ApplyNamespace(ctx, namespace, o.label(), want); err != nil {
			return failedPtr(res, fmt.Errorf("apply annotations to Namespace %s: %w", namespace, err))
		}
		if len(want) > 0 {
			o.eventf(r.Recorder, nil, "Normal", "Updated", "Apply", "set on Namespace %s: %s", namespace, strings.Join(differ, "; "))
		}
	}
	if len(want) == 0 {
		return nil
	}
	res.row.State = v1alpha1.ResourceInSync
	if stale := r.podsWithOlderPolicy(ctx, namespace, want[render.LinkerdDefaultInboundPolicyAnnotation]); len(stale) > 0 {
		res.row.State = v1alpha1.ResourcePending
		res.row.Message = fmt.Sprintf("meshed pods run with a default inbound policy that admits more than %s until they are restarted (or, if their workload sets its own config.linkerd.io/default-inbound-policy, until it is removed): %s",
			want[render.LinkerdDefaultInboundPolicyAnnotation], list(stale))
		res.restartNeeded = true
	}
	return res
}

// ApplyNamespace server-side applies only meshguard's annotations, marked as the owner's (its
// label). Keys meshguard applied before and no longer sends are removed by the API server,
// because meshguard owns them; keys of others are never touched.
func (r *Pipeline) ApplyNamespace(ctx context.Context, namespace, ownerLabel string, want map[string]string) error {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Namespace")
	u.SetName(namespace)
	if len(want) > 0 {
		a := map[string]string{AnnotationNamespaceOwner: ownerLabel}
		for k, v := range want {
			a[k] = v
		}
		u.SetAnnotations(a)
	}
	return r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(v1alpha1.FieldManager), client.ForceOwnership)
}

// podsWithOlderPolicy lists running meshed pods whose default inbound policy admits more than
// the namespace's now does.
func (r *Pipeline) podsWithOlderPolicy(ctx context.Context, namespace, policy string) []string {
	if policy == "" {
		return nil
	}
	var pods corev1.PodList
	if err := r.APIReader.List(ctx, &pods, client.InNamespace(namespace), client.HasLabels{"linkerd.io/control-plane-ns"}); err != nil {
		return nil
	}
	return looserPods(pods.Items, policy)
}

// looserPods names the pods whose default inbound policy admits more than want, with their
// policy. Linkerd's proxy injector copies the namespace's config.linkerd.io/default-inbound-policy
// onto each pod it injects, and the policy controller reads the pod's annotation (else the
// namespace's): a pod keeps the value it was injected with until it is recreated, and a
// workload can set its own. So the pod's annotation is its policy, else the proxy's environment
// variable, which the injector fills from it. A pod stricter than the profile is not listed: it
// fails closed (it picks the profile's policy up at its next restart, unless it sets its own).
func looserPods(pods []corev1.Pod, want string) []string {
	var out []string
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		got, source := pod.Annotations[render.LinkerdDefaultInboundPolicyAnnotation], "annotation"
		if got == "" {
			source = "proxy environment"
			for _, c := range pod.Spec.Containers {
				for _, e := range c.Env {
					if e.Name == linkerdProxyPolicyEnv {
						got = e.Value
					}
				}
			}
		}
		if got == "" || got == want || !meshsem.LinkerdAdmitsMore(got, want) {
			continue
		}
		out = append(out, fmt.Sprintf("%s (%s, from its %s)", pod.Name, got, source))
	}
	sort.Strings(out)
	return out
}

func managerOf(ns *corev1.Namespace, key string) string {
	needle := `"f:` + key + `"`
	for _, mf := range ns.ManagedFields {
		if mf.FieldsV1 != nil && strings.Contains(mf.FieldsV1.GetRawString(), needle) {
			return "field manager " + mf.Manager
		}
	}
	return "unknown field manager"
}

func orNone(v string, ok bool) string {
	if !ok {
		return "(none)"
	}
	return v
}

func failedPtr(res *childResult, err error) *childResult {
	out := failed(*res, err)
	return &out
}
