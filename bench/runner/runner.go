// Package runner runs one tailor benchmark: it builds the workload, fills
// the store when a mode needs one, drives the measured operations from
// concurrent workers and collects a report.Report.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/bench/hist"
	"github.com/tailorhq/tailor/bench/report"
	"github.com/tailorhq/tailor/bench/workload"
	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/internal/cputime"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/storage/badger"
	"github.com/tailorhq/tailor/storage/redis"
)

// Modes.
const (
	// ModeEval evaluates audiences and allocates experiences
	// (engine.Decider) over prepared rule environments: no store, no
	// events.
	ModeEval = "eval"
	// ModeIdentifyDisk runs full Identify calls on Badger on disk.
	ModeIdentifyDisk = "identify-disk"
	// ModeIdentifyMem runs full Identify calls on Badger in memory.
	ModeIdentifyMem = "identify-mem"
	// ModeNaive runs the naive loop (naive.go): the simplest program over
	// the same building blocks (Badger, JSON, expr's VM, xxhash), the
	// yardstick Identify is compared with.
	ModeNaive = "naive"
)

// Modes lists the modes in the order the command documents them.
var Modes = []string{ModeEval, ModeIdentifyDisk, ModeIdentifyMem, ModeNaive}

// ErrConfig is matched (errors.Is) by every invalid Config error.
var ErrConfig = errors.New("runner: invalid config")

// Config is one run. The zero value of a field selects its default.
type Config struct {
	Mode     string
	Workload workload.Config
	// RulesFile replaces the generated rules; SamplesFile replaces the
	// generated profiles (NDJSON, see workload.ReadSamples).
	RulesFile   string
	SamplesFile string

	// Dir is the store directory of identify-disk. Empty means a fresh
	// temporary directory removed after the run. A directory that already
	// holds this workload (same kind, seed, profile count and samples) is
	// reused without populating it again.
	Dir string
	// Concurrency is the number of measuring goroutines; default
	// GOMAXPROCS. PopulateConcurrency fills the store; default
	// 8*GOMAXPROCS (many writers make Badger's group commits large).
	Concurrency         int
	PopulateConcurrency int
	// Ops stops after that many operations; otherwise Duration (default
	// 10s) bounds the run.
	Ops      uint64
	Duration time.Duration
	// Zipf, when > 1, draws profile ids with a Zipf distribution of that
	// exponent instead of uniformly.
	Zipf float64
	// Stream numbers this run's sequences of profile ids, so that bench
	// processes sharing one store (Redis) draw different ones: runs with
	// the same Stream (and seed) draw the same sequence. Default 0.
	Stream int
	// Sync makes every Identify durable (Badger SyncWrites).
	Sync bool
	// CacheBytes is engine.Options.CacheBytes: 0 the engine's default,
	// negative no cache.
	CacheBytes int64
	// Badger tunes the store (ValueThreshold, MemTableSize, ...); Dir,
	// InMemory and SyncWrites are set by the runner.
	Badger badger.Options
	// Redis, when its Addrs are set, runs the identify modes on that Redis
	// or Redis Cluster instead of Badger (the mode's disk or memory then
	// means nothing): profiles are populated once under Redis.KeyPrefix
	// and reused by later runs with the same workload, also by several
	// bench processes at once.
	Redis redis.Options
	// EvalPool is how many distinct profiles eval mode cycles through;
	// default DefaultEvalPool. 1 measures one hot profile, as
	// microbenchmarks do.
	EvalPool int
	// AudienceSample is how many profiles the slowest-audiences table is
	// measured over; default 200, negative disables the table.
	AudienceSample int

	// SpaceInterval, when positive, samples the store's size on disk and
	// its live data at that interval during the measured phase
	// (identify-disk; Report.Space). Idle keeps the store open and
	// sampling that long after the measured phase, without load; it
	// implies DefaultSpaceInterval when SpaceInterval is zero.
	SpaceInterval time.Duration
	Idle          time.Duration
	// LiveInterval is the time between counts of the live data (an
	// iteration over every key) while sampling; default
	// DefaultLiveInterval, and never less than SpaceInterval.
	LiveInterval time.Duration

	// MemProfile, when set, receives a heap profile (pprof) taken when the
	// measured phase ends, after a garbage collection.
	MemProfile io.Writer

	// Metrics, in the identify modes, gives the engine and the store an
	// OpenTelemetry SDK MeterProvider and puts what they report over the
	// measured phase in Report.Metrics. It adds the SDK's cost to every
	// call (engine/PERF.md, BenchmarkIdentifyTelemetry).
	Metrics bool

	// CPUProfile, when set, receives a CPU profile (pprof) of the
	// measured phase only: not the populating, not the audience table.
	CPUProfile io.Writer

	// Progress, when set, receives a live progress line (carriage-return
	// updated) for runs longer than a second. Log receives status lines
	// (populate progress). Both may be nil.
	Progress io.Writer
	Log      io.Writer
}

