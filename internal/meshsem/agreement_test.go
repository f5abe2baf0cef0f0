package meshsem_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/effective"
	"github.com/meshguard/meshguard/internal/explain"
	"github.com/meshguard/meshguard/internal/meshsem"
	"github.com/meshguard/meshguard/internal/render"
)

// These tests tie the packages that each need a mesh decision to meshsem, the one place it is
// made: for a generated set of profiles, what render writes, what explain reads back from it and
// what effective judges against agree on the mTLS mode of every pod and port and on Linkerd's
// namespace default. A package that decides again, and drifts, fails here.

const namespace = "shop"

var (
	modes = []v1alpha1.MTLSMode{"", v1alpha1.MTLSStrict, v1alpha1.MTLSPermissive, v1alpha1.MTLSDisable}
	// pods: one an override selects, one it does not.
	pods  = []map[string]string{{"app": "legacy", "tier": "back"}, {"app": "web"}}
	ports = []int32{8080, 9090}
	// outside is a client without a proxy, outside the cluster networks: it sends plaintext.
	outside = explain.Source{IP: "203.0.113.10", Unmeshed: true}
)

func profile(mesh v1alpha1.Mesh, mtls *v1alpha1.MTLSSpec, az *v1alpha1.AuthorizationSpec) *v1alpha1.MeshSecurityProfile {
	return &v1alpha1.MeshSecurityProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: namespace},
		Spec:       v1alpha1.MeshSecurityProfileSpec{Mesh: mesh, MTLS: mtls, Authorization: az},
	}
}

// istioProfiles are every namespace mode with no override, an override with a mode, with a port,
// and with both.
func istioProfiles() []*v1alpha1.MeshSecurityProfile {
	var out []*v1alpha1.MeshSecurityProfile
	for _, ns := range modes {
		variants := []*v1alpha1.MTLSOverride{nil}
		for _, wl := range modes {
			for _, port := range modes {
				if wl == "" && port == "" {
					continue
				}
				o := &v1alpha1.MTLSOverride{Selector: v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "legacy"}}, Mode: wl}
				if port != "" {
					o.Ports = []v1alpha1.PortMTLS{{Port: 8080, Mode: port}}
				}
				variants = append(variants, o)
			}
		}
		for _, o := range variants {
			m := &v1alpha1.MTLSSpec{Mode: ns}
			if o != nil {
				m.Overrides = []v1alpha1.MTLSOverride{*o}
			}
			out = append(out, profile(v1alpha1.MeshIstio, m, nil))
		}
	}
	return append(out, profile(v1alpha1.MeshIstio, nil, nil))
}

func istioMode(m v1alpha1.MTLSMode) string { return strings.ToUpper(string(meshsem.Mode(m))) }

func weaker(m v1alpha1.MTLSMode) (v1alpha1.MTLSMode, bool) {
	switch meshsem.Mode(m) {
	case v1alpha1.MTLSStrict:
		return v1alpha1.MTLSPermissive, true
	case v1alpha1.MTLSPermissive:
		return v1alpha1.MTLSDisable, true
	}
	return "", false
}

var modeInReason = regexp.MustCompile(`^mode ([A-Z]+) `)

func describe(p *v1alpha1.MeshSecurityProfile) string {
	return fmt.Sprintf("mtls %+v authorization %+v", p.Spec.MTLS, p.Spec.Authorization)
}

func layer(t *testing.T, res *explain.Result, name string) explain.LayerResult {
	t.Helper()
	for _, l := range res.Layers {
		if l.Layer == name {
			return l
		}
	}
	t.Fatalf("no layer %s in %+v", name, res.Layers)
	return explain.LayerResult{}
}

// TestIstioModeAgrees: for each pod and port, the mode meshsem gives is the mode explain finds in
// the PeerAuthentications render wrote, and effective reports a foreign workload
// PeerAuthentication exactly when it is weaker than that mode.
func TestIstioModeAgrees(t *testing.T) {
	for _, p := range istioProfiles() {
		res, err := render.Render(p, render.DefaultOptions())
		if err != nil {
			t.Fatalf("%s: render: %v", describe(p), err)
		}
		desired := effective.Desired{Objects: res.Objects, NamespaceAnnotations: res.NamespaceAnnotations}
		for _, labels := range pods {
			o := meshsem.OverrideFor(p.Spec.MTLS, labels)
			for _, port := range ports {
				want := meshsem.ModeFor(p.Spec.MTLS, labels, port)
				where := fmt.Sprintf("%s: pods %v port %d", describe(p), labels, port)

				// explain, on what render wrote.
				ex, err := explain.Evaluate(res.Objects, explain.Request{From: outside,
					To: explain.Destination{Namespace: namespace, PodLabels: labels, Port: port}}, explain.Options{Mesh: explain.MeshIstio})
				if err != nil {
					t.Fatalf("%s: explain: %v", where, err)
				}
				mtls := layer(t, ex, explain.LayerMTLS)
				got := modeInReason.FindStringSubmatch(mtls.Reason)
				if got == nil || got[1] != istioMode(want) {
					t.Errorf("%s: meshsem says %s, explain on the rendered objects: %q", where, want, mtls.Reason)
				}
				if (mtls.Decision == explain.Denied) != (want == v1alpha1.MTLSStrict) {
					t.Errorf("%s: mode %s, yet explain decides %s for plaintext", where, want, mtls.Decision)
				}

				// effective: a foreign workload policy with the profile's modes weakens nothing; the
				// same with this port weaker does.
				workload := istioMode(meshsem.WorkloadMode(p.Spec.MTLS, o))
				portModes := map[int32]string{}
				for _, pp := range ports {
					portModes[pp] = istioMode(meshsem.ModeFor(p.Spec.MTLS, labels, pp))
				}
				same := foreignPeerAuthentication(labels, workload, portModes)
				if rows := effective.Find(p, desired, same, effective.Options{}); len(rows) > 0 {
					t.Errorf("%s: a foreign policy asking for the profile's own modes is reported: %+v", where, rows)
				}
				if w, ok := weaker(want); ok {
					portModes[port] = istioMode(w)
					less := foreignPeerAuthentication(labels, workload, portModes)
					rows := effective.Find(p, desired, less, effective.Options{})
					if len(rows) != 1 || !strings.Contains(rows[0].Weakens, fmt.Sprintf("port %d %s", port, istioMode(w))) {
						t.Errorf("%s: a foreign policy setting the port to %s (profile: %s) is not reported as such: %+v", where, w, want, rows)
					}
				}
			}
		}
	}
}

