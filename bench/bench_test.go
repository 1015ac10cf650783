package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tailorhq/tailor/bench/runner"
	"github.com/tailorhq/tailor/bench/workload"
	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/internal/cputime"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/storage/badger"
)

// Benchmarks for issue 6, target 6: audience cost as audiences grow, and
// Identify throughput as the store grows. Targets 1-3 are benchmarked in
// packages engine and rules, next to the code they measure.

// BenchmarkAudiences evaluates 1, 10, 100 and 1,000 generated audiences
// of mixed shapes for one profile per op (cycling over 1,024 profiles).
// Cost should grow linearly: cpu-ns/audience stays flat. CPU time
// (getrusage) per op is reported beside wall time because the machine is
// shared.
func BenchmarkAudiences(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("audiences=%d", n), func(b *testing.B) {
			g, err := workload.New(workload.Config{Seed: 1, Profiles: 1024, Audiences: n, NoExperiences: true})
			if err != nil {
				b.Fatal(err)
			}
			_, set, err := g.Rules()
			if err != nil {
				b.Fatal(err)
			}
			envs := make([]rules.Env, g.Len())
			for i := range envs {
				p := g.Profile(i)
				envs[i] = p.Env(g.Config().Now)
			}
			matched := make([]bool, n)
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for i := 0; b.Loop(); i++ {
				if err := set.Match(&envs[i&1023], matched); err != nil {
					b.Fatal(err)
				}
			}
			cpu := float64((cputime.Process() - cpu0).Nanoseconds()) / float64(b.N)
			b.ReportMetric(cpu, "cpu-ns/op")
			b.ReportMetric(cpu/float64(n), "cpu-ns/audience")
		})
	}
}

// storeSizes returns the stored-profile counts BenchmarkIdentifyStored
// runs: 10,000 unless TAILOR_BENCH_STORES lists others (comma-separated,
// e.g. "10000,100000,1000000"), so go test stays fast by default.
func storeSizes(b *testing.B) []int {
	env := os.Getenv("TAILOR_BENCH_STORES")
	if env == "" {
		return []int{10_000}
	}
	var out []int
	for _, f := range strings.Split(env, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("TAILOR_BENCH_STORES: %q is not a positive count", f)
		}
		out = append(out, n)
	}
	return out
}

// BenchmarkIdentifyStored runs full Identify calls (one page and one
// identify event, 100 audiences, 20 experiences, uniformly random stored
// profiles) on Badger on disk holding 10,000 (or TAILOR_BENCH_STORES)
// profiles. Stores are built in a temporary directory, or kept and reused
// under TAILOR_BENCH_DIR when set (populating a million profiles takes
// minutes).
func BenchmarkIdentifyStored(b *testing.B) {
	for _, n := range storeSizes(b) {
		b.Run(fmt.Sprintf("profiles=%d", n), func(b *testing.B) {
			g, err := workload.New(workload.Config{Seed: 1, Profiles: n})
			if err != nil {
				b.Fatal(err)
			}
			_, set, err := g.Rules()
			if err != nil {
				b.Fatal(err)
			}
			dir := b.TempDir()
			if base := os.Getenv("TAILOR_BENCH_DIR"); base != "" {
				dir = filepath.Join(base, fmt.Sprintf("profiles-%d", n))
			}
			st, err := runner.OpenStore(context.Background(), dir, g, engine.Options{Rules: set}, badger.Options{}, 0, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Engine.Close() })
			var seq atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			defer cputime.Report(b)()
			b.RunParallel(func(pb *testing.PB) {
				s := seq.Add(1 << 32)
				for pb.Next() {
					s++
					v := g.Visitor(int((s * 0x9e3779b97f4a7c15 >> 20) % uint64(n)))
					if _, err := st.Engine.Identify(context.Background(), v.ID, v.VisitRequest(s)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
