package dataplane

import (
	"sort"
)

// Labels and annotations Istio reads to place a workload on a data plane. Each is the constant of
// istio/api (label/labels.gen.go, annotation/annotations.gen.go) or istio/istio
// (pkg/config/constants/constants.go).
const (
	// AnnotationSidecarStatus is written by the sidecar injector on every pod it injected
	// (istio/istio cni/pkg/util/podutil.go podHasSidecar).
	AnnotationSidecarStatus = "sidecar.istio.io/status"
	// AnnotationRedirection is written by istio-cni through pods/status once ztunnel captures the
	// pod: "enabled" when fully, "pending" when partly (a pending pod passes no traffic until a
	// ztunnel takes it); any other value means not captured (cni/pkg/util/podutil.go
	// PodFullyEnrolled, PodPartiallyEnrolled).
	AnnotationRedirection = "ambient.istio.io/redirection"
	RedirectionEnabled    = "enabled"
	RedirectionPending    = "pending"
	// LabelDataplaneMode on a pod or namespace asks for ambient ("ambient") or opts a pod out
	// ("none"); "Values other than ambient are treated as none" (istio/api label/labels.yaml).
	LabelDataplaneMode   = "istio.io/dataplane-mode"
	DataplaneModeAmbient = "ambient"
	DataplaneModeNone    = "none"
	// LabelUseWaypoint binds a Namespace, Service or Pod to a waypoint Gateway; "none" opts out;
	// a workload without it inherits its namespace's (pilot/pkg/serviceregistry/ambient/waypoints.go
	// GetUseWaypoint).
	LabelUseWaypoint          = "istio.io/use-waypoint"
	LabelUseWaypointNamespace = "istio.io/use-waypoint-namespace"
	UseWaypointNone           = "none"
	// LabelWaypointFor on the waypoint Gateway says which traffic it handles: service (the
	// default), workload, all or none (istio/api label/labels.yaml "istio.io/waypoint-for").
	LabelWaypointFor   = "istio.io/waypoint-for"
	WaypointForService = "service"
	WaypointForWork    = "workload"
	WaypointForAll     = "all"
	WaypointForNone    = "none"
	// LabelIngressUseWaypoint=true on a Service (or on its namespace, when the Service has no such
	// label) sends ingress-gateway traffic for the Service through the Service's waypoint; without
	// it ingress gateways skip the waypoint and its policy (istio/istio#51214; the namespace level
	// since istio/istio#54483). It applies to Services, ServiceEntries and Namespaces only, not to
	// pods (istio/api label/labels.yaml "istio.io/ingress-use-waypoint").
	LabelIngressUseWaypoint = "istio.io/ingress-use-waypoint"
	// WaypointGatewayClass is the GatewayClass of Istio's waypoints
	// (pkg/config/constants/constants.go WaypointGatewayClassName).
	WaypointGatewayClass = "istio-waypoint"
	// AnnotationGatewayServiceAccount names the service account of a Gateway's deployment; without
	// it a waypoint runs as a service account named after the Gateway
	// (pilot/pkg/config/kube/gateway/deploymentcontroller.go; the l4-policy docs' example admits
	// "cluster.local/ns/default/sa/waypoint" for the Gateway "waypoint").
	AnnotationGatewayServiceAccount = "gateway.istio.io/service-account"
)

// Class is the data plane that enforces policy for a workload.
type Class string

const (
	// Sidecar means the pod runs an Envoy sidecar, which enforces L4 and L7 policy bound by selector.
	Sidecar Class = "Sidecar"
	// Ambient means ztunnel captures the pod and no waypoint is in its path; only L4 policy bound by
	// selector is enforced (pilot/pkg/serviceregistry/ambient/authorization.go).
	Ambient Class = "Ambient"
	// Waypoint means ztunnel captures the pod and a waypoint is in the path of (some of) its traffic;
	// L7 policy is enforced there when bound with targetRefs.
	Waypoint Class = "Waypoint"
	// Unmeshed means no proxy; no Istio policy is enforced for the pod.
	Unmeshed Class = "Unmeshed"
)

// Pod is what classification needs of a pod: its name, labels and annotations (a metadata-only
// read is enough).
type Pod struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
}

// Service is what waypoint binding needs of a Service.
type Service struct {
	Name     string
	Labels   map[string]string
	Selector map[string]string
}

