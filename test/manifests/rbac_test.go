package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/internal/render"
	"github.com/meshguard/meshguard/test/testenv"
)

// TestTheManagerRoleCoversEveryKindRenderGenerates reads the generated ClusterRole
// (config/rbac/role.yaml, from the kubebuilder markers) and checks that meshguard may watch, apply
// and prune every kind render.Kinds() lists: a kind render gained without a marker would fail at
// run time with Forbidden.
func TestTheManagerRoleCoversEveryKindRenderGenerates(t *testing.T) {
	g := NewWithT(t)
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "role.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	role := &rbacv1.ClusterRole{}
	g.Expect(yaml.Unmarshal(b, role)).To(Succeed())

	need := []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	for _, gvk := range render.Kinds() {
		resource := plural(gvk.Kind)
		granted := map[string]bool{}
		for _, rule := range role.Rules {
			if len(rule.ResourceNames) > 0 || !contains(rule.APIGroups, gvk.Group) || !contains(rule.Resources, resource) {
				continue
			}
			for _, v := range rule.Verbs {
				granted[v] = true
			}
		}
		for _, v := range need {
			g.Expect(granted).To(HaveKey(v), "config/rbac/role.yaml does not grant %s on %s.%s", v, resource, gvk.Group)
		}
	}
}

// plural is the resource name of a kind meshguard generates (all are regular English plurals).
func plural(kind string) string {
	k := strings.ToLower(kind)
	if strings.HasSuffix(k, "y") {
		return strings.TrimSuffix(k, "y") + "ies"
	}
	return k + "s"
}
