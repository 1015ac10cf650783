// Package report holds the result of one bench run and writes it as text
// for people, JSON for machines and an SVG latency histogram.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tailorhq/tailor/bench/hist"
)

// Report is the result of one run. Sizes are bytes, times nanoseconds
// unless the name says seconds. Fields that do not apply to a mode are
// zero (and omitted from JSON).
type Report struct {
	Mode     string   `json:"mode"`
	Workload Workload `json:"workload"`
	Machine  Machine  `json:"machine"`

	// OpenSeconds is how long engine.Open (the store's Open) took.
	OpenSeconds float64   `json:"openSeconds,omitempty"`
	Populate    *Populate `json:"populate,omitempty"`

	Ops       uint64  `json:"ops"`
	Errors    uint64  `json:"errors"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"opsPerSec"`
	Latency   Latency `json:"latency"`
	// ClockNs is the median cost of the clock reads that time one
	// operation; every latency includes it.
	ClockNs float64 `json:"clockNs"`
	// AllocsPerOp and BytesPerOp are runtime.MemStats deltas over the
	// measured phase divided by Ops; they include background work
	// (Badger's compactions and flushes) that ran meanwhile.
	AllocsPerOp float64 `json:"allocsPerOp"`
	BytesPerOp  float64 `json:"bytesPerOp"`
	// CPUPerOp is the process's CPU time (user + system, every thread,
	// getrusage) over the measured phase divided by Ops, in nanoseconds:
	// the cost of an operation even when other processes take the cores.
	// CPUShare is that CPU time over wall time times GOMAXPROCS: 1 means
	// the run had the cores to itself, 0.3 that it got 30% of them.
	CPUPerOp float64 `json:"cpuNsPerOp"`
	CPUShare float64 `json:"cpuShare"`
	// RuleErrors counts audiences that failed at run time (counted as not
	// matched) in eval mode.
	RuleErrors uint64 `json:"ruleErrors,omitempty"`
	// Matched is the mean number of audiences matched per profile and
	// Selected the mean number of experiences selected (eval mode).
	Matched  float64 `json:"matchedPerOp,omitempty"`
	Selected float64 `json:"selectedPerOp,omitempty"`

	Store  *Store `json:"store,omitempty"`
	Redis  *Redis `json:"redis,omitempty"`
	Memory Memory `json:"memory"`
	// Space is the size on disk against the live data over time, when
	// sampled (identify-disk with a space interval).
	Space *Space `json:"space,omitempty"`

	// Metrics are the engine's and the store's OpenTelemetry metrics over
	// the measured phase (identify modes with -metrics), by name and
	// attributes.
	Metrics []Metric `json:"metrics,omitempty"`

	// SlowestAudiences lists audiences by mean cost, slowest first.
	SlowestAudiences []AudienceCost `json:"slowestAudiences,omitempty"`
	// Histogram is the latency distribution, non-empty buckets ascending.
	Histogram []hist.Bucket `json:"histogram,omitempty"`
}

// Workload describes what was measured.
type Workload struct {
	Kind        string  `json:"kind"`
	Seed        uint64  `json:"seed"`
	Profiles    int     `json:"profiles"`
	Audiences   int     `json:"audiences"`
	Experiences int     `json:"experiences"`
	RulesFile   string  `json:"rulesFile,omitempty"`
	SamplesFile string  `json:"samplesFile,omitempty"`
	Zipf        float64 `json:"zipf,omitempty"`
	Concurrency int     `json:"concurrency"`
	// EvalPool is how many distinct profiles eval mode cycled through.
	EvalPool   int    `json:"evalPool,omitempty"`
	SyncWrites bool   `json:"syncWrites,omitempty"`
	Dir        string `json:"dir,omitempty"`
}

// Machine describes where it ran.
type Machine struct {
	GoVersion  string `json:"goVersion"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpuModel,omitempty"`
}

// Populate reports how the store was filled before measuring.
type Populate struct {
	Profiles  int     `json:"profiles"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"opsPerSec"`
	// Reused is set when the store already held the workload and was not
	// written again.
	Reused bool `json:"reused,omitempty"`
}

