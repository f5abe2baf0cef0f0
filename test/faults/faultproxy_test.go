package faults

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// faultProxy stands between the manager and kube-apiserver: it forwards requests with
// meshguard's credentials, answers a fraction of them 429 (with Retry-After, as API Priority and
// Fairness does) or 500 instead, fails every request for one "poisoned" namespace, and counts.
type faultProxy struct {
	url string
	srv *http.Server
	rp  *httputil.ReverseProxy

	mu       sync.Mutex
	rng      *rand.Rand
	fraction float64
	poison   string
	total    int
	tooMany  int
	internal int
	poisoned int
	// statusPatches are the times of the status writes of the poisoned namespace's profile: one
	// per reconcile attempt.
	statusPatches []time.Time
}

func startFaultProxy(t *testing.T, fraction float64, seed uint64) *faultProxy {
	t.Helper()
	upstream, err := url.Parse(cl.managerConfig.Host)
	if err != nil {
		t.Fatal(err)
	}
	transport, err := rest.TransportFor(cl.managerConfig)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{rng: rand.New(rand.NewPCG(seed, seed)), fraction: fraction}
	p.rp = httputil.NewSingleHostReverseProxy(upstream)
	p.rp.Transport = transport
	p.rp.FlushInterval = -1 // watches stream
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.url = "http://" + l.Addr().String()
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(l) }()
	t.Cleanup(func() { _ = p.srv.Close() })
	return p
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.total++
	poisoned := p.poison != "" && strings.Contains(r.URL.Path, "/namespaces/"+p.poison+"/")
	roll := p.rng.Float64()
	if poisoned {
		p.poisoned++
		if r.Method == http.MethodPatch && strings.HasSuffix(r.URL.Path, "/status") {
			p.statusPatches = append(p.statusPatches, time.Now())
		}
	}
	code := 0
	switch {
	case poisoned:
		code = http.StatusInternalServerError
		p.internal++
	case roll < p.fraction/2:
		code = http.StatusTooManyRequests
		p.tooMany++
	case roll < p.fraction:
		code = http.StatusInternalServerError
		p.internal++
	}
	p.mu.Unlock()

	switch code {
	case http.StatusTooManyRequests:
		// As kube-apiserver's API Priority and Fairness rejects: 429 with Retry-After.
		w.Header().Set("Retry-After", "1")
		writeStatus(w, code, "TooManyRequests", "injected by the fault proxy: too many requests")
	case http.StatusInternalServerError:
		writeStatus(w, code, "InternalError", "injected by the fault proxy: internal error")
	default:
		p.rp.ServeHTTP(w, r)
	}
}

func writeStatus(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":%q,"reason":%q,"code":%d}`, msg, reason, code)
}

// readyOrExited waits until the manager is ready (true) or has exited or timed out (false).
func readyOrExited(ctx context.Context, m *manager) bool {
	return m.AwaitReady(ctx, time.Minute) == nil
}

func (p *faultProxy) setPoison(ns string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.poison = ns
}

func (p *faultProxy) requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// Fault 5 (run first, so that its load is its own profiles): the API server throttling (429) and failing (500) a fifth of the manager's requests,
// and failing every request of one namespace for a while: the failing profile is retried with
// exponential backoff (a handful of attempts, not a hot loop), everything converges, and a
// converged manager sends (next to) nothing.
func TestThrottlingAndFailingAPIServer(t *testing.T) {
	ctx := context.Background()
	const fraction = 0.2
	p := startFaultProxy(t, fraction, 12)
	kubeconfig, err := cl.proxyKubeconfig("proxy", p.url)
	if err != nil {
		t.Fatal(err)
	}
	poisonNS := "proxy-poisoned-000"
	p.setPoison(poisonNS)
	start := p.requests()
	// The manager waits until discovery answers, but a request of the setup after that can still
	// fail and end it; in a cluster the kubelet starts it again, so does the test.
	var m *manager
	startRestarts := 0
	for {
		m = cl.startManager(t, "proxy", kubeconfig)
		if readyOrExited(ctx, m) {
			break
		}
		startRestarts++
		if startRestarts == 20 {
			t.Fatalf("the manager exited 20 times while starting behind the fault proxy: see %s", m.LogPath)
		}
	}

	// The poisoned profile first, so that its backoff runs for the whole convergence.
	if _, err := cl.createProfiles(ctx, "proxy-poisoned", 1); err != nil {
		t.Fatal(err)
	}
	poisonedAt := time.Now()
	keys, err := cl.createProfiles(ctx, "proxy", nProfiles)
	if err != nil {
		t.Fatal(err)
	}
	awaitProgress(ctx, t, keys, len(keys))
	// Watch the poisoned profile's retries for at least 30 s.
	if d := 30*time.Second - time.Since(poisonedAt); d > 0 {
		time.Sleep(d)
	}
	p.mu.Lock()
	window := time.Since(poisonedAt)
	attempts := append([]time.Time(nil), p.statusPatches...)
	poisonedRequests := p.poisoned
	p.poison = ""
	p.mu.Unlock()
	lifted := time.Now()

	res := expectExact(ctx, t)
	expectAlive(t, m)
	expectNoDrift(t, m)
	converged := p.requests()
	p.mu.Lock()
	tooMany, internal := p.tooMany, p.internal
	p.mu.Unlock()

	// Converged: the manager waits (watches are open); nothing should be sent in 10 s.
	time.Sleep(10 * time.Second)
	idle := p.requests() - converged

	var gaps []string
	for i := 1; i < len(attempts); i++ {
		gaps = append(gaps, attempts[i].Sub(attempts[i-1]).Round(time.Millisecond).String())
	}
	figs.add("5 fault proxy (%.0f%% of requests 429/500, one namespace 100%% 500): the manager exited %d times while starting (a failed discovery request), then %d requests until %d profiles were Ready and exact (%d objects), %d answered 429 and %d answered 500; the poisoned profile was tried %d times in %s (%d requests), gaps %s; Ready %s after the poison was lifted; %d requests in 10 s once converged",
		fraction*100, startRestarts, converged-start, res.profiles, res.objects, tooMany, internal, len(attempts), window.Round(time.Second), poisonedRequests,
		strings.Join(gaps, " "), time.Since(lifted).Round(time.Second), idle)

	// controller-runtime's per-item backoff starts at 5 ms and doubles: within the window, at most
	// log2(window/5ms + 1) retries after the first attempt. A few more are allowed for reconciles
	// that events start (the namespace's ConfigMap, the profile's creation). A hot loop (or no
	// backoff) makes hundreds.
	bound := int(math.Log2(float64(window/(5*time.Millisecond))+1)) + 1 + 4
	if len(attempts) > bound {
		t.Errorf("the failing profile was reconciled %d times in %s (gaps %v): more than %d, not an exponential backoff", len(attempts), window, gaps, bound)
	}
	if len(attempts) < 2 {
		t.Errorf("the failing profile was tried %d times: a failing reconcile must be retried", len(attempts))
	}
	if idle > 20 {
		t.Errorf("%d requests in 10 s after convergence: the manager keeps working when nothing changes", idle)
	}
	if err := m.Stop(); err != nil {
		t.Error(err)
	}
}
