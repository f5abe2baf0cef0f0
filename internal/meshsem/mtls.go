package meshsem

import (
	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// The inheritance of an mTLS mode, as Istio applies it to PeerAuthentications
// (https://istio.io/latest/docs/reference/config/security/peer_authentication/): a
// workload-level policy that leaves mtls UNSET inherits the namespace's mode, and a port of
// portLevelMtls replaces the workload's mode for that port only. meshguard's profile reads the
// same way on both meshes: "" is the API default, Strict; an override without mode inherits the
// namespace mode; a port inherits its override's mode.

// Mode is m with the API default applied: "" is Strict.
func Mode(m v1alpha1.MTLSMode) v1alpha1.MTLSMode {
	if m == "" {
		return v1alpha1.MTLSStrict
	}
	return m
}

// NamespaceMode is the mode of every pod and port that no override sets: mtls.mode, Strict when
// mtls or its mode is left out.
func NamespaceMode(m *v1alpha1.MTLSSpec) v1alpha1.MTLSMode {
	if m == nil {
		return v1alpha1.MTLSStrict
	}
	return Mode(m.Mode)
}

// WorkloadMode is the mode of the pods an override selects, on ports it does not list: its own
// mode, else the namespace mode (Istio's UNSET). o nil is the namespace mode.
func WorkloadMode(m *v1alpha1.MTLSSpec, o *v1alpha1.MTLSOverride) v1alpha1.MTLSMode {
	if o != nil && o.Mode != "" {
		return o.Mode
	}
	return NamespaceMode(m)
}

// PortMode is the mode of one port of the pods an override selects: the port's own mode when
// the override lists it, else the override's workload mode (Istio's portLevelMtls).
func PortMode(m *v1alpha1.MTLSSpec, o *v1alpha1.MTLSOverride, port int32) v1alpha1.MTLSMode {
	if o != nil {
		for _, p := range o.Ports {
			if p.Port == port && p.Mode != "" {
				return p.Mode
			}
		}
	}
	return WorkloadMode(m, o)
}

// OverrideFor is the override whose selector selects a pod with these labels, nil when none
// does. An override with an empty selector selects nothing (render refuses it). The overrides of
// a valid profile cannot select the same pod (render refuses overlaps: Istio would apply the
// oldest workload PeerAuthentication, Linkerd one Server per port); of overlapping ones the first
// is returned.
func OverrideFor(m *v1alpha1.MTLSSpec, podLabels map[string]string) *v1alpha1.MTLSOverride {
	if m == nil {
		return nil
	}
	for i := range m.Overrides {
		o := &m.Overrides[i]
		if len(o.Selector.MatchLabels) > 0 && Selects(o.Selector.MatchLabels, podLabels) {
			return o
		}
	}
	return nil
}

// ModeFor is the mode a profile gives a connection to port of a pod with these labels.
func ModeFor(m *v1alpha1.MTLSSpec, podLabels map[string]string, port int32) v1alpha1.MTLSMode {
	return PortMode(m, OverrideFor(m, podLabels), port)
}

// Rank orders modes by what they refuse: Strict (only mutual TLS) 3, Permissive (both) 2,
// Disable (plaintext only: no peer identity) 1; "" is Strict. Istio's modes
// (PeerAuthentication-MutualTLS-Mode in the reference above); Linkerd's all-authenticated is
// stricter than all-unauthenticated in the same way.
func Rank(m v1alpha1.MTLSMode) int {
	switch Mode(m) {
	case v1alpha1.MTLSStrict:
		return 3
	case v1alpha1.MTLSPermissive:
		return 2
	}
	return 1
}

// Stricter is the stricter of two modes, with the API default applied.
func Stricter(a, b v1alpha1.MTLSMode) v1alpha1.MTLSMode {
	if Rank(b) > Rank(a) {
		return Mode(b)
	}
	return Mode(a)
}

// Selects says whether a matchLabels selector selects a pod with these labels: every label of
// the selector, with its value. An empty selector selects every pod.
func Selects(selector, podLabels map[string]string) bool {
	for k, v := range selector {
		if got, ok := podLabels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// MayOverlap says whether two matchLabels selectors can select the same pod: unless they
// require different values of one label key, a pod can carry the labels of both.
func MayOverlap(a, b map[string]string) bool {
	for k, v := range a {
		if w, ok := b[k]; ok && w != v {
			return false
		}
	}
	return true
}