// Latency summarizes the latency histogram, in nanoseconds.
type Latency struct {
	Mean float64 `json:"meanNs"`
	Min  int64   `json:"minNs"`
	P50  int64   `json:"p50Ns"`
	P90  int64   `json:"p90Ns"`
	P99  int64   `json:"p99Ns"`
	P999 int64   `json:"p999Ns"`
	Max  int64   `json:"maxNs"`
}

// LatencyOf summarizes h.
func LatencyOf(h *hist.Histogram) Latency {
	return Latency{
		Mean: h.Mean(), Min: h.Min(), Max: h.Max(),
		P50: h.Quantile(0.50), P90: h.Quantile(0.90), P99: h.Quantile(0.99), P999: h.Quantile(0.999),
	}
}

// Store is the size of the store on disk after the run.
type Store struct {
	LSMBytes  int64 `json:"lsmBytes"`
	VlogBytes int64 `json:"vlogBytes"`
	// DirBytes is the disk usage of the directory (du).
	DirBytes int64 `json:"dirBytes"`
}

// Redis is what a run on a Redis store cost per operation, from the
// store's counters over the measured phase.
type Redis struct {
	// Cluster reports a Redis Cluster (else one standalone server).
	Cluster bool `json:"cluster"`
	// RoundTripsPerOp are the round trips to Redis per Identify; a warm
	// profile needs one (its read is served by the client-side cache).
	RoundTripsPerOp float64 `json:"roundTripsPerOp"`
	// CacheHitRate is the share of reads the client-side cache served.
	CacheHitRate float64 `json:"cacheHitRate"`
	// ConflictsPerOp are the conditional writes that failed because
	// another writer came first: each made an Identify read and retry.
	ConflictsPerOp float64 `json:"conflictsPerOp"`
	// OverloadsPerOp are the Identify calls that gave up after their
	// retries (ErrOverload; counted as errors).
	OverloadsPerOp float64 `json:"overloadsPerOp"`
}

// Memory is the process's memory after the run.
type Memory struct {
	RSSBytes     int64 `json:"rssBytes"`
	PeakRSSBytes int64 `json:"peakRssBytes"`
	// RSSAnonBytes is the anonymous part of RSS (Go heap, Badger's
	// memtables and caches); RSSFileBytes the file-backed part (pages of
	// the store's memory-mapped files).
	RSSAnonBytes int64  `json:"rssAnonBytes"`
	RSSFileBytes int64  `json:"rssFileBytes"`
	HeapInuse    uint64 `json:"heapInuseBytes"`
}

// AudienceCost is the mean cost of evaluating one audience alone.
type AudienceCost struct {
	ID        string  `json:"id"`
	When      string  `json:"when"`
	MeanNs    float64 `json:"meanNs"`
	MatchRate float64 `json:"matchRate"`
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Duration formats nanoseconds for people: 850ns, 12.3µs, 4.56ms, 1.2s.
func Duration(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.0fns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.3gµs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.3gms", ns/1e6)
	default:
		return fmt.Sprintf("%.3gs", ns/1e9)
	}
}

