package scale

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/render"
)

// profileName is the name of every profile of the run.
const profileName = "baseline"

// benchLabel marks the harness's namespaces and profiles, by scenario.
const benchLabel = "bench.meshguard.dev/scenario"

// fullProfile is the bench profile without a scenario label (the floor benchmarks' spec).
func fullProfile(ns string) *v1alpha1.MeshSecurityProfile { return benchProfile(ns, "") }

// benchProfile is a full Istio profile: mTLS, a default-deny and one allow rule, NetworkPolicies
// with default-deny both ways, DNS, the mesh control plane and one ingress rule (7 objects),
// labelled with the scenario that created it.
func benchProfile(ns, scenario string) *v1alpha1.MeshSecurityProfile {
	return &v1alpha1.MeshSecurityProfile{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "MeshSecurityProfile"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: profileName, Labels: map[string]string{benchLabel: scenario}},
		Spec: v1alpha1.MeshSecurityProfileSpec{
			MTLS: &v1alpha1.MTLSSpec{Mode: v1alpha1.MTLSStrict},
			Authorization: &v1alpha1.AuthorizationSpec{DefaultDeny: true, Rules: []v1alpha1.AuthorizationRule{{
				Name: "web-reads-api", Action: v1alpha1.ActionAllow,
				Selector: &v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "api"}},
				From:     &v1alpha1.RuleSource{ServiceAccounts: []v1alpha1.ServiceAccountRef{"frontend/web"}},
				To:       &v1alpha1.RuleTarget{Methods: []string{"GET"}, Ports: []int32{8080}},
			}}},
			NetworkPolicy: &v1alpha1.NetworkPolicySpec{
				DefaultDeny: []v1alpha1.PolicyDirection{v1alpha1.DirectionIngress, v1alpha1.DirectionEgress},
				AllowDNS:    true, AllowMeshControlPlane: true,
				Ingress: []v1alpha1.IngressRule{{Name: "web", From: []v1alpha1.NetworkPeer{{Namespaces: []string{"frontend"}}},
					Ports: []v1alpha1.NetworkPort{{Port: 8080, Protocol: "TCP"}}}},
			},
		}}
}

// rendered is what render produces for the profile in ns, with ownerReferences to a profile of
// the given UID: exactly the objects meshguard applies (without its rendered-hash annotation).
func rendered(ns string, uid types.UID) ([]*unstructured.Unstructured, error) {
	p := benchProfile(ns, "")
	p.UID = uid
	res, err := render.Render(p, render.DefaultOptions())
	if err != nil {
		return nil, err
	}
	if len(res.Unsupported) > 0 {
		return nil, fmt.Errorf("the bench profile renders unsupported fields: %s", strings.Join(res.Unsupported, "; "))
	}
	return res.Objects, nil
}

// resourceOf maps the generated kinds to their resources.
func resourceOf(u *unstructured.Unstructured) (schema.GroupVersionResource, error) {
	gv, err := schema.ParseGroupVersion(u.GetAPIVersion())
	if err != nil {
		return schema.GroupVersionResource{}, err
	}
	plural := map[string]string{
		"NetworkPolicy": "networkpolicies", "PeerAuthentication": "peerauthentications",
		"RequestAuthentication": "requestauthentications", "AuthorizationPolicy": "authorizationpolicies",
	}[u.GetKind()]
	if plural == "" {
		return schema.GroupVersionResource{}, fmt.Errorf("no resource known for %s", u.GetKind())
	}
	return gv.WithResource(plural), nil
}

// bareWrite is the fastest writer the API server allows a client with these limits: workers
// goroutines server-side apply every object render produces for every namespace, nothing else
// (no reads, no status, no events). It returns the time from the first request to the last answer.
func bareWrite(ctx context.Context, base *rest.Config, qps float64, burst, workers int, namespaces []string) (time.Duration, int, error) {
	cfg := rest.CopyConfig(base)
	cfg.QPS, cfg.Burst = float32(qps), burst
	cfg.UserAgent = "meshguard-bench-bare"
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return 0, 0, err
	}
	var objs []*unstructured.Unstructured
	for _, ns := range namespaces {
		o, err := rendered(ns, uuid.NewUUID())
		if err != nil {
			return 0, 0, err
		}
		objs = append(objs, o...)
	}
	start := time.Now()
	err = parallel(ctx, workers, len(objs), func(ctx context.Context, i int) error {
		gvr, err := resourceOf(objs[i])
		if err != nil {
			return err
		}
		_, err = dyn.Resource(gvr).Namespace(objs[i].GetNamespace()).Apply(ctx, objs[i].GetName(), objs[i],
			metav1.ApplyOptions{FieldManager: "meshguard-bench-bare", Force: true})
		if err != nil {
			return fmt.Errorf("apply %s %s/%s: %w", objs[i].GetKind(), objs[i].GetNamespace(), objs[i].GetName(), err)
		}
		return nil
	})
	return time.Since(start), len(objs), err
}
