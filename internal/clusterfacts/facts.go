package clusterfacts

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
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

// DefaultIstiodPodLabels select istiod as Istio's charts label it, whatever the revision
// (manifests/charts/istio-control/istio-discovery/templates/deployment.yaml: app: istiod).
func DefaultIstiodPodLabels() map[string]string { return map[string]string{"app": "istiod"} }

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
	// DNSIPBlocks are CIDRs the pods query DNS at besides the DNS pods: NodeLocal DNSCache listens
	// on a link-local address (169.254.20.10/32) in the host network, which no pod selector can
	// match (https://kubernetes.io/docs/tasks/administer-cluster/nodelocaldns/).
	DNSIPBlocks []string
	// DNSPorts are the ports the DNS pods listen on, UDP and TCP. NetworkPolicy sees the pod's
	// port after the Service's translation: OpenShift's dns-default pods listen on 5353 behind
	// the Service's 53. Default 53.
	DNSPorts []int32
	// IstiodPodLabels select the istiod pods that allowMeshControlPlane opens egress to, in
	// IstioNamespace. Istio's charts label every revision's istiod app=istiod (and istio.io/rev=<rev>),
	// so the default covers all revisions; add istio.io/rev to pin one.
	IstiodPodLabels map[string]string
	// IstioCA says who signs Istio's workload certificates: IstioCAIstiod (istiod, from the
	// cacerts or istio-ca-secret Secret of IstioNamespace) or IstioCAExternal (cert-manager
	// istio-csr, Vault, ...: no CA Secret in the cluster, only the roots published to each
	// namespace can be checked). Default IstioCAIstiod.
	IstioCA string
}

// Who signs Istio's workload certificates (Facts.IstioCA).
const (
	IstioCAIstiod   = "istiod"
	IstioCAExternal = "external"
)

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
	if len(f.IstiodPodLabels) == 0 {
		f.IstiodPodLabels = DefaultIstiodPodLabels()
	} else {
		f.IstiodPodLabels = maps.Clone(f.IstiodPodLabels)
	}
	f.DNSIPBlocks = slices.Clone(f.DNSIPBlocks)
	if f.IstioCA == "" {
		f.IstioCA = IstioCAIstiod
	}
	if len(f.DNSPorts) == 0 {
		f.DNSPorts = []int32{53}
	} else {
		f.DNSPorts = slices.Clone(f.DNSPorts)
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
	fs.Int32SliceVar(&f.DNSPorts, "dns-ports", f.DNSPorts, "ports the cluster DNS pods listen on, UDP and TCP (5353 on OpenShift, behind the Service's 53)")
	fs.StringSliceVar(&f.DNSIPBlocks, "dns-ip-blocks", f.DNSIPBlocks, "CIDRs pods also send DNS queries to, outside the DNS pods: NodeLocal DNSCache's 169.254.20.10/32 (comma-separated)")
	fs.StringVar(&f.IstioCA, "istio-ca", f.IstioCA, "who signs Istio's workload certificates: istiod (its CA Secret cacerts or istio-ca-secret is checked) or external (cert-manager istio-csr, Vault: only the namespaces' istio-ca-root-cert roots are checked, and the CA is reported External)")
	fs.Var((*labelsValue)(&f.IstiodPodLabels), "istiod-pod-labels", "labels of the istiod pods in --istio-namespace, k=v,k=v (add istio.io/rev=REVISION to allow only one revision)")
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
	if f.IstioCA != IstioCAIstiod && f.IstioCA != IstioCAExternal {
		return fmt.Errorf("--istio-ca %q: %s or %s", f.IstioCA, IstioCAIstiod, IstioCAExternal)
	}
	for _, p := range f.DNSPorts {
		if p < 1 || p > 65535 {
			return fmt.Errorf("--dns-ports %d is not a port", p)
		}
	}
	for _, c := range f.DNSIPBlocks {
		if _, err := netip.ParsePrefix(c); err != nil {
			return fmt.Errorf("--dns-ip-blocks %q is not a CIDR such as 169.254.20.10/32", c)
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
