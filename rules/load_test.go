package rules

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// golden compares got with testdata/<name>, rewriting it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s mismatch\n got: %s\nwant: %s", path, got, want)
	}
}

const okAudiences = `audiences:
  - id: a
    when: traits.plan == "pro"
  - id: b
    when: session.count > 1
`

// loadErrorCases holds one invalid file per load-time check. The golden
// file testdata/errors/<name>.txt holds the exact error text.
var loadErrorCases = []struct {
	name, file, src string
	n               int // number of errors expected
}{
	{"empty", "r.yaml", "  \n", 1},
	{"yaml-syntax", "r.yaml", "audiences:\n  - id: a\n   when: [\n", 1},
	{"json-syntax", "r.json", "{\n  \"audiences\": [\n    {\"id\": \"a\",}\n  ]\n}\n", 1},
	{"json-comment", "r.json", "{\n  # comment\n  \"audiences\": []\n}\n", 1},
	{"not-a-mapping", "r.yaml", "- a\n- b\n", 1},
	{"unknown-top-field", "r.yaml", okAudiences + "experiments: []\n", 1},
	{"unknown-audience-field", "r.yaml", "audiences:\n  - id: a\n    when: true\n    rule: x\n", 1},
	{"unknown-experience-field", "r.yaml", "experiences:\n  - id: e\n    weights: [1]\n", 1},
	{"unknown-component-field", "r.yaml", "experiences:\n  - id: e\n    components:\n      - type: InlineVariable\n        key: k\n        baseline: 1\n        values: [2]\n", 1},
	{"unknown-field-json", "r.json", "{\"audiences\": [{\"id\": \"a\", \"when\": \"true\", \"rule\": 1}]}", 1},
	{"duplicate-key", "r.yaml", "audiences:\n  - id: a\n    when: true\n    when: false\n", 1},
	{"duplicate-audience", "r.yaml", okAudiences + "  - id: a\n    when: false\n", 1},
	{"duplicate-experience", "r.yaml", "experiences:\n  - id: e\n  - id: e\n", 1},
	{"missing-id", "r.yaml", "audiences:\n  - when: true\n", 1},
	{"empty-id", "r.yaml", "audiences:\n  - id: \"\"\n    when: true\n", 1},
	{"missing-when", "r.yaml", "audiences:\n  - id: a\n    name: A\n", 1},
	{"null-when", "r.yaml", "audiences:\n  - id: a\n    when:\n", 1},
	{"unknown-audience-ref", "r.yaml", okAudiences + "experiences:\n  - id: e\n    audience: c\n", 1},
	{"inaudience-unknown", "r.yaml", "audiences:\n  - id: a\n    when: inAudience(\"zz\") || true\n", 1},
	{"inaudience-nonconstant", "r.yaml", "audiences:\n  - id: a\n    when: inAudience(traits.seg)\n", 1},
	{"inaudience-indirect", "r.yaml", "audiences:\n  - id: a\n    when: \"true\"\n  - id: b\n    when: let f = inAudience; f(\"a\")\n", 1},
	{"inaudience-cycle", "r.yaml", "audiences:\n  - id: a\n    when: inAudience(\"b\")\n  - id: b\n    when: traits.x == 1 && inAudience(\"c\")\n  - id: c\n    when: inAudience(\"a\")\n", 1},
	{"inaudience-self", "r.yaml", "audiences:\n  - id: a\n    when: not inAudience(\"a\")\n", 1},
	{"expr-syntax", "r.yaml", "audiences:\n  - id: a\n    when: traits.plan == \n", 1},
	{"expr-unknown-name", "r.yaml", "audiences:\n  - id: a\n    when: location.country_code == \"US\"\n", 1},
	{"expr-quoted", "r.yaml", "audiences:\n  - id: a\n    when: \"session.count > 'x'\"\n", 1},
	{"expr-block", "r.yaml", "audiences:\n  - id: a\n    when: |\n      session.count > 1 &&\n        nosuch.thing\n", 1},
	{"expr-not-bool", "r.yaml", "audiences:\n  - id: a\n    when: session.count + 1\n", 1},
	{"expr-json", "r.json", "{\"audiences\": [\n  {\"id\": \"a\", \"when\": \"session.count ==\"}\n]}", 1},
	{"helper-bad-window", "r.yaml", "audiences:\n  - id: a\n    when: eventCount(\"buy\", \"30days\") > 1\n", 1},
	{"helper-zero-window", "r.yaml", "audiences:\n  - id: a\n    when: hasEvent(\"buy\", \"0d\")\n", 1},
	{"helper-bad-glob", "r.yaml", "audiences:\n  - id: a\n    when: viewedPage(\"/docs/[a\")\n", 1},
	{"helper-arg-type", "r.yaml", "audiences:\n  - id: a\n    when: eventCount(1) > 0\n", 1},
	{"helper-too-many-args", "r.yaml", "audiences:\n  - id: a\n    when: hasEvent(\"a\", \"1d\", \"2d\")\n", 1},
	{"distribution-length", "r.yaml", "experiences:\n  - id: e\n    distribution: [0.5, 0.25, 0.25]\n    components:\n      - type: EntryReplacement\n        baseline: x\n        variants: [y]\n", 1},
	{"distribution-sum", "r.yaml", "experiences:\n  - id: e\n    distribution: [0.5, 0.6]\n    components:\n      - type: EntryReplacement\n        baseline: x\n        variants: [y]\n", 1},
	{"distribution-sum-json", "r.json", "{\"experiences\": [{\"id\": \"e\", \"distribution\": [0.3, 0.3],\n  \"components\": [{\"type\": \"EntryReplacement\", \"baseline\": \"x\", \"variants\": [\"y\"]}]}]}", 1},
	{"distribution-negative", "r.yaml", "experiences:\n  - id: e\n    distribution: [1.5, -0.5]\n    components:\n      - type: EntryReplacement\n        baseline: x\n        variants: [y]\n", 1},
	{"distribution-empty", "r.yaml", "experiences:\n  - id: e\n    distribution: []\n", 1},
	{"distribution-not-number", "r.yaml", "experiences:\n  - id: e\n    distribution: [\"0.5\", 0.5]\n", 1},
	{"variant-count-mismatch", "r.yaml", "experiences:\n  - id: e\n    components:\n      - type: EntryReplacement\n        baseline: x\n        variants: [y]\n      - type: InlineVariable\n        key: k\n        baseline: 1\n        variants: [2, 3]\n", 1},
	{"traffic-range", "r.yaml", "experiences:\n  - id: e\n    traffic: 1.5\n", 1},
	{"traffic-type", "r.yaml", "experiences:\n  - id: e\n    traffic: all\n", 1},
	{"namespace-range", "r.yaml", "experiences:\n  - id: e\n    namespace: {id: n, range: [0, 2]}\n", 1},
	{"namespace-order", "r.yaml", "experiences:\n  - id: e\n    namespace: {id: n, range: [0.6, 0.4]}\n", 1},
	{"namespace-missing", "r.yaml", "experiences:\n  - id: e\n    namespace: {range: [0, 1, 1]}\n", 2},
	{"null-variable", "r.yaml", "experiences:\n  - id: e\n    components:\n      - type: InlineVariable\n        key: k\n        baseline: null\n", 1},
	{"array-variable", "r.yaml", "experiences:\n  - id: e\n    components:\n      - type: InlineVariable\n        key: k\n        baseline: 1\n        variants: [[1, 2]]\n", 1},
	{"array-variable-json", "r.json", "{\"experiences\": [{\"id\": \"e\", \"components\": [\n  {\"type\": \"InlineVariable\", \"key\": \"k\", \"baseline\": [1], \"variants\": [null]}]}]}", 2},
	{"unknown-type", "r.yaml", "experiences:\n  - id: e\n    type: rollout\n", 1},
	{"unknown-status", "r.yaml", "experiences:\n  - id: e\n    status: draft\n", 1},
	{"unknown-component-type", "r.yaml", "experiences:\n  - id: e\n    components:\n      - type: Banner\n        key: k\n        baseline: x\n", 1},
	{"missing-component-type", "r.yaml", "experiences:\n  - id: e\n    components:\n      - key: k\n        baseline: x\n", 1},
	{"missing-baseline", "r.yaml", "experiences:\n  - id: e\n    components:\n      - type: EntryReplacement\n        variants: [y]\n", 1},
	{"missing-inline-key", "r.yaml", "experiences:\n  - id: e\n    components:\n      - type: InlineVariable\n        baseline: 1\n", 1},
	{"hidden-not-bool", "r.yaml", "experiences:\n  - id: e\n    components:\n      - type: EntryReplacement\n        baseline: x\n        variants: [{id: y, hidden: yes please}]\n", 1},
	{"bad-time", "r.yaml", "experiences:\n  - id: e\n    start: 2026-13-01\n", 1},
	{"end-before-start", "r.yaml", "experiences:\n  - id: e\n    start: 2026-02-01T00:00:00Z\n    end: 2026-01-01T00:00:00Z\n", 1},
	{"bucket-version", "r.yaml", "experiences:\n  - id: e\n    bucketVersion: -1\n", 1},
	{"cost-nested-loops", "r.yaml", "audiences:\n  - id: a\n    when: 'all(1..999, all(1..999, # > 0))'\n", 1},
	{"cost-repeat-json", "r.json", "{\"audiences\": [\n  {\"id\": \"a\", \"when\": \"traits.x == 1 || repeat(traits.name, 1000) == \\\"\\\"\"}\n]}", 1},
	{"several", "r.yaml", "audiences:\n  - id: a\n    when: nope ==\n  - id: a\n    when: true\nexperiences:\n  - id: e\n    audience: zz\n    traffic: -1\n    status: off\n", 4},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range loadErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.file, []byte(tc.src))
			if err == nil {
				t.Fatalf("Parse accepted the file: %+v", s)
			}
			if s != nil {
				t.Errorf("Parse returned a Set with an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
			var list Errors
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not rules.Errors", err)
			}
			if len(list) != tc.n {
				t.Errorf("got %d errors, want %d:\n%v", len(list), tc.n, err)
			}
			var first *Error
			if !errors.As(err, &first) || first != list[0] {
				t.Errorf("errors.As(*Error) did not find the first error")
			}
			for _, e := range list {
				if e.Pos.File != tc.file || e.Pos.Line < 1 || e.Pos.Column < 1 {
					t.Errorf("error without a full position: %+v", e)
				}
			}
			golden(t, "errors/"+tc.name+".txt", err.Error()+"\n")
		})
	}
}

