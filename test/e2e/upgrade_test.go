package e2e

import (
	"context"
	"os/exec"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/test/testenv"
)

// previousRelease is the commit whose CRD and sample profiles the upgrade starts from. meshguard has
// no release tag yet; 617457b is the last landing before spec.expectations (7b3840d) and the
// ClusterMeshSecurityProfile (ad26c40) changed the API, so its CRD differs from this build's
// (docs/api-versions.md). Replace it with the previous release tag once there is one.
const previousRelease = "617457b"

var profileGVR = schema.GroupVersionResource{Group: "security.meshguard.dev", Version: "v1alpha1", Resource: "meshsecurityprofiles"}

// gitShow returns a file as it was at a commit of meshguard's repository.
func gitShow(ctx context.Context, commit, path string) string {
	GinkgoHelper()
	cmd := exec.CommandContext(ctx, "git", "show", commit+":"+path)
	cmd.Dir = testenv.RepoRoot()
	out, err := cmd.Output()
	Expect(err).NotTo(HaveOccurred(), "git show %s:%s (the upgrade test needs the repository's history)", commit, path)
	return string(out)
}

// gitFiles lists the files of a folder at a commit.
func gitFiles(ctx context.Context, commit, dir string) []string {
	GinkgoHelper()
	cmd := exec.CommandContext(ctx, "git", "ls-tree", "--name-only", commit, dir+"/")
	cmd.Dir = testenv.RepoRoot()
	out, err := cmd.Output()
	Expect(err).NotTo(HaveOccurred())
	return strings.Fields(string(out))
}

// Serial: it stops the suite's manager and serves the previous CRD for a while, which no other
// spec may see.
var _ = Describe("upgrading from the previous release", Serial, func() {
	It("keeps the previous release's profiles as they were stored and makes each Ready with this build's CRD and manager", func(ctx SpecContext) {
		By("stopping this build's manager and serving the CRD of " + previousRelease)
		Expect(env.stopManager()).To(Succeed())
		restored := false
		DeferCleanup(func(ctx SpecContext) {
			if restored {
				return
			}
			kubectl(ctx, "", "apply", "--server-side", "--force-conflicts", "-f", "config/crd/bases")
			Expect(env.startManager(ctx)).To(Succeed())
		})
		kubectl(ctx, gitShow(ctx, previousRelease, "config/crd/bases/security.meshguard.dev_meshsecurityprofiles.yaml"),
			"apply", "--server-side", "--force-conflicts", "-f", "-")
		kubectl(ctx, "", "wait", "--for=condition=Established", "crd/meshsecurityprofiles.security.meshguard.dev", "--timeout=60s")

		By("creating the sample profiles of " + previousRelease + ", each in a namespace of its own")
		type stored struct {
			namespace, name string
			spec            map[string]any
		}
		var profiles []stored
		for _, f := range gitFiles(ctx, previousRelease, "config/samples") {
			if !strings.Contains(f, "_meshsecurityprofile_") {
				continue
			}
			u := &unstructured.Unstructured{}
			Expect(yaml.Unmarshal([]byte(gitShow(ctx, previousRelease, f)), &u.Object)).To(Succeed())
			ns := newNamespace(ctx, "upgrade-"+u.GetNamespace())
			u.SetNamespace(ns)
			b, err := yaml.Marshal(u.Object)
			Expect(err).NotTo(HaveOccurred())
			kubectl(ctx, string(b), "apply", "--server-side", "-f", "-")
			live, err := env.dynamic.Resource(profileGVR).Namespace(ns).Get(ctx, u.GetName(), metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			spec, _, _ := unstructured.NestedMap(live.Object, "spec")
			profiles = append(profiles, stored{ns, u.GetName(), spec})
		}
		Expect(len(profiles)).To(BeNumerically(">=", 4), "the previous release's samples")

		By("serving this build's CRD and starting this build's manager")
		kubectl(ctx, "", "apply", "--server-side", "--force-conflicts", "-f", "config/crd/bases")
		kubectl(ctx, "", "wait", "--for=condition=Established", "crd/meshsecurityprofiles.security.meshguard.dev", "--timeout=60s")
		Expect(env.startManager(ctx)).To(Succeed())
		restored = true

		By("every profile reads as it was stored and becomes Ready")
		for _, p := range profiles {
			live, err := env.dynamic.Resource(profileGVR).Namespace(p.namespace).Get(ctx, p.name, metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			spec, _, _ := unstructured.NestedMap(live.Object, "spec")
			// This build's CRD may default fields the previous one did not know; every field the
			// previous release stored keeps its value.
			for k, v := range p.spec {
				Expect(spec).To(HaveKeyWithValue(k, v), "%s/%s: spec.%s after the upgrade", p.namespace, p.name, k)
			}
			expectReady(ctx, p.namespace, p.name)
			objs, err := generatedObjects(ctx, p.namespace, p.name)
			Expect(err).NotTo(HaveOccurred())
			Expect(objs).NotTo(BeEmpty(), "%s/%s generates its objects", p.namespace, p.name)
		}
	})
})
