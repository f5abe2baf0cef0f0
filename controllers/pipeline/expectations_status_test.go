package pipeline

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

func TestExpectationsMetAndReady(t *testing.T) {
	oneExpectation := []v1alpha1.Expectation{{Name: "others-to-backend", Want: v1alpha1.ExpectDenied,
		From: v1alpha1.ExpectationSource{Namespace: "other"}, To: v1alpha1.ExpectationTarget{Port: 8080}}}
	met := v1alpha1.ExpectationStatus{Name: "others-to-backend", Want: "Denied", Got: "Denied", Met: true, Layer: "authorization"}
	opened := v1alpha1.ExpectationStatus{Name: "others-to-backend", Want: "Denied", Got: "Allowed", Layer: "authorization",
		DecidedBy: []string{"AuthorizationPolicy shop/open-backend[0] (foreign)"}, Message: "authorization: an ALLOW policy matches"}
	undetermined := v1alpha1.ExpectationStatus{Name: "others-to-backend", Want: "Denied", Got: "Unknown", Layer: "ingress NetworkPolicy",
		Message: "ingress NetworkPolicy: the source's labels are not known"}
	inSync := []childResult{row("NetworkPolicy", "a", v1alpha1.ResourceInSync)}
	cases := []struct {
		name         string
		expectations []v1alpha1.Expectation
		obs          Observation
		// met and ready are "Status/Reason" ("absent" when the condition is not there).
		met, ready string
		// message is a part of both conditions' messages.
		message string
		results int
	}{
		{"a profile without expectations has no ExpectationsMet condition and can be Ready",
			nil, Observation{Rows: inSync}, "absent", "True/Succeeded", "", 0},
		{"every expectation met keeps the profile Ready",
			oneExpectation, Observation{Rows: inSync, expectations: []v1alpha1.ExpectationStatus{met}}, "True/AllMet", "True/Succeeded", "", 1},
		{"a foreign policy opening a flow expected Denied makes the profile not Ready, naming the expectation and the object",
			oneExpectation, Observation{Rows: inSync, expectations: []v1alpha1.ExpectationStatus{opened}}, "False/ExpectationNotMet", "False/ExpectationNotMet",
			"expectation others-to-backend wants Denied, got Allowed (decided by AuthorizationPolicy shop/open-backend[0] (foreign) at the authorization layer", 1},
		{"an undetermined answer is Unknown and fails closed: not Ready",
			oneExpectation, Observation{Rows: inSync, expectations: []v1alpha1.ExpectationStatus{undetermined}}, "Unknown/ExpectationUndetermined", "False/ExpectationUndetermined",
			"the answer is undetermined", 1},
		{"a contradicted expectation is named in Ready before the weakening report",
			oneExpectation, Observation{Rows: inSync, expectations: []v1alpha1.ExpectationStatus{opened},
				external: []v1alpha1.ExternalPolicy{{Kind: "AuthorizationPolicy", Name: "open-backend", Weakens: "authorization.defaultDeny"}}},
			"False/ExpectationNotMet", "False/ExpectationNotMet", "open-backend[0] (foreign)", 1},
		{"policies that could not be read leave the expectations not checked, and not Ready",
			oneExpectation, Observation{Rows: inSync, ExternalErr: errors.New("list NetworkPolicy in shop: forbidden")}, "Unknown/NotChecked", "False/NotChecked",
			"the policies could not be read: list NetworkPolicy in shop: forbidden", 0},
		{"a stalled profile does not check its expectations",
			oneExpectation, Observation{GovernedBy: "first"}, "Unknown/NotChecked", "False/ProfileConflict", "not checked: ", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Generation: 4}}
			p.Spec.Expectations = tc.expectations
			// A previous answer must not survive: the status is derived from the observation alone.
			p.Status.Expectations = []v1alpha1.ExpectationStatus{met, met}
			ApplyStatus(p, &tc.obs)
			get := func(ct string) (string, string) {
				c := meta.FindStatusCondition(p.Status.Conditions, ct)
				if c == nil {
					return "absent", ""
				}
				g.Expect(c.ObservedGeneration).To(Equal(int64(4)), ct)
				return string(c.Status) + "/" + c.Reason, c.Message
			}
			metCond, metMsg := get(v1alpha1.ConditionExpectationsMet)
			readyCond, readyMsg := get(v1alpha1.ConditionReady)
			g.Expect(metCond).To(Equal(tc.met))
			g.Expect(readyCond).To(Equal(tc.ready))
			g.Expect(metMsg).To(ContainSubstring(tc.message))
			if tc.ready == tc.met {
				g.Expect(readyMsg).To(Equal(metMsg), "Ready carries the expectation's message")
			}
			g.Expect(p.Status.Expectations).To(HaveLen(tc.results))
		})
	}
}

func TestRemovingTheExpectationsRemovesTheirCondition(t *testing.T) {
	g := NewWithT(t)
	p := &v1alpha1.MeshSecurityProfile{}
	p.Spec.Expectations = []v1alpha1.Expectation{{Name: "x", Want: v1alpha1.ExpectDenied}}
	rows := []childResult{row("NetworkPolicy", "a", v1alpha1.ResourceInSync)}
	ApplyStatus(p, &Observation{Rows: rows, expectations: []v1alpha1.ExpectationStatus{{Name: "x", Want: "Denied", Got: "Allowed"}}})
	g.Expect(meta.IsStatusConditionFalse(p.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
	p.Spec.Expectations = nil
	ApplyStatus(p, &Observation{Rows: rows})
	g.Expect(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionExpectationsMet)).To(BeNil())
	g.Expect(p.Status.Expectations).To(BeNil())
	g.Expect(meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
}

func TestDecidingObjectsAreMarkedByWhoControlsThem(t *testing.T) {
	p := &v1alpha1.MeshSecurityProfile{ObjectMeta: metav1.ObjectMeta{Namespace: "orders", Name: "baseline", UID: "p-uid"}}
	controlled := func(kind, apiVersion, name, uid string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetNamespace("shop")
		u.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID(uid), Controller: ptr.To(true)}})
		return u
	}
	cases := []struct {
		name string
		obj  *unstructured.Unstructured
		want string
	}{
		{"the profile's own object has no mark", controlled("MeshSecurityProfile", "security.meshguard.dev/v1alpha1", "baseline", "p-uid"), ""},
		{"another profile's object names that profile", controlled("MeshSecurityProfile", "security.meshguard.dev/v1alpha1", "baseline", "other-uid"), " (meshguard profile shop/baseline)"},
		{"an object controlled by something else is foreign", controlled("Deployment", "apps/v1", "installer", "d-uid"), " (foreign)"},
		{"a kind of the same name in another group is foreign", controlled("MeshSecurityProfile", "example.com/v1", "baseline", "x-uid"), " (foreign)"},
		{"an object without a controller is foreign", &unstructured.Unstructured{}, " (foreign)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(origin(tc.obj, ProfileOwner{p})).To(Equal(tc.want))
		})
	}
}
