package e2e

import (
	"context"
	"fmt"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshguard/meshguard/test/testenv"
)

// leaseName is the manager's LeaderElectionID.
const leaseName = "meshguard.security.meshguard.dev"

// replica is one manager process started with --leader-elect, as the Deployment's two replicas run.
type replica struct {
	*testenv.Manager
	name string
}

func startReplica(ctx context.Context, name string) *replica {
	GinkgoHelper()
	m, err := testenv.StartManager(testenv.ManagerConfig{
		Bin: env.managerBin, Kubeconfig: env.managerKubeconfig, Dir: env.dir, Name: "replica-" + name,
		Args: []string{"--leader-elect", "--leader-election-namespace=" + deployNamespace},
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		if !m.Exited() {
			_ = m.Stop()
		}
	})
	return &replica{Manager: m, name: name}
}

// leads says whether the replica holds the Lease, from its own leader_election_master_status.
func (r *replica) leads(ctx context.Context) bool {
	if r.Exited() {
		return false
	}
	body, err := r.Metrics(ctx)
	if err != nil {
		return false
	}
	v, _ := testenv.SumMetric(testenv.ParseMetrics(body), "leader_election_master_status", map[string]string{"name": leaseName})
	return v == 1
}

// awaitLeader waits until exactly one of the replicas leads and returns it.
func awaitLeader(ctx context.Context, timeout time.Duration, rs ...*replica) *replica {
	GinkgoHelper()
	var leader *replica
	Eventually(func(g Gomega) {
		var leaders []string
		leader = nil
		for _, r := range rs {
			if r.leads(ctx) {
				leaders = append(leaders, r.name)
				leader = r
			}
		}
		g.Expect(leaders).To(HaveLen(1), "exactly one replica leads")
	}).WithContext(ctx).WithTimeout(timeout).WithPolling(50 * time.Millisecond).Should(Succeed())
	return leader
}

var _ = Describe("two replicas with leader election", func() {
	It("hand over at once when the leader stops, and take over after the Lease expires when it is killed", func(ctx SpecContext) {
		a, b := startReplica(ctx, "a"), startReplica(ctx, "b")
		first := awaitLeader(ctx, 60*time.Second, a, b)
		other := map[*replica]*replica{a: b, b: a}[first]

		By("killing the leader (SIGKILL: no chance to release the Lease)")
		killed := time.Now()
		first.Kill()
		// The Lease lasts 15 s (controller-runtime's default LeaseDuration) after the last renewal.
		second := awaitLeader(ctx, 60*time.Second, other)
		crashTakeover := time.Since(killed)

		By("stopping the new leader as a rolling update does (SIGTERM), with a third replica waiting")
		c := startReplica(ctx, "c")
		Consistently(func() bool { return c.leads(ctx) }).WithContext(ctx).WithTimeout(time.Second).Should(BeFalse(), "the standby does not lead while the leader lives")
		stopped := time.Now()
		Expect(second.Signal(syscall.SIGTERM)).To(Succeed())
		awaitLeader(ctx, 60*time.Second, c)
		gracefulTakeover := time.Since(stopped)
		select {
		case <-second.Done():
		case <-time.After(30 * time.Second):
			Fail("the stopped leader did not exit within 30s")
		}
		Expect(second.Err()).NotTo(HaveOccurred(), "a SIGTERM'd leader releases the Lease and exits cleanly")

		// Measured, not asserted: timings depend on the machine.
		fmt.Fprintf(GinkgoWriter, "leader takeover: after SIGKILL %s (Lease expiry), after SIGTERM %s (Lease released)\n", crashTakeover.Round(time.Millisecond), gracefulTakeover.Round(time.Millisecond))
		AddReportEntry("leader takeover after SIGKILL", crashTakeover.String())
		AddReportEntry("leader takeover after SIGTERM", gracefulTakeover.String())
	})
})
