package clusterfacts

import (
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Defaults of a stock cluster.
const (
	// DefaultTrustDomain is the trust domain of Istio's and Linkerd's default installations.
	DefaultTrustDomain = "cluster.local"
	// DefaultIstioNamespace is where istioctl and Istio's charts install istiod; it is also
	// Istio's default meshConfig.rootNamespace.
	DefaultIstioNamespace = "istio-system"
	// DefaultLinkerdNamespace is where Linkerd's charts install the control plane.
	DefaultLinkerdNamespace = "linkerd"
	// DefaultDNSNamespace is where kubeadm and most distributions run CoreDNS.
	DefaultDNSNamespace = "kube-system"
)

// DefaultDNSPodLabels select CoreDNS as kubeadm deploys it (the label kept from kube-dns).
func DefaultDNSPodLabels() map[string]string { return map[string]string{"k8s-app": "kube-dns"} }

// Facts are the cluster facts. The zero value of a field means its default (WithDefaults).
type Facts struct {
	// TrustDomain is the mesh trust domain used when a profile sets none.
	TrustDomain string
	// IstioNamespace is where istiod and the Istio CA run.
	IstioNamespace string
	// IstioRootNamespace is Istio's meshConfig.rootNamespace, whose policies apply to the whole
	// mesh. Default: IstioNamespace.
	IstioRootNamespace string
	// LinkerdNamespace is where the Linkerd control plane runs.
	LinkerdNamespace string
	// DNSNamespace and DNSPodLabels select the cluster DNS pods that allowDNS opens egress to.
	DNSNamespace string
	DNSPodLabels map[string]string
}

// Defaults returns the facts of a stock cluster, the defaults of the flags. IstioRootNamespace
// stays empty: it follows IstioNamespace.
func Defaults() Facts {
	f := Facts{}.WithDefaults()
	f.IstioRootNamespace = ""
	return f
}

// WithDefaults returns f with every unset field at its default; IstioRootNamespace defaults to
// IstioNamespace, as in Istio (meshConfig.rootNamespace defaults to the namespace istiod runs in).
func (f Facts) WithDefaults() Facts {
	if f.TrustDomain == "" {
		f.TrustDomain = DefaultTrustDomain
	}
	if f.IstioNamespace == "" {
		f.IstioNamespace = DefaultIstioNamespace
	}
	if f.IstioRootNamespace == "" {
		f.IstioRootNamespace = f.IstioNamespace
	}
	if f.LinkerdNamespace == "" {
		f.LinkerdNamespace = DefaultLinkerdNamespace
	}
	if f.DNSNamespace == "" {
		f.DNSNamespace = DefaultDNSNamespace
	}
	if len(f.DNSPodLabels) == 0 {
		f.DNSPodLabels = DefaultDNSPodLabels()
	} else {
		f.DNSPodLabels = maps.Clone(f.DNSPodLabels)
	}
	return f
}

// RootNamespace is Istio's root namespace, defaults applied.
func (f Facts) RootNamespace() string {
	return f.WithDefaults().IstioRootNamespace
}

// Bind adds the flags that set f, with f's current values as their defaults, to fs. Every command
// binds the same flags with the same meaning; call Validate after parsing.
func (f *Facts) Bind(fs *pflag.FlagSet) {
	root := f.IstioRootNamespace
	*f = f.WithDefaults()
	fs.StringVar(&f.TrustDomain, "trust-domain", f.TrustDomain, "mesh trust domain of workload identities, unless a profile sets spec.trustDomain")
	fs.StringVar(&f.IstioNamespace, "istio-namespace", f.IstioNamespace, "namespace of istiod and the Istio CA")
	fs.StringVar(&f.IstioRootNamespace, "istio-root-namespace", root, "Istio's meshConfig.rootNamespace, whose policies are mesh-wide (default: --istio-namespace); profiles there are refused")
	fs.StringVar(&f.LinkerdNamespace, "linkerd-namespace", f.LinkerdNamespace, "namespace of the Linkerd control plane")
	fs.StringVar(&f.DNSNamespace, "dns-namespace", f.DNSNamespace, "namespace of the cluster DNS pods that allowDNS opens egress to (openshift-dns on OpenShift)")
	fs.Var((*labelsValue)(&f.DNSPodLabels), "dns-pod-labels", "labels of the cluster DNS pods, k=v,k=v (dns.operator.openshift.io/daemonset-dns=default on OpenShift)")
}

// trustDomain is the pattern of spec.trustDomain.
var trustDomain = regexp.MustCompile(`^[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?$`)

// Validate says which fact is not well formed, naming its flag.
func (f Facts) Validate() error {
	f = f.WithDefaults()
	if !trustDomain.MatchString(f.TrustDomain) {
		return fmt.Errorf("--trust-domain %q is not a trust domain such as cluster.local", f.TrustDomain)
	}
	for _, ns := range []struct{ flag, value string }{
		{"istio-namespace", f.IstioNamespace}, {"istio-root-namespace", f.IstioRootNamespace},
		{"linkerd-namespace", f.LinkerdNamespace}, {"dns-namespace", f.DNSNamespace},
	} {
		if errs := validation.IsDNS1123Label(ns.value); len(errs) > 0 {
			return fmt.Errorf("--%s %q is not a namespace name: %s", ns.flag, ns.value, strings.Join(errs, "; "))
		}
	}
	return nil
}

// labelsValue is a flag of labels written k=v,k=v.
type labelsValue map[string]string

func (l *labelsValue) String() string {
	keys := make([]string, 0, len(*l))
	for k := range *l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+(*l)[k])
	}
	return strings.Join(parts, ",")
}

func (l *labelsValue) Set(s string) error {
	m, err := ParseLabels(s)
	if err != nil {
		return err
	}
	if len(m) == 0 {
		return fmt.Errorf("at least one label is required")
	}
	*l = m
	return nil
}

func (l *labelsValue) Type() string { return "labels" }

// ParseLabels reads k=v,k=v, checking keys and values as the API server does.
func ParseLabels(s string) (map[string]string, error) {
	m := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return m, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", kv)
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, fmt.Errorf("label key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("label value %q: %s", v, strings.Join(errs, "; "))
		}
		m[k] = v
	}
	return m, nil
}