// source is where visitors come from: the generator or a user's samples.
type source struct {
	gen     *workload.Generator
	samples []workload.Sample
	now     time.Time
}

func (s *source) len() int {
	if s.samples != nil {
		return len(s.samples)
	}
	return s.gen.Len()
}

func (s *source) profile(i int) workload.Profile {
	if s.samples != nil {
		return s.samples[i].Profile
	}
	return s.gen.Profile(i)
}

func (s *source) visitor(i int) workload.Visitor {
	if s.samples != nil {
		return s.samples[i].Profile.Visitor()
	}
	return s.gen.Visitor(i)
}

// Run executes cfg and returns its report. ctx cancels the run (the report
// then covers what was measured).
func Run(ctx context.Context, cfg Config) (*report.Report, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	gen, err := workload.New(cfg.Workload)
	if err != nil {
		return nil, err
	}
	src := &source{gen: gen, now: gen.Config().Now}
	if cfg.SamplesFile != "" {
		f, err := os.Open(cfg.SamplesFile)
		if err != nil {
			return nil, fmt.Errorf("runner: samples: %w", err)
		}
		src.samples, err = workload.ReadSamples(f, src.now, gen.ID)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	var set *rules.Set
	if cfg.RulesFile != "" {
		if set, err = rules.Load(cfg.RulesFile); err != nil {
			return nil, err
		}
	} else if _, set, err = gen.Rules(); err != nil {
		return nil, err
	}
	wc := gen.Config()
	rep := &report.Report{
		Mode:    cfg.Mode,
		Machine: Machine(),
		Workload: report.Workload{
			Kind: wc.Kind, Seed: wc.Seed, Profiles: src.len(),
			Audiences: len(set.Audiences), Experiences: len(set.Experiences),
			RulesFile: cfg.RulesFile, SamplesFile: cfg.SamplesFile,
			Zipf: cfg.Zipf, Concurrency: cfg.Concurrency, SyncWrites: cfg.Sync,
		},
	}
	if cfg.RulesFile != "" {
		rep.Workload.Kind = "user rules"
	}
	if cfg.SamplesFile != "" {
		rep.Workload.Kind += ", user samples"
	}
	switch cfg.Mode {
	case ModeEval:
		err = runEval(ctx, &cfg, src, set, rep)
	case ModeNaive:
		err = runNaive(ctx, &cfg, src, set, rep)
	default:
		err = runIdentify(ctx, &cfg, src, set, rep)
	}
	if err != nil {
		return nil, err
	}
	if cfg.AudienceSample > 0 {
		rep.SlowestAudiences = AudienceCosts(set, src.profiles(cfg.AudienceSample), src.now)
	}
	return rep, nil
}

func (c *Config) fill() error {
	switch c.Mode {
	case "":
		c.Mode = ModeEval
	case ModeEval, ModeIdentifyDisk, ModeIdentifyMem, ModeNaive:
	default:
		return fmt.Errorf("%w: mode %q is not one of %v", ErrConfig, c.Mode, Modes)
	}
	if c.Concurrency < 0 || c.PopulateConcurrency < 0 {
		return fmt.Errorf("%w: concurrency must be positive", ErrConfig)
	}
	if c.Concurrency == 0 {
		c.Concurrency = runtime.GOMAXPROCS(0)
	}
	if c.PopulateConcurrency == 0 {
		c.PopulateConcurrency = 8 * runtime.GOMAXPROCS(0)
	}
	if c.Duration < 0 {
		return fmt.Errorf("%w: duration %v is negative", ErrConfig, c.Duration)
	}
	if c.Ops == 0 && c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Zipf != 0 && c.Zipf <= 1 {
		return fmt.Errorf("%w: zipf exponent %v must be > 1 (or 0 for uniform)", ErrConfig, c.Zipf)
	}
	if c.Sync && c.Mode != ModeIdentifyDisk {
		return fmt.Errorf("%w: sync applies to mode %s only", ErrConfig, ModeIdentifyDisk)
	}
	if c.Metrics && c.Mode != ModeIdentifyDisk && c.Mode != ModeIdentifyMem {
		return fmt.Errorf("%w: metrics apply to modes %s and %s only", ErrConfig, ModeIdentifyDisk, ModeIdentifyMem)
	}
	if c.Dir != "" && c.Mode != ModeIdentifyDisk && c.Mode != ModeNaive {
		return fmt.Errorf("%w: dir applies to modes %s and %s only", ErrConfig, ModeIdentifyDisk, ModeNaive)
	}
	if len(c.Redis.Addrs) > 0 && (c.Mode == ModeEval || c.Sync || c.Dir != "") {
		return fmt.Errorf("%w: redis applies to the identify modes, without sync or dir", ErrConfig)
	}
	if c.EvalPool < 0 {
		return fmt.Errorf("%w: eval pool %d is negative", ErrConfig, c.EvalPool)
	}
	if c.EvalPool == 0 {
		c.EvalPool = DefaultEvalPool
	}
	if c.AudienceSample == 0 {
		c.AudienceSample = 200
	}
	if c.SpaceInterval < 0 || c.Idle < 0 {
		return fmt.Errorf("%w: space interval %v and idle %v must not be negative", ErrConfig, c.SpaceInterval, c.Idle)
	}
	if c.Idle > 0 && c.SpaceInterval == 0 {
		c.SpaceInterval = DefaultSpaceInterval
	}
	if c.LiveInterval < 0 {
		return fmt.Errorf("%w: live interval %v is negative", ErrConfig, c.LiveInterval)
	}
	if c.LiveInterval == 0 {
		c.LiveInterval = DefaultLiveInterval
	}
	c.LiveInterval = max(c.LiveInterval, c.SpaceInterval)
	if c.SpaceInterval > 0 && c.Mode != ModeIdentifyDisk {
		return fmt.Errorf("%w: space sampling and idle apply to mode %s only", ErrConfig, ModeIdentifyDisk)
	}
	return nil
}

// profiles returns up to n profiles spread over the source.
func (s *source) profiles(n int) []workload.Profile {
	total := s.len()
	n = min(n, total)
	out := make([]workload.Profile, n)
	for k := range out {
		out[k] = s.profile(k * total / n)
	}
	return out
}

// picker draws visitor indexes for one worker.
type picker struct {
	r *rand.Rand
	z *workload.Zipf
	n int
}

func newPicker(seed uint64, worker, n int, zipf float64) (*picker, error) {
	p := &picker{r: rand.New(rand.NewPCG(seed, uint64(worker)+0x5eed)), n: n}
	if zipf > 1 {
		z, err := workload.NewZipf(p.r, zipf, n)
		if err != nil {
			return nil, err
		}
		p.z = z
	}
	return p, nil
}

func (p *picker) next() int {
	if p.z != nil {
		return p.z.Next()
	}
	return p.r.IntN(p.n)
}

// drive runs op on cfg.Concurrency workers until cfg.Ops operations or
// cfg.Duration, recording each operation's latency, and fills the
// throughput, latency and allocation fields of rep. op returns false when
// the operation failed (counted in rep.Errors).
func drive(ctx context.Context, cfg *Config, rep *report.Report, n int, op func(w *worker, i int) bool) error {
	workers := make([]*worker, cfg.Concurrency)
	for k := range workers {
		p, err := newPicker(cfg.Workload.Seed, cfg.Stream*cfg.Concurrency+k, n, cfg.Zipf)
		if err != nil {
			return err
		}
		workers[k] = &worker{id: k, pick: p}
	}
	var done atomic.Uint64
	var failed atomic.Uint64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var deadline time.Time
	if cfg.Ops == 0 {
		deadline = time.Now().Add(cfg.Duration)
	}
	rep.ClockNs = clockCost()
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	if cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
			return fmt.Errorf("runner: cpu profile: %w", err)
		}
	}
	cpu0 := cputime.Process()
	start := time.Now()
	stopProgress := progress(cfg.Progress, start, &done)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				if cfg.Ops > 0 {
					if done.Add(1) > cfg.Ops {
						done.Add(^uint64(0))
						return
					}
				}
				i := w.pick.next()
				t0 := time.Now()
				ok := op(w, i)
				t1 := time.Now()
				w.h.Record(int64(t1.Sub(t0)))
				if !ok {
					failed.Add(1)
				}
				if cfg.Ops == 0 {
					done.Add(1)
					if !t1.Before(deadline) {
						return
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cputime.Process() - cpu0
	if cfg.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	if cfg.MemProfile != nil {
		runtime.GC()
		if err := pprof.WriteHeapProfile(cfg.MemProfile); err != nil {
			return fmt.Errorf("bench: heap profile: %w", err)
		}
	}
	stopProgress()
	runtime.ReadMemStats(&m1)
	var h hist.Histogram
	for _, w := range workers {
		h.Merge(&w.h)
	}
	rep.Ops = h.Count()
	rep.Errors = failed.Load()
	rep.Seconds = elapsed.Seconds()
	if rep.Seconds > 0 {
		rep.OpsPerSec = float64(rep.Ops) / rep.Seconds
	}
	rep.Latency = report.LatencyOf(&h)
	rep.Histogram = h.Buckets()
	if rep.Ops > 0 {
		rep.AllocsPerOp = float64(m1.Mallocs-m0.Mallocs) / float64(rep.Ops)
		rep.BytesPerOp = float64(m1.TotalAlloc-m0.TotalAlloc) / float64(rep.Ops)
		rep.CPUPerOp = float64(cpu.Nanoseconds()) / float64(rep.Ops)
	}
	if elapsed > 0 {
		rep.CPUShare = cpu.Seconds() / (elapsed.Seconds() * float64(runtime.GOMAXPROCS(0)))
	}
	return nil
}

// clockCost returns the median cost of reading the clock (time.Now and
// time.Since, what timing one operation adds), in nanoseconds.
func clockCost() float64 {
	const n = 1001
	d := make([]int64, n)
	for i := range d {
		t0 := time.Now()
		d[i] = int64(time.Since(t0))
	}
	slices.Sort(d)
	return float64(d[n/2])
}

// worker is one measuring goroutine's state.
type worker struct {
	id   int
	pick *picker
	h    hist.Histogram
	seq  uint64
	// decider and decisions are eval mode's per-worker evaluation state.
	decider   engine.Decider
	decisions []engine.Decision
}

// progress prints a live line to w every half second once the run has
// lasted a second; the returned func stops it and clears the line.
func progress(w io.Writer, start time.Time, done *atomic.Uint64) func() {
	if w == nil {
		return func() {}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		printed := false
		lastN, lastT := uint64(0), start
		for {
			select {
			case <-stop:
				if printed {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			case now := <-t.C:
				n := done.Load()
				if now.Sub(start) >= time.Second {
					rate := float64(n-lastN) / now.Sub(lastT).Seconds()
					fmt.Fprintf(w, "\r\033[K%6.1fs  %d ops  %.0f ops/s", now.Sub(start).Seconds(), n, rate)
					printed = true
				}
				lastN, lastT = n, now
			}
		}
	})
	return func() { close(stop); wg.Wait() }
}

// Machine describes the machine running this process.
func Machine() report.Machine {
	return report.Machine{
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPUModel:   cpuModel(),
	}
}

// dirSize returns the disk usage of every file under dir (like du).
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			n += diskUsage(info)
		}
		return nil
	})
	return n
}
