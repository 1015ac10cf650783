package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/bench/report"
	"github.com/tailorhq/tailor/bench/workload"
	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/badger"
	"github.com/tailorhq/tailor/storage/redis"
)

// metaFile marks a store directory filled by the bench with one workload.
const metaFile = "tailor-bench.json"

// meta identifies the workload a store directory holds.
type meta struct {
	Kind     string `json:"kind"`
	Seed     uint64 `json:"seed"`
	Profiles int    `json:"profiles"`
	Samples  string `json:"samples,omitempty"`
}

// runIdentify measures full Identify calls: open the store, populate it
// with every visitor (unless a reused directory already holds them), then
// send one visit (a page and an identify event) per operation.
func runIdentify(ctx context.Context, cfg *Config, src *source, set *rules.Set, rep *report.Report) error {
	dir := cfg.Dir
	if cfg.Mode == ModeIdentifyDisk && dir == "" {
		tmp, err := os.MkdirTemp("", "tailor-bench-")
		if err != nil {
			return fmt.Errorf("runner: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	bo := cfg.Badger
	bo.SyncWrites = cfg.Sync
	bo.InMemory = cfg.Mode == ModeIdentifyMem
	eo := engine.Options{Rules: set, CacheBytes: cfg.CacheBytes}
	var ms *meters
	if cfg.Metrics {
		ms = newMeters()
		defer ms.shutdown()
		eo.MeterProvider, bo.MeterProvider = ms.provider, ms.provider
	}
	var st *Store
	var err error
	if len(cfg.Redis.Addrs) > 0 {
		st, err = openRedisStore(ctx, cfg.Redis, src, rep.Workload.Kind, eo, cfg.PopulateConcurrency, cfg.Log)
	} else {
		st, err = openStore(ctx, dir, src, rep.Workload.Kind, eo, bo, cfg.PopulateConcurrency, cfg.Log)
	}
	if err != nil {
		return err
	}
	defer st.Engine.Close()
	if ms != nil {
		if _, err := ms.collect(ctx); err != nil { // drops what populating reported
			return err
		}
	}
	rep.Workload.Dir = cfg.Dir
	rep.OpenSeconds = st.OpenSeconds
	rep.Populate = st.Populate

	eng := st.Engine
	var before redis.Stats
	if st.Redis != nil {
		before = st.Redis.Stats()
	}
	var overloads atomic.Uint64
	var smp *sampler
	if cfg.SpaceInterval > 0 && st.Badger != nil {
		smp = startSampler(st.Badger, dir, cfg.SpaceInterval, cfg.LiveInterval)
	}
	err = drive(ctx, cfg, rep, src.len(), func(w *worker, i int) bool {
		v := src.visitor(i)
		w.seq++
		_, err := eng.Identify(ctx, v.ID, v.VisitRequest(w.seq))
		if errors.Is(err, engine.ErrOverload) {
			overloads.Add(1)
		}
		if smp != nil {
			smp.ops.Add(1)
		}
		return err == nil
	})
	if err != nil {
		if smp != nil {
			smp.finish(0)
		}
		return err
	}
	if ms != nil {
		if rep.Metrics, err = ms.collect(ctx); err != nil {
			return err
		}
	}
	rep.Memory = memory()
	switch {
	case st.Redis != nil:
		rep.Redis = redisReport(st.Redis, before, rep.Ops+rep.Errors, overloads.Load())
	case !bo.InMemory:
		lsm, vlog := st.Badger.Size()
		rep.Store = &report.Store{LSMBytes: lsm, VlogBytes: vlog, DirBytes: dirSize(dir)}
	}
	if smp != nil {
		smp.endLoad()
		t0 := time.Now()
		idleFor(ctx, cfg.Idle)
		if rep.Space, err = smp.finish(time.Since(t0)); err != nil {
			return fmt.Errorf("runner: space sample: %w", err)
		}
	}
	return eng.Close()
}

// redisReport is what the measured phase cost a Redis store: the
// difference of its counters since before, per operation.
func redisReport(s *redis.Store, before redis.Stats, ops, overloads uint64) *report.Redis {
	after := s.Stats()
	n := float64(max(ops, 1))
	gets := float64(after.Gets - before.Gets)
	r := &report.Redis{
		Cluster:         s.IsCluster(),
		RoundTripsPerOp: float64(after.RoundTrips-before.RoundTrips) / n,
		ConflictsPerOp:  float64(after.Conflicts-before.Conflicts) / n,
		OverloadsPerOp:  float64(overloads) / n,
	}
	if gets > 0 {
		r.CacheHitRate = float64(after.CacheHits-before.CacheHits) / gets
	}
	return r
}

// redisMetaKey marks a Redis key space populated by the bench with one
// workload (the value is a meta, as JSON).
const redisMetaKey = "bench/meta"

// openRedisStore opens an engine over the Redis store o describes and
// populates it unless it already holds the workload (its meta key says
// so), as openStore does for a directory.
func openRedisStore(ctx context.Context, o redis.Options, src *source, kind string, eo engine.Options, conc int, log io.Writer) (*Store, error) {
	want := meta{Kind: kind, Seed: src.gen.Config().Seed, Profiles: src.len()}
	if src.samples != nil {
		want.Samples = fmt.Sprint(len(src.samples), " samples")
	}
	t0 := time.Now()
	rs, err := redis.Open(ctx, o)
	if err != nil {
		return nil, err
	}
	eo.Store = rs
	eng, err := engine.Open("", &eo)
	if err != nil {
		rs.Close()
		return nil, err
	}
	st := &Store{Engine: eng, Redis: rs, OpenSeconds: time.Since(t0).Seconds()}
	wantJSON, _ := json.Marshal(want)
	if got, _, err := rs.Get(ctx, []byte(redisMetaKey), nil); err == nil {
		var m meta
		if json.Unmarshal(got, &m) != nil || m != want {
			eng.Close()
			return nil, fmt.Errorf("runner: the Redis keys under prefix %q hold another workload (%s); use another -redis-prefix", rs.Options().KeyPrefix, got)
		}
		st.Populate = &report.Populate{Profiles: src.len(), Reused: true}
		return st, nil
	}
	if st.Populate, err = populate(ctx, conc, log, eng, src); err == nil {
		_, err = rs.Write(ctx, storage.Op{Key: []byte(redisMetaKey), Value: wantJSON})
	}
	if err != nil {
		eng.Close()
		return nil, err
	}
	return st, nil
}

// Store is an engine over a store filled with a workload.
type Store struct {
	Engine *engine.Engine
	// Badger, or Redis, is the engine's store (the engine owns it: close
	// the Engine).
	Badger *badger.Store
	Redis  *redis.Store
	// OpenSeconds is how long opening the store and the engine took.
	OpenSeconds float64
	Populate    *report.Populate
}

// OpenStore opens an engine with options eo (its Store and SyncWrites are
// set here) over Badger (options bo; in dir, or in memory with
// bo.InMemory) and writes every profile of gen through
// Identify from populateConcurrency goroutines, unless dir already holds
// that workload (then it is reused as is). log, when set, receives
// populate progress. The caller closes Store.Engine.
func OpenStore(ctx context.Context, dir string, gen *workload.Generator, eo engine.Options, bo badger.Options, populateConcurrency int, log io.Writer) (*Store, error) {
	if populateConcurrency <= 0 {
		populateConcurrency = 8 * runtime.GOMAXPROCS(0)
	}
	src := &source{gen: gen, now: gen.Config().Now}
	return openStore(ctx, dir, src, gen.Config().Kind, eo, bo, populateConcurrency, log)
}

func openStore(ctx context.Context, dir string, src *source, kind string, eo engine.Options, bo badger.Options, conc int, log io.Writer) (*Store, error) {
	want := meta{Kind: kind, Seed: src.gen.Config().Seed, Profiles: src.len()}
	if src.samples != nil {
		want.Samples = fmt.Sprint(len(src.samples), " samples")
	}
	reuse := false
	if bo.InMemory {
		dir = ""
	} else {
		var err error
		if reuse, err = checkDir(dir, want); err != nil {
			return nil, err
		}
		bo.Dir = dir
	}
	t0 := time.Now()
	bs, err := badger.Open(bo)
	if err != nil {
		return nil, err
	}
	eo.Store, eo.SyncWrites = bs, bo.SyncWrites
	eng, err := engine.Open(dir, &eo)
	if err != nil {
		bs.Close()
		return nil, err
	}
	st := &Store{Engine: eng, Badger: bs, OpenSeconds: time.Since(t0).Seconds()}
	if reuse {
		st.Populate = &report.Populate{Profiles: src.len(), Reused: true}
		return st, nil
	}
	if !bo.InMemory {
		// A store half-filled by an interrupted run must not pass for a
		// full one: the marker is written after populating.
		_ = os.Remove(filepath.Join(dir, metaFile))
	}
	if st.Populate, err = populate(ctx, conc, log, eng, src); err == nil && !bo.InMemory {
		err = writeMeta(dir, want)
	}
	if err != nil {
		eng.Close()
		return nil, err
	}
	return st, nil
}

// populate writes every visitor through Identify from many goroutines,
// logging progress every second.
func populate(ctx context.Context, conc int, log io.Writer, eng *engine.Engine, src *source) (*report.Populate, error) {
	n := src.len()
	var next, done atomic.Int64
	var firstErr error
	var once sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	stop := make(chan struct{})
	var logger sync.WaitGroup
	if log != nil {
		logger.Go(func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					d := done.Load()
					fmt.Fprintf(log, "populate: %d/%d profiles (%.0f/s)\n", d, n, float64(d)/time.Since(start).Seconds())
				}
			}
		})
	}
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				req := src.populateRequest(i)
				if _, err := eng.Identify(ctx, src.profileID(i), req); err != nil {
					once.Do(func() {
						firstErr = fmt.Errorf("runner: populate profile %d: %w", i, err)
						cancel()
					})
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	close(stop)
	logger.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sec := time.Since(start).Seconds()
	return &report.Populate{Profiles: n, Seconds: sec, OpsPerSec: float64(n) / sec}, nil
}

func (s *source) populateRequest(i int) engine.Request {
	if s.samples != nil {
		return s.samples[i].PopulateRequest(s.now)
	}
	p := s.gen.Profile(i)
	return p.PopulateRequest(s.now)
}

func (s *source) profileID(i int) string {
	if s.samples != nil {
		return s.samples[i].Profile.ID
	}
	return s.gen.ID(i)
}

// checkDir reports whether dir already holds the workload want. A missing
// or empty directory is fine (false); a directory holding anything else is
// an error, so the bench never writes into someone's data.
func checkDir(dir string, want meta) (bool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("runner: dir: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return false, fmt.Errorf("%w: dir %s is not empty and holds no %s; use an empty or new directory", ErrConfig, dir, metaFile)
	}
	var got meta
	if err := json.Unmarshal(b, &got); err != nil {
		return false, fmt.Errorf("runner: dir %s: %s: %w", dir, metaFile, err)
	}
	if got != want {
		return false, fmt.Errorf("%w: dir %s holds workload %+v, not %+v; use another directory", ErrConfig, dir, got, want)
	}
	return true, nil
}

func writeMeta(dir string, m meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, metaFile), b, 0o644); err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	return nil
}
