package cli

import (
	"testing"

	. "github.com/onsi/gomega"
)

// TestExplainSaysWhatAShadowRuleWouldDenyAndLetsItThrough: a Deny rule in shadow does not decide
// (the request is allowed) and the answer says it would deny it.
func TestExplainSaysWhatAShadowRuleWouldDenyAndLetsItThrough(t *testing.T) {
	g := NewWithT(t)
	profile := "../render/testdata/shadow-istio-deny-rule.yaml"
	x := explainRun(t, "", "-f", profile, "--from", "frontend/web", "--from-labels", "app=web", "--to-labels", "app=api",
		"--port", "8080", "--method", "DELETE", "--path", "/api/items/1")
	g.Expect(x.stdout).To(ContainSubstring("would deny (shadow): dry-run DENY rule AuthorizationPolicy shop/baseline-rule-no-deletes"))
	g.Expect(x.stdout).To(ContainSubstring("Result: Denied"), "the enforced ALLOW rules do not admit DELETE: the shadow rule changes nothing")

	get := explainRun(t, "", "-f", profile, "--from", "frontend/web", "--from-labels", "app=web", "--to-labels", "app=api",
		"--port", "8080", "--method", "GET", "--path", "/api/items/1")
	g.Expect(get.code).To(Equal(ExplainAllowed), get.stdout)
	g.Expect(get.stdout).NotTo(ContainSubstring("would deny"))
}

// TestExplainOfAProfileInShadowAllowsAndNotesTheDenial: with the whole authorization in shadow,
// a request no rule allows gets through and is reported as one the profile would deny.
func TestExplainOfAProfileInShadowAllowsAndNotesTheDenial(t *testing.T) {
	g := NewWithT(t)
	x := explainRun(t, "", "-f", "../render/testdata/shadow-istio-authorization.yaml", "--from", "other/client", "--from-labels", "app=client",
		"--to-labels", "app=api", "--port", "8080", "--method", "GET", "--path", "/api/items")
	g.Expect(x.code).To(Equal(ExplainAllowed), x.stdout+x.stderr)
	g.Expect(x.stdout).To(ContainSubstring("would deny (shadow): 2 dry-run ALLOW policies apply to the workload and none matches"))
}
