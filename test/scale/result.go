package scale

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Latencies are samples of one latency measurement.
type Latencies struct {
	Samples []time.Duration
	// Missed counts tries that timed out (not in Samples).
	Missed int
	// Note says what a reader must know (for example that the scenario stopped early).
	Note string
}

// Percentile is the nearest-rank percentile p (0–100) of the samples; 0 with none.
func (l Latencies) Percentile(p float64) time.Duration {
	if len(l.Samples) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), l.Samples...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	return s[rank-1]
}

// Window is what one quiet-cluster window (a resync or a restart) cost.
type Window struct {
	// Duration from the trigger until the manager was idle again.
	Duration time.Duration
	// Reconciles the manager ran in the window.
	Reconciles int
	// Requests the kube-apiserver counted for the watched resources (the harness's own subtracted).
	Requests Requests
}

// Convergence is one writer's time to bring N namespaces to their objects.
type Convergence struct {
	Duration time.Duration
	// Objects written (or, for meshguard, the profiles' generated objects).
	Objects int
	// RSS is the writer process's resident memory at the end, in bytes; 0 when not measured.
	RSS uint64
	// PeakRSS is the highest resident memory of the process so far (VmHWM), in bytes.
	PeakRSS uint64
	// Skipped says why the writer did not run.
	Skipped string
}

// Result is one run of the harness at one N.
type Result struct {
	Config         Config
	ObjectsPerNS   int
	LoadBefore     string
	LoadAfter      string
	Meshguard      Convergence
	MeshguardUnlim Convergence
	Bare           Convergence
	BareUnlim      Convergence
	Kyverno        Convergence
	// Converge is what meshguard's convergence at the limited setting cost.
	Converge Window
	// HeapInuse is the manager's go_memstats_heap_inuse_bytes after convergence.
	HeapInuse uint64
	// RestRSS and RestHeapInuse are the manager's RSS and heap in use at rest: after a garbage
	// collection (which the Go runtime runs at least every 2 minutes; the harness asks for it
	// through pprof instead of waiting). 0 when the manager serves no pprof.
	RestRSS, RestHeapInuse uint64
	// RestAnon is the anonymous part of RestRSS (RssAnon: heap, stacks, runtime); the rest is
	// file-backed, mostly the pages of the binary's code in use, which the kernel can drop.
	RestAnon uint64
	Resync   Window
	Restart  Window
	Drift    Latencies
	// DriftUnderLoad says whether the load was still converging when the last edit was restored.
	DriftUnderLoad string
	Weaken         Latencies
}

