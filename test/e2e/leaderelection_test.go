package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// leaseName is the manager's LeaderElectionID.
const leaseName = "meshguard.security.meshguard.dev"

// replica is one manager process started with --leader-elect, as the Deployment's two replicas run.
type replica struct {
	name       string
	cmd        *exec.Cmd
	done       chan struct{}
	metricsURL string
}

func startReplica(ctx context.Context, name string) *replica {
	GinkgoHelper()
	metricsAddr, err := freeAddress()
	Expect(err).NotTo(HaveOccurred())
	probeAddr, err := freeAddress()
	Expect(err).NotTo(HaveOccurred())
	logf, err := os.Create(filepath.Join(env.dir, "replica-"+name+".log"))
	Expect(err).NotTo(HaveOccurred())
	r := &replica{name: name, done: make(chan struct{}), metricsURL: "http://" + metricsAddr + "/metrics"}
	r.cmd = exec.Command(env.managerBin,
		"--leader-elect", "--leader-election-namespace="+deployNamespace,
		"--metrics-bind-address="+metricsAddr, "--health-probe-bind-address="+probeAddr)
	r.cmd.Env = append(os.Environ(), "KUBECONFIG="+env.managerKubeconfig)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	Expect(r.cmd.Start()).To(Succeed())
	go func() { _ = r.cmd.Wait(); _ = logf.Close(); close(r.done) }()
	DeferCleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-r.done:
			case <-time.After(30 * time.Second):
				_ = r.cmd.Process.Kill()
				<-r.done
			}
		}
	})
	return r
}

// leads says whether the replica holds the Lease, from its own leader_election_master_status.
func (r *replica) leads(ctx context.Context) bool {
	select {
	case <-r.done:
		return false
	default:
	}
	code, body, err := httpGet(ctx, r.metricsURL)
	if err != nil || code != http.StatusOK {
		return false
	}
	v, _ := sumMetric(parseMetrics(body), "leader_election_master_status", labelsAre(map[string]string{"name": leaseName}))
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
		Expect(first.cmd.Process.Kill()).To(Succeed())
		<-first.done
		// The Lease lasts 15 s (controller-runtime's default LeaseDuration) after the last renewal.
		second := awaitLeader(ctx, 60*time.Second, other)
		crashTakeover := time.Since(killed)

		By("stopping the new leader as a rolling update does (SIGTERM), with a third replica waiting")
		c := startReplica(ctx, "c")
		Consistently(func() bool { return c.leads(ctx) }).WithContext(ctx).WithTimeout(time.Second).Should(BeFalse(), "the standby does not lead while the leader lives")
		stopped := time.Now()
		Expect(second.cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
		awaitLeader(ctx, 60*time.Second, c)
		gracefulTakeover := time.Since(stopped)
		select {
		case <-second.done:
		case <-time.After(30 * time.Second):
			Fail("the stopped leader did not exit within 30s")
		}
		Expect(second.cmd.ProcessState.ExitCode()).To(Equal(0), "a SIGTERM'd leader releases the Lease and exits cleanly")

		// Measured, not asserted: timings depend on the machine.
		fmt.Fprintf(GinkgoWriter, "leader takeover: after SIGKILL %s (Lease expiry), after SIGTERM %s (Lease released)\n", crashTakeover.Round(time.Millisecond), gracefulTakeover.Round(time.Millisecond))
		AddReportEntry("leader takeover after SIGKILL", crashTakeover.String())
		AddReportEntry("leader takeover after SIGTERM", gracefulTakeover.String())
	})
})