// Bytes formats a size for people: 512 B, 1.5 MiB.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// WriteText writes r for people. top bounds the slowest-audiences table.
func (r *Report) WriteText(w io.Writer, top int) error {
	var b strings.Builder
	wl := r.Workload
	fmt.Fprintf(&b, "mode %s: %s workload, %d profiles, %d audiences, %d experiences, concurrency %d",
		r.Mode, wl.Kind, wl.Profiles, wl.Audiences, wl.Experiences, wl.Concurrency)
	if wl.Zipf > 0 {
		fmt.Fprintf(&b, ", zipf s=%g", wl.Zipf)
	}
	if wl.SyncWrites {
		b.WriteString(", sync writes")
	}
	if wl.EvalPool > 0 {
		fmt.Fprintf(&b, ", cycling over %d profiles", wl.EvalPool)
	}
	b.WriteString("\n")
	if wl.RulesFile != "" || wl.SamplesFile != "" {
		fmt.Fprintf(&b, "rules %s, samples %s\n", orDash(wl.RulesFile), orDash(wl.SamplesFile))
	}
	m := r.Machine
	fmt.Fprintf(&b, "machine: %s, %d CPUs (GOMAXPROCS %d), %s %s/%s\n", orDash(m.CPUModel), m.CPUs, m.GOMAXPROCS, m.GoVersion, m.OS, m.Arch)
	if r.OpenSeconds > 0 {
		fmt.Fprintf(&b, "open:       %s\n", Duration(r.OpenSeconds*1e9))
	}
	if p := r.Populate; p != nil {
		if p.Reused {
			fmt.Fprintf(&b, "populate:   reused the %d profiles already stored\n", p.Profiles)
		} else {
			fmt.Fprintf(&b, "populate:   %d profiles in %.1fs (%.0f/s)\n", p.Profiles, p.Seconds, p.OpsPerSec)
		}
	}
	fmt.Fprintf(&b, "throughput: %.0f ops/s (%d ops in %.2fs, %d errors)\n", r.OpsPerSec, r.Ops, r.Seconds, r.Errors)
	l := r.Latency
	fmt.Fprintf(&b, "latency:    mean %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		Duration(l.Mean), Duration(float64(l.P50)), Duration(float64(l.P90)), Duration(float64(l.P99)), Duration(float64(l.P999)), Duration(float64(l.Max)))
	if r.ClockNs > 0 {
		fmt.Fprintf(&b, "            (each latency includes %s of clock reads)\n", Duration(r.ClockNs))
	}
	fmt.Fprintf(&b, "allocs:     %.1f allocs/op, %s/op\n", r.AllocsPerOp, Bytes(int64(r.BytesPerOp)))
	if r.CPUPerOp > 0 {
		fmt.Fprintf(&b, "cpu:        %s CPU per op; the run got %.0f%% of %d cores (%.0f ops/s if it had them all)\n",
			Duration(r.CPUPerOp), 100*r.CPUShare, r.Machine.GOMAXPROCS, float64(r.Machine.GOMAXPROCS)*1e9/r.CPUPerOp)
	}
	if r.Mode == "eval" {
		fmt.Fprintf(&b, "evaluation: %.1f audiences matched and %.1f experiences selected per profile, %d rule errors\n", r.Matched, r.Selected, r.RuleErrors)
	}
	if s := r.Store; s != nil {
		fmt.Fprintf(&b, "store:      lsm %s, vlog %s, directory %s\n", Bytes(s.LSMBytes), Bytes(s.VlogBytes), Bytes(s.DirBytes))
	}
	if s := r.Redis; s != nil {
		kind := "standalone"
		if s.Cluster {
			kind = "cluster"
		}
		fmt.Fprintf(&b, "redis:      %s; %.2f round trips/op, %.0f%% of reads from the client-side cache, %.4f conflicts/op (each retried), %.5f overloads/op\n",
			kind, s.RoundTripsPerOp, 100*s.CacheHitRate, s.ConflictsPerOp, s.OverloadsPerOp)
	}
	if r.Space != nil {
		r.Space.writeText(&b, r.Ops)
	}
	mem := r.Memory
	fmt.Fprintf(&b, "memory:     rss %s (anon %s, file %s), peak rss %s, heap in use %s\n",
		Bytes(mem.RSSBytes), Bytes(mem.RSSAnonBytes), Bytes(mem.RSSFileBytes), Bytes(mem.PeakRSSBytes), Bytes(int64(mem.HeapInuse)))
	writeMetrics(&b, r.Metrics)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if len(r.SlowestAudiences) == 0 || top == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nslowest audiences (mean cost of the rule alone, over a sample of profiles):\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\taudience\tmean\tmatch\trule")
	for i, a := range r.SlowestAudiences {
		if i == top {
			break
		}
		when := strings.Join(strings.Fields(a.When), " ")
		if len(when) > 80 {
			when = when[:77] + "..."
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%.1f%%\t%s\n", i+1, a.ID, Duration(a.MeanNs), 100*a.MatchRate, when)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Since is time.Since in float seconds.
func Since(t time.Time) float64 { return time.Since(t).Seconds() }
