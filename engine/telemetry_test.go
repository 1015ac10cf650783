package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/storage"
)

// telemetryRules match every visitor and expose each new profile to one
// 50/50 experience.
const telemetryRules = `
audiences:
  - id: everyone
    when: "true"
experiences:
  - id: exp-a
    audience: everyone
    distribution: [0.5, 0.5]
`

// metrics reads what an SDK MeterProvider collected.
type metrics struct {
	t  *testing.T
	rm metricdata.ResourceMetrics
}

func collect(t *testing.T, r sdkmetric.Reader) metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return metrics{t, rm}
}

func (m metrics) find(name string) (metricdata.Metrics, bool) {
	for _, sm := range m.rm.ScopeMetrics {
		for _, mm := range sm.Metrics {
			if mm.Name == name {
				return mm, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

func (m metrics) must(name string) metricdata.Metrics {
	m.t.Helper()
	mm, ok := m.find(name)
	if !ok {
		m.t.Fatalf("metric %s not reported", name)
	}
	return mm
}

// key renders an attribute set as "k=v,k=v" (sorted by key).
func key(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.Emit())
	}
	return strings.Join(parts, ",")
}

// ints returns an Int64 sum or gauge by attribute set.
func (m metrics) ints(name string) map[string]int64 {
	m.t.Helper()
	out := map[string]int64{}
	switch d := m.must(name).Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out[key(p.Attributes)] = p.Value
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out[key(p.Attributes)] = p.Value
		}
	default:
		m.t.Fatalf("%s is a %T, not an int64 sum or gauge", name, d)
	}
	return out
}

// hist is one histogram data point's count and sum.
type hist struct {
	Count uint64
	Sum   float64
}

// hists returns a histogram's count and sum by attribute set.
func (m metrics) hists(name string) map[string]hist {
	m.t.Helper()
	out := map[string]hist{}
	switch d := m.must(name).Data.(type) {
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			out[key(p.Attributes)] = hist{p.Count, p.Sum}
		}
	case metricdata.Histogram[int64]:
		for _, p := range d.DataPoints {
			out[key(p.Attributes)] = hist{p.Count, float64(p.Sum)}
		}
	default:
		m.t.Fatalf("%s is a %T, not a histogram", name, d)
	}
	return out
}

func counts(h map[string]hist) map[string]int64 {
	out := map[string]int64{}
	for k, v := range h {
		out[k] = int64(v.Count)
	}
	return out
}