func foreignPeerAuthentication(labels map[string]string, workload string, portModes map[int32]string) []*unstructured.Unstructured {
	sel := map[string]any{}
	for k, v := range labels {
		sel[k] = v
	}
	levels := map[string]any{}
	for port, m := range portModes {
		levels[fmt.Sprint(port)] = map[string]any{"mode": m}
	}
	return []*unstructured.Unstructured{{Object: map[string]any{
		"apiVersion": "security.istio.io/v1",
		"kind":       "PeerAuthentication",
		"metadata":   map[string]any{"name": "foreign", "namespace": namespace},
		"spec": map[string]any{
			"selector":      map[string]any{"matchLabels": sel},
			"mtls":          map[string]any{"mode": workload},
			"portLevelMtls": levels,
		},
	}}}
}

// linkerdProfiles are every namespace mode, with and without a port override, without
// authorization, with defaultDeny and with defaultDeny in Shadow.
func linkerdProfiles() []*v1alpha1.MeshSecurityProfile {
	azs := []*v1alpha1.AuthorizationSpec{nil, {DefaultDeny: true}, {DefaultDeny: true, Enforcement: v1alpha1.RuleEnforcementShadow}}
	var out []*v1alpha1.MeshSecurityProfile
	for _, ns := range modes {
		for _, az := range azs {
			out = append(out, profile(v1alpha1.MeshLinkerd, &v1alpha1.MTLSSpec{Mode: ns}, az))
			for _, port := range modes[1:] {
				out = append(out, profile(v1alpha1.MeshLinkerd, &v1alpha1.MTLSSpec{Mode: ns, Overrides: []v1alpha1.MTLSOverride{{
					Selector: v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "legacy"}},
					Ports:    []v1alpha1.PortMTLS{{Port: 8080, Mode: port}},
				}}}, az))
			}
		}
	}
	return out
}

// TestLinkerdDefaultAgrees: the namespace default render writes is meshsem's; explain, reading
// render's objects and namespace annotation, admits plaintext on a pod port exactly where the
// profile does (the port's mode is not Strict and no enforced defaultDeny); effective reports a
// foreign Server that admits plaintext on a port the profile's Servers leave to the namespace
// default exactly when that default refuses plaintext.
func TestLinkerdDefaultAgrees(t *testing.T) {
	for _, p := range linkerdProfiles() {
		res, err := render.Render(p, render.DefaultOptions())
		if err != nil || len(res.Unsupported) > 0 {
			t.Fatalf("%s: render: %v %v", describe(p), err, res)
		}
		shadow := render.AuthorizationShadow(p)
		policy, ok := meshsem.LinkerdNamespacePolicy(&p.Spec, shadow)
		if got := res.NamespaceAnnotations[meshsem.LinkerdDefaultInboundPolicyAnnotation]; !ok || got != policy {
			t.Errorf("%s: render sets the namespace default %q, meshsem says %q", describe(p), got, policy)
		}
		denyAll := p.Spec.Authorization != nil && p.Spec.Authorization.DefaultDeny && !shadow

		ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": namespace}}}
		ns.SetAnnotations(res.NamespaceAnnotations)
		objs := append([]*unstructured.Unstructured{ns}, res.Objects...)
		for _, labels := range pods {
			for _, port := range ports {
				where := fmt.Sprintf("%s: pods %v port %d", describe(p), labels, port)
				mode := meshsem.ModeFor(p.Spec.MTLS, labels, port)
				admits := mode != v1alpha1.MTLSStrict && !denyAll
				ex, err := explain.Evaluate(objs, explain.Request{From: outside,
					To: explain.Destination{Namespace: namespace, PodLabels: labels, Port: port, OpaqueTCP: true}}, explain.Options{Mesh: explain.MeshLinkerd})
				if err != nil {
					t.Fatalf("%s: explain: %v", where, err)
				}
				az := layer(t, ex, explain.LayerAuthorization)
				if (az.Decision == explain.Allowed) != admits {
					t.Errorf("%s: mode %s, defaultDeny enforced %v; explain on the rendered objects: %s (%s)", where, mode, denyAll, az.Decision, az.Reason)
				}
			}
		}

		// A foreign Server for pods and a port the profile's Servers do not select.
		server := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server",
			"metadata": map[string]any{"name": "foreign", "namespace": namespace},
			"spec": map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
				"port": int64(9090), "accessPolicy": meshsem.LinkerdAllUnauthenticated},
		}}
		rows := effective.Find(p, effective.Desired{Objects: res.Objects, NamespaceAnnotations: res.NamespaceAnnotations},
			[]*unstructured.Unstructured{server}, effective.Options{})
		refuses := meshsem.NamespaceMode(p.Spec.MTLS) == v1alpha1.MTLSStrict || denyAll
		if (len(rows) > 0) != refuses {
			t.Errorf("%s: the namespace default %s refuses plaintext: %v; effective reports an all-unauthenticated Server: %+v", describe(p), policy, refuses, rows)
		}
	}
}
