package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/bench/report"
	"github.com/tailorhq/tailor/bench/workload"
	"github.com/tailorhq/tailor/storage/redis"
	"github.com/tailorhq/tailor/storage/redis/redistest"
)

var fixedNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func tiny(mode string) Config {
	return Config{
		Mode:           mode,
		Workload:       workload.Config{Seed: 42, Profiles: 200, Audiences: 30, Experiences: 6, Now: fixedNow},
		Ops:            500,
		AudienceSample: 20,
	}
}

func checkReport(t *testing.T, rep *report.Report, cfg Config) {
	t.Helper()
	if rep.Mode != cfg.Mode || rep.Ops != cfg.Ops || rep.Errors != 0 {
		t.Fatalf("mode %s ops %d errors %d; want %s %d 0", rep.Mode, rep.Ops, rep.Errors, cfg.Mode, cfg.Ops)
	}
	l := rep.Latency
	if !(l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max && l.Max > 0) {
		t.Fatalf("latency quantiles out of order: %+v", l)
	}
	var n uint64
	for _, b := range rep.Histogram {
		n += b.Count
	}
	if n != rep.Ops {
		t.Fatalf("histogram holds %d ops, want %d", n, rep.Ops)
	}
	if rep.OpsPerSec <= 0 || rep.Seconds <= 0 {
		t.Fatalf("throughput %v over %vs", rep.OpsPerSec, rep.Seconds)
	}
	if rep.CPUPerOp <= 0 || rep.CPUShare <= 0 {
		t.Fatalf("cpu %vns/op, share %v", rep.CPUPerOp, rep.CPUShare)
	}
	if m := rep.Memory; m.RSSBytes <= 0 || m.PeakRSSBytes < m.RSSBytes || m.RSSAnonBytes <= 0 || m.RSSAnonBytes+m.RSSFileBytes > m.RSSBytes+1<<20 {
		t.Fatalf("memory %+v", rep.Memory)
	}
	if len(rep.SlowestAudiences) != rep.Workload.Audiences {
		t.Fatalf("%d audience costs for %d audiences", len(rep.SlowestAudiences), rep.Workload.Audiences)
	}
	for i := 1; i < len(rep.SlowestAudiences); i++ {
		if rep.SlowestAudiences[i].MeanNs > rep.SlowestAudiences[i-1].MeanNs {
			t.Fatal("slowest audiences not sorted slowest first")
		}
	}
	if rep.Machine.GoVersion == "" || rep.Machine.CPUs == 0 {
		t.Fatalf("machine %+v", rep.Machine)
	}
}

func TestModesEndToEnd(t *testing.T) {
	for _, mode := range Modes {
		t.Run(mode, func(t *testing.T) {
			cfg := tiny(mode)
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkReport(t, rep, cfg)
			switch mode {
			case ModeEval:
				if rep.RuleErrors != 0 || rep.Matched <= 0 || rep.Selected <= 0 || rep.Populate != nil || rep.Store != nil {
					t.Fatalf("eval report: rule errors %d, matched %v, selected %v, populate %v, store %v", rep.RuleErrors, rep.Matched, rep.Selected, rep.Populate, rep.Store)
				}
			case ModeIdentifyDisk:
				if rep.Store == nil || rep.Store.DirBytes <= 0 || rep.Store.LSMBytes+rep.Store.VlogBytes <= 0 {
					t.Fatalf("store sizes %+v", rep.Store)
				}
				fallthrough
			case ModeIdentifyMem:
				if rep.Populate == nil || rep.Populate.Profiles != 200 || rep.Populate.Reused || rep.OpenSeconds <= 0 {
					t.Fatalf("populate %+v, open %vs", rep.Populate, rep.OpenSeconds)
				}
			}
		})
	}
}

func TestZipfAndPeer(t *testing.T) {
	cfg := tiny(ModeIdentifyMem)
	cfg.Zipf = 1.1
	cfg.Workload.Kind = workload.KindPeer
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, cfg)
	if rep.Workload.Zipf != 1.1 || rep.Workload.Audiences != 1 || rep.Workload.Experiences != 1 {
		t.Fatalf("workload %+v", rep.Workload)
	}
	if rep.SlowestAudiences[0].MatchRate != 1 {
		t.Fatalf("peer audience matched %v of profiles, want all", rep.SlowestAudiences[0].MatchRate)
	}
}

