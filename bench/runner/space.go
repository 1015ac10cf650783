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

// sampler measures a store's size on disk and its live data
// (badger.Store.Live: an iteration over the keys that reads no value)
// every interval, from a goroutine locked to its own OS thread so that the
// CPU time the sampling costs can be read and reported apart.
type sampler struct {
	st       *badger.Store
	dir      string
	interval time.Duration
	start    time.Time
	ops      atomic.Uint64 // operations done, counted by the workers

	now  chan chan struct{} // asks for a sample at once, answered when taken
	stop chan struct{}
	wg   sync.WaitGroup

	// Written by the sampling goroutine only; read after wg.Wait.
	idle       atomic.Bool
	loadEnd    float64
	samples    []report.SpaceSample
	cpu, cpuLd time.Duration
	lastErr    error
}

// startSampler takes a first sample, then one every interval, until
// finish.
func startSampler(st *badger.Store, dir string, interval time.Duration) *sampler {
	s := &sampler{st: st, dir: dir, interval: interval, start: time.Now(),
		now: make(chan chan struct{}), stop: make(chan struct{})}
	s.wg.Go(s.run)
	return s
}

func (s *sampler) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s.sample()
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.sample()
			return
		case ack := <-s.now:
			s.sample()
			close(ack)
		case <-t.C:
			s.sample()
		}
	}
}

func (s *sampler) sample() {
	if s.lastErr != nil {
		return
	}
	c0, t0 := threadCPU(), time.Now()
	keys, live, err := s.st.Live(context.Background())
	scan := time.Since(t0)
	lsm, vlog := s.st.Size()
	x := report.SpaceSample{
		Seconds: time.Since(s.start).Seconds(), Idle: s.idle.Load(), Ops: s.ops.Load(),
		LSMBytes: lsm, VlogBytes: vlog, DirBytes: dirSize(s.dir),
		LiveKeys: keys, LiveBytes: live, ScanSeconds: scan.Seconds(),
	}
	c := threadCPU() - c0
	s.cpu += c
	if !x.Idle {
		s.cpuLd += c
	}
	if err != nil {
		s.lastErr = err
		return
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
		IntervalSeconds: s.interval.Seconds(), IdleSeconds: idle.Seconds(),
		LoadSeconds: s.loadEnd, Samples: s.samples,
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