func wantInts(t *testing.T, name string, got, want map[string]int64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

// tallyStore counts the store calls the engine makes, by the result the
// engine's metric reports, to check the metric against.
type tallyStore struct {
	storage.Store
	mu     sync.Mutex
	counts map[string]int64
}

func (s *tallyStore) add(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[k]++
}

func (s *tallyStore) Get(ctx context.Context, key, dst []byte) ([]byte, storage.Version, error) {
	b, v, err := s.Store.Get(ctx, key, dst)
	switch {
	case err == nil:
		s.add("tailor.store.operation=get,tailor.store.result=ok")
	case errors.Is(err, storage.ErrNotFound):
		s.add("tailor.store.operation=get,tailor.store.result=not_found")
	default:
		s.add("tailor.store.operation=get,tailor.store.result=error")
	}
	return b, v, err
}

func (s *tallyStore) Write(ctx context.Context, op storage.Op) (storage.Version, error) {
	v, err := s.Store.Write(ctx, op)
	switch {
	case err == nil:
		s.add("tailor.store.operation=write,tailor.store.result=ok")
	case errors.Is(err, storage.ErrConflict):
		s.add("tailor.store.operation=write,tailor.store.result=conflict")
	default:
		s.add("tailor.store.operation=write,tailor.store.result=error")
	}
	return v, err
}

// TestTelemetryIdentifyMetrics makes one Identify call of every outcome
// (and four that succeed: two creations, a bind and a merge) and checks
// every count the engine reports against what happened.
func TestTelemetryIdentifyMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	var (
		mu      sync.Mutex
		exposed = map[string]int64{}
		tally   *tallyStore
	)
	e, fs := openFaulty(t, func(o *engine.Options) {
		o.Rules = mustRules(t, telemetryRules)
		o.MeterProvider = mp
		o.ProfileRate, o.ProfileBurst = 0.001, 1 // a second call on a named profile is refused
		o.IdentitySecret = []byte("secret")
		o.OnExposure = func(x engine.Exposure) {
			mu.Lock()
			defer mu.Unlock()
			exposed[fmt.Sprintf("tailor.experience.id=%s,tailor.variant.index=%d", x.ExperienceID, x.VariantIndex)]++
		}
		tally = &tallyStore{Store: o.Store, counts: map[string]int64{}}
		o.Store = tally
	})
	ctx := context.Background()
	call := func(id string, req engine.Request) (*engine.Response, error) {
		return e.Identify(ctx, id, req)
	}
	ok := func(id string, evs ...engine.Event) string {
		t.Helper()
		resp, err := call(id, engine.Request{Events: evs})
		if err != nil {
			t.Fatalf("Identify(%q): %v", id, err)
		}
		return resp.Profile.ID
	}
	fail := func(want error, ctx context.Context, id string, req engine.Request) {
		t.Helper()
		if _, err := e.Identify(ctx, id, req); !errors.Is(err, want) {
			t.Fatalf("Identify(%q) = %v, want %v", id, err, want)
		}
	}

	a := ok("", page("/"))                                 // created
	ok(a, identifyEv("user-1", nil))                       // bound
	b := ok("", page("/"))                                 // created
	if got := ok(b, identifyEv("user-1", nil)); got != a { // merged into a
		t.Fatalf("merge continued on %s, want %s", got, a)
	}
	fail(engine.ErrOverload, ctx, b, engine.Request{Events: []engine.Event{page("/")}})
	fail(engine.ErrInvalidInput, ctx, "", engine.Request{Events: []engine.Event{{Type: "bogus"}}})
	fail(engine.ErrIdentityUnverified, ctx, "", engine.Request{Untrusted: true, Events: []engine.Event{identifyEv("user-2", nil)}})
	fs.setBeforeWrite(func(storage.Op) error { return storage.ErrConflict })
	fail(engine.ErrOverload, ctx, "", engine.Request{Events: []engine.Event{page("/")}}) // conflicts every time
	errBroken := errors.New("store broken")
	fs.setBeforeWrite(func(storage.Op) error { return errBroken })
	fail(errBroken, ctx, "", engine.Request{Events: []engine.Event{page("/")}})
	fs.setBeforeWrite(func(storage.Op) error { return fmt.Errorf("guard: %w", engine.ErrDiskFull) })
	fail(engine.ErrDiskFull, ctx, "", engine.Request{Events: []engine.Event{page("/")}})
	fs.setBeforeWrite(nil)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	fail(context.Canceled, canceled, "", engine.Request{Events: []engine.Event{page("/")}})

	m := collect(t, reader)
	outcomes := map[string]int64{
		"tailor.outcome=ok": 4, "tailor.outcome=overload": 1, "tailor.outcome=invalid": 1,
		"tailor.outcome=unverified": 1, "tailor.outcome=conflict": 1, "tailor.outcome=store_error": 1,
		"tailor.outcome=disk_full": 1, "tailor.outcome=canceled": 1,
	}
	wantInts(t, "tailor.identify.calls", m.ints("tailor.identify.calls"), outcomes)
	wantInts(t, "tailor.identify.duration count", counts(m.hists("tailor.identify.duration")), outcomes)
	if h := m.hists("tailor.identify.audiences")[""]; h.Count != 4 || h.Sum != 4 {
		t.Errorf("tailor.identify.audiences = %+v, want 4 calls with 1 audience each", h)
	}
	mu.Lock()
	if len(exposed) == 0 {
		t.Error("no exposure emitted")
	}
	wantInts(t, "tailor.exposures", m.ints("tailor.exposures"), exposed)
	mu.Unlock()
	wantInts(t, "tailor.merges", m.ints("tailor.merges"), map[string]int64{"": 1})
	wantInts(t, "tailor.conflict.retries", m.ints("tailor.conflict.retries"), map[string]int64{"": engine.MaxAttempts - 1})
	tally.mu.Lock()
	wantInts(t, "tailor.store.operation.duration count", counts(m.hists("tailor.store.operation.duration")), tally.counts)
	tally.mu.Unlock()
	for _, k := range []string{"get,tailor.store.result=not_found", "write,tailor.store.result=conflict", "write,tailor.store.result=error"} {
		if counts(m.hists("tailor.store.operation.duration"))["tailor.store.operation="+k] == 0 {
			t.Errorf("no store call counted as %s", k)
		}
	}

	wantInts(t, "tailor.import.queue.depth", m.ints("tailor.import.queue.depth"), map[string]int64{"": 0})
	for _, name := range []string{"tailor.store.size", "tailor.disk.free"} {
		if _, ok := m.find(name); ok {
			t.Errorf("%s reported for a store that cannot tell", name)
		}
	}

	// After Close, calls are counted as closed and the gauges stop.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	fail(engine.ErrClosed, ctx, "", engine.Request{Events: []engine.Event{page("/")}})
	m = collect(t, reader)
	if got := m.ints("tailor.identify.calls")["tailor.outcome=closed"]; got != 1 {
		t.Errorf("closed calls = %d, want 1", got)
	}
	for _, name := range []string{"tailor.import.queue.depth", "tailor.rules.version"} {
		if mm, ok := m.find(name); ok {
			if g, ok := mm.Data.(metricdata.Gauge[int64]); ok && len(g.DataPoints) > 0 {
				t.Errorf("%s still reported after Close: %v", name, g.DataPoints)
			}
		}
	}
}

