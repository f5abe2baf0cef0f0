package controllers_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/internal/render"
	"github.com/meshguard/meshguard/internal/validation"
	"github.com/meshguard/meshguard/test/fixtures"
	"github.com/meshguard/meshguard/test/testenv"
)

// corpusEntry is one input of render's fuzzer: a seed (testdata/*.yaml) or an entry of the
// committed corpus (testdata/fuzz/FuzzRender).
type corpusEntry struct {
	name string
	data []byte
}

// fuzzCorpus reads render's seeds and committed fuzz corpus.
func fuzzCorpus() ([]corpusEntry, error) {
	dir := filepath.Join(testenv.RepoRoot(), "internal", "render", "testdata")
	var out []corpusEntry
	seeds, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	for _, s := range seeds {
		if strings.HasSuffix(s, ".golden.yaml") {
			continue
		}
		b, err := os.ReadFile(s)
		if err != nil {
			return nil, err
		}
		out = append(out, corpusEntry{name: filepath.Base(s), data: b})
	}
	entries, err := filepath.Glob(filepath.Join(dir, "fuzz", "FuzzRender", "*"))
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		b, err := os.ReadFile(e)
		if err != nil {
			return nil, err
		}
		data, err := parseCorpusFile(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e, err)
		}
		out = append(out, corpusEntry{name: "fuzz/" + filepath.Base(e), data: data})
	}
	return out, nil
}

// parseCorpusFile reads a file of Go's fuzz corpus format with one []byte value:
// "go test fuzz v1\n[]byte(\"...\")\n".
func parseCorpusFile(b []byte) ([]byte, error) {
	lines := strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		return nil, errors.New("not a go test fuzz v1 file")
	}
	v := strings.TrimSpace(lines[1])
	if !strings.HasPrefix(v, "[]byte(") || !strings.HasSuffix(v, ")") {
		return nil, errors.New("not a []byte value")
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(v, "[]byte("), ")"))
	return []byte(s), err
}

// The companion of render's fuzzer (FuzzRender): every corpus entry the API server accepts as a
// profile renders to objects the API server accepts too, checked by server-side dry run against
// the real CRDs (Istio's, Linkerd's, and NetworkPolicy's built-in validation).
var _ = Describe("The fuzz corpus of render", func() {
	It("renders, for every entry the API server accepts, only objects the API server accepts", func() {
		ns := newNamespace()
		// A client of its own: its REST mapper discovers every CRD the suite installed, Linkerd's
		// included, when it first needs them.
		k8s, err := client.New(cfg, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		corpus, err := fuzzCorpus()
		Expect(err).NotTo(HaveOccurred())
		Expect(len(corpus)).To(BeNumerically(">=", 40), "the seeds and the committed corpus")
		var accepted, refused, objects int
		for _, e := range corpus {
			// Decoded as the API server and manager render decode (integers as int64).
			u, err := fixtures.Object(string(e.data), ns)
			if err != nil || u.GetKind() != "MeshSecurityProfile" {
				continue
			}
			if err := k8s.Create(ctx, u.DeepCopy(), client.DryRunAll, client.FieldValidation("Strict")); err != nil {
				// render's offline validation refuses what the API server refuses.
				_, errs, verr := validation.FromUnstructured(u.DeepCopy())
				Expect(verr != nil || len(errs) > 0).To(BeTrue(), "%s: the API server refuses it (%v); so does manager render", e.name, err)
				continue
			}
			accepted++
			p, errs, err := validation.FromUnstructured(u.DeepCopy())
			Expect(err).NotTo(HaveOccurred(), e.name)
			Expect(errs).To(BeEmpty(), "%s: render's validation accepts what the API server accepts", e.name)
			p.UID = types.UID("00000000-0000-0000-0000-000000000001")
			res, err := render.Render(p, render.DefaultOptions())
			if err != nil {
				// What the schema cannot say (a Deny by identity over plaintext, ...) render
				// refuses as a whole, with a typed error: the controller stalls, nothing is applied.
				var invalid *render.InvalidSpecError
				Expect(errors.As(err, &invalid)).To(BeTrue(), "%s: %v", e.name, err)
				refused++
				continue
			}
			for _, o := range res.Objects {
				objects++
				Expect(k8s.Create(ctx, o.DeepCopy(), client.DryRunAll, client.FieldValidation("Strict"))).To(Succeed(),
					"%s: %s %s", e.name, o.GetKind(), o.GetName())
			}
		}
		AddReportEntry("fuzz corpus", fmt.Sprintf("%d entries, %d profiles accepted by the API server, %d of them refused by render's semantic checks, %d objects dry-run created",
			len(corpus), accepted, refused, objects))
		Expect(accepted).To(BeNumerically(">=", 20))
		Expect(objects).To(BeNumerically(">=", 50))
	})
})
