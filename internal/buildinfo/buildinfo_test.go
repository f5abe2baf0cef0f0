package buildinfo

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestLinkerFlagsWinOverTheGoBuildInformation(t *testing.T) {
	g := NewWithT(t)
	version, commit = "v9.8.7", "abc123"
	defer func() { version, commit = "", "" }()
	i := Get()
	g.Expect(i.Version).To(Equal("v9.8.7"))
	g.Expect(i.Commit).To(Equal("abc123"))
	g.Expect(i.GoVersion).To(HavePrefix("go"))
}

func TestTheBuildInfoMetricCarriesTheBuildAsLabels(t *testing.T) {
	g := NewWithT(t)
	version, commit = "v9.8.7", "abc123"
	defer func() { version, commit = "", "" }()
	err := testutil.CollectAndCompare(Collector(), strings.NewReader(`
# HELP meshguard_build_info The running meshguard build: version, commit and Go version as labels; always 1.
# TYPE meshguard_build_info gauge
meshguard_build_info{commit="abc123",goversion="`+Get().GoVersion+`",version="v9.8.7"} 1
`), "meshguard_build_info")
	g.Expect(err).NotTo(HaveOccurred())
}
