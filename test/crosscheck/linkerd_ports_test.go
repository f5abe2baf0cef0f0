package crosscheck

import (
	"strconv"
	"strings"
	"testing"

	"github.com/np-guard/netpol-analyzer/pkg/netpol/eval"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/internal/render"
)

// NetworkPolicy ports on Linkerd (issue 9, point 10): meshed connections arrive at the proxy's
// inbound port 4143 ("Communication between two meshed pods will always have its original target
// port replaced with the proxy's inbound port", linkerd.io/2/common-errors/network-policy).
// meshguard renders a port-scoped rule as written and warns: netpol-analyzer shows it admits the
// declared port and never 4143 (so meshed senders are refused: fail closed, never wider), and
// that 4143 is admitted only when the profile lists it itself.
func TestLinkerdPortScopedIngressIsRenderedAsWrittenNeverOpeningTheProxyPort(t *testing.T) {
	opts := render.DefaultOptions()
	w := newWorld(opts.LinkerdNamespace)
	nss, pods := w.coreObjects()
	profileWith := func(ports ...int32) *v1alpha1.MeshSecurityProfile {
		var np []v1alpha1.NetworkPort
		for _, p := range ports {
			np = append(np, v1alpha1.NetworkPort{Port: p})
		}
		return &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: profileNS},
			Spec: v1alpha1.MeshSecurityProfileSpec{Mesh: v1alpha1.MeshLinkerd, NetworkPolicy: &v1alpha1.NetworkPolicySpec{
				DefaultDeny: []v1alpha1.PolicyDirection{v1alpha1.DirectionIngress},
				Ingress: []v1alpha1.IngressRule{{Name: "web", From: []v1alpha1.NetworkPeer{{Namespaces: []string{"frontend"}}},
					Selector: &v1alpha1.LabelSelector{MatchLabels: map[string]string{"app": "api"}}, Ports: np}},
			}}}
	}
	allowed := func(p *v1alpha1.MeshSecurityProfile, port int) (bool, []string) {
		res, err := render.Render(p, opts)
		if err != nil || len(res.Unsupported) > 0 {
			t.Fatalf("render: %v %v", err, res)
		}
		pe := eval.NewPolicyEngine()
		for _, ns := range nss {
			must(t, pe.InsertObject(ns.DeepCopy()))
		}
		for _, pd := range pods {
			must(t, pe.InsertObject(pd.DeepCopy()))
		}
		for _, u := range res.Objects {
			if u.GetKind() == "NetworkPolicy" {
				np := &networkingv1.NetworkPolicy{}
				must(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, np))
				must(t, pe.InsertObject(np))
			}
		}
		ok, err := pe.CheckIfAllowed("frontend/web", profileNS+"/api-a", "TCP", strconv.Itoa(port))
		must(t, err)
		return ok, res.Warnings
	}

	declared := profileWith(8080)
	if ok, warnings := allowed(declared, 8080); !ok {
		t.Errorf("the declared port 8080 is not admitted")
	} else if len(warnings) != 1 || !strings.Contains(warnings[0], "spec.networkPolicy.ingress[web].ports: meshed connections reach a Linkerd pod on the proxy's inbound port 4143") {
		t.Errorf("want the 4143 warning, got %q", warnings)
	}
	for _, port := range []int{4143, 9090} {
		if ok, _ := allowed(declared, port); ok {
			t.Errorf("port %d is admitted though the profile declares only 8080: wider than declared", port)
		}
	}
	withProxy := profileWith(8080, 4143)
	if ok, warnings := allowed(withProxy, 4143); !ok || len(warnings) != 0 {
		t.Errorf("a rule that lists 4143 itself admits it without a warning: allowed %v, warnings %q", ok, warnings)
	}
}
