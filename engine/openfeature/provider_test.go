package openfeature_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/tailorhq/tailor/engine"
	tailorof "github.com/tailorhq/tailor/engine/openfeature"
	"github.com/tailorhq/tailor/rules"
)

const flagRules = `
audiences:
  - id: pro
    when: traits.plan == "pro"
  - id: buyers
    when: hasEvent("purchase")
experiences:
  - id: exp-pro
    type: personalization
    audience: pro
    distribution: [0, 1]
    components:
      - {type: InlineVariable, key: banner-on, baseline: false, variants: [true]}
      - {type: InlineVariable, key: discount, baseline: 0, variants: [15]}
      - {type: InlineVariable, key: layout, baseline: {cols: 1}, variants: [{cols: 2, tags: [a, b]}]}
  - id: exp-split
    sticky: true
    distribution: [0.5, 0.5]
    components:
      - {type: InlineVariable, key: cta-color, baseline: blue, variants: [green]}
      - {type: InlineVariable, key: ratio, baseline: 0.5, variants: [0.75]}
      - {type: EntryReplacement, key: hero, baseline: entry-a, variants: [{id: entry-b, hidden: true}]}
  - id: exp-static
    distribution: [0, 1]
    components:
      - {type: InlineVariable, key: greeting, baseline: hi, variants: [hello]}
  - id: exp-paused
    status: paused
    qaUsers: [{userId: qa-ann, variant: 1}]
    components:
      - {type: InlineVariable, key: chat, baseline: false, variants: [true]}
`

type exposures struct {
	mu   sync.Mutex
	list []engine.Exposure
}

func (x *exposures) add(e engine.Exposure) { x.mu.Lock(); x.list = append(x.list, e); x.mu.Unlock() }
func (x *exposures) all() []engine.Exposure {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.list)
}

