package openfeature

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
)

// Name is the provider's name in its Metadata and events.
const Name = "tailor"

// Provider is an OpenFeature provider over a tailor engine. It implements
// the SDK's FeatureProvider, StateHandler (and its context-aware form),
// EventHandler and Tracker interfaces. Create it with NewProvider; it is
// safe for concurrent use.
type Provider struct {
	eng       *engine.Engine
	log       *slog.Logger
	exposures bool
	events    chan of.Event

	mu     sync.Mutex
	cancel func()     // the OnRulesChange registration, while initialized
	last   *rules.Set // the rules the last configuration event described

	emitMu sync.Mutex // serializes sends on events
}

// Option configures a Provider.
type Option func(*Provider)

// WithLogger sets where the provider logs failures it cannot return
// (exposures and track events that could not be stored). The default
// discards them.
func WithLogger(l *slog.Logger) Option {
	return func(p *Provider) {
		if l != nil {
			p.log = l
		}
	}
}

// WithoutExposures turns off the exposure hook: evaluations then never
// write, and exposures are the caller's to report (engine.Engine.Expose).
func WithoutExposures() Option {
	return func(p *Provider) { p.exposures = false }
}

// NewProvider returns a provider serving flags from eng. The engine stays
// the caller's: the provider never closes it.
func NewProvider(eng *engine.Engine, opts ...Option) *Provider {
	p := &Provider{
		eng:       eng,
		log:       slog.New(slog.DiscardHandler),
		exposures: true,
		// Configuration events are coalesced: one pending tells the SDK
		// everything the next ones would.
		events: make(chan of.Event, 1),
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Metadata returns the provider's name.
func (p *Provider) Metadata() of.Metadata { return of.Metadata{Name: Name} }

// Hooks returns the exposure hook (none with WithoutExposures).
func (p *Provider) Hooks() []of.Hook {
	if !p.exposures {
		return nil
	}
	return []of.Hook{exposureHook{p: p}}
}

// Init subscribes to rule changes; the SDK then reports the provider
// ready.
func (p *Provider) Init(of.EvaluationContext) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel == nil {
		p.last = p.eng.Rules()
		p.cancel = p.eng.OnRulesChange(p.rulesChanged)
	}
	return nil
}

// InitWithContext is Init; it does no I/O, so ctx is not consulted.
func (p *Provider) InitWithContext(_ context.Context, evalCtx of.EvaluationContext) error {
	return p.Init(evalCtx)
}

// Shutdown stops the configuration events. It does not close the engine.
func (p *Provider) Shutdown() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel != nil {
		p.cancel()
		p.cancel = nil
	}
}

// ShutdownWithContext is Shutdown.
func (p *Provider) ShutdownWithContext(context.Context) error {
	p.Shutdown()
	return nil
}

// EventChannel returns the channel of the provider's events.
func (p *Provider) EventChannel() <-chan of.Event { return p.events }

// rulesChanged emits PROVIDER_CONFIGURATION_CHANGED for new rules.
func (p *Provider) rulesChanged(s *rules.Set) {
	p.mu.Lock()
	changed := changedFlags(p.last, s)
	p.last = s
	p.mu.Unlock()
	ev := of.Event{ProviderName: Name, EventType: of.ProviderConfigChange,
		ProviderEventDetails: of.ProviderEventDetails{Message: "rules changed", FlagChanges: changed}}
	p.emit(ev)
}

// emit sends ev without blocking SetRules. A configuration event still
// pending is merged into ev (the flags of both), so none is lost. Callers
// hold no lock; emits are serialized by emitMu.
func (p *Provider) emit(ev of.Event) {
	p.emitMu.Lock()
	defer p.emitMu.Unlock()
	select {
	case old := <-p.events:
		ev.FlagChanges = slices.Compact(slices.Sorted(slices.Values(append(old.FlagChanges, ev.FlagChanges...))))
	default:
	}
	p.events <- ev // room: emitMu keeps other senders out, the reader only takes
}

// BooleanEvaluation resolves a boolean flag.
func (p *Provider) BooleanEvaluation(ctx context.Context, flag string, defaultValue bool, flatCtx of.FlattenedContext) of.BoolResolutionDetail {
	return typed(p.resolve(ctx, flag, flatCtx), defaultValue, func(v any) (bool, bool) { b, ok := v.(bool); return b, ok })
}

