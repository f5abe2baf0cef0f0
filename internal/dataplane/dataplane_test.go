package dataplane

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestSelect(t *testing.T) {
	sidecar := Pod{Name: "legacy-0", Labels: map[string]string{"app": "legacy"}, Annotations: map[string]string{AnnotationSidecarStatus: `{"containers":["istio-proxy"]}`}}
	ambient := Pod{Name: "api-0", Labels: map[string]string{"app": "api"}, Annotations: map[string]string{AnnotationRedirection: RedirectionEnabled}}
	plain := Pod{Name: "batch-0", Labels: map[string]string{"app": "batch"}}
	wpService := Gateway{Namespace: "shop", Name: "waypoint", ClassName: WaypointGatewayClass}
	wpWorkload := Gateway{Namespace: "shop", Name: "wl-waypoint", ClassName: WaypointGatewayClass, Labels: map[string]string{LabelWaypointFor: WaypointForWork}}
	apiSvc := Service{Name: "api", Selector: map[string]string{"app": "api"}}

	cases := []struct {
		name     string
		facts    Facts
		selector map[string]string
		want     []Workload
		expected bool
	}{
		{
			name:  "a pod with the sidecar status annotation is a sidecar pod even in an ambient namespace",
			facts: Facts{Namespace: "shop", NamespaceLabels: map[string]string{LabelDataplaneMode: DataplaneModeAmbient}, Pods: []Pod{sidecar}},
			want:  []Workload{{Pod: "legacy-0", Class: Sidecar}},
		},
		{
			name:  "a pod istio-cni redirected is ambient",
			facts: Facts{Namespace: "shop", Pods: []Pod{ambient}},
			want:  []Workload{{Pod: "api-0", Class: Ambient}},
		},
		{
			name:  "a pod redirection pending is ambient (it passes no traffic until ztunnel takes it)",
			facts: Facts{Namespace: "shop", Pods: []Pod{{Name: "p", Annotations: map[string]string{AnnotationRedirection: RedirectionPending}}}},
			want:  []Workload{{Pod: "p", Class: Ambient}},
		},
		{
			name:  "a pod not yet redirected in an ambient namespace is taken as ambient",
			facts: Facts{Namespace: "shop", NamespaceLabels: map[string]string{LabelDataplaneMode: DataplaneModeAmbient}, Pods: []Pod{plain}},
			want:  []Workload{{Pod: "batch-0", Class: Ambient}},
		},
		{
			name: "a pod labelled dataplane-mode none in an ambient namespace is unmeshed",
			facts: Facts{Namespace: "shop", NamespaceLabels: map[string]string{LabelDataplaneMode: DataplaneModeAmbient},
				Pods: []Pod{{Name: "p", Labels: map[string]string{LabelDataplaneMode: DataplaneModeNone}}}},
			want: []Workload{{Pod: "p", Class: Unmeshed}},
		},
		{
			name:  "a pod without proxy or labels is unmeshed",
			facts: Facts{Namespace: "shop", Pods: []Pod{plain}},
			want:  []Workload{{Pod: "batch-0", Class: Unmeshed}},
		},
		{
			name: "a Service labelled with a service waypoint puts its ambient pods behind it, attached by the Service",
			facts: Facts{Namespace: "shop", Pods: []Pod{ambient}, Gateways: []Gateway{wpService},
				Services: []Service{{Name: "api", Selector: apiSvc.Selector, Labels: map[string]string{LabelUseWaypoint: "waypoint"}}}},
			want: []Workload{{Pod: "api-0", Class: Waypoint, Waypoints: []WaypointRef{{Namespace: "shop", Name: "waypoint", ServiceAccount: "waypoint"}}, Targets: []Target{{Kind: "Service", Name: "api"}}, IngressSkips: []string{"api"}}},
		},
		{
			name: "a namespace label binds its Services; a Service labelled none opts out",
			facts: Facts{Namespace: "shop", NamespaceLabels: map[string]string{LabelUseWaypoint: "waypoint"}, Pods: []Pod{ambient}, Gateways: []Gateway{wpService},
				Services: []Service{apiSvc, {Name: "api-direct", Selector: apiSvc.Selector, Labels: map[string]string{LabelUseWaypoint: UseWaypointNone}}}},
			want: []Workload{{Pod: "api-0", Class: Waypoint, Waypoints: []WaypointRef{{Namespace: "shop", Name: "waypoint", ServiceAccount: "waypoint"}}, Targets: []Target{{Kind: "Service", Name: "api"}}, IngressSkips: []string{"api"}}},
		},
		{
			name: "a pod label naming a service-only waypoint does not bind the pod (pod-addressed traffic skips it)",
			facts: Facts{Namespace: "shop", Gateways: []Gateway{wpService},
				Pods: []Pod{{Name: "api-0", Labels: map[string]string{"app": "api", LabelUseWaypoint: "waypoint"}, Annotations: ambient.Annotations}}},
			want: []Workload{{Pod: "api-0", Class: Ambient}},
		},
		{
			name: "a pod label naming a workload waypoint binds the pod, attached by the Gateway; its service account annotation is its identity",
			facts: Facts{Namespace: "shop", Gateways: []Gateway{{Namespace: "shop", Name: "wl-waypoint", ClassName: "custom", Labels: map[string]string{LabelWaypointFor: WaypointForAll}, Annotations: map[string]string{AnnotationGatewayServiceAccount: "wp-sa"}}},
				Pods: []Pod{{Name: "api-0", Labels: map[string]string{"app": "api", LabelUseWaypoint: "wl-waypoint"}, Annotations: ambient.Annotations}}},
			want: []Workload{{Pod: "api-0", Class: Waypoint, Waypoints: []WaypointRef{{Namespace: "shop", Name: "wl-waypoint", ServiceAccount: "wp-sa"}}, Targets: []Target{{Kind: "Gateway", Name: "wl-waypoint"}}}},
		},
		{
			name: "a workload waypoint of another namespace binds the pod but cannot carry its policy",
			facts: Facts{Namespace: "shop", Gateways: []Gateway{{Namespace: "infra", Name: "wp", ClassName: WaypointGatewayClass, Labels: map[string]string{LabelWaypointFor: WaypointForWork}}},
				Pods: []Pod{{Name: "api-0", Labels: map[string]string{LabelUseWaypoint: "wp", LabelUseWaypointNamespace: "infra"}, Annotations: ambient.Annotations}}},
			want: []Workload{{Pod: "api-0", Class: Waypoint, Waypoints: []WaypointRef{{Namespace: "infra", Name: "wp", ServiceAccount: "wp"}},
				Problems: []string{"pod api-0 uses the workload waypoint infra/wp of another namespace: a policy cannot attach to it with targetRefs from shop"}}},
		},
		{
			name:  "a binding to a Gateway that does not exist binds nothing",
			facts: Facts{Namespace: "shop", NamespaceLabels: map[string]string{LabelUseWaypoint: "gone"}, Pods: []Pod{ambient}, Services: []Service{apiSvc}},
			want:  []Workload{{Pod: "api-0", Class: Ambient}},
		},
		{
			name:  "the waypoint binding of a sidecar pod is ignored",
			facts: Facts{Namespace: "shop", NamespaceLabels: map[string]string{LabelUseWaypoint: "wl-waypoint"}, Pods: []Pod{sidecar}, Gateways: []Gateway{wpWorkload}},
			want:  []Workload{{Pod: "legacy-0", Class: Sidecar}},
		},
		{
			name:     "a selector picks its pods only, sorted by name, across classes",
			facts:    Facts{Namespace: "shop", Pods: []Pod{sidecar, ambient, plain, {Name: "api-1", Labels: map[string]string{"app": "api"}, Annotations: sidecar.Annotations}}},
			selector: map[string]string{"app": "api"},
			want:     []Workload{{Pod: "api-0", Class: Ambient}, {Pod: "api-1", Class: Sidecar}},
		},
		{
			name:     "without pods a plain namespace is expected to be sidecar",
			facts:    Facts{Namespace: "shop"},
			selector: map[string]string{"app": "api"},
			want:     []Workload{{Pod: NoPods, Class: Sidecar}},
			expected: true,
		},
		{
			name:     "without pods the namespace's ambient label and workload waypoint rule",
			facts:    Facts{Namespace: "shop", NamespaceLabels: map[string]string{LabelDataplaneMode: DataplaneModeAmbient, LabelUseWaypoint: "wl-waypoint"}, Gateways: []Gateway{wpWorkload}},
			want:     []Workload{{Pod: NoPods, Class: Waypoint, Waypoints: []WaypointRef{{Namespace: "shop", Name: "wl-waypoint", ServiceAccount: "wl-waypoint"}}, Targets: []Target{{Kind: "Gateway", Name: "wl-waypoint"}}}},
			expected: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got := Select(&tc.facts, tc.selector)
			g.Expect(got.Workloads).To(Equal(tc.want))
			g.Expect(got.Expected).To(Equal(tc.expected))
		})
	}
}

