package engine

// Telemetry: the engine's OpenTelemetry metrics and traces, reported
// through Options.MeterProvider and Options.TracerProvider. Without a
// provider the engine holds no telemetry at all (Engine.tel is nil, or
// has no tracer or no instruments) and every hook below returns after one
// nil check: nothing is timed, allocated or recorded. The engine never
// reads or installs OpenTelemetry's global providers.
//
// What is measured, and where:
//
//   - Identify (engine.go): one call is counted by outcome and timed
//     (startIdentify, endIdentify), the audiences it matched and the
//     exposures it emitted are recorded, and with a tracer it is one span
//     with a child span for each of load (resolving the profile), evaluate
//     and commit (the profile's write).
//   - The store (meteredStore): the latency of every Get and Write the
//     engine makes, whatever the store; the size on disk of a store that
//     implements storage.Sizer; the free space the disk guard sees.
//   - The identity protocol (identity.go): merges started, and writes
//     retried after a conflict with another process.
//   - The profile cache (cache.go): lookups that hit or missed.
//   - The import queue (importqueue.go): its depth, the age of the batch
//     being applied (lag), and the delay from Import to applied.
//   - The rules: SetRules and LoadRules (reloads, ok or failed) and the
//     version in force.
//
// Attributes are bounded: outcomes and results are fixed sets, and the
// experience ids and variant indexes of exposures come from the rules.
// No profile id, user id, trait or error message is ever recorded, in a
// metric or a span (error messages can name profiles, so spans carry the
// outcome as their status description instead).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/storage"
)

// ScopeName is the instrumentation scope of the engine's meter and
// tracer.
const ScopeName = "github.com/tailorhq/tailor/engine"

// Span names of one Identify call: SpanIdentify is the call, with children
// SpanLoad (resolving the profile, store reads), SpanEvaluate (audiences
// and experiences) and SpanCommit (the profile's write). A call that must
// take another lock or read again after a conflict has more than one load
// (and commit) span.
const (
	SpanIdentify = "tailor.identify"
	SpanLoad     = "tailor.load"
	SpanEvaluate = "tailor.evaluate"
	SpanCommit   = "tailor.commit"
)

// outcome is the result of an Identify call, the value of its
// tailor.outcome attribute.
type outcome uint8

const (
	outcomeOK         outcome = iota
	outcomeInvalid            // ErrInvalidInput
	outcomeUnverified         // ErrIdentityUnverified
	outcomeOverload           // ErrOverload from the overload limits
	outcomeConflict           // ErrOverload after maxAttempts conflicting writes
	outcomeDiskFull           // ErrDiskFull
	outcomeCanceled           // the caller's context was canceled or timed out
	outcomeClosed             // ErrClosed
	outcomeStoreError         // anything else: a store read or write, a damaged record
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "invalid", "unverified", "overload", "conflict",
	"disk_full", "canceled", "closed", "store_error"}

func classify(err error) outcome {
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, ErrInvalidInput):
		return outcomeInvalid
	case errors.Is(err, ErrIdentityUnverified):
		return outcomeUnverified
	case errors.Is(err, errConflicts), errors.Is(err, storage.ErrConflict):
		return outcomeConflict
	case errors.Is(err, ErrOverload):
		return outcomeOverload
	case errors.Is(err, ErrDiskFull):
		return outcomeDiskFull
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return outcomeCanceled
	case errors.Is(err, ErrClosed), errors.Is(err, storage.ErrClosed):
		return outcomeClosed
	}
	return outcomeStoreError
}

// Store operations and results (attributes tailor.store.operation and
// tailor.store.result of tailor.store.operation.duration).
const (
	opGet = iota
	opWrite
	numOps
)

const (
	resultOK = iota
	resultNotFound
	resultConflict
	resultError
	numResults
)

var (
	opNames     = [numOps]string{"get", "write"}
	resultNames = [numResults]string{"ok", "not_found", "conflict", "error"}
)

