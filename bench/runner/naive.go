package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	bdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/tailorhq/tailor/bench/report"
	"github.com/tailorhq/tailor/bench/workload"
	"github.com/tailorhq/tailor/rules"
)

// The naive loop is the yardstick of issue 13: the simplest program a
// developer would write over the same building blocks, doing less than
// Identify does per call. Per operation it runs one Badger transaction
// that reads the visitor's profile (JSON), decodes it, builds a
// map-shaped rule environment, runs every audience's expression on
// expr's VM (compiled once), hashes stable id and experience id once per
// experience (by concatenation), appends the visit's page view and
// trait, encodes the profile and commits. No identity resolution, no
// sessions, no histories by day, no sticky assignments, no exposures, no
// response, no validation.

// naiveStore holds the naive loop's Badger and its compiled rules.
type naiveStore struct {
	db    *bdb.DB
	progs []*vm.Program
	ids   []string // audience ids, as progs
	exps  []string // experience ids
}

// runNaive measures the naive loop over the workload's visitors.
func runNaive(ctx context.Context, cfg *Config, src *source, set *rules.Set, rep *report.Report) error {
	dir := cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "tailor-naive-")
		if err != nil {
			return fmt.Errorf("runner: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	ns, err := openNaive(dir, set)
	if err != nil {
		return err
	}
	defer ns.db.Close()
	t0 := time.Now()
	if err := ns.populate(ctx, cfg.PopulateConcurrency, src); err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	rep.Populate = &report.Populate{Profiles: src.len(), Seconds: secs, OpsPerSec: float64(src.len()) / secs}
	err = drive(ctx, cfg, rep, src.len(), func(w *worker, i int) bool {
		w.seq++
		return ns.visit(src.visitor(i), w.seq) == nil
	})
	if err != nil {
		return err
	}
	rep.Memory = memory()
	return nil
}

func openNaive(dir string, set *rules.Set) (*naiveStore, error) {
	db, err := bdb.Open(bdb.DefaultOptions(dir).WithLogger(nil).WithCompression(options.None).WithBlockCacheSize(0))
	if err != nil {
		return nil, fmt.Errorf("runner: naive: %w", err)
	}
	ns := &naiveStore{db: db}
	env := naiveEnv(workload.Profile{Traits: map[string]any{}}, nil, time.Now())
	for _, a := range set.Audiences {
		prog, err := expr.Compile(a.When, expr.Env(env), expr.AsBool(), expr.AllowUndefinedVariables())
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("runner: naive: audience %s: %w", a.ID, err)
		}
		ns.progs = append(ns.progs, prog)
		ns.ids = append(ns.ids, a.ID)
	}
	for _, x := range set.Experiences {
		ns.exps = append(ns.exps, x.ID)
	}
	return ns, nil
}

func naiveKey(id string) []byte { return []byte("n/" + id) }

