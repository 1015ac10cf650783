package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
)

func stickyExp(dist string, traffic float64, audience string, bucket int) string {
	aud := ""
	if audience != "" {
		aud = "    audience: " + audience + "\n"
	}
	return fmt.Sprintf(`
audiences:
  - id: pro
    when: traits.plan == "pro"
  - id: nobody
    when: "false"
experiences:
  - id: exp
%s    traffic: %v
    distribution: %s
    sticky: true
    bucketVersion: %d
    components:
      - {type: EntryReplacement, key: hero, baseline: entry-a, variants: [entry-b]}
`, aud, traffic, dist, bucket)
}

func TestStickySurvivesRuleChanges(t *testing.T) {
	e := open(t, stickyExp("[0.5, 0.5]", 1, "pro", 1), nil)
	ids := map[string]int{}
	for i := range 20 {
		r := e.identify(t, fmt.Sprintf("v%d", i), identifyEv("", map[string]any{"plan": "pro"}))
		x, ok := selected(r, "exp")
		if !ok || !x.Sticky {
			t.Fatalf("visitor %d not in the sticky experience: %+v", i, r.Experiences)
		}
		if r.Profile.StickyVariants["exp"] != x.VariantIndex {
			t.Fatalf("stickyVariants %v, selected %d", r.Profile.StickyVariants, x.VariantIndex)
		}
		ids[r.Profile.ID] = x.VariantIndex
	}
	for name, src := range map[string]string{
		"distribution": stickyExp("[1, 0]", 1, "pro", 1),
		"other way":    stickyExp("[0, 1]", 1, "pro", 1),
		"traffic":      stickyExp("[0.5, 0.5]", 0, "pro", 1),
		"audience":     stickyExp("[0.5, 0.5]", 1, "nobody", 1),
	} {
		t.Run(name, func(t *testing.T) {
			e.SetRules(mustRules(t, src))
			for id, want := range ids {
				r := e.identify(t, id, page("/"))
				x, ok := selected(r, "exp")
				if !ok || x.VariantIndex != want {
					t.Fatalf("%s: got %+v (in=%v), want the sticky variant %d", id, x, ok, want)
				}
			}
		})
	}
	t.Run("bucket version re-randomizes", func(t *testing.T) {
		e.SetRules(mustRules(t, stickyExp("[1, 0]", 1, "", 2)))
		for id := range ids {
			r := e.identify(t, id, page("/"))
			x, _ := selected(r, "exp")
			if x.VariantIndex != 0 {
				t.Fatalf("%s kept variant %d after the bucket version changed", id, x.VariantIndex)
			}
			if r.Profile.StickyVariants["exp"] != 0 {
				t.Fatalf("stored assignment %v not replaced", r.Profile.StickyVariants)
			}
		}
	})
}

func TestBucketVersionReshuffles(t *testing.T) {
	e := open(t, stickyExp("[0.5, 0.5]", 1, "", 1), nil)
	const n = 400
	first := make([]int, n)
	for i := range n {
		x, _ := selected(e.identify(t, fmt.Sprintf("v%d", i), page("/")), "exp")
		first[i] = x.VariantIndex
	}
	e.SetRules(mustRules(t, stickyExp("[0.5, 0.5]", 1, "", 2)))
	changed := 0
	for i := range n {
		x, _ := selected(e.identify(t, fmt.Sprintf("v%d", i), page("/")), "exp")
		if x.VariantIndex != first[i] {
			changed++
		}
	}
	// Independent draws: about half change (binomial, sd 10).
	if changed < n/2-60 || changed > n/2+60 {
		t.Errorf("%d of %d visitors changed variant, want about %d", changed, n, n/2)
	}
}

func TestNamespaceExclusion(t *testing.T) {
	e := open(t, `
experiences:
  - id: left
    namespace: {id: hero, range: [0, 0.5]}
    distribution: [0.5, 0.5]
    components: [{type: InlineVariable, key: l, baseline: a, variants: [b]}]
  - id: right
    namespace: {id: hero, range: [0.5, 1]}
    distribution: [0.5, 0.5]
    components: [{type: InlineVariable, key: r, baseline: a, variants: [b]}]
  - id: free
    distribution: [0.5, 0.5]
    components: [{type: InlineVariable, key: f, baseline: a, variants: [b]}]
`, nil)
	const n = 1000
	left, right := 0, 0
	for i := range n {
		r := e.identify(t, fmt.Sprintf("v%d", i), page("/"))
		_, l := selected(r, "left")
		_, rr := selected(r, "right")
		if _, f := selected(r, "free"); !f {
			t.Fatal("an experience outside the namespace was skipped")
		}
		if l && rr {
			t.Fatalf("visitor %d is in both experiences of one namespace", i)
		}
		if !l && !rr {
			t.Fatalf("visitor %d is in neither half of a fully covered namespace", i)
		}
		if l {
			left++
		} else {
			right++
		}
	}
	if left < n/2-100 || right < n/2-100 {
		t.Errorf("namespace split %d/%d, want about even", left, right)
	}
}