// Histogram bucket boundaries. An Identify takes tens of microseconds from
// the cache and milliseconds with an fsync; the semantic conventions'
// HTTP buckets start at 5 ms and would put nearly every call in the first.
var (
	latencyBuckets  = []float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	audienceBuckets = []float64{0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000}
	delayBuckets    = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600}
)

// telemetry is the engine's handle on its providers. A nil *telemetry
// (neither provider set) is valid: every method returns at once.
type telemetry struct {
	tracer trace.Tracer // nil without Options.TracerProvider
	m      *instruments // nil without Options.MeterProvider

	rulesMu sync.Mutex
	rules   atomic.Pointer[rulesInfo] // the version in force, for the gauge

	closeOnce sync.Once
	reg       metric.Registration // the observable gauges' callback
}

// instruments are the engine's metric instruments with their attribute
// sets, prepared once so that recording allocates nothing.
type instruments struct {
	meter metric.Meter

	calls       metric.Int64Counter
	duration    metric.Float64Histogram
	audiences   metric.Int64Histogram
	exposures   metric.Int64Counter
	merges      metric.Int64Counter
	retries     metric.Int64Counter
	cache       metric.Int64Counter
	storeTime   metric.Float64Histogram
	reloads     metric.Int64Counter
	importDelay metric.Float64Histogram

	storeSize    metric.Int64ObservableGauge
	diskFree     metric.Int64ObservableGauge
	diskLimit    metric.Int64ObservableGauge
	queueDepth   metric.Int64ObservableGauge
	importLag    metric.Float64ObservableGauge
	rulesVersion metric.Int64ObservableGauge

	outcomeAdd    [numOutcomes][]metric.AddOption
	outcomeRecord [numOutcomes][]metric.RecordOption
	cacheHit      []metric.AddOption
	cacheMiss     []metric.AddOption
	store         [numOps][numResults][]metric.RecordOption
	reloadOK      []metric.AddOption
	reloadFailed  []metric.AddOption
	lsm, vlog     []metric.ObserveOption

	// exposureOpts holds the attributes of each experience and variant
	// exposed so far: as many as the rules have had.
	exposureMu   sync.RWMutex
	exposureOpts map[exposureKey][]metric.AddOption
}

type exposureKey struct {
	experience string
	variant    int
}

// exposure returns the attributes of an exposure to variant of
// experience, made once.
func (m *instruments) exposure(experience string, variant int) []metric.AddOption {
	k := exposureKey{experience, variant}
	m.exposureMu.RLock()
	opts, ok := m.exposureOpts[k]
	m.exposureMu.RUnlock()
	if ok {
		return opts
	}
	opts = []metric.AddOption{metric.WithAttributes(
		attribute.String("tailor.experience.id", experience),
		attribute.Int("tailor.variant.index", variant))}
	m.exposureMu.Lock()
	defer m.exposureMu.Unlock()
	if m.exposureOpts == nil {
		m.exposureOpts = make(map[exposureKey][]metric.AddOption)
	}
	m.exposureOpts[k] = opts
	return opts
}

// rulesInfo is what the tailor.rules.version gauge reports: the number of
// rule sets the engine has had (1 for the rules given to Open, one more
// per SetRules) with the digest of the one in force.
type rulesInfo struct {
	version int64
	opts    []metric.ObserveOption
}

// newTelemetry returns the telemetry of an engine opened with o, or nil
// when o sets no provider. Instruments the provider refuses are logged
// and replaced by no-ops: telemetry never stops the engine from opening.
func newTelemetry(o *Options) *telemetry {
	if o.MeterProvider == nil && o.TracerProvider == nil {
		return nil
	}
	t := &telemetry{}
	if o.TracerProvider != nil {
		t.tracer = o.TracerProvider.Tracer(ScopeName)
	}
	if o.MeterProvider != nil {
		var errs []error
		t.m = newInstruments(o.MeterProvider.Meter(ScopeName), &errs)
		if err := errors.Join(errs...); err != nil {
			o.Logger.Warn("tailor: telemetry: some instruments are not available", "err", err)
		}
		t.setRules(o.Rules, false)
	}
	return t
}