func TestDirIsReusedOnlyForTheSameWorkload(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	cfg := tiny(ModeIdentifyDisk)
	cfg.Dir = dir
	cfg.Workload.Profiles, cfg.Ops = 50, 100
	cfg.AudienceSample = -1
	first, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if first.Populate.Reused {
		t.Fatal("first run reused an empty directory")
	}
	second, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Populate.Reused || second.Workload.Dir != dir {
		t.Fatalf("second run populate %+v dir %q; want reused", second.Populate, second.Workload.Dir)
	}
	other := cfg
	other.Workload.Seed++
	if _, err := Run(context.Background(), other); !errors.Is(err, ErrConfig) {
		t.Fatalf("another seed on the same dir: error %v, want ErrConfig", err)
	}
	foreign := t.TempDir()
	if err := os.WriteFile(filepath.Join(foreign, "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Dir = foreign
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrConfig) {
		t.Fatalf("foreign dir: error %v, want ErrConfig", err)
	}
}

func TestUserRulesAndSamples(t *testing.T) {
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "rules.yaml")
	samples := filepath.Join(dir, "sample.ndjson")
	if err := os.WriteFile(rulesFile, []byte(`audiences:
  - {id: pro, when: 'traits.plan == "pro"'}
  - {id: buyers, when: 'eventCount("purchase", "30d") >= 1'}
experiences:
  - id: e
    audience: pro
    distribution: [0.5, 0.5]
    components: [{type: InlineVariable, key: k, baseline: a, variants: [b]}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(samples, []byte(`{"id": "a", "traits": {"plan": "pro"}}
{"profileId": "b", "events": [{"type": "track", "event": "purchase"}, {"type": "identify", "traits": {"plan": "free"}}]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{ModeEval, ModeIdentifyMem} {
		t.Run(mode, func(t *testing.T) {
			cfg := tiny(mode)
			cfg.RulesFile, cfg.SamplesFile = rulesFile, samples
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkReport(t, rep, cfg)
			if rep.Workload.Profiles != 2 || rep.Workload.Audiences != 2 || !strings.Contains(rep.Workload.Kind, "user") {
				t.Fatalf("workload %+v", rep.Workload)
			}
			for _, a := range rep.SlowestAudiences {
				if a.MatchRate != 0.5 {
					t.Errorf("audience %s matched %v of the sample, want 0.5", a.ID, a.MatchRate)
				}
			}
		})
	}
}

// TestMetricsOfTheMeasuredPhase runs identify-mem with -metrics: the
// engine's counts cover the measured calls only, not the populating.
func TestMetricsOfTheMeasuredPhase(t *testing.T) {
	cfg := tiny(ModeIdentifyMem)
	cfg.Metrics = true
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, cfg)
	byName := map[string]report.Metric{}
	for _, m := range rep.Metrics {
		byName[m.Name+"{"+m.Attributes+"}"] = m
	}
	if m := byName["tailor.identify.calls{tailor.outcome=ok}"]; m.Kind != report.KindCounter || m.Value != float64(rep.Ops) {
		t.Errorf("identify calls %+v, want the %d measured", m, rep.Ops)
	}
	if m := byName["tailor.identify.duration{tailor.outcome=ok}"]; m.Kind != report.KindHistogram || m.Count != rep.Ops || m.Unit != "s" ||
		!(m.P50 > 0 && m.P50 <= m.P99) {
		t.Errorf("identify duration %+v", m)
	}
	if m := byName["tailor.import.queue.depth{}"]; m.Kind != report.KindGauge || m.Value != 0 {
		t.Errorf("queue depth %+v", m)
	}
	if _, ok := byName["tailor.store.commit.batch_size{}"]; !ok {
		t.Error("the store's metrics are missing")
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf, 0); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "tailor.identify.calls{tailor.outcome=ok}  500\n") {
		t.Errorf("text report lacks the metrics:\n%s", buf.String())
	}
}

func TestConfigErrors(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"mode":            func(c *Config) { c.Mode = "fast" },
		"zipf":            func(c *Config) { c.Zipf = 0.5 },
		"sync in memory":  func(c *Config) { c.Mode, c.Sync = ModeIdentifyMem, true },
		"dir in eval":     func(c *Config) { c.Dir = t.TempDir() },
		"concurrency":     func(c *Config) { c.Concurrency = -1 },
		"eval pool":       func(c *Config) { c.EvalPool = -1 },
		"duration":        func(c *Config) { c.Ops, c.Duration = 0, -time.Second },
		"metrics in eval": func(c *Config) { c.Metrics = true },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := tiny(ModeEval)
			mut(&cfg)
			if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v, want ErrConfig", err)
			}
		})
	}
	cfg := tiny(ModeEval)
	cfg.RulesFile = filepath.Join(t.TempDir(), "missing.yaml")
	if _, err := Run(context.Background(), cfg); err == nil {
		t.Fatal("missing rules file: no error")
	}
}

