package engine

// The engine's metric instruments (see telemetry.go).

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

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