func newInstruments(meter metric.Meter, errs *[]error) *instruments {
	m := &instruments{meter: meter}
	nop := noop.Meter{}
	check := func(err error) bool {
		if err != nil {
			*errs = append(*errs, err)
		}
		return err != nil
	}
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if check(err) {
			c, _ = nop.Int64Counter(name)
		}
		return c
	}
	histogram := func(name, unit, desc string, buckets []float64) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(buckets...))
		if check(err) {
			h, _ = nop.Float64Histogram(name)
		}
		return h
	}
	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		g, err := meter.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if check(err) {
			g, _ = nop.Int64ObservableGauge(name)
		}
		return g
	}

	m.calls = counter("tailor.identify.calls", "{call}", "Identify calls, by outcome.")
	m.duration = histogram("tailor.identify.duration", "s", "Duration of Identify calls, by outcome.", latencyBuckets)
	var err error
	m.audiences, err = meter.Int64Histogram("tailor.identify.audiences", metric.WithUnit("{audience}"),
		metric.WithDescription("Audiences matched per successful Identify call."),
		metric.WithExplicitBucketBoundaries(audienceBuckets...))
	if check(err) {
		m.audiences, _ = nop.Int64Histogram("tailor.identify.audiences")
	}
	m.exposures = counter("tailor.exposures", "{exposure}", "Variants newly exposed to a profile, by experience and variant index.")
	m.merges = counter("tailor.merges", "{merge}", "Anonymous profiles merged into a known profile (merges started).")
	m.retries = counter("tailor.conflict.retries", "{retry}", "Calls read again and recomputed after a conflicting write by another process.")
	m.cache = counter("tailor.cache.lookups", "{lookup}", "Decoded-profile cache lookups, by result (hit, miss).")
	m.storeTime = histogram("tailor.store.operation.duration", "s", "Duration of the engine's store reads (get) and writes, by result.", latencyBuckets)
	m.reloads = counter("tailor.rules.reloads", "{reload}", "Rules replaced (SetRules, LoadRules: ok) or refused (LoadRules: failed).")
	m.importDelay = histogram("tailor.import.delay", "s", "Time from Import to its batch being applied and acknowledged.", delayBuckets)

	m.storeSize = gauge("tailor.store.size", "By", "Size of the store on disk, by part (lsm, vlog).")
	m.diskFree = gauge("tailor.disk.free", "By", "Free space of the store's filesystem as the disk guard sees it.")
	m.diskLimit = gauge("tailor.disk.free.limit", "By", "Free space below which the store refuses writes (Options.MinFreeBytes).")
	m.queueDepth = gauge("tailor.import.queue.depth", "{batch}", "Imported batches waiting to be applied.")
	m.importLag, err = meter.Float64ObservableGauge("tailor.import.lag", metric.WithUnit("s"),
		metric.WithDescription("Age of the imported batch being applied (0 when the worker is idle)."))
	if check(err) {
		m.importLag, _ = nop.Float64ObservableGauge("tailor.import.lag")
	}
	m.rulesVersion = gauge("tailor.rules.version", "{version}", "Rule sets the engine has had, the one in force with its digest.")

	for o := range numOutcomes {
		set := attribute.NewSet(attribute.String("tailor.outcome", outcomeNames[o]))
		m.outcomeAdd[o] = []metric.AddOption{metric.WithAttributeSet(set)}
		m.outcomeRecord[o] = []metric.RecordOption{metric.WithAttributeSet(set)}
	}
	m.cacheHit = []metric.AddOption{metric.WithAttributes(attribute.String("tailor.cache.result", "hit"))}
	m.cacheMiss = []metric.AddOption{metric.WithAttributes(attribute.String("tailor.cache.result", "miss"))}
	for op := range numOps {
		for r := range numResults {
			m.store[op][r] = []metric.RecordOption{metric.WithAttributes(
				attribute.String("tailor.store.operation", opNames[op]),
				attribute.String("tailor.store.result", resultNames[r]))}
		}
	}
	m.reloadOK = []metric.AddOption{metric.WithAttributes(attribute.String("tailor.outcome", "ok"))}
	m.reloadFailed = []metric.AddOption{metric.WithAttributes(attribute.String("tailor.outcome", "failed"))}
	m.lsm = []metric.ObserveOption{metric.WithAttributes(attribute.String("tailor.store.part", "lsm"))}
	m.vlog = []metric.ObserveOption{metric.WithAttributes(attribute.String("tailor.store.part", "vlog"))}
	return m
}