// setup opens an engine with flagRules, registers a provider with an
// isolated OpenFeature API (no global state) and returns the SDK client.
func setup(t *testing.T, opts ...tailorof.Option) (*engine.Engine, *of.Client, *exposures, *of.EvaluationAPI) {
	t.Helper()
	set, err := rules.Parse("flags.yaml", []byte(flagRules))
	if err != nil {
		t.Fatal(err)
	}
	x := &exposures{}
	eng, err := engine.Open("", &engine.Options{InMemory: true, Rules: set, OnExposure: x.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	api := isolated.NewAPI()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := api.SetProviderAndWait(ctx, tailorof.NewProvider(eng, opts...)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Shutdown(context.Background()) })
	return eng, api.NewClient(), x, api
}

func pro(id string) of.EvaluationContext {
	return of.NewEvaluationContext(id, map[string]any{"plan": "pro"})
}

func TestProviderResolutions(t *testing.T) {
	eng, client, x, _ := setup(t)
	ctx := context.Background()
	if s := client.State(); s != of.ReadyState {
		t.Fatalf("state %v", s)
	}

	// Audience match from a context attribute: TARGETING_MATCH.
	b, err := client.BooleanValueDetails(ctx, "banner-on", false, pro("p1"))
	if err != nil || !b.Value || b.Reason != of.TargetingMatchReason || b.Variant != "1" {
		t.Fatalf("banner-on: %+v %v", b, err)
	}
	if id, _ := b.FlagMetadata.GetString("experienceId"); id != "exp-pro" {
		t.Errorf("metadata %v", b.FlagMetadata)
	}
	n, err := client.IntValueDetails(ctx, "discount", 0, pro("p1"))
	if err != nil || n.Value != 15 || n.Reason != of.TargetingMatchReason {
		t.Errorf("discount: %+v %v", n, err)
	}
	o, err := client.ObjectValueDetails(ctx, "layout", nil, pro("p1"))
	want := map[string]any{"cols": 2.0, "tags": []any{"a", "b"}}
	if err != nil || !reflect.DeepEqual(o.Value, want) {
		t.Fatalf("layout: %+v %v", o, err)
	}
	o.Value.(map[string]any)["tags"].([]any)[0] = "changed"
	if o2, _ := client.ObjectValue(ctx, "layout", nil, pro("p1")); !reflect.DeepEqual(o2, want) {
		t.Errorf("the caller changed the rules: %v", o2)
	}
	// The attribute counted for those evaluations only.
	if got, err := eng.Get(ctx, "p1"); err != nil || got.Profile.Traits["plan"] != nil {
		t.Errorf("traits stored: %+v %v", got, err)
	}
	d, err := client.BooleanValueDetails(ctx, "banner-on", false, of.NewEvaluationContext("p1", nil))
	if err != nil || d.Value || d.Reason != of.DefaultReason || d.Variant != "0" {
		t.Errorf("not pro: %+v %v", d, err)
	}

	// A 50/50 split: SPLIT, the variant Identify gives the same profile.
	resp, err := eng.Identify(ctx, "p2", engine.Request{Events: []engine.Event{{Type: engine.EventPage}}})
	if err != nil {
		t.Fatal(err)
	}
	var variant int
	for _, s := range resp.Experiences {
		if s.ExperienceID == "exp-split" {
			variant = s.VariantIndex
		}
	}
	s, err := client.StringValueDetails(ctx, "cta-color", "x", of.NewEvaluationContext("p2", nil))
	if err != nil || s.Reason != of.SplitReason || s.Value != []string{"blue", "green"}[variant] || s.Variant != []string{"0", "1"}[variant] {
		t.Errorf("cta-color: %+v %v (Identify gave variant %d)", s, err, variant)
	}
	h, _ := client.StringValueDetails(ctx, "hero", "x", of.NewEvaluationContext("p2", nil))
	if h.Value != []string{"entry-a", ""}[variant] || h.Reason != of.SplitReason {
		t.Errorf("hero: %+v", h)
	}
	f, _ := client.FloatValueDetails(ctx, "ratio", 0, of.NewEvaluationContext("p2", nil))
	if f.Value != []float64{0.5, 0.75}[variant] {
		t.Errorf("ratio: %+v", f)
	}
	g, _ := client.StringValueDetails(ctx, "greeting", "x", of.NewEvaluationContext("p2", nil))
	if g.Value != "hello" || g.Reason != of.StaticReason {
		t.Errorf("greeting: %+v", g)
	}

	// A QA user sees the paused experience's variant; forced, not exposed.
	if _, err := eng.Identify(ctx, "qa", engine.Request{Events: []engine.Event{{Type: engine.EventIdentify, UserID: "qa-ann"}}}); err != nil {
		t.Fatal(err)
	}
	nExp := len(x.all())
	c, _ := client.BooleanValueDetails(ctx, "chat", false, of.NewEvaluationContext("qa", nil))
	if forced, _ := c.FlagMetadata.GetBool("forced"); !c.Value || c.Reason != of.TargetingMatchReason || !forced {
		t.Errorf("chat for QA: %+v", c)
	}
	if got := x.all(); len(got) != nExp {
		t.Errorf("QA exposure: %+v", got[nExp:])
	}
}

func TestProviderErrors(t *testing.T) {
	eng, client, _, _ := setup(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		eval func() (of.InterfaceEvaluationDetails, error)
		code of.ErrorCode
	}{
		{"flag not found", func() (of.InterfaceEvaluationDetails, error) {
			return client.ObjectValueDetails(ctx, "nope", "def", pro("p1"))
		}, of.FlagNotFoundCode},
		{"string as bool", func() (of.InterfaceEvaluationDetails, error) {
			d, err := client.BooleanValueDetails(ctx, "cta-color", true, pro("p1"))
			return of.InterfaceEvaluationDetails{Value: d.Value, EvaluationDetails: d.EvaluationDetails}, err
		}, of.TypeMismatchCode},
		{"fraction as int", func() (of.InterfaceEvaluationDetails, error) {
			d, err := client.IntValueDetails(ctx, "ratio", 7, of.NewEvaluationContext("p9", nil))
			return of.InterfaceEvaluationDetails{Value: d.Value, EvaluationDetails: d.EvaluationDetails}, err
		}, of.TypeMismatchCode},
		{"no targeting key", func() (of.InterfaceEvaluationDetails, error) {
			return client.ObjectValueDetails(ctx, "greeting", "def", of.NewTargetlessEvaluationContext(map[string]any{"plan": "pro"}))
		}, of.TargetingKeyMissingCode},
		{"bad targeting key", func() (of.InterfaceEvaluationDetails, error) {
			return client.ObjectValueDetails(ctx, "greeting", "def", of.NewEvaluationContext("a/b", nil))
		}, of.InvalidContextCode},
		{"attribute not a trait", func() (of.InterfaceEvaluationDetails, error) {
			return client.ObjectValueDetails(ctx, "greeting", "def", of.NewEvaluationContext("p1", map[string]any{"x": math.Inf(1)}))
		}, of.ParseErrorCode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := tc.eval()
			if err == nil || d.ErrorCode != tc.code || d.Reason != of.ErrorReason {
				t.Errorf("got %+v %v, want %s", d, err, tc.code)
			}
			switch v := d.Value.(type) {
			case string:
				if v != "def" {
					t.Errorf("value %v, want the default", v)
				}
			case bool:
				if !v {
					t.Errorf("value %v, want the default", v)
				}
			case int64:
				if v != 7 {
					t.Errorf("value %v, want the default", v)
				}
			}
		})
	}
	eng.Close()
	d, err := client.StringValueDetails(ctx, "greeting", "def", pro("p1"))
	if err == nil || d.ErrorCode != of.GeneralCode || d.Value != "def" {
		t.Errorf("closed engine: %+v %v", d, err)
	}
}

