package pipeline

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func meshedPod(name, annotation, env string) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if annotation != "" {
		p.Annotations = map[string]string{"config.linkerd.io/default-inbound-policy": annotation}
	}
	c := corev1.Container{Name: "linkerd-proxy"}
	if env != "" {
		c.Env = []corev1.EnvVar{{Name: linkerdProxyPolicyEnv, Value: env}}
	}
	p.Spec.Containers = []corev1.Container{c}
	return p
}

// Linkerd's injector copies the namespace's default-inbound-policy onto every pod it injects and
// the policy controller reads the pod's: pods carrying the annotation were skipped before
// (issue 9, point 9), so after a tightening they kept the looser policy unreported.
func TestLooserPods(t *testing.T) {
	cases := []struct {
		name string
		pod  corev1.Pod
		want string
		out  []string
	}{
		{"a pod injected before a tightening carries the older, looser annotation and is listed",
			meshedPod("web-0", "all-unauthenticated", "all-unauthenticated"), "all-authenticated",
			[]string{"web-0 (all-unauthenticated, from its annotation)"}},
		{"a pod whose own annotation is looser than the profile's deny is listed",
			meshedPod("web-1", "all-authenticated", ""), "deny",
			[]string{"web-1 (all-authenticated, from its annotation)"}},
		{"the annotation wins over the proxy environment",
			meshedPod("web-2", "deny", "all-unauthenticated"), "all-authenticated", nil},
		{"a pod without the annotation is judged by its proxy environment",
			meshedPod("web-3", "", "all-unauthenticated"), "all-authenticated",
			[]string{"web-3 (all-unauthenticated, from its proxy environment)"}},
		{"a pod with the wanted policy is not listed", meshedPod("web-4", "deny", ""), "deny", nil},
		{"a stricter pod fails closed and is not listed", meshedPod("web-5", "cluster-authenticated", ""), "all-authenticated", nil},
		{"cluster-unauthenticated admits plaintext, so it is looser than all-authenticated",
			meshedPod("web-6", "cluster-unauthenticated", ""), "all-authenticated",
			[]string{"web-6 (cluster-unauthenticated, from its annotation)"}},
		{"audit admits everything", meshedPod("web-7", "audit", ""), "all-authenticated",
			[]string{"web-7 (audit, from its annotation)"}},
		{"a pod without either is unknown and not listed", meshedPod("web-8", "", ""), "deny", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got := looserPods([]corev1.Pod{tc.pod}, tc.want)
			if tc.out == nil {
				g.Expect(got).To(BeEmpty())
			} else {
				g.Expect(got).To(Equal(tc.out))
			}
		})
	}
}
