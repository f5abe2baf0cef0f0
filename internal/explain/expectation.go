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
// or ipBlock (an address or CIDR; a CIDR is judged for every piece of it that a policy
// distinguishes).
type ExpectationFrom struct {
	ServiceAccount string            `json:"serviceAccount,omitempty"`
	Namespace      string            `json:"namespace,omitempty"`
	PodLabels      map[string]string `json:"podLabels,omitempty"`
	IPBlock        string            `json:"ipBlock,omitempty"`
	// Unmeshed: the source has no mesh proxy. When false, a want: Denied expectation of a pod
	// source is judged for a sender with a proxy and for one without (the sender decides
	// whether it runs a proxy), worst case.
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
	// Met is true when Decision is the wanted one. An Unknown decision is never met.
	Met bool `json:"met"`
	// Decision is the answer that counts for the expectation: Result.Decision, except that for a
	// want: Denied expectation a sender's own egress NetworkPolicy in another namespace does not
	// count (Reason DeniedOnlyBySource, Ignored names the layer).
	Decision Decision `json:"decision"`
	// Result is the evaluation of the sender that decided: the worst case over the senders the
	// expectation stands for (with and without a mesh proxy, every piece of a CIDR).
	Result *Result `json:"result"`
	// Sender describes that sender when the expectation stands for several; "" otherwise.
	Sender string `json:"sender,omitempty"`
	// Reason is ReasonDeniedOnlyBySource when only the sender's own egress policy denies; "".
	Reason string `json:"reason,omitempty"`
	// Ignored are the layers of Result that do not count for the expectation.
	Ignored []string `json:"ignored,omitempty"`
}

// ReasonDeniedOnlyBySource says that only the sender's own egress NetworkPolicy, in another
// namespace, denies the request: the sender can delete it, so it does not protect the
// destination, and a want: Denied expectation is not met.
const ReasonDeniedOnlyBySource = "DeniedOnlyBySource"

// Request converts the expectation into a request to a pod of namespace. A source given by
// service account has unknown labels; by namespace and labels, an unknown service account. An
// ipBlock source is its first address (EvaluateExpectation judges every piece of a CIDR).
func (x Expectation) Request(namespace string) (Request, error) {
	req, _, err := x.request(namespace)
	return req, err
}

func (x Expectation) request(namespace string) (Request, netip.Prefix, error) {
	var block netip.Prefix
	req := Request{To: Destination{Namespace: namespace, PodLabels: x.To.PodLabels, Port: x.To.Port}}
	f := x.From
	n := 0
	if f.ServiceAccount != "" {
		n++
		ns, sa, ok := strings.Cut(f.ServiceAccount, "/")
		if !ok || ns == "" || sa == "" {
			return req, block, fmt.Errorf("from.serviceAccount: %q must be written namespace/name", f.ServiceAccount)
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
				return req, block, fmt.Errorf("from.ipBlock: %q is not an address or CIDR", f.IPBlock)
			}
			block = p.Masked()
			ip = block.Addr().String()
		} else if a, err := netip.ParseAddr(ip); err != nil {
			return req, block, fmt.Errorf("from.ipBlock: %q is not an address or CIDR", f.IPBlock)
		} else {
			block = netip.PrefixFrom(a, a.BitLen())
		}
		req.From = Source{IP: ip, Unmeshed: true}
	}
	if n != 1 {
		return req, block, fmt.Errorf("from: exactly one of serviceAccount, namespace or ipBlock is required")
	}
	req.From.Unmeshed = req.From.Unmeshed || f.Unmeshed
	if x.To.Method != "" || x.To.Path != "" {
		req.HTTP = &HTTP{Method: x.To.Method, Path: x.To.Path}
	}
	if x.Want != Allowed && x.Want != Denied {
		return req, block, fmt.Errorf("want: %q must be Allowed or Denied", x.Want)
	}
	return req, block, nil
}

// sender is one of the senders an expectation stands for.
type sender struct {
	req  Request
	desc string
}