// TestProviderExposures: evaluations write nothing but the exposure the
// hook reports, once per profile, experience and variant.
func TestProviderExposures(t *testing.T) {
	eng, client, x, _ := setup(t)
	ctx := context.Background()
	for range 3 {
		if v := client.String(ctx, "greeting", "x", of.NewEvaluationContext("v1", nil)); v != "hello" {
			t.Fatalf("greeting %q", v)
		}
	}
	got := x.all()
	if len(got) != 1 || got[0].ProfileID != "v1" || got[0].ExperienceID != "exp-static" || got[0].VariantIndex != 1 {
		t.Fatalf("exposures %+v", got)
	}
	// The sticky split's variant becomes the profile's assignment.
	s := client.String(ctx, "cta-color", "x", of.NewEvaluationContext("v1", nil))
	resp, err := eng.Get(ctx, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := resp.Profile.StickyVariants["exp-split"]; !ok || []string{"blue", "green"}[v] != s {
		t.Errorf("sticky %v, flag %q", resp.Profile.StickyVariants, s)
	}

	// Without the hook nothing is written at all.
	eng2, client2, x2, _ := setup(t, tailorof.WithoutExposures())
	client2.String(ctx, "greeting", "x", of.NewEvaluationContext("v1", nil))
	if len(x2.all()) != 0 {
		t.Errorf("exposures without the hook: %+v", x2.all())
	}
	if _, err := eng2.Get(ctx, "v1"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("profile written without the hook: %v", err)
	}
}

func TestProviderEvents(t *testing.T) {
	eng, client, _, _ := setup(t)
	got := make(chan of.EventDetails, 4)
	cb := func(d of.EventDetails) { got <- d }
	client.AddHandler(of.ProviderConfigChange, &cb)

	ready := make(chan of.EventDetails, 1)
	rcb := func(d of.EventDetails) { ready <- d }
	client.AddHandler(of.ProviderReady, &rcb) // already ready: the SDK runs it at once
	wait(t, ready, "PROVIDER_READY")

	set, err := rules.Parse("flags.yaml", []byte(mustReplace(t, flagRules, "variants: [green]", "variants: [red]")))
	if err != nil {
		t.Fatal(err)
	}
	eng.SetRules(set)
	d := wait(t, got, "PROVIDER_CONFIGURATION_CHANGED")
	if d.ProviderName != tailorof.Name || !slices.Equal(d.FlagChanges, []string{"cta-color"}) {
		t.Errorf("event %+v", d)
	}
	if v := client.String(context.Background(), "cta-color", "x", of.NewEvaluationContext("p1", nil)); v != "blue" && v != "red" {
		t.Errorf("after the change: %q", v)
	}
}

func TestProviderTrack(t *testing.T) {
	eng, client, _, _ := setup(t)
	ctx := context.Background()
	client.Track(ctx, "purchase", of.NewEvaluationContext("t1", map[string]any{"plan": "pro"}), of.NewTrackingEventDetails(9.5).Add("sku", "x-1"))
	resp, err := eng.Get(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(resp.Profile.Audiences, "buyers") || slices.Contains(resp.Profile.Audiences, "pro") {
		t.Errorf("audiences after Track: %v", resp.Profile.Audiences)
	}
}

func wait(t *testing.T, ch <-chan of.EventDetails, what string) of.EventDetails {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(30 * time.Second):
		t.Fatalf("no %s event", what)
	}
	return of.EventDetails{}
}

// mustReplace replaces the first old in s with new; old must be there.
func mustReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q not found", old)
	}
	return strings.Replace(s, old, new, 1)
}
