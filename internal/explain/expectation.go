package explain

import (
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Expectation is the shape of a profile's spec.expectations[] entry: a request from a source
// to a pod of the profile's namespace and the decision the platform team wants.
type Expectation struct {
	Name string          `json:"name"`
	From ExpectationFrom `json:"from"`
	To   ExpectationTo   `json:"to"`
	// Want is Allowed or Denied.
	Want Decision `json:"want"`
}

// ExpectationFrom is exactly one of serviceAccount ("namespace/name"), namespace (+ podLabels)
// or ipBlock (an address or CIDR; its first address is the source).
type ExpectationFrom struct {
	ServiceAccount string            `json:"serviceAccount,omitempty"`
	Namespace      string            `json:"namespace,omitempty"`
	PodLabels      map[string]string `json:"podLabels,omitempty"`
	IPBlock        string            `json:"ipBlock,omitempty"`
	// Unmeshed: the source has no mesh proxy.
	Unmeshed bool `json:"unmeshed,omitempty"`
}

// ExpectationTo is a pod of the profile's namespace and, for HTTP, the method and path.
type ExpectationTo struct {
	PodLabels map[string]string `json:"podLabels,omitempty"`
	Port      int32             `json:"port"`
	Method    string            `json:"method,omitempty"`
	Path      string            `json:"path,omitempty"`
}

// ExpectationResult is an expectation's outcome.
type ExpectationResult struct {
	Name string `json:"name"`
	// Met is true when the decision is the wanted one. An Unknown decision is never met.
	Met    bool    `json:"met"`
	Result *Result `json:"result"`
}

// Request converts the expectation into a request to a pod of namespace. A source given by
// service account has unknown labels; by namespace and labels, an unknown service account.
func (x Expectation) Request(namespace string) (Request, error) {
	req := Request{To: Destination{Namespace: namespace, PodLabels: x.To.PodLabels, Port: x.To.Port}}
	f := x.From
	n := 0
	if f.ServiceAccount != "" {
		n++
		ns, sa, ok := strings.Cut(f.ServiceAccount, "/")
		if !ok || ns == "" || sa == "" {
			return req, fmt.Errorf("from.serviceAccount: %q must be written namespace/name", f.ServiceAccount)
		}
		req.From = Source{Namespace: ns, ServiceAccount: sa, PodLabels: f.PodLabels, LabelsUnknown: f.PodLabels == nil}
	}
	if f.Namespace != "" {
		n++
		req.From = Source{Namespace: f.Namespace, PodLabels: f.PodLabels}
	}
	if f.IPBlock != "" {
		n++
		ip := f.IPBlock
		if strings.Contains(ip, "/") {
			p, err := netip.ParsePrefix(ip)
			if err != nil {
				return req, fmt.Errorf("from.ipBlock: %q is not an address or CIDR", f.IPBlock)
			}
			ip = p.Masked().Addr().String()
		}
		req.From = Source{IP: ip, Unmeshed: true}
	}
	if n != 1 {
		return req, fmt.Errorf("from: exactly one of serviceAccount, namespace or ipBlock is required")
	}
	req.From.Unmeshed = req.From.Unmeshed || f.Unmeshed
	if x.To.Method != "" || x.To.Path != "" {
		req.HTTP = &HTTP{Method: x.To.Method, Path: x.To.Path}
	}
	if x.Want != Allowed && x.Want != Denied {
		return req, fmt.Errorf("want: %q must be Allowed or Denied", x.Want)
	}
	return req, nil
}

// EvaluateExpectation evaluates x against the policies among objs for a pod of namespace (the
// profile's), so that a controller can report each expectation in status.
func EvaluateExpectation(objs []*unstructured.Unstructured, namespace string, x Expectation, opts Options) (*ExpectationResult, error) {
	req, err := x.Request(namespace)
	if err != nil {
		return nil, fmt.Errorf("expectation %s: %w", x.Name, err)
	}
	res, err := Evaluate(objs, req, opts)
	if err != nil {
		return nil, fmt.Errorf("expectation %s: %w", x.Name, err)
	}
	return &ExpectationResult{Name: x.Name, Met: res.Decision == x.Want, Result: res}, nil
}