// populate stores every visitor's profile as JSON, from conc goroutines.
func (ns *naiveStore) populate(ctx context.Context, conc int, src *source) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for range conc {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < src.len(); i = int(next.Add(1) - 1) {
				p := src.profile(i)
				b, err := json.Marshal(p)
				if err == nil {
					err = ns.db.Update(func(txn *bdb.Txn) error { return txn.Set(naiveKey(p.ID), b) })
				}
				if err != nil {
					errs <- err
					return
				}
				if ctx.Err() != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// visit is one operation of the naive loop; a transaction that conflicts
// with a concurrent one on the same profile runs again.
func (ns *naiveStore) visit(v workload.Visitor, seq uint64) error {
	for {
		err := ns.visitOnce(v, seq)
		if !errors.Is(err, bdb.ErrConflict) {
			return err
		}
	}
}

func (ns *naiveStore) visitOnce(v workload.Visitor, seq uint64) error {
	req := v.VisitRequest(seq)
	return ns.db.Update(func(txn *bdb.Txn) error {
		item, err := txn.Get(naiveKey(v.ID))
		if err != nil {
			return err
		}
		var p workload.Profile
		if err := item.Value(func(b []byte) error { return json.Unmarshal(b, &p) }); err != nil {
			return err
		}
		now := time.Now()
		matched := make(map[string]bool, len(ns.progs))
		env := naiveEnv(p, matched, now)
		for i, prog := range ns.progs {
			out, err := expr.Run(prog, env)
			ok, _ := out.(bool)
			matched[ns.ids[i]] = err == nil && ok
		}
		var sum uint64
		for _, x := range ns.exps {
			sum += xxhash.Sum64String(x + p.ID)
		}
		_ = sum
		for _, ev := range req.Events {
			if ev.Context.Page != nil {
				p.Views = append(p.Views, workload.Stamp{Name: ev.Context.Page.Path, Time: now.UnixMilli()})
				p.Page = *ev.Context.Page
			}
			if p.Traits == nil {
				p.Traits = map[string]any{}
			}
			for k, t := range ev.Traits {
				p.Traits[k] = t
			}
		}
		if n := len(p.Views) - 60; n > 0 {
			p.Views = p.Views[n:]
		}
		b, err := json.Marshal(p)
		if err != nil {
			return err
		}
		return txn.Set(naiveKey(v.ID), b)
	})
}

// naiveEnv is the map-shaped rule environment of p, with the helper
// functions the rules call.
func naiveEnv(p workload.Profile, matched map[string]bool, now time.Time) map[string]any {
	count := func(stamps []workload.Stamp, match func(string) bool, window string) int {
		from := int64(0)
		if d, err := parseWindow(window); err == nil && d > 0 {
			from = now.Add(-d).UnixMilli()
		}
		n := 0
		for _, s := range stamps {
			if s.Time >= from && match(s.Name) {
				n++
			}
		}
		return n
	}
	window := func(args []any) string {
		if len(args) > 1 {
			w, _ := args[1].(string)
			return w
		}
		return ""
	}
	return map[string]any{
		"traits": p.Traits,
		"location": map[string]any{"countryCode": p.Location.CountryCode, "regionCode": p.Location.RegionCode,
			"city": p.Location.City, "country": p.Location.Country, "continent": p.Location.Continent},
		"session": map[string]any{"isReturningVisitor": p.Sessions > 1, "count": p.Sessions},
		"page":    map[string]any{"path": p.Page.Path, "url": p.Page.URL},
		"campaign": map[string]any{"name": p.Campaign.Name, "source": p.Campaign.Source,
			"medium": p.Campaign.Medium},
		"device":       map[string]any{"type": p.Device.Type, "os": p.Device.OS, "browser": p.Device.Browser},
		"jurisdiction": naiveJurisdiction(p.Location.CountryCode, p.Location.RegionCode),
		"userId":       p.UserID,
		"random":       p.Random,
		"eventCount": func(args ...any) (any, error) {
			name, _ := args[0].(string)
			return count(p.Events, func(s string) bool { return s == name }, window(args)), nil
		},
		"hasEvent": func(args ...any) (any, error) {
			name, _ := args[0].(string)
			return count(p.Events, func(s string) bool { return s == name }, window(args)) > 0, nil
		},
		"viewedPage": func(args ...any) (any, error) {
			glob, _ := args[0].(string)
			return count(p.Views, func(s string) bool { ok, _ := path.Match(glob, s); return ok }, window(args)) > 0, nil
		},
		"inAudience": func(args ...any) (any, error) {
			id, _ := args[0].(string)
			return matched[id], nil
		},
	}
}

// parseWindow reads "7d" or "24h".
func parseWindow(w string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(w, "d"); ok {
		var n int
		_, err := fmt.Sscan(d, &n)
		return time.Duration(n) * 24 * time.Hour, err
	}
	return time.ParseDuration(w)
}

// naiveJurisdiction is the little a naive program would know of it.
func naiveJurisdiction(country, region string) string {
	switch {
	case country == "US" && region == "CA":
		return "CCPA"
	case strings.Contains("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK GB", country) && country != "":
		return "GDPR"
	}
	return "none"
}