// StringEvaluation resolves a string flag (an InlineVariable string, or
// the entry id an EntryReplacement selects).
func (p *Provider) StringEvaluation(ctx context.Context, flag string, defaultValue string, flatCtx of.FlattenedContext) of.StringResolutionDetail {
	return typed(p.resolve(ctx, flag, flatCtx), defaultValue, func(v any) (string, bool) { s, ok := v.(string); return s, ok })
}

// FloatEvaluation resolves a number flag.
func (p *Provider) FloatEvaluation(ctx context.Context, flag string, defaultValue float64, flatCtx of.FlattenedContext) of.FloatResolutionDetail {
	return typed(p.resolve(ctx, flag, flatCtx), defaultValue, func(v any) (float64, bool) { f, ok := v.(float64); return f, ok })
}

// IntEvaluation resolves a number flag whose value is a whole number.
func (p *Provider) IntEvaluation(ctx context.Context, flag string, defaultValue int64, flatCtx of.FlattenedContext) of.IntResolutionDetail {
	return typed(p.resolve(ctx, flag, flatCtx), defaultValue, func(v any) (int64, bool) {
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
			return 0, false
		}
		return int64(f), true
	})
}

// ObjectEvaluation resolves a flag of any type: an InlineVariable object
// comes as a map[string]any (a copy the caller may change), other values
// as their Go type.
func (p *Provider) ObjectEvaluation(ctx context.Context, flag string, defaultValue any, flatCtx of.FlattenedContext) of.InterfaceResolutionDetail {
	return typed(p.resolve(ctx, flag, flatCtx), defaultValue, func(v any) (any, bool) { return deepCopy(v), true })
}

// resolution is a flag resolved, before typing.
type resolution struct {
	value  any
	detail of.ProviderResolutionDetail
}

// typed converts r's value with conv, falling back to the default value
// on an error or a type mismatch.
func typed[T any](r resolution, defaultValue T, conv func(any) (T, bool)) of.GenericResolutionDetail[T] {
	out := of.GenericResolutionDetail[T]{Value: defaultValue, ProviderResolutionDetail: r.detail}
	if r.detail.Reason == of.ErrorReason {
		return out
	}
	v, ok := conv(r.value)
	if !ok {
		out.ProviderResolutionDetail = errorDetail(of.NewTypeMismatchResolutionError(
			fmt.Sprintf("flag value is %s, not %s", kindOf(r.value), kindOf(defaultValue))))
		out.FlagMetadata = r.detail.FlagMetadata
		return out
	}
	out.Value = v
	return out
}

func errorDetail(e of.ResolutionError) of.ProviderResolutionDetail {
	return of.ProviderResolutionDetail{ResolutionError: e, Reason: of.ErrorReason}
}

// kindOf names a value's type for a TYPE_MISMATCH message.
func kindOf(v any) string {
	switch x := v.(type) {
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case float64:
		if x == math.Trunc(x) {
			return "a number"
		}
		return "a fractional number"
	case int64:
		return "an integer"
	case map[string]any:
		return "an object"
	case nil:
		return "nil"
	}
	return fmt.Sprintf("a %T", v)
}

// resolve evaluates flag for the context's profile.
func (p *Provider) resolve(ctx context.Context, flag string, flatCtx of.FlattenedContext) resolution {
	key, _ := flatCtx[of.TargetingKey].(string)
	if key == "" {
		return resolution{detail: errorDetail(of.NewTargetingKeyMissingResolutionError("the targeting key (the tailor profile id) is required"))}
	}
	var traits map[string]any
	for k, v := range flatCtx {
		if k == of.TargetingKey {
			continue
		}
		if traits == nil {
			traits = make(map[string]any, len(flatCtx))
		}
		traits[k] = v
	}
	ev, err := p.eng.Evaluate(ctx, key, traits)
	if err != nil {
		var in *engine.InputError
		switch {
		case errors.As(err, &in) && strings.HasPrefix(in.Field, "traits"):
			return resolution{detail: errorDetail(of.NewParseErrorResolutionError(
				"evaluation context attribute "+strings.TrimPrefix(strings.TrimPrefix(in.Field, "traits"), ".")+": "+in.Reason, err))}
		case errors.As(err, &in):
			return resolution{detail: errorDetail(of.NewInvalidContextResolutionError("targeting key: " + in.Reason))}
		}
		return resolution{detail: errorDetail(of.NewGeneralResolutionError("tailor: evaluation failed", err))}
	}
	return resolveFlag(ev, flag)
}