// Gateway is a Gateway (gateway.networking.k8s.io) that may be a waypoint.
type Gateway struct {
	Namespace   string
	Name        string
	ClassName   string
	Labels      map[string]string
	Annotations map[string]string
}

// Facts are what the controller observed about one namespace.
type Facts struct {
	Namespace       string
	NamespaceLabels map[string]string
	Pods            []Pod
	Services        []Service
	// Gateways are the Gateways of this namespace and of the namespaces its labels point to
	// (istio.io/use-waypoint-namespace). Those that are not waypoints are ignored.
	Gateways []Gateway
}

// WaypointRef names a waypoint and the identity it calls workloads with.
type WaypointRef struct {
	Namespace      string
	Name           string
	ServiceAccount string
}

// Target is what a policy attaches to with targetRefs to be enforced by a waypoint: the Service
// (service waypoints) or the waypoint Gateway itself (workload waypoints), in the profile's
// namespace (Istio refuses targetRefs to other namespaces: pkg/config/validation allowedTargetRefs).
type Target struct {
	Kind string // Service or Gateway
	Name string
}

// Workload is one pod, classified.
type Workload struct {
	Pod   string
	Class Class
	// Waypoints are the waypoints in the pod's path (Class Waypoint), sorted.
	Waypoints []WaypointRef
	// Targets are where a policy must attach to be enforced by those waypoints, sorted.
	Targets []Target
	// Problems say why a waypoint in the pod's path cannot carry the profile's policy.
	Problems []string
	// IngressVia and IngressSkips split the Services that bind a waypoint-bound pod to a service
	// waypoint: ingress-gateway traffic for those in IngressVia goes through the waypoint
	// (istio.io/ingress-use-waypoint=true on the Service, or on the namespace when the Service has
	// no such label), for those in IngressSkips it does not (istio/istio#51214). Both are empty for a
	// pod bound by a workload waypoint only: ingress gateways address Services, and the label
	// names no workload waypoint. Sorted.
	IngressVia   []string
	IngressSkips []string
}

// IngressUsesWaypoint says whether ingress-gateway traffic to a waypoint-bound pod goes through
// its waypoint, whichever of its Services it is sent to.
func (w Workload) IngressUsesWaypoint() bool {
	return len(w.IngressVia) > 0 && len(w.IngressSkips) == 0
}

// Selection is the classification of the pods one selector selects.
type Selection struct {
	Workloads []Workload
	// Expected is true when no pod exists yet: Workloads then holds one entry, named "(no pods)",
	// classified from the namespace's labels (istio.io/dataplane-mode, istio.io/use-waypoint).
	Expected bool
}

// NoPods is the pod name of the expected workload of a selector that selects no pod yet.
const NoPods = "(no pods)"