func TestReportJSONShape(t *testing.T) {
	cfg := tiny(ModeIdentifyDisk)
	cfg.Workload.Profiles, cfg.Ops = 50, 100
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	paths := [][]string{
		{"mode"}, {"ops"}, {"errors"}, {"seconds"}, {"opsPerSec"}, {"allocsPerOp"}, {"bytesPerOp"}, {"cpuNsPerOp"}, {"cpuShare"}, {"openSeconds"},
		{"workload", "profiles"}, {"workload", "audiences"}, {"workload", "experiences"}, {"workload", "concurrency"},
		{"machine", "goVersion"}, {"machine", "cpus"},
		{"latency", "meanNs"}, {"latency", "p50Ns"}, {"latency", "p90Ns"}, {"latency", "p99Ns"}, {"latency", "p999Ns"}, {"latency", "maxNs"},
		{"populate", "profiles"}, {"populate", "seconds"},
		{"store", "lsmBytes"}, {"store", "vlogBytes"}, {"store", "dirBytes"},
		{"memory", "rssBytes"}, {"memory", "peakRssBytes"},
	}
	for _, p := range paths {
		var v any = m
		for _, k := range p {
			obj, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: parent is not an object", p)
			}
			if v, ok = obj[k]; !ok {
				t.Fatalf("JSON report lacks %s", strings.Join(p, "."))
			}
		}
		if _, ok := v.(float64); !ok && p[len(p)-1] != "mode" && p[len(p)-1] != "goVersion" {
			t.Errorf("%s = %v, want a number", strings.Join(p, "."), v)
		}
	}
	for _, k := range []string{"slowestAudiences", "histogram"} {
		arr, ok := m[k].([]any)
		if !ok || len(arr) == 0 {
			t.Fatalf("%s = %v, want a non-empty array", k, m[k])
		}
	}
	a := m["slowestAudiences"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "when", "meanNs", "matchRate"} {
		if _, ok := a[k]; !ok {
			t.Errorf("slowestAudiences[0] lacks %s", k)
		}
	}
	b := m["histogram"].([]any)[0].(map[string]any)
	for _, k := range []string{"Lo", "Hi", "Count"} {
		if _, ok := b[k]; !ok {
			t.Errorf("histogram[0] lacks %s", k)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the progress goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProgressLineOnlyAfterASecond(t *testing.T) {
	for _, tc := range []struct {
		name string
		dur  time.Duration
		want bool
	}{{"short run", 300 * time.Millisecond, false}, {"long run", 1600 * time.Millisecond, true}} {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			cfg := tiny(ModeEval)
			cfg.Ops, cfg.Duration, cfg.Progress, cfg.AudienceSample = 0, tc.dur, &out, -1
			if _, err := Run(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			s := out.String()
			if got := strings.Contains(s, "ops/s"); got != tc.want {
				t.Fatalf("progress printed %v, want %v: %q", got, tc.want, s)
			}
			if tc.want && !strings.HasSuffix(s, "\r\033[K") {
				t.Fatalf("progress line not cleared at the end: %q", s)
			}
		})
	}
}

// TestIdentifyOnRedis runs the identify mode on a real Redis Cluster
// twice: the first run populates, the second reuses the profiles; the
// report has the store's round trips, cache hits and conflicts per op.
func TestIdentifyOnRedis(t *testing.T) {
	srv := redistest.SharedCluster(t)
	cfg := Config{Mode: ModeIdentifyMem, Workload: workload.Config{Profiles: 200, Audiences: 10, Experiences: 3, Seed: 3},
		Ops: 400, Concurrency: 4, AudienceSample: -1,
		Redis: redis.Options{Addrs: srv.Addrs, KeyPrefix: redistest.KeyPrefix(t)}}
	for run := range 2 {
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Populate == nil || rep.Populate.Reused != (run == 1) {
			t.Fatalf("run %d: populate %+v, want reused only on the second run", run, rep.Populate)
		}
		r := rep.Redis
		if r == nil || !r.Cluster || r.RoundTripsPerOp < 1 || rep.Errors != 0 || rep.Ops != 400 {
			t.Fatalf("run %d: ops %d errors %d, redis %+v", run, rep.Ops, rep.Errors, r)
		}
		t.Logf("run %d: %.2f round trips/op, %.0f%% cache hits, %.4f conflicts/op", run, r.RoundTripsPerOp, 100*r.CacheHitRate, r.ConflictsPerOp)
	}
	cfg.Workload.Seed = 4
	if _, err := Run(context.Background(), cfg); err == nil {
		t.Fatal("a run with another workload reused the keys of the first")
	}
}

// TestNaive runs the naive loop on a small workload: it populates, runs
// every audience and reports like the other modes.
func TestNaive(t *testing.T) {
	rep, err := Run(context.Background(), Config{Mode: ModeNaive, Workload: workload.Config{Profiles: 300, Audiences: 17, Experiences: 3, Seed: 2},
		Ops: 500, Concurrency: 1, AudienceSample: -1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ops != 500 || rep.Errors != 0 || rep.Populate == nil || rep.Populate.Profiles != 300 || rep.AllocsPerOp == 0 {
		t.Fatalf("report: ops %d errors %d populate %+v allocs %v", rep.Ops, rep.Errors, rep.Populate, rep.AllocsPerOp)
	}
}
