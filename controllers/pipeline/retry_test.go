package pipeline

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func req(ns, name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}

func TestARequestThatKeepsFailingWaitsAtMostTheCap(t *testing.T) {
	g := NewWithT(t)
	l := newRetryLimiter(time.Minute)
	r := req("shop", "baseline")
	var last time.Duration
	for range 40 { // controller-runtime's default reaches 1000 s after 18 failures
		last = l.When(r)
	}
	g.Expect(last).To(Equal(time.Minute))
	l.Forget(r)
	g.Expect(l.When(r)).To(BeNumerically("<", 10*time.Millisecond), "a success starts the backoff over")
}

func TestZeroMeansTheDefaultCap(t *testing.T) {
	l := newRetryLimiter(0)
	r := req("shop", "baseline")
	var last time.Duration
	for range 40 {
		last = l.When(r)
	}
	NewWithT(t).Expect(last).To(Equal(DefaultMaxRetryBackoff))
}

func TestAThousandProfilesFailingTogetherAreRetriedWithinSeconds(t *testing.T) {
	// An outage fails every profile at once; the default bucket (10/s, burst 100) delayed the
	// thousandth retry by 90 s.
	l := newRetryLimiter(time.Minute)
	var longest time.Duration
	for i := range 1000 {
		longest = max(longest, l.When(req(fmt.Sprintf("ns-%d", i), "p")))
	}
	NewWithT(t).Expect(longest).To(BeNumerically("<=", time.Second))
}

func TestEachControllerGetsALimiterOfItsOwn(t *testing.T) {
	g := NewWithT(t)
	a := WithRetryLimit(zeroOptions(), time.Minute)
	b := WithRetryLimit(zeroOptions(), time.Minute)
	g.Expect(a.RateLimiter).NotTo(BeNil())
	g.Expect(a.RateLimiter).NotTo(BeIdenticalTo(b.RateLimiter))
	c := WithRetryLimit(a, 5*time.Minute)
	g.Expect(c.RateLimiter).To(BeIdenticalTo(a.RateLimiter), "a limiter given by the caller is kept")
}

func TestTheBackoffFlagIsBetweenOneAndFiveMinutes(t *testing.T) {
	g := NewWithT(t)
	g.Expect(CheckMaxRetryBackoff(time.Minute)).To(Succeed())
	g.Expect(CheckMaxRetryBackoff(5 * time.Minute)).To(Succeed())
	g.Expect(CheckMaxRetryBackoff(30 * time.Second)).To(MatchError(ContainSubstring("--max-retry-backoff=30s")))
	g.Expect(CheckMaxRetryBackoff(6 * time.Minute)).To(HaveOccurred())
}

func zeroOptions() controller.Options { return controller.Options{} }