func TestParseErrorsDeterministic(t *testing.T) {
	src := []byte(loadErrorCases[len(loadErrorCases)-1].src)
	_, first := Parse("r.yaml", src)
	for range 20 {
		if _, err := Parse("r.yaml", src); err.Error() != first.Error() {
			t.Fatalf("error order changed:\n%v\nvs\n%v", err, first)
		}
	}
}

func TestLoad(t *testing.T) {
	s, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Audiences) != 8 || len(s.Experiences) != 3 {
		t.Fatalf("got %d audiences and %d experiences", len(s.Audiences), len(s.Experiences))
	}
	if got := s.Audiences[0].Pos; got != (Pos{File: "testdata/example.yaml", Line: 4, Column: 5}) {
		t.Errorf("audience position %+v", got)
	}
	for i, a := range s.Audiences {
		if !s.Compiled(i) {
			t.Errorf("audience %q is not on the fast path", a.ID)
		}
	}
	env := testEnv()
	env.Traits = map[string]any{"email": "ann@acme.com", "teams": []any{"ops"}}
	env.Page.Query = map[string]string{"ref": "intranet"}
	env.Session.AverageSessionLength = 150
	m := make([]bool, len(s.Audiences))
	if err := s.Match(env, m); err != nil || !m[s.AudienceIndex("audience-acme-staff")] {
		t.Errorf("audience-acme-staff: %v %v", m, err)
	}
	_, err = Load("testdata/no-such-file.yaml")
	if !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrInvalid) {
		t.Errorf("missing file: %v", err)
	}
}

