package explain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshguard/meshguard/internal/meshapi"
)

// serverAuthorizationSpec is the spec of a policy.linkerd.io/v1beta1 ServerAuthorization
// (linkerd2 policy-controller/k8s/api/src/policy/server_authorization.rs).
type serverAuthorizationSpec struct {
	Server struct {
		Name     string                `json:"name,omitempty"`
		Selector *metav1.LabelSelector `json:"selector,omitempty"`
	} `json:"server"`
	Client struct {
		Networks        []meshapi.Network `json:"networks,omitempty"`
		Unauthenticated bool              `json:"unauthenticated,omitempty"`
		MeshTLS         *struct {
			UnauthenticatedTLS bool     `json:"unauthenticatedTLS,omitempty"`
			Identities         []string `json:"identities,omitempty"`
			ServiceAccounts    []struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace,omitempty"`
			} `json:"serviceAccounts,omitempty"`
		} `json:"meshTLS,omitempty"`
	} `json:"client"`
}

// serverAuthorizations matches the ServerAuthorizations of the Server's namespace that select it.
// They are deprecated but still enforced: the policy controller adds every one whose server
// selector selects a Server to that Server's authorizations (linkerd2 policy-controller/k8s/
// index/src/inbound/index.rs client_authzs, "if saz.server_selector.selects(server_name,
// &server.labels)"; server_authorization.rs: a name, else a selector, where an absent selector
// selects every Server). A client authorization is: networks (default: every address, the
// widest reading), then unauthenticated (any client), or meshTLS unauthenticatedTLS (any meshed
// client), identities (exact, "*", "*.suffix") and serviceAccounts (namespace defaults to the
// ServerAuthorization's).
func (e *evaluator) serverAuthorizations(server *unstructured.Unstructured, st *linkerdState) (allowing, maybe []Ref, why []string, bad *unstructured.Unstructured, err error) {
	for _, u := range e.objs.in(groupLinkerdPolicy, "ServerAuthorization", server.GetNamespace()) {
		spec, err := decodeServerAuthorization(u)
		if err != nil {
			return nil, nil, nil, u, err
		}
		if spec.Server.Name != "" {
			if spec.Server.Name != server.GetName() {
				continue
			}
		} else if spec.Server.Selector != nil && !selectorMatches(spec.Server.Selector, server.GetLabels()) {
			continue
		}
		m, w := e.sazClientMatch(spec, u.GetNamespace(), st)
		switch m {
		case yes:
			allowing = append(allowing, refOf(u))
		case unknown:
			maybe = append(maybe, refOf(u))
			why = append(why, w...)
		}
	}
	return allowing, maybe, why, nil, nil
}

func decodeServerAuthorization(u *unstructured.Unstructured) (*serverAuthorizationSpec, error) {
	b, err := json.Marshal(u.Object["spec"])
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	spec := &serverAuthorizationSpec{}
	if err := d.Decode(spec); err != nil {
		return nil, fmt.Errorf("spec: %v", err)
	}
	return spec, nil
}

func (e *evaluator) sazClientMatch(spec *serverAuthorizationSpec, ns string, st *linkerdState) (tri, []string) {
	c := spec.Client
	m := yes
	var why []string
	if len(c.Networks) > 0 {
		if e.req.From.IP == "" {
			m = unknown
			why = append(why, "a ServerAuthorization's networks need the source IP")
		} else {
			a, _ := netip.ParseAddr(e.req.From.IP)
			in := no
			for _, n := range c.Networks {
				if inCIDR(a, n.CIDR) {
					ok := true
					for _, ex := range n.Except {
						ok = ok && !inCIDR(a, ex)
					}
					if ok {
						in = yes
					}
				}
			}
			m = in
		}
	}
	switch {
	case c.Unauthenticated:
		return m, why
	case c.MeshTLS == nil:
		return no, nil // refused by the policy controller: "no client authentication configured"
	case !st.mtls:
		return no, nil
	case c.MeshTLS.UnauthenticatedTLS:
		return m, why
	}
	mta := &meshapi.MeshTLSAuthenticationSpec{Identities: append([]string{}, c.MeshTLS.Identities...)}
	for _, sa := range c.MeshTLS.ServiceAccounts {
		sns := sa.Namespace
		if sns == "" {
			sns = ns
		}
		mta.Identities = append(mta.Identities, e.linkerdIdentity(sns, sa.Name))
	}
	x, w := e.linkerdIdentityMatch(mta, ns, st)
	return m.and(x), append(why, w...)
}