func secs(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func millis(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

func mib(b uint64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

func ratio(a, b time.Duration) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a.Seconds()/b.Seconds())
}

func conv(c Convergence) string {
	if c.Skipped != "" {
		return "skipped: " + c.Skipped
	}
	return secs(c.Duration)
}

func latency(l Latencies) string {
	switch {
	case len(l.Samples) == 0 && l.Missed == 0:
		return "–"
	case len(l.Samples) == 0:
		return fmt.Sprintf("none seen (%d tries missed). %s", l.Missed, l.Note)
	}
	s := fmt.Sprintf("%s / %s (n=%d)", millis(l.Percentile(50)), millis(l.Percentile(99)), len(l.Samples))
	if l.Missed > 0 {
		s += fmt.Sprintf(", %d missed", l.Missed)
	}
	if l.Note != "" {
		s += ". " + l.Note
	}
	return s
}

func window(w Window) string {
	if w.Duration == 0 && w.Requests == nil {
		return "–"
	}
	return fmt.Sprintf("%d writes, %d GETs, %d LISTs (%d reconciles)", w.Requests.Writes(), w.Requests.Gets(), w.Requests.Lists(), w.Reconciles)
}

// Rows are the table's rows: a label and one value per result.
func Rows(results []*Result) [][]string {
	row := func(label string, f func(r *Result) string) []string {
		out := []string{label}
		for _, r := range results {
			out = append(out, f(r))
		}
		return out
	}
	c := results[0].Config
	lim := fmt.Sprintf("%g QPS/%d burst, %d workers", c.QPS, c.Burst, c.Workers)
	return [][]string{
		row("N namespaces (objects)", func(r *Result) string { return fmt.Sprintf("%d (%d)", r.Config.N, r.Config.N*r.ObjectsPerNS) }),
		row("meshguard, "+lim, func(r *Result) string { return conv(r.Meshguard) }),
		row("meshguard, no client limit", func(r *Result) string { return conv(r.MeshguardUnlim) }),
		row("bare client-go, "+lim, func(r *Result) string { return conv(r.Bare) }),
		row("bare client-go, no client limit", func(r *Result) string { return conv(r.BareUnlim) }),
		row("Kyverno 1.19.1 background, "+lim, func(r *Result) string { return conv(r.Kyverno) }),
		row("meshguard / bare, limited (target ≤ 1.35)", func(r *Result) string { return ratio(r.Meshguard.Duration, r.Bare.Duration) }),
		row("meshguard / bare, unlimited (target ≤ 1.5)", func(r *Result) string { return ratio(r.MeshguardUnlim.Duration, r.BareUnlim.Duration) }),
		row("Kyverno / meshguard time (target ≥ 10)", func(r *Result) string { return ratio(r.Kyverno.Duration, r.Meshguard.Duration) }),
		row("manager RSS / Go heap in use after convergence (target ≤ 100 MiB)", func(r *Result) string { return mib(r.Meshguard.RSS) + " / " + mib(r.HeapInuse) }),
		row("manager RSS / Go heap in use at rest (after a GC)", func(r *Result) string {
			return mib(r.RestRSS) + " (anonymous " + mib(r.RestAnon) + ") / " + mib(r.RestHeapInuse)
		}),
		row("manager peak RSS (VmHWM)", func(r *Result) string { return mib(r.Meshguard.PeakRSS) }),
		row("Kyverno RSS after convergence / peak", func(r *Result) string { return mib(r.Kyverno.RSS) + " / " + mib(r.Kyverno.PeakRSS) }),
		row("resync of every profile (API server counts)", func(r *Result) string { return window(r.Resync) }),
		row("manager restart (API server counts)", func(r *Result) string { return window(r.Restart) }),
		row("start-up: all profiles re-verified", func(r *Result) string { return secs(r.Restart.Duration) }),
		row(fmt.Sprintf("drift edit→restore p50 / p99 while %d profiles are created", c.LoadProfiles), func(r *Result) string {
			s := latency(r.Drift)
			if r.DriftUnderLoad != "" {
				s += "; " + r.DriftUnderLoad
			}
			return s
		}),
		row("weakening policy → Effective=False p50 / p99", func(r *Result) string { return latency(r.Weaken) }),
		row("load average (1/5/15 min) before → after", func(r *Result) string { return r.LoadBefore + " → " + r.LoadAfter }),
	}
}

// Print writes the table as Markdown, so that docs/performance.md can take it as it is, followed by
// the request details of the quiet windows.
func Print(w io.Writer, results []*Result) {
	rows := Rows(results)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	head := []string{"measure"}
	sep := []string{"---"}
	for _, r := range results {
		head = append(head, fmt.Sprintf("N = %d", r.Config.N))
		sep = append(sep, "---")
	}
	fmt.Fprintln(tw, "| "+strings.Join(head, "\t| ")+"\t|")
	fmt.Fprintln(tw, "| "+strings.Join(sep, "\t| ")+"\t|")
	for _, r := range rows {
		fmt.Fprintln(tw, "| "+strings.Join(r, "\t| ")+"\t|")
	}
	_ = tw.Flush()
	for _, r := range results {
		fmt.Fprintf(w, "\nN = %d, requests by verb and resource (kube-apiserver):\n  convergence (%d reconciles): %s\n  resync:  %s\n  restart: %s\n",
			r.Config.N, r.Converge.Reconciles, r.Converge.Requests, r.Resync.Requests, r.Restart.Requests)
	}
}