// Classes returns the distinct classes of the selection, sorted.
func (s Selection) Classes() []Class {
	seen := map[Class]bool{}
	var out []Class
	for _, w := range s.Workloads {
		if !seen[w.Class] {
			seen[w.Class] = true
			out = append(out, w.Class)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Has says whether any workload of the selection has class c.
func (s Selection) Has(c Class) bool {
	for _, w := range s.Workloads {
		if w.Class == c {
			return true
		}
	}
	return false
}

// Pods returns the names of the workloads of class c, sorted.
func (s Selection) Pods(c Class) []string {
	var out []string
	for _, w := range s.Workloads {
		if w.Class == c {
			out = append(out, w.Pod)
		}
	}
	return out
}

// Select classifies the pods of the namespace that selector selects (nil or empty: every pod).
// Without pods, the namespace's labels say what pods will get.
func Select(f *Facts, selector map[string]string) Selection {
	var s Selection
	for _, p := range f.Pods {
		if matches(selector, p.Labels) && !f.isWaypointPod(p) {
			s.Workloads = append(s.Workloads, classify(f, p))
		}
	}
	if len(s.Workloads) == 0 {
		s.Expected = true
		w := classify(f, Pod{Name: NoPods, Labels: selector})
		if w.Class == Unmeshed {
			// No pod to look at and no ambient label: the namespace is taken as a sidecar one,
			// which is how meshguard rendered every profile before ambient support.
			w.Class = Sidecar
		}
		s.Workloads = []Workload{w}
	}
	sort.Slice(s.Workloads, func(i, j int) bool { return s.Workloads[i].Pod < s.Workloads[j].Pod })
	return s
}

// Summary counts the pods of the namespace per class.
func Summary(f *Facts) map[Class][]string {
	out := map[Class][]string{}
	for _, p := range f.Pods {
		if f.isWaypointPod(p) {
			continue
		}
		w := classify(f, p)
		out[w.Class] = append(out[w.Class], p.Name)
	}
	for c := range out {
		sort.Strings(out[c])
	}
	return out
}

// classify places one pod.
func classify(f *Facts, p Pod) Workload {
	w := Workload{Pod: p.Name}
	switch {
	case p.Annotations[AnnotationSidecarStatus] != "":
		// A sidecar pod is never captured by ztunnel (istio-cni skips pods with sidecars).
		w.Class = Sidecar
		return w
	case p.Annotations[AnnotationRedirection] == RedirectionEnabled,
		p.Annotations[AnnotationRedirection] == RedirectionPending,
		ambientByLabels(f.NamespaceLabels, p.Labels):
		// The annotation is the truth once istio-cni wrote it; until then (a pod just created,
		// or no pod yet) the default enablement selector of istio-cni decides: pod label ambient,
		// or namespace label ambient and the pod not labelled none
		// (manifests/charts/istio-cni/values.yaml ambient.enablementSelectors, 1.27+; the fixed
		// rule before). Taking a pod for ambient early is the safe side: its policies are then
		// rendered for ztunnel.
		w.Class = Ambient
	default:
		w.Class = Unmeshed
		return w
	}
	bindWaypoints(f, p, &w)
	if len(w.Waypoints) > 0 {
		w.Class = Waypoint
	}
	return w
}

// ambientByLabels is istio-cni's default enablement selector.
func ambientByLabels(ns, pod map[string]string) bool {
	if v, ok := pod[LabelDataplaneMode]; ok {
		return v == DataplaneModeAmbient
	}
	return ns[LabelDataplaneMode] == DataplaneModeAmbient
}

// bindWaypoints finds the waypoints in an ambient pod's path, as GetUseWaypoint does
// (pilot/pkg/serviceregistry/ambient/waypoints.go): the pod's own istio.io/use-waypoint binds
// traffic addressed to the pod when the waypoint is for workload or all; the label of each Service
// selecting the pod (or the namespace's, when the Service has none) binds traffic addressed to the
// Service when the waypoint is for service (the default) or all. "none" opts out.
func bindWaypoints(f *Facts, p Pod, w *Workload) {
	seenWP := map[WaypointRef]bool{}
	seenT := map[Target]bool{}
	add := func(wp WaypointRef, t *Target, problem string) {
		if !seenWP[wp] {
			seenWP[wp] = true
			w.Waypoints = append(w.Waypoints, wp)
		}
		if t != nil && !seenT[*t] {
			seenT[*t] = true
			w.Targets = append(w.Targets, *t)
		}
		if problem != "" {
			w.Problems = append(w.Problems, problem)
		}
	}

	// Workload binding: the pod's label, else the namespace's.
	if name, ns, ok := useWaypoint(f, p.Labels); ok {
		if gw, found := f.waypoint(ns, name); found && handles(gw, WaypointForWork) {
			ref := waypointRef(gw)
			if ns == f.Namespace {
				add(ref, &Target{Kind: "Gateway", Name: name}, "")
			} else {
				add(ref, nil, "pod "+p.Name+" uses the workload waypoint "+ns+"/"+name+" of another namespace: a policy cannot attach to it with targetRefs from "+f.Namespace)
			}
		}
	}
	// Service binding: every Service selecting the pod.
	for _, svc := range f.Services {
		if len(svc.Selector) == 0 || !matches(svc.Selector, p.Labels) {
			continue
		}
		name, ns, ok := useWaypoint(f, svc.Labels)
		if !ok {
			continue
		}
		if gw, found := f.waypoint(ns, name); found && handles(gw, WaypointForService) {
			add(waypointRef(gw), &Target{Kind: "Service", Name: svc.Name}, "")
			if ingressUsesWaypoint(f, svc) {
				w.IngressVia = append(w.IngressVia, svc.Name)
			} else {
				w.IngressSkips = append(w.IngressSkips, svc.Name)
			}
		}
	}
	sort.Strings(w.IngressVia)
	sort.Strings(w.IngressSkips)
	sort.Slice(w.Waypoints, func(i, j int) bool {
		a, b := w.Waypoints[i], w.Waypoints[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	sort.Slice(w.Targets, func(i, j int) bool {
		a, b := w.Targets[i], w.Targets[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Name < b.Name
	})
	sort.Strings(w.Problems)
}

// useWaypoint reads istio.io/use-waypoint (and -namespace) from an object's labels, falling back
// to the namespace's when the object has no istio.io/use-waypoint label.
func useWaypoint(f *Facts, labels map[string]string) (name, ns string, ok bool) {
	src := labels
	if _, has := labels[LabelUseWaypoint]; !has {
		src = f.NamespaceLabels
	}
	name = src[LabelUseWaypoint]
	if name == "" || name == UseWaypointNone {
		return "", "", false
	}
	ns = src[LabelUseWaypointNamespace]
	if ns == "" {
		ns = f.Namespace
	}
	return name, ns, true
}

// ingressUsesWaypoint reads istio.io/ingress-use-waypoint from a Service, falling back to the
// namespace's when the Service has no such label, as istio.io/use-waypoint does. Only "true"
// counts: anything else leaves ingress off the waypoint, the side on which meshguard says ingress
// is refused rather than claim a waypoint policy covers it.
func ingressUsesWaypoint(f *Facts, svc Service) bool {
	v, ok := svc.Labels[LabelIngressUseWaypoint]
	if !ok {
		v = f.NamespaceLabels[LabelIngressUseWaypoint]
	}
	return v == "true"
}

func (f *Facts) waypoint(ns, name string) (Gateway, bool) {
	for _, g := range f.Gateways {
		if g.Namespace == ns && g.Name == name && IsWaypoint(g) {
			return g, true
		}
	}
	return Gateway{}, false
}

// IsWaypoint says whether a Gateway is an Istio waypoint: of class istio-waypoint, or labelled
// with istio.io/waypoint-for (a waypoint of another class, for example a custom GatewayClass).
func IsWaypoint(g Gateway) bool {
	_, labelled := g.Labels[LabelWaypointFor]
	return g.ClassName == WaypointGatewayClass || labelled
}

// handles says whether a waypoint takes traffic of kind want (service or workload).
func handles(g Gateway, want string) bool {
	v := g.Labels[LabelWaypointFor]
	if v == "" {
		v = WaypointForService
	}
	return v == WaypointForAll || v == want
}

func waypointRef(g Gateway) WaypointRef {
	sa := g.Annotations[AnnotationGatewayServiceAccount]
	if sa == "" {
		sa = g.Name
	}
	return WaypointRef{Namespace: g.Namespace, Name: g.Name, ServiceAccount: sa}
}

// matches says whether labels satisfy every key=value of selector (nil selects everything).
func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Matches is matches for callers that hold a workload selector.
func Matches(selector, labels map[string]string) bool { return matches(selector, labels) }

// TargetPods returns the pods a policy attached to t applies to, sorted: for a Service, every pod
// it selects (a waypoint enforces a Service's policy for all its endpoints); for a waypoint
// Gateway, every pod bound to it.
func TargetPods(f *Facts, t Target) []string {
	var out []string
	switch t.Kind {
	case "Service":
		for _, svc := range f.Services {
			if svc.Name != t.Name || len(svc.Selector) == 0 {
				continue
			}
			for _, p := range f.Pods {
				if matches(svc.Selector, p.Labels) {
					out = append(out, p.Name)
				}
			}
		}
	default:
		for _, p := range f.Pods {
			w := classify(f, p)
			for _, wt := range w.Targets {
				if wt == t {
					out = append(out, p.Name)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// LabelGatewayName is set on the pods of a Gateway's deployment by Istio's deployment controller
// (manifests/charts/istio-control/istio-discovery/files/waypoint.yaml).
const LabelGatewayName = "gateway.networking.k8s.io/gateway-name"

// isWaypointPod says whether a pod is one of a waypoint's own: policy does not bind it by
// selector, and it is not a workload of the profile.
func (f *Facts) isWaypointPod(p Pod) bool {
	name, ok := p.Labels[LabelGatewayName]
	if !ok {
		return false
	}
	_, isWP := f.waypoint(f.Namespace, name)
	return isWP
}