// meterStore returns s timed by the engine's store-latency histogram, or
// s itself without metrics.
func (t *telemetry) meterStore(s storage.Store) storage.Store {
	if t == nil || t.m == nil {
		return s
	}
	return &meteredStore{Store: s, m: t.m}
}

// observe registers the callback of the engine's gauges. Open calls it
// last; close unregisters it.
func (t *telemetry) observe(e *Engine) {
	if t == nil || t.m == nil {
		return
	}
	m := t.m
	sizer, _ := e.opts.Store.(storage.Sizer)
	guard, _ := e.opts.Store.(*diskGuard)
	gauges := []metric.Observable{m.queueDepth, m.importLag, m.rulesVersion}
	if sizer != nil {
		gauges = append(gauges, m.storeSize)
	}
	if guard != nil {
		gauges = append(gauges, m.diskFree, m.diskLimit)
	}
	reg, err := m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if sizer != nil {
			lsm, vlog := sizer.Size()
			o.ObserveInt64(m.storeSize, lsm, m.lsm...)
			o.ObserveInt64(m.storeSize, vlog, m.vlog...)
		}
		if guard != nil {
			if free, ok := guard.view(); ok {
				o.ObserveInt64(m.diskFree, int64(free))
			}
			o.ObserveInt64(m.diskLimit, int64(guard.min))
		}
		if n := e.ImportQueueLen(); n >= 0 {
			o.ObserveInt64(m.queueDepth, int64(n))
		}
		o.ObserveFloat64(m.importLag, e.queue.lag(e.now()).Seconds())
		if ri := t.rules.Load(); ri != nil {
			o.ObserveInt64(m.rulesVersion, ri.version, ri.opts...)
		}
		return nil
	}, gauges...)
	if err != nil {
		e.log.Warn("tailor: telemetry: the gauges are not available", "err", err)
		return
	}
	t.reg = reg
}

// close stops the gauges' callback: the provider outlives the engine.
func (t *telemetry) close() {
	if t == nil {
		return
	}
	t.closeOnce.Do(func() {
		if t.reg != nil {
			_ = t.reg.Unregister()
		}
	})
}

// identifyCall is the telemetry state of one Identify call.
type identifyCall struct {
	start time.Time
	span  trace.Span
}

// The hooks of the hot path are split in two: an inlined nil check, and
// the work, called only when there is telemetry, so that an engine without
// providers pays a comparison per hook and no call.

// startIdentify starts timing (and tracing, as a child of ctx's span) an
// Identify call of events events; Identify's deferred endIdentify ends it.
func (t *telemetry) startIdentify(ctx context.Context, events int, preflight bool) (context.Context, identifyCall) {
	if t == nil {
		return ctx, identifyCall{}
	}
	return t.startIdentifyOn(ctx, events, preflight)
}

func (t *telemetry) startIdentifyOn(ctx context.Context, events int, preflight bool) (context.Context, identifyCall) {
	var c identifyCall
	if t.m != nil {
		c.start = time.Now()
	}
	if t.tracer != nil {
		ctx, c.span = t.tracer.Start(ctx, SpanIdentify, trace.WithAttributes(
			attribute.Int("tailor.events", events), attribute.Bool("tailor.preflight", preflight)))
	}
	return ctx, c
}