// TestIngressUseWaypoint: ingress gateways send a Service's traffic through its waypoint only with
// istio.io/ingress-use-waypoint=true on the Service or its namespace (istio/istio#51214, #54483;
// istio/api label/labels.yaml); a workload waypoint is never on their path.
func TestIngressUseWaypoint(t *testing.T) {
	ambient := map[string]string{AnnotationRedirection: RedirectionEnabled}
	api := Pod{Name: "api-0", Labels: map[string]string{"app": "api"}, Annotations: ambient}
	wp := Gateway{Namespace: "shop", Name: "waypoint", ClassName: WaypointGatewayClass, Labels: map[string]string{LabelWaypointFor: WaypointForAll}}
	svc := func(name string, labels map[string]string) Service {
		l := map[string]string{LabelUseWaypoint: "waypoint"}
		for k, v := range labels {
			l[k] = v
		}
		return Service{Name: name, Labels: l, Selector: map[string]string{"app": "api"}}
	}
	on := map[string]string{LabelIngressUseWaypoint: "true"}
	cases := []struct {
		name      string
		nsLabels  map[string]string
		pod       Pod
		services  []Service
		via, skip []string
		uses      bool
	}{
		{name: "no label anywhere: ingress skips the waypoint", services: []Service{svc("api", nil)}, skip: []string{"api"}},
		{name: "the Service's label", services: []Service{svc("api", on)}, via: []string{"api"}, uses: true},
		{name: "the namespace's label", nsLabels: on, services: []Service{svc("api", nil)}, via: []string{"api"}, uses: true},
		{name: "a Service label other than true overrides the namespace's", nsLabels: on,
			services: []Service{svc("api", map[string]string{LabelIngressUseWaypoint: "false"})}, skip: []string{"api"}},
		{name: "one of two Services without it: ingress through that one skips the waypoint",
			services: []Service{svc("api", on), svc("api-admin", nil)}, via: []string{"api"}, skip: []string{"api-admin"}},
		{name: "a pod bound only by a workload waypoint: no Service brings ingress to it, even with the namespace label",
			nsLabels: on, pod: Pod{Name: "api-0", Labels: map[string]string{"app": "api", LabelUseWaypoint: "waypoint"}, Annotations: ambient}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			p := api
			if tc.pod.Name != "" {
				p = tc.pod
			}
			s := Select(&Facts{Namespace: "shop", NamespaceLabels: tc.nsLabels, Pods: []Pod{p}, Services: tc.services, Gateways: []Gateway{wp}}, nil)
			g.Expect(s.Workloads).To(HaveLen(1))
			w := s.Workloads[0]
			g.Expect(w.Class).To(Equal(Waypoint))
			g.Expect(w.IngressVia).To(Equal(tc.via))
			g.Expect(w.IngressSkips).To(Equal(tc.skip))
			g.Expect(w.IngressUsesWaypoint()).To(Equal(tc.uses))
		})
	}
}

func TestSummaryCountsEveryPodOnce(t *testing.T) {
	g := NewWithT(t)
	f := &Facts{Namespace: "shop", NamespaceLabels: map[string]string{LabelDataplaneMode: DataplaneModeAmbient}, Pods: []Pod{
		{Name: "b"}, {Name: "a"}, {Name: "s", Annotations: map[string]string{AnnotationSidecarStatus: "{}"}},
	}}
	g.Expect(Summary(f)).To(Equal(map[Class][]string{Ambient: {"a", "b"}, Sidecar: {"s"}}))
}
