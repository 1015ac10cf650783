package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/bench/report"
	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/storage"
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
	bo := cfg.Badger
	bo.SyncWrites = cfg.Sync
	dir := cfg.Dir
	want := meta{Kind: rep.Workload.Kind, Seed: cfg.Workload.Seed, Profiles: src.len(), Samples: cfg.SamplesFile}
	reuse := false
	switch {
	case cfg.Mode == ModeIdentifyMem:
		bo.InMemory = true
	case dir == "":
		tmp, err := os.MkdirTemp("", "tailor-bench-")
		if err != nil {
			return fmt.Errorf("runner: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	default:
		var err error
		if reuse, err = checkDir(dir, want); err != nil {
			return err
		}
	}
	if !bo.InMemory {
		bo.Dir = dir
		rep.Workload.Dir = cfg.Dir
	}

	t0 := time.Now()
	store, err := storage.OpenBadger(bo)
	if err != nil {
		return err
	}
	eng, err := engine.Open(dir, &engine.Options{Rules: set, Store: store, SyncWrites: cfg.Sync})
	if err != nil {
		store.Close()
		return err
	}
	rep.OpenSeconds = time.Since(t0).Seconds()
	defer eng.Close()

	n := src.len()
	if reuse {
		rep.Populate = &report.Populate{Profiles: n, Reused: true}
	} else {
		if !bo.InMemory {
			// A store half-filled by an interrupted run must not pass
			// for a full one: the marker is written after populating.
			_ = os.Remove(dirJoin(dir, metaFile))
		}
		p, err := populate(ctx, cfg, eng, src)
		if err != nil {
			return err
		}
		rep.Populate = p
		if !bo.InMemory {
			if err := writeMeta(dir, want); err != nil {
				return err
			}
		}
	}

	err = drive(ctx, cfg, rep, n, func(w *worker, i int) bool {
		v := src.visitor(i)
		w.seq++
		_, err := eng.Identify(ctx, v.ID, v.VisitRequest(w.seq))
		return err == nil
	})
	if err != nil {
		return err
	}
	rep.Memory = memory()
	if !bo.InMemory {
		lsm, vlog := store.Size()
		rep.Store = &report.Store{LSMBytes: lsm, VlogBytes: vlog, DirBytes: dirSize(dir)}
	}
	return eng.Close()
}

// populate writes every visitor through Identify from many goroutines,
// logging progress every second.
func populate(ctx context.Context, cfg *Config, eng *engine.Engine, src *source) (*report.Populate, error) {
	n := src.len()
	var next, done atomic.Int64
	var firstErr error
	var once sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	stop := make(chan struct{})
	var logger sync.WaitGroup
	if cfg.Log != nil {
		logger.Go(func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					d := done.Load()
					fmt.Fprintf(cfg.Log, "populate: %d/%d profiles (%.0f/s)\n", d, n, float64(d)/time.Since(start).Seconds())
				}
			}
		})
	}
	var wg sync.WaitGroup
	for range cfg.PopulateConcurrency {
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
	b, err := os.ReadFile(dirJoin(dir, metaFile))
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
	if err := os.WriteFile(dirJoin(dir, metaFile), b, 0o644); err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	return nil
}

func dirJoin(dir, name string) string { return dir + string(os.PathSeparator) + name }
