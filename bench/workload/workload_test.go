package workload

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/rules"
)

var fixedNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func newGen(t *testing.T, cfg Config) *Generator {
	t.Helper()
	if cfg.Now.IsZero() {
		cfg.Now = fixedNow
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestDeterministicBySeed(t *testing.T) {
	a := newGen(t, Config{Seed: 7, Profiles: 100})
	b := newGen(t, Config{Seed: 7, Profiles: 100})
	c := newGen(t, Config{Seed: 8, Profiles: 100})
	for i := 0; i < 100; i++ {
		pa, pb := a.Profile(i), b.Profile(i)
		if !reflect.DeepEqual(pa, pb) {
			t.Fatalf("profile %d differs between two generators of seed 7", i)
		}
		if a.ID(i) == c.ID(i) {
			t.Fatalf("profile %d has the same id under seeds 7 and 8", i)
		}
	}
	if !bytes.Equal(a.RulesYAML(), b.RulesYAML()) {
		t.Fatal("rules differ between two generators of seed 7")
	}
	if bytes.Equal(a.RulesYAML(), c.RulesYAML()) {
		t.Fatal("rules of seeds 7 and 8 are identical")
	}
	ids := map[string]bool{}
	for i := 0; i < 100; i++ {
		ids[a.ID(i)] = true
	}
	if len(ids) != 100 {
		t.Fatalf("%d distinct ids for 100 profiles", len(ids))
	}
}

func TestRulesParseAndEveryAudienceCompiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		aud  int
		exp  int
	}{
		{"defaults", Config{Profiles: 50}, 100, 20},
		{"one audience", Config{Profiles: 50, Audiences: 1, Experiences: 3}, 1, 3},
		{"thousand", Config{Profiles: 50, Audiences: 1000, Seed: 3}, 1000, 20},
		{"no experiences", Config{Profiles: 50, Audiences: 17, NoExperiences: true}, 17, 0},
		{"peer", Config{Profiles: 50, Kind: KindPeer}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGen(t, tc.cfg)
			_, set, err := g.Rules()
			if err != nil {
				t.Fatal(err)
			}
			if len(set.Audiences) != tc.aud || len(set.Experiences) != tc.exp {
				t.Fatalf("got %d audiences, %d experiences; want %d, %d", len(set.Audiences), len(set.Experiences), tc.aud, tc.exp)
			}
			// Every audience runs without error on generated profiles, and
			// each one alone too (MatchOne after its dependencies).
			matched := make([]bool, len(set.Audiences))
			hits := make([]int, len(set.Audiences))
			for i := 0; i < g.Len(); i++ {
				p := g.Profile(i)
				env := p.Env(fixedNow)
				if err := set.Match(&env, matched); err != nil {
					t.Fatalf("profile %d: %v", i, err)
				}
				for _, k := range set.Order() {
					if _, err := set.MatchOne(&env, k, matched); err != nil {
						t.Fatalf("profile %d, audience %d: %v", i, k, err)
					}
					if matched[k] {
						hits[k]++
					}
				}
			}
			if tc.cfg.Kind == KindPeer && hits[0] != g.Len() {
				t.Fatalf("peer audience matched %d of %d profiles, want all", hits[0], g.Len())
			}
			var some int
			for _, h := range hits {
				if h > 0 {
					some++
				}
			}
			if some == 0 {
				t.Fatal("no audience matched any profile")
			}
		})
	}
}

func TestEveryShapeAppears(t *testing.T) {
	g := newGen(t, Config{Profiles: 1, Audiences: len(Shapes())})
	y := string(g.RulesYAML())
	for _, s := range Shapes() {
		if !strings.Contains(y, "-"+s+"\n") {
			t.Errorf("shape %s missing from\n%s", s, y)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{{Kind: "nope"}, {Profiles: -1}, {Audiences: -2}, {Experiences: -1}} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) error = %v, want ErrConfig", cfg, err)
		}
	}
}

func TestPopulateRequestIsValidJSONShape(t *testing.T) {
	g := newGen(t, Config{Profiles: 20})
	for i := 0; i < 20; i++ {
		p := g.Profile(i)
		req := p.PopulateRequest(fixedNow)
		if n := len(req.Events); n < 3 || n > 200 {
			t.Fatalf("profile %d: %d populate events", i, n)
		}
		last := req.Events[len(req.Events)-1]
		if last.Type != "identify" || last.Traits["plan"] == nil {
			t.Fatalf("profile %d: last populate event %+v is not the identify with traits", i, last)
		}
		if _, err := json.Marshal(req); err != nil {
			t.Fatal(err)
		}
		if vis := g.Visitor(i); vis != p.Visitor() {
			t.Fatalf("Visitor(%d) = %+v, want %+v", i, vis, p.Visitor())
		}
		v := p.Visitor().VisitRequest(uint64(i))
		if len(v.Events) != 2 || v.Events[0].Type != "page" || v.Events[1].Type != "identify" {
			t.Fatalf("visit request %+v is not one page and one identify", v.Events)
		}
	}
}

func TestZipfSkewAndRange(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	z, err := NewZipf(r, 1.1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, 1000)
	for i := 0; i < 100000; i++ {
		k := z.Next()
		if k < 0 || k >= 1000 {
			t.Fatalf("index %d out of range", k)
		}
		counts[k]++
	}
	top := 0
	for _, c := range counts {
		top = max(top, c)
	}
	if top < 100000/20 { // rank 0 of Zipf(1.1) over 1000 gets ~ 1/H ≈ 15%
		t.Fatalf("hottest profile drawn %d times of 100000: not skewed", top)
	}
	if _, err := NewZipf(r, 1, 10); !errors.Is(err, ErrConfig) {
		t.Fatalf("NewZipf(s=1) error = %v, want ErrConfig", err)
	}
}

func TestEnvHistories(t *testing.T) {
	p := Profile{ID: "x", Sessions: 3, Events: []Stamp{{"buy", fixedNow.Add(-48 * time.Hour).UnixMilli()}, {"buy", fixedNow.Add(-time.Hour).UnixMilli()}}}
	env := p.Env(fixedNow)
	set, err := rules.Parse("t.yaml", []byte(`audiences:
  - {id: a, when: 'eventCount("buy", "24h") == 1 && eventCount("buy") == 2 && session.isReturningVisitor'}
`))
	if err != nil {
		t.Fatal(err)
	}
	m := []bool{false}
	if err := set.Match(&env, m); err != nil || !m[0] {
		t.Fatalf("Match = %v, %v; want true", m[0], err)
	}
}

func TestEveryRegionHasACity(t *testing.T) {
	for _, c := range countries {
		if len(c.v.cities) != len(c.v.regions) {
			t.Errorf("%s: %d cities for %d regions", c.v.code, len(c.v.cities), len(c.v.regions))
		}
	}
}