// TestTelemetryDisk opens the default store on disk and checks what the
// store and the disk guard report: size on disk, free space, and the
// group commits of the engine's writes.
func TestTelemetryDisk(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	e, err := engine.Open(t.TempDir(), &engine.Options{
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	const calls = 5
	for i := range calls {
		if _, err := e.Identify(context.Background(), fmt.Sprintf("disk-%d", i), engine.Request{Events: []engine.Event{page("/")}}); err != nil {
			t.Fatal(err)
		}
	}
	m := collect(t, reader)
	size := m.ints("tailor.store.size")
	if len(size) != 2 || size["tailor.store.part=vlog"] <= 0 || size["tailor.store.part=lsm"] < 0 {
		t.Errorf("tailor.store.size = %v, want lsm and a non-empty vlog", size)
	}
	if free := m.ints("tailor.disk.free")[""]; free <= 0 {
		t.Errorf("tailor.disk.free = %d", free)
	}
	wantInts(t, "tailor.disk.free.limit", m.ints("tailor.disk.free.limit"), map[string]int64{"": engine.DefaultMinFreeBytes})
	writes := counts(m.hists("tailor.store.operation.duration"))["tailor.store.operation=write,tailor.store.result=ok"]
	if h := m.hists("tailor.store.commit.batch_size")[""]; h.Count == 0 || int64(h.Sum) != writes {
		t.Errorf("tailor.store.commit.batch_size = %+v, want the %d writes the engine made", h, writes)
	}
}

// TestTelemetryCache counts the lookups of the decoded-profile cache: the
// first call on a profile misses, the next ones find what it wrote.
func TestTelemetryCache(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	e := open(t, "", func(o *engine.Options) {
		o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	})
	for range 3 {
		e.identify(t, "cached", page("/"))
	}
	wantInts(t, "tailor.cache.lookups", collect(t, reader).ints("tailor.cache.lookups"),
		map[string]int64{"tailor.cache.result=hit": 2, "tailor.cache.result=miss": 1})
}

// TestTelemetryRules follows the rules version and the reload counts
// through SetRules and LoadRules, with a good and a bad file.
func TestTelemetryRules(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	e := open(t, telemetryRules, func(o *engine.Options) {
		o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	})
	version := func() map[string]int64 { return collect(t, reader).ints("tailor.rules.version") }
	digest := func(src string) string {
		return "tailor.rules.digest=" + engine.RulesDigest(mustRules(t, src))
	}
	wantInts(t, "tailor.rules.version at Open", version(), map[string]int64{digest(telemetryRules): 1})

	e.SetRules(nil)
	wantInts(t, "tailor.rules.version after SetRules(nil)", version(),
		map[string]int64{"tailor.rules.digest=" + engine.RulesDigest(nil): 2})

	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte(telemetryRules), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("audiences: [{id: x, when: 'nope('}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.LoadRules(bad); err == nil {
		t.Fatal("LoadRules(bad) succeeded")
	}
	if got := len(e.Rules().Audiences); got != 0 {
		t.Fatalf("a bad file replaced the rules: %d audiences", got)
	}
	if _, err := e.LoadRules(good); err != nil {
		t.Fatal(err)
	}
	// The digest ignores where the rules were read from.
	wantInts(t, "tailor.rules.version after LoadRules", version(), map[string]int64{digest(telemetryRules): 3})
	wantInts(t, "tailor.rules.reloads", collect(t, reader).ints("tailor.rules.reloads"),
		map[string]int64{"tailor.outcome=ok": 2, "tailor.outcome=failed": 1})
	if engine.RulesDigest(nil) == engine.RulesDigest(mustRules(t, telemetryRules)) {
		t.Error("no rules and some rules have the same digest")
	}
}

// TestTelemetryImport holds an imported batch in the worker (its writes
// fail) while the fake clock moves on, and checks the queue's depth and
// lag, then the delay recorded once the batch is applied.
func TestTelemetryImport(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	e, fs := openFaulty(t, func(o *engine.Options) {
		o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	})
	failing := make(chan struct{})
	var once sync.Once
	fs.setBeforeWrite(func(op storage.Op) error {
		if bytes.HasPrefix(op.Key, []byte("p/")) {
			once.Do(func() { close(failing) })
			return errors.New("store down")
		}
		return nil
	})
	ev := page("/")
	ev.AnonymousID = "imported"
	if err := e.Import(context.Background(), engine.Request{Events: []engine.Event{ev}}); err != nil {
		t.Fatal(err)
	}
	<-failing // the worker holds the batch
	e.clock.Advance(7 * time.Second)
	m := collect(t, reader)
	wantInts(t, "tailor.import.queue.depth", m.ints("tailor.import.queue.depth"), map[string]int64{"": 1})
	if g := m.must("tailor.import.lag").Data.(metricdata.Gauge[float64]); len(g.DataPoints) != 1 || g.DataPoints[0].Value != 7 {
		t.Errorf("tailor.import.lag = %+v, want 7s", g.DataPoints)
	}

	fs.setBeforeWrite(nil)
	for deadline := time.Now().Add(10 * time.Second); e.ImportQueueLen() > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the batch was not applied in 10s")
		}
	}
	if err := e.Close(); err != nil { // the worker has returned: its records are in
		t.Fatal(err)
	}
	if h := collect(t, reader).hists("tailor.import.delay")[""]; h.Count != 1 || h.Sum != 7 {
		t.Errorf("tailor.import.delay = %+v, want one batch applied 7s after Import", h)
	}
}