// resolveFlag finds flag among ev's experiences.
func resolveFlag(ev *engine.Evaluation, flag string) resolution {
	rs := ev.Rules
	for i, d := range ev.Decisions {
		x := &rs.Experiences[d.Experience]
		c := component(x, flag)
		if c == nil {
			continue
		}
		r := resolution{value: componentValue(c, d.Variant)}
		r.detail.Variant = strconv.Itoa(d.Variant)
		r.detail.Reason = reasonOf(x, d)
		r.detail.FlagMetadata = metadata(x, c, d.Variant)
		r.detail.FlagMetadata["forced"] = d.Reason.Forced()
		r.detail.FlagMetadata["exposed"] = ev.Exposed[i]
		return r
	}
	for i := range rs.Experiences {
		x := &rs.Experiences[i]
		if c := component(x, flag); c != nil {
			r := resolution{value: componentValue(c, 0)}
			r.detail.Variant = "0"
			r.detail.Reason = of.DefaultReason
			r.detail.FlagMetadata = metadata(x, c, 0)
			return r
		}
	}
	return resolution{detail: errorDetail(of.NewFlagNotFoundResolutionError(
		fmt.Sprintf("no experience has a component with key %q", flag)))}
}

// reasonOf maps tailor's decision to an OpenFeature reason.
func reasonOf(x *rules.Experience, d engine.Decision) of.Reason {
	switch {
	case d.Reason.Forced():
		return of.TargetingMatchReason
	case random(x):
		return of.SplitReason
	case x.AudienceIndex >= 0:
		return of.TargetingMatchReason
	}
	return of.StaticReason
}

// random reports whether allocation into x involves a draw that can
// differ between visitors.
func random(x *rules.Experience) bool {
	if x.Traffic < 1 || x.Namespace != nil {
		return true
	}
	n := 0
	for _, p := range x.Distribution {
		if p > 0 {
			n++
		}
	}
	return n > 1
}

func component(x *rules.Experience, key string) *rules.Component {
	for i := range x.Components {
		if x.Components[i].Key == key {
			return &x.Components[i]
		}
	}
	return nil
}

// componentValue is c's value in variant v, as Identify's response gives
// it: an entry id ("" when hidden) or a variable's value.
func componentValue(c *rules.Component, v int) any {
	val := c.Baseline
	if v > 0 && v <= len(c.Variants) {
		val = c.Variants[v-1]
	}
	if c.Type == rules.EntryReplacement && val.Hidden {
		return ""
	}
	return val.Value
}

func metadata(x *rules.Experience, c *rules.Component, v int) of.FlagMetadata {
	return of.FlagMetadata{
		"experienceId":   x.ID,
		"experienceType": x.Type,
		"componentType":  c.Type,
		"variantIndex":   int64(v),
		"sticky":         x.Sticky,
	}
}

// deepCopy copies maps and lists, which belong to the rules, so the
// caller may change what it gets.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = deepCopy(e)
		}
		return s
	}
	return v
}

// changedFlags lists the flag keys whose definition differs between two
// rule sets: the experiences holding the key, their settings, components
// and QA users, and the audience rules they target.
func changedFlags(old, cur *rules.Set) []string {
	a, b := flagDefs(old), flagDefs(cur)
	var out []string
	for k, d := range a {
		if b[k] != d {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// flagDefs describes each flag key of s as a string that changes when
// anything deciding the flag does.
func flagDefs(s *rules.Set) map[string]string {
	m := map[string]string{}
	if s == nil {
		return m
	}
	for i := range s.Experiences {
		x := &s.Experiences[i]
		when := ""
		if x.AudienceIndex >= 0 {
			when = s.Audiences[x.AudienceIndex].When
		}
		qa := make([]string, len(x.QAUsers))
		for j, q := range x.QAUsers {
			qa[j] = q.UserID + "\x00" + q.ProfileID + "\x00" + strconv.Itoa(q.Variant)
		}
		ns := ""
		if x.Namespace != nil {
			ns = fmt.Sprint(*x.Namespace)
		}
		head := fmt.Sprintf("%s|%s|%s|%q|%v|%v|%v|%d|%s|%s|%v|%v|%q", x.ID, x.Type, x.Audience, when, x.Traffic,
			x.Distribution, x.Sticky, x.BucketVersion, ns, x.Status, x.Start.UnixNano(), x.End.UnixNano(), qa)
		for _, c := range x.Components {
			m[c.Key] += fmt.Sprintf("%s|%s|%#v|%#v;", head, c.Type, c.Baseline, c.Variants)
		}
	}
	return m
}