// senders are the requests an expectation stands for:
//   - an ipBlock CIDR: one address of every piece of it that a policy among objs (or a network
//     of opts) distinguishes, so that "nothing from 0.0.0.0/0" is not judged for 0.0.0.0 alone;
//   - a pod source without from.unmeshed, for want: Denied: the sender with a mesh proxy and
//     the same sender without one. Whether a pod runs a proxy (sidecar.istio.io/inject: "false",
//     an unmeshed namespace) or speaks plaintext (a DestinationRule with tls.mode DISABLE) is the
//     sender's choice, and identity conditions need mTLS ("This field requires mTLS enabled",
//     AuthorizationPolicy reference, Source; ISTIO-SECURITY-2021-004). Under STRICT the plaintext
//     sender is refused anyway, so this only changes answers where plaintext is accepted.
func (x Expectation) senders(objs *objects, opts Options, req Request, block netip.Prefix) []sender {
	if block.IsValid() {
		addrs := pieces(block, boundaries(objs, opts))
		if len(addrs) == 1 {
			return []sender{{req: req}}
		}
		out := make([]sender, 0, len(addrs))
		for _, a := range addrs {
			r := req
			r.From.IP = a.String()
			out = append(out, sender{req: r, desc: fmt.Sprintf("the sender %s (of from.ipBlock %s, judged at every boundary a policy draws in it)", a, block)})
		}
		return out
	}
	if req.From.Unmeshed || x.Want != Denied {
		return []sender{{req: req}}
	}
	plain := req
	plain.From.Unmeshed = true
	return []sender{{req: req, desc: "the sender with a mesh proxy"},
		{req: plain, desc: "the same sender without a mesh proxy (plaintext, no identity; add from.unmeshed to ask only about it)"}}
}

// EvaluateExpectation evaluates x against the policies among objs for a pod of namespace (the
// profile's), so that a controller can report each expectation in status. The answer is the
// worst case over the senders x stands for (see senders): a want: Denied expectation holds only
// when every one of them is denied by a layer the destination's side controls.
func EvaluateExpectation(objs []*unstructured.Unstructured, namespace string, x Expectation, opts Options) (*ExpectationResult, error) {
	req, block, err := x.request(namespace)
	if err != nil {
		return nil, fmt.Errorf("expectation %s: %w", x.Name, err)
	}
	idx := index(objs)
	var worst *ExpectationResult
	senders := x.senders(idx, opts.withDefaults(), req, block)
	agree := true
	for i, s := range senders {
		res, err := evaluate(idx, s.req, opts)
		if err != nil {
			return nil, fmt.Errorf("expectation %s: %w", x.Name, err)
		}
		r := &ExpectationResult{Name: x.Name, Decision: res.Decision, Result: res}
		if len(senders) > 1 {
			r.Sender = s.desc
		}
		if x.Want == Denied && s.req.From.Namespace != "" && s.req.From.Namespace != namespace {
			// The sender's own egress NetworkPolicy does not protect the destination: the
			// sender can delete it. Judge the destination's side as if the sender allowed
			// everything.
			r.Ignored = []string{LayerEgress}
			r.Decision = combine(res.Layers, r.Ignored)
			if r.Decision != Denied && res.Decision == Denied {
				r.Reason = ReasonDeniedOnlyBySource
			}
		}
		r.Met = r.Decision == x.Want
		if i > 0 && r.Decision != worst.Decision {
			agree = false
		}
		if worst == nil || badness(r.Decision, x.Want) > badness(worst.Decision, x.Want) {
			worst = r
		}
	}
	if agree {
		worst.Sender = "" // every sender gets the same answer: no need to say which one
	}
	return worst, nil
}

// badness orders decisions for the worst case: the opposite of want, then Unknown, then want.
func badness(d, want Decision) int {
	switch d {
	case want:
		return 0
	case Unknown:
		return 1
	}
	return 2
}

// combine is the decision of the layers not ignored: Denied when one denies, else Unknown when
// one is Unknown, else Allowed.
func combine(layers []LayerResult, ignored []string) Decision {
	d := Allowed
	for _, l := range layers {
		skip := false
		for _, i := range ignored {
			skip = skip || l.Layer == i
		}
		switch {
		case skip:
		case l.Decision == Denied:
			d = Denied
		case l.Decision == Unknown && d != Denied:
			d = Unknown
		}
	}
	return d
}