// TestTelemetrySpans records the spans of one Identify: a child of the
// caller's span with a child each for load, evaluate and commit, none
// carrying the profile id, the user id or a trait.
func TestTelemetrySpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	e := open(t, telemetryRules, func(o *engine.Options) { o.TracerProvider = tp })

	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	const profile, user, email = "profile-7f3a", "user-91c2", "someone@example.com"
	if _, err := e.Identify(ctx, profile, engine.Request{Events: []engine.Event{
		identifyEv(user, map[string]any{"email": email}), page("/pricing")}}); err != nil {
		t.Fatal(err)
	}
	parent.End()

	spans := rec.Ended()
	byName := map[string]sdktrace.ReadOnlySpan{}
	var names []string
	for _, s := range spans {
		byName[s.Name()] = s
		names = append(names, s.Name())
		for _, kv := range s.Attributes() {
			v := kv.Value.Emit()
			for _, secret := range []string{profile, user, email} {
				if strings.Contains(v, secret) {
					t.Errorf("span %s attribute %s = %q holds personal data", s.Name(), kv.Key, v)
				}
			}
		}
		if s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("span %s is in trace %s, not the caller's", s.Name(), s.SpanContext().TraceID())
		}
	}
	slices.Sort(names)
	if want := []string{"request", engine.SpanCommit, engine.SpanEvaluate, engine.SpanIdentify, engine.SpanLoad}; !slices.Equal(names, want) {
		t.Fatalf("spans %v, want %v", names, want)
	}
	call := byName[engine.SpanIdentify]
	if call.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("%s is not a child of the caller's span", engine.SpanIdentify)
	}
	for _, step := range []string{engine.SpanLoad, engine.SpanEvaluate, engine.SpanCommit} {
		if s := byName[step]; s.Parent().SpanID() != call.SpanContext().SpanID() {
			t.Errorf("%s is not a child of %s", step, engine.SpanIdentify)
		}
	}
	if !(byName[engine.SpanLoad].EndTime().Compare(byName[engine.SpanEvaluate].StartTime()) <= 0 &&
		byName[engine.SpanEvaluate].EndTime().Compare(byName[engine.SpanCommit].StartTime()) <= 0) {
		t.Error("load, evaluate and commit did not run in that order")
	}
	attrs := map[string]string{}
	for _, kv := range call.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	want := map[string]string{"tailor.events": "2", "tailor.preflight": "false", "tailor.outcome": "ok",
		"tailor.audiences": "1", "tailor.experiences": "1"}
	if fmt.Sprint(attrs) != fmt.Sprint(want) {
		t.Errorf("%s attributes %v, want %v", engine.SpanIdentify, attrs, want)
	}
	if call.Status().Code != codes.Unset {
		t.Errorf("%s status %v", engine.SpanIdentify, call.Status())
	}

	// A refused call is one failed span, described by its outcome only.
	rec.Reset()
	if _, err := e.Identify(context.Background(), profile, engine.Request{Events: []engine.Event{{Type: "bogus"}}}); err == nil {
		t.Fatal("bogus event accepted")
	}
	spans = rec.Ended()
	if len(spans) != 1 || spans[0].Name() != engine.SpanIdentify {
		t.Fatalf("refused call: %d spans", len(spans))
	}
	if st := spans[0].Status(); st.Code != codes.Error || st.Description != "invalid" {
		t.Errorf("refused call: status %+v, want Error \"invalid\"", st)
	}
}

// TestTelemetryOff checks that an engine without providers holds no
// telemetry and uses its store as given.
func TestTelemetryOff(t *testing.T) {
	e := open(t, "", nil)
	e.identify(t, "p", page("/"))
	if !engine.TelemetryOff(e.Engine) {
		t.Error("telemetry is on without a provider")
	}
}