func TestStatusAndSchedule(t *testing.T) {
	e := open(t, `
experiences:
  - id: paused
    status: paused
    distribution: [1]
    components: [{type: InlineVariable, key: a, baseline: x}]
  - id: future
    start: 2030-01-01T00:00:00Z
    distribution: [1]
    components: [{type: InlineVariable, key: b, baseline: x}]
  - id: ended
    end: 2020-01-01T00:00:00Z
    distribution: [1]
    components: [{type: InlineVariable, key: c, baseline: x}]
  - id: current
    start: 2020-01-01T00:00:00Z
    end: 2030-01-01T00:00:00Z
    distribution: [1]
    components: [{type: InlineVariable, key: d, baseline: x}]
`, nil)
	r := e.identify(t, "", page("/"))
	if len(r.Experiences) != 1 || r.Experiences[0].ExperienceID != "current" {
		t.Errorf("experiences %+v, want only the running, scheduled-now one", r.Experiences)
	}
}

func TestVariantsAndChanges(t *testing.T) {
	e := open(t, `
experiences:
  - id: exp
    distribution: [0, 1]
    components:
      - {type: EntryReplacement, key: hero, baseline: entry-a, variants: [{id: entry-b, hidden: true}]}
      - {type: EntryReplacement, baseline: entry-c, variants: [entry-d]}
      - {type: InlineVariable, key: price, baseline: 10, variants: [12.5]}
      - {type: InlineVariable, key: flags, baseline: {a: true}, variants: [{a: false, b: "x"}]}
`, nil)
	r := e.identify(t, "", page("/"))
	x, ok := selected(r, "exp")
	if !ok || x.VariantIndex != 1 {
		t.Fatalf("experiences %+v", r.Experiences)
	}
	if hero, _ := x.Variants.Get("hero"); hero != "" || x.Variants[1] != (engine.Variant{Key: "entry-c", Value: "entry-d"}) {
		t.Errorf("variants %v: hidden must be \"\", key defaults to the baseline id", x.Variants)
	}
	got, _ := json.Marshal(r.Changes)
	want := `[{"key":"price","type":"Variable","value":12.5,"meta":{"experienceId":"exp","variantIndex":1}},` +
		`{"key":"flags","type":"Variable","value":{"a":false,"b":"x"},"meta":{"experienceId":"exp","variantIndex":1}}]`
	if string(got) != want {
		t.Errorf("changes\n got %s\nwant %s", got, want)
	}
}

func TestComponentEventLocksAssignment(t *testing.T) {
	e := open(t, stickyExp("[0.5, 0.5]", 1, "", 1), nil)
	r := e.identify(t, "v", page("/"))
	x, _ := selected(r, "exp")
	other := 1 - x.VariantIndex
	// The visitor reports having seen the other variant (e.g. rendered
	// from an edge cache): that becomes the sticky assignment.
	r = e.identify(t, "v", engine.Event{Type: engine.EventComponent, ComponentID: "hero",
		ExperienceID: "exp", VariantIndex: &other})
	if x, _ := selected(r, "exp"); x.VariantIndex != other || r.Profile.StickyVariants["exp"] != other {
		t.Errorf("after a component event for variant %d: %+v sticky %v", other, x, r.Profile.StickyVariants)
	}
	// Out-of-range variants and unknown experiences are ignored.
	bad := 7
	r = e.identify(t, "v", engine.Event{Type: engine.EventComponent, ComponentID: "hero", ExperienceID: "exp", VariantIndex: &bad},
		engine.Event{Type: engine.EventComponent, ComponentID: "hero", ExperienceID: "nope", VariantIndex: &bad})
	if r.Profile.StickyVariants["exp"] != other || len(r.Profile.StickyVariants) != 1 {
		t.Errorf("sticky %v", r.Profile.StickyVariants)
	}
}

func TestExposuresOncePerVariantAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	var got []engine.Exposure
	opts := &engine.Options{
		Rules:      mustRules(t, stickyExp("[0.5, 0.5]", 1, "", 1)),
		OnExposure: func(x engine.Exposure) { got = append(got, x) },
	}
	e, err := engine.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := engine.Request{Events: []engine.Event{page("/")}}
	r, _ := e.Identify(ctx, "v", req)
	e.Identify(ctx, "v", req)
	if len(got) != 1 || got[0].ProfileID != "v" || got[0].ExperienceID != "exp" {
		t.Fatalf("exposures %+v, want one", got)
	}
	e.Close()
	e, err = engine.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.Identify(ctx, "v", req)
	if len(got) != 1 {
		t.Fatalf("exposure emitted again after a restart: %+v", got)
	}
	// A new variant of the same experience is a new exposure.
	x, _ := selected(r, "exp")
	other := 1 - x.VariantIndex
	e.Identify(ctx, "v", engine.Request{Events: []engine.Event{{Type: engine.EventComponent,
		ComponentID: "hero", ExperienceID: "exp", VariantIndex: &other}}})
	if len(got) != 2 || got[1].VariantIndex != other {
		t.Fatalf("exposures %+v, want a second one for variant %d", got, other)
	}
}

func TestBackupRestoreExport(t *testing.T) {
	src := open(t, planRules, nil)
	ctx := context.Background()
	for i := range 30 {
		src.identify(t, fmt.Sprintf("v%02d", i), identifyEv(fmt.Sprintf("user-%d", i%25), map[string]any{"plan": "pro", "i": float64(i)}), track("purchase"))
	}
	var backup, want bytes.Buffer
	if err := src.Backup(ctx, &backup); err != nil {
		t.Fatal(err)
	}
	if err := src.Export(ctx, &want); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(want.String(), "\n"); n != 25 {
		t.Errorf("export has %d profiles, want 25 (5 merged)", n)
	}
	dst := open(t, planRules, nil)
	if err := dst.Restore(ctx, &backup); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := dst.Export(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Errorf("restored export differs:\n got %s\nwant %s", got.String(), want.String())
	}
	// Aliases came along: a merged-away id resolves in the restored copy.
	r, err := dst.Get(ctx, "v25")
	if err != nil || r.Profile.ID != "v00" {
		t.Errorf("Get(v25) in the restored store = %v, %v; want v00", r, err)
	}
	var first engine.Profile
	if err := json.Unmarshal([]byte(strings.SplitN(want.String(), "\n", 2)[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.ID != "v00" || len(first.Audiences) == 0 {
		t.Errorf("first exported profile %+v", first)
	}
}

func TestProfileTTL(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for Badger's one-second TTL granularity")
	}
	e := open(t, planRules, func(o *engine.Options) { o.ProfileTTL = time.Second })
	r := e.identify(t, "", identifyEv("user-ttl", nil))
	if !strings.Contains(e.dump(t), "u/user-ttl") {
		t.Fatal("alias not written")
	}
	if _, err := e.Get(context.Background(), r.Profile.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond)
	if _, err := e.Get(context.Background(), r.Profile.ID); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Get after the TTL: %v, want ErrNotFound", err)
	}
	if d := e.dump(t); d != "" {
		t.Errorf("keys left after the TTL:\n%s", d)
	}
}

// TestVariantsJSON: Variants encode as the wire format's object (in
// component order; {} when empty, never null) and decode back.
func TestVariantsJSON(t *testing.T) {
	for _, tt := range []struct {
		v    engine.Variants
		want string
	}{
		{nil, `{}`},
		{engine.Variants{}, `{}`},
		{engine.Variants{{Key: "hero", Value: "entry-b"}, {Key: "a\"<", Value: ""}}, `{"hero":"entry-b","a\"\u003c":""}`},
	} {
		b, err := json.Marshal(struct {
			V engine.Variants `json:"variants"`
		}{tt.v})
		if err != nil || string(b) != `{"variants":`+tt.want+`}` {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tt.v, b, err, tt.want)
		}
		var back engine.Variants
		if err := json.Unmarshal([]byte(tt.want), &back); err != nil || len(back) != len(tt.v) {
			t.Errorf("Unmarshal(%s) = %v, %v", tt.want, back, err)
		}
		for _, x := range tt.v {
			if got, ok := back.Get(x.Key); !ok || got != x.Value {
				t.Errorf("Unmarshal(%s): %q = %q, %v; want %q", tt.want, x.Key, got, ok, x.Value)
			}
		}
	}
}