// endIdentify records the outcome of the call c and ends its span.
func (t *telemetry) endIdentify(ctx context.Context, c identifyCall, resp *Response, err error) {
	if t != nil {
		t.endIdentifyOn(ctx, c, resp, err)
	}
}

func (t *telemetry) endIdentifyOn(ctx context.Context, c identifyCall, resp *Response, err error) {
	o := classify(err)
	if t.m != nil {
		t.m.calls.Add(ctx, 1, t.m.outcomeAdd[o]...)
		t.m.duration.Record(ctx, time.Since(c.start).Seconds(), t.m.outcomeRecord[o]...)
		if resp != nil && resp.Profile != nil {
			t.m.audiences.Record(ctx, int64(len(resp.Profile.Audiences)))
		}
	}
	if c.span != nil {
		c.span.SetAttributes(attribute.String("tailor.outcome", outcomeNames[o]))
		if resp != nil && resp.Profile != nil {
			c.span.SetAttributes(attribute.Int("tailor.audiences", len(resp.Profile.Audiences)),
				attribute.Int("tailor.experiences", len(resp.Experiences)))
		}
		if err != nil {
			c.span.SetStatus(codes.Error, outcomeNames[o])
		}
		c.span.End()
	}
}

// span is a child span of one step of Identify; the zero span (no tracer)
// does nothing.
type span struct{ s trace.Span }

// span starts the child span name of ctx's span.
func (t *telemetry) span(ctx context.Context, name string) (context.Context, span) {
	if t == nil {
		return ctx, span{}
	}
	return t.spanOn(ctx, name)
}

//go:noinline
func (t *telemetry) spanOn(ctx context.Context, name string) (context.Context, span) {
	if t.tracer == nil {
		return ctx, span{}
	}
	ctx, s := t.tracer.Start(ctx, name)
	return ctx, span{s}
}

// end ends the span; an error other than errRelock (more locks needed, a
// step of the protocol, not a failure) marks it failed, with the outcome
// it would give as the description.
func (s span) end(err error) {
	if s.s != nil {
		s.endOn(err)
	}
}

func (s span) endOn(err error) {
	if err != nil && err != errRelock {
		s.s.SetStatus(codes.Error, outcomeNames[classify(err)])
	}
	s.s.End()
}

// exposed counts the exposures an Identify call emitted.
func (t *telemetry) exposed(ctx context.Context, xs []Exposure) {
	if t != nil && t.m != nil && len(xs) > 0 {
		t.exposedOn(ctx, xs)
	}
}

func (t *telemetry) exposedOn(ctx context.Context, xs []Exposure) {
	for _, x := range xs {
		t.m.exposures.Add(ctx, 1, t.m.exposure(x.ExperienceID, x.VariantIndex)...)
	}
}

// merged counts a merge started: the anonymous profile was written merge
// pending, which happens once per merge (a retry finishes it instead).
func (t *telemetry) merged(ctx context.Context) {
	if t == nil || t.m == nil {
		return
	}
	t.m.merges.Add(ctx, 1)
}

// conflictRetried counts a call read again after a conflicting write.
func (t *telemetry) conflictRetried(ctx context.Context) {
	if t == nil || t.m == nil {
		return
	}
	t.m.retries.Add(ctx, 1)
}

// cacheLookup counts a lookup of the decoded-profile cache.
func (t *telemetry) cacheLookup(hit bool) {
	if t != nil && t.m != nil {
		t.cacheLookupOn(hit)
	}
}

func (t *telemetry) cacheLookupOn(hit bool) {
	if hit {
		t.m.cache.Add(context.Background(), 1, t.m.cacheHit...)
	} else {
		t.m.cache.Add(context.Background(), 1, t.m.cacheMiss...)
	}
}

