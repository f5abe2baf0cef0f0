package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/meshguard/meshguard/api/v1alpha1"
)

// DefaultMaxRetryBackoff is the longest a failed reconcile waits before it is tried again.
// controller-runtime's default doubles from 5 ms up to 1000 s: a profile that failed through a
// 7-second API server outage (about 15 failures) waited up to 2 m 55 s once the API server was
// back (docs/faults.md). One minute keeps a hot loop impossible (one try a minute per failing
// profile) and a recovery after an outage under a minute plus one reconcile.
const DefaultMaxRetryBackoff = time.Minute

// MinMaxRetryBackoff and MaxMaxRetryBackoff bound --max-retry-backoff: below a minute a cluster
// with many profiles failing for good (a webhook refusing them) retries them too often, above five
// an outage costs more than the outage.
const (
	MinMaxRetryBackoff = time.Minute
	MaxMaxRetryBackoff = 5 * time.Minute
)

// CheckMaxRetryBackoff says whether d is an accepted --max-retry-backoff.
func CheckMaxRetryBackoff(d time.Duration) error {
	if d < MinMaxRetryBackoff || d > MaxMaxRetryBackoff {
		return fmt.Errorf("--max-retry-backoff=%s: must be between %s and %s", d, MinMaxRetryBackoff, MaxMaxRetryBackoff)
	}
	return nil
}

// newRetryLimiter is controller-runtime's default rate limiter with the per-item backoff capped
// at maxBackoff (zero: DefaultMaxRetryBackoff), and an overall bucket large enough that a
// thousand profiles failing together during an outage are all retried within seconds of its end
// (the default 10/s with a burst of 100 spread 1000 retries over 90 s). The client-side QPS limit
// and the API server's priority and fairness bound the requests themselves.
func newRetryLimiter(maxBackoff time.Duration) workqueue.TypedRateLimiter[reconcile.Request] {
	if maxBackoff <= 0 {
		maxBackoff = DefaultMaxRetryBackoff
	}
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](5*time.Millisecond, maxBackoff),
		&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(100), 1000)},
	)
}

// WithRetryLimit gives opts a rate limiter of its own unless it has one. One per controller: a
// limiter counts failures by request, and a namespace (the floor's request) and a cluster profile
// can have the same name.
func WithRetryLimit(opts controller.Options, maxBackoff time.Duration) controller.Options {
	if opts.RateLimiter == nil {
		opts.RateLimiter = newRetryLimiter(maxBackoff)
	}
	return opts
}

// WaitForAPIServer blocks until the API server answers and serves meshguard's API, retrying with
// a backoff that doubles up to maxWait. A manager started while the API server is down or
// failing (a control plane upgrade, an outage) then waits for it instead of exiting or, worse,
// starting with kinds it took for not installed. It returns early only when ctx ends.
func WaitForAPIServer(ctx context.Context, cfg *rest.Config, maxWait time.Duration, log logr.Logger) error {
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	wait := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		_, err := disc.ServerResourcesForGroupVersion(v1alpha1.GroupVersion.String())
		if err == nil {
			if attempt > 1 {
				log.Info("API server available", "attempts", attempt)
			}
			return nil
		}
		what := "waiting for the API server"
		if apierrors.IsNotFound(err) {
			what = "waiting for meshguard's CRDs to be installed" // the API server answers
		}
		log.Info(what, "attempt", attempt, "retryIn", wait.String(), "reason", shortReason(err))
		select {
		case <-ctx.Done():
			return fmt.Errorf("API server not available: %w", err)
		case <-time.After(wait):
		}
		wait = min(2*wait, maxWait)
	}
}

// shortReason keeps a connection error to its cause (the URL is in the kubeconfig).
func shortReason(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// WaitingProbes answers the liveness and readiness probes while the manager waits for the API
// server: alive (a restart would not help), not ready. Close it before the manager starts its own.
func WaitingProbes(addr string) (stop func(), err error) {
	if addr == "" || addr == "0" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "waiting for the API server", http.StatusServiceUnavailable)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}