func TestParseDefaults(t *testing.T) {
	src := `
audiences:
  - id: a
    when: "true"
experiences:
  - id: e
    components:
      - type: EntryReplacement
        baseline: base-entry
        variants: [v1, {id: v2, hidden: true}]
      - type: InlineVariable
        key: color
        baseline: blue
        variants: [1, {shade: dark, alpha: 0.5}]
  - id: f
    audience: a
    bucketVersion: 0
    type: personalization
    status: paused
    traffic: 0
    start: 2026-01-01T10:00:00+02:00
    components:
      - type: InlineVariable
        key: on
        baseline: false
        variants: [true]
`
	s, err := Parse("d.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	e := s.Experiences[0]
	if e.Type != TypeExperiment || e.Traffic != 1 || e.Status != StatusRunning || e.AudienceIndex != -1 || e.Sticky || e.Namespace != nil {
		t.Errorf("defaults not applied: %+v", e)
	}
	if want := []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}; !reflect.DeepEqual(e.Distribution, want) {
		t.Errorf("default distribution %v, want %v", e.Distribution, want)
	}
	c := e.Components[0]
	if c.Key != "base-entry" || c.Baseline != (Variant{Value: "base-entry"}) ||
		!reflect.DeepEqual(c.Variants, []Variant{{Value: "v1"}, {Value: "v2", Hidden: true}}) {
		t.Errorf("entry replacement: %+v", c)
	}
	c = e.Components[1]
	want := []Variant{{Value: 1.0}, {Value: map[string]any{"shade": "dark", "alpha": 0.5}}}
	if c.Baseline.Value != "blue" || !reflect.DeepEqual(c.Variants, want) {
		t.Errorf("inline variable: %+v", c)
	}
	f := s.Experiences[1]
	if f.AudienceIndex != 0 || f.Type != TypePersonalization || f.Status != StatusPaused || f.Traffic != 0 ||
		f.Start.UTC().Hour() != 8 || !f.End.IsZero() || f.Components[0].Baseline.Value != false {
		t.Errorf("explicit fields: %+v", f)
	}
	if s.AudienceIndex("a") != 0 || s.AudienceIndex("zz") != -1 {
		t.Errorf("AudienceIndex")
	}
}

