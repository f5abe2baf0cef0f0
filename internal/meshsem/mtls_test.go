package meshsem

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

func TestModeInheritance(t *testing.T) {
	legacy := v1alpha1.MTLSOverride{Selector: v1alpha1.WorkloadSelector{MatchLabels: map[string]string{"app": "legacy"}},
		Ports: []v1alpha1.PortMTLS{{Port: 8080, Mode: v1alpha1.MTLSDisable}}}
	withMode := legacy
	withMode.Mode = v1alpha1.MTLSPermissive
	tests := []struct {
		name   string
		mtls   *v1alpha1.MTLSSpec
		labels map[string]string
		port   int32
		want   v1alpha1.MTLSMode
	}{
		{"no mtls at all is Strict", nil, nil, 80, v1alpha1.MTLSStrict},
		{"an empty mode is Strict", &v1alpha1.MTLSSpec{}, nil, 80, v1alpha1.MTLSStrict},
		{"the namespace mode applies to pods no override selects", &v1alpha1.MTLSSpec{Mode: v1alpha1.MTLSPermissive, Overrides: []v1alpha1.MTLSOverride{withMode}}, map[string]string{"app": "web"}, 8080, v1alpha1.MTLSPermissive},
		{"an override without mode inherits the namespace mode", &v1alpha1.MTLSSpec{Mode: v1alpha1.MTLSStrict, Overrides: []v1alpha1.MTLSOverride{legacy}}, map[string]string{"app": "legacy"}, 9090, v1alpha1.MTLSStrict},
		{"an override's mode replaces the namespace's", &v1alpha1.MTLSSpec{Overrides: []v1alpha1.MTLSOverride{withMode}}, map[string]string{"app": "legacy", "tier": "x"}, 9090, v1alpha1.MTLSPermissive},
		{"a port's mode replaces the override's", &v1alpha1.MTLSSpec{Overrides: []v1alpha1.MTLSOverride{withMode}}, map[string]string{"app": "legacy"}, 8080, v1alpha1.MTLSDisable},
		{"an override with an empty selector selects nothing", &v1alpha1.MTLSSpec{Overrides: []v1alpha1.MTLSOverride{{Mode: v1alpha1.MTLSDisable}}}, map[string]string{"app": "legacy"}, 80, v1alpha1.MTLSStrict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ModeFor(tt.mtls, tt.labels, tt.port); got != tt.want {
				t.Errorf("ModeFor = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestStricter(t *testing.T) {
	if got := Stricter("", v1alpha1.MTLSPermissive); got != v1alpha1.MTLSStrict {
		t.Errorf("Stricter(\"\", Permissive) = %s: the API default is Strict", got)
	}
	if got := Stricter(v1alpha1.MTLSDisable, v1alpha1.MTLSPermissive); got != v1alpha1.MTLSPermissive {
		t.Errorf("Stricter(Disable, Permissive) = %s", got)
	}
}

func TestLinkerdAdmitsMore(t *testing.T) {
	tests := []struct {
		got, want string
		more      bool
	}{
		{LinkerdDeny, LinkerdAllAuthenticated, false},
		{LinkerdAllAuthenticated, LinkerdDeny, true},
		{LinkerdAllUnauthenticated, LinkerdAllAuthenticated, true},
		{LinkerdAllAuthenticated, LinkerdAllUnauthenticated, false},
		{LinkerdAllAuthenticated, LinkerdClusterAuthenticated, true},
		{LinkerdClusterAuthenticated, LinkerdAllAuthenticated, false},
		{LinkerdClusterUnauthenticated, LinkerdClusterAuthenticated, true},
		{LinkerdAudit, LinkerdAllAuthenticated, true},
		{LinkerdAudit, LinkerdAllUnauthenticated, false},
		{"something-new", LinkerdAllAuthenticated, true},
	}
	for _, tt := range tests {
		if got := LinkerdAdmitsMore(tt.got, tt.want); got != tt.more {
			t.Errorf("LinkerdAdmitsMore(%s, %s) = %v, want %v", tt.got, tt.want, got, tt.more)
		}
	}
}

func TestLinkerdNamespacePolicy(t *testing.T) {
	spec := func(mode v1alpha1.MTLSMode, defaultDeny bool) *v1alpha1.MeshSecurityProfileSpec {
		return &v1alpha1.MeshSecurityProfileSpec{MTLS: &v1alpha1.MTLSSpec{Mode: mode}, Authorization: &v1alpha1.AuthorizationSpec{DefaultDeny: defaultDeny}}
	}
	tests := []struct {
		name   string
		spec   *v1alpha1.MeshSecurityProfileSpec
		shadow bool
		want   string
	}{
		{"Strict admits meshed clients", spec("", false), false, LinkerdAllAuthenticated},
		{"Disable admits plaintext, as Permissive", spec(v1alpha1.MTLSDisable, false), false, LinkerdAllUnauthenticated},
		{"defaultDeny denies whatever the mode", spec(v1alpha1.MTLSPermissive, true), false, LinkerdDeny},
		{"defaultDeny in shadow audits where the mode admits plaintext", spec(v1alpha1.MTLSPermissive, true), true, LinkerdAudit},
		{"defaultDeny in shadow keeps Strict's all-authenticated", spec(v1alpha1.MTLSStrict, true), true, LinkerdAllAuthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, ok := LinkerdNamespacePolicy(tt.spec, tt.shadow); !ok || got != tt.want {
				t.Errorf("LinkerdNamespacePolicy = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}

func TestOlderIsCreationTimeThenName(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Second))
	a := &metav1.ObjectMeta{Name: "z", CreationTimestamp: t0}
	b := &metav1.ObjectMeta{Name: "a", CreationTimestamp: t1}
	c := &metav1.ObjectMeta{Name: "b", CreationTimestamp: t1}
	if !Older(a, b) || Older(b, a) {
		t.Error("the older object does not come first")
	}
	if !Older(b, c) || Older(c, b) {
		t.Error("of two objects created together, the name does not decide")
	}
}
