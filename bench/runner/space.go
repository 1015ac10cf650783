package runner

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/bench/report"
	"github.com/tailorhq/tailor/storage/badger"
)

// DefaultSpaceInterval is the time between space samples when only an
// idle time is asked for.
const DefaultSpaceInterval = 5 * time.Second

// DefaultLiveInterval is the time between counts of the live data. A
// count iterates over every key (0.3–0.5 s of CPU for a million profiles
// and their aliases), so the samples in between reuse the last one; the
// live data of the bench's workload only grows (profiles gain events up
// to their caps), so a reused count can only overstate the ratio, by the
// growth since (under 1% in 30 s with a million profiles).
const DefaultLiveInterval = 30 * time.Second

// sampler measures a store's size on disk and its live data
// (badger.Store.Live: an iteration over the keys that reads no value)
// every interval, from a goroutine locked to its own OS thread so that the
// CPU time the sampling costs can be read and reported apart.
type sampler struct {
	st       *badger.Store
	dir      string
	interval time.Duration
	liveEach time.Duration
	start    time.Time
	ops      atomic.Uint64 // operations done, counted by the workers

	now  chan chan struct{} // asks for a sample at once, answered when taken
	stop chan struct{}
	wg   sync.WaitGroup

	idle    atomic.Bool
	loadEnd float64 // set by endLoad, read by finish (the same goroutine)

	// Written by the sampling goroutine only; read after wg.Wait.
	samples    []report.SpaceSample
	cpu, cpuLd time.Duration
	lastErr    error
	// The last count of the live data, and when it was taken.
	liveAt         time.Time
	liveKeys, live int64
	liveFrom       float64
}

// startSampler takes a first sample, then one every interval, until
// finish; it counts the live data at most every liveEach, and at the
// first sample, at the end of the load and at the last one.
func startSampler(st *badger.Store, dir string, interval, liveEach time.Duration) *sampler {
	s := &sampler{st: st, dir: dir, interval: interval, liveEach: liveEach, start: time.Now(),
		now: make(chan chan struct{}), stop: make(chan struct{})}
	s.wg.Go(s.run)
	return s
}

func (s *sampler) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s.sample(true)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.sample(true)
			return
		case ack := <-s.now:
			s.sample(true)
			close(ack)
		case <-t.C:
			s.sample(false)
		}
	}
}

// sample records one sample, counting the live data when count is set
// or the last count is liveEach old.
func (s *sampler) sample(count bool) {
	if s.lastErr != nil {
		return
	}
	c0 := threadCPU()
	x := report.SpaceSample{Seconds: time.Since(s.start).Seconds(), Idle: s.idle.Load(), Ops: s.ops.Load()}
	if count || time.Since(s.liveAt) >= s.liveEach {
		t0 := time.Now()
		keys, live, err := s.st.Live(context.Background())
		if err != nil {
			s.lastErr = err
			return
		}
		s.liveAt, s.liveKeys, s.live, s.liveFrom = t0, keys, live, x.Seconds
		x.ScanSeconds = time.Since(t0).Seconds()
	}
	x.LiveKeys, x.LiveBytes, x.LiveAt = s.liveKeys, s.live, s.liveFrom
	x.LSMBytes, x.VlogBytes = s.st.Size()
	x.DirBytes = dirSize(s.dir)
	c := threadCPU() - c0
	s.cpu += c
	if !x.Idle {
		s.cpuLd += c
	}
	s.samples = append(s.samples, x)
}

// endLoad takes the last sample of the measured phase and marks the
// following ones idle.
func (s *sampler) endLoad() {
	ack := make(chan struct{})
	s.now <- ack
	<-ack
	s.loadEnd = time.Since(s.start).Seconds()
	s.idle.Store(true)
}

// finish takes a last sample, stops sampling and returns the series.
func (s *sampler) finish(idle time.Duration) (*report.Space, error) {
	close(s.stop)
	s.wg.Wait()
	sp := &report.Space{
		IntervalSeconds: s.interval.Seconds(), LiveIntervalSeconds: s.liveEach.Seconds(),
		IdleSeconds: idle.Seconds(), LoadSeconds: s.loadEnd, Samples: s.samples,
		SamplerCPUSeconds: s.cpu.Seconds(), SamplerLoadCPUSeconds: s.cpuLd.Seconds(),
	}
	sp.Summarize()
	return sp, s.lastErr
}

// idleFor waits d or until ctx is done.
func idleFor(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