// TestParseJSONMatchesYAML loads the same rules written as JSON and YAML.
func TestParseJSONMatchesYAML(t *testing.T) {
	y, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := Load("testdata/example.json")
	if err != nil {
		t.Fatal(err)
	}
	strip := func(s *Set) *Set {
		c := &Set{Audiences: append([]Audience(nil), s.Audiences...), Experiences: append([]Experience(nil), s.Experiences...)}
		for i := range c.Audiences {
			c.Audiences[i].Pos = Pos{}
			c.Audiences[i].When = strings.Join(strings.Fields(c.Audiences[i].When), " ")
		}
		for i := range c.Experiences {
			c.Experiences[i].Pos = Pos{}
			c.Experiences[i].QAUsers = append([]QAUser(nil), c.Experiences[i].QAUsers...)
			for j := range c.Experiences[i].QAUsers {
				c.Experiences[i].QAUsers[j].Pos = Pos{}
			}
		}
		return c
	}
	if a, b := strip(y), strip(j); !reflect.DeepEqual(a, b) {
		t.Errorf("JSON and YAML differ:\n%+v\n%+v", a, b)
	}
	if p := j.Experiences[1].Pos; p.File != "testdata/example.json" || p.Line < 2 {
		t.Errorf("JSON position %+v", p)
	}
}

func TestParseEmptySet(t *testing.T) {
	for _, src := range []string{"{}", "audiences: []\n", "audiences:\nexperiences:\n"} {
		s, err := Parse("e", []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if err := s.Match(&Env{}, nil); err != nil {
			t.Errorf("%q: Match: %v", src, err)
		}
	}
}

// TestParseAliasBomb checks that YAML aliases cannot blow a small file up
// into a huge variable value.
func TestParseAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("experiences:\n  - id: e\n    components:\n      - type: InlineVariable\n        key: k\n        baseline: &l0 {a: 1, b: 2, c: 3, d: 4}\n        variants:\n")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&b, "          - &l%d {a: *l%d, b: *l%d, c: *l%d, d: *l%d}\n", i, i-1, i-1, i-1, i-1)
	}
	b.WriteString("    distribution: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]\n")
	_, err := Parse("bomb.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "value too large") {
		t.Fatalf("got %v", err)
	}
}