// imported records the delay of an imported batch enqueued at atMs (Unix
// ms; 0 for batches queued before the time was recorded) and applied now.
func (t *telemetry) imported(ctx context.Context, now time.Time, atMs int64) {
	if t == nil || t.m == nil || atMs == 0 {
		return
	}
	t.m.importDelay.Record(ctx, max(0, now.Sub(time.UnixMilli(atMs)).Seconds()))
}

// rulesReplaced counts a successful reload and makes s the version the
// gauge reports.
func (t *telemetry) rulesReplaced(s *rules.Set) {
	if t == nil || t.m == nil {
		return
	}
	t.setRules(s, true)
}

// rulesRefused counts a reload that failed: the rules in force stay.
func (t *telemetry) rulesRefused() {
	if t == nil || t.m == nil {
		return
	}
	t.m.reloads.Add(context.Background(), 1, t.m.reloadFailed...)
}

func (t *telemetry) setRules(s *rules.Set, reload bool) {
	t.rulesMu.Lock()
	defer t.rulesMu.Unlock()
	v := int64(1)
	if prev := t.rules.Load(); prev != nil {
		v = prev.version + 1
	}
	t.rules.Store(&rulesInfo{version: v, opts: []metric.ObserveOption{
		metric.WithAttributes(attribute.String("tailor.rules.digest", RulesDigest(s)))}})
	if reload {
		t.m.reloads.Add(context.Background(), 1, t.m.reloadOK...)
	}
}

// RulesDigest returns a digest of what s says — its audiences and
// experiences, leaving out where in which file each was defined — as 16
// hex digits: two processes serving the same rules report the same
// digest (the tailor.rules.version gauge's tailor.rules.digest
// attribute). A nil or empty s has the digest of no rules.
func RulesDigest(s *rules.Set) string {
	var auds []rules.Audience
	var exps []rules.Experience
	if s != nil {
		auds, exps = slices.Clone(s.Audiences), slices.Clone(s.Experiences)
	}
	for i := range auds {
		auds[i].Pos = rules.Pos{}
	}
	for i := range exps {
		exps[i].Pos = rules.Pos{}
	}
	b, err := json.Marshal(struct {
		Audiences   []rules.Audience
		Experiences []rules.Experience
	}{auds, exps})
	if err != nil {
		// Parse accepts only values JSON can encode; keep the gauge
		// going all the same.
		return "unknown"
	}
	return fmt.Sprintf("%016x", xxhash.Sum64(b))
}

// meteredStore times the engine's reads and writes of its store.
type meteredStore struct {
	storage.Store
	m *instruments
}

func (s *meteredStore) Get(ctx context.Context, key, dst []byte) ([]byte, storage.Version, error) {
	start := time.Now()
	b, v, err := s.Store.Get(ctx, key, dst)
	r := resultOK
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrNotFound):
		r = resultNotFound
	default:
		r = resultError
	}
	s.m.storeTime.Record(ctx, time.Since(start).Seconds(), s.m.store[opGet][r]...)
	return b, v, err
}

func (s *meteredStore) Write(ctx context.Context, op storage.Op) (storage.Version, error) {
	start := time.Now()
	v, err := s.Store.Write(ctx, op)
	r := resultOK
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrConflict):
		r = resultConflict
	default:
		r = resultError
	}
	s.m.storeTime.Record(ctx, time.Since(start).Seconds(), s.m.store[opWrite][r]...)
	return v, err
}

// Size reports the inner store's size when it has one.
func (s *meteredStore) Size() (lsm, vlog int64) {
	if sz, ok := s.Store.(storage.Sizer); ok {
		return sz.Size()
	}
	return 0, 0
}

// view returns the free space the guard sees — the last figure it read,
// refreshed when stale, less what was written since — or false when it
// cannot tell (statfs failed).
func (g *diskGuard) view() (uint64, bool) {
	_ = g.check(0) // refreshes the figure when it is stale
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return 0, false
	}
	return g.free - min(g.free, g.written), true
}
