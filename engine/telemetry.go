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
// The instruments are made in telemetry_metrics.go, the rules' version is
// kept in telemetry_rules.go and the store is metered in
// telemetry_store.go; this file has the hooks.
//
// Attributes are bounded: outcomes and results are fixed sets, and the
// experience ids and variant indexes of exposures come from the rules.
// No profile id, user id, trait or error message is ever recorded, in a
// metric or a span (error messages can name profiles, so spans carry the
// outcome as their status description instead).

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

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
