package workload

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// shape is one kind of audience rule people write. gen returns the rule's
// name and expression; r varies the parameters, prev lists the ids of the
// audiences defined before (for inAudience).
type shape struct {
	kind string
	gen  func(r *rand.Rand, prev []string) (name, when string)
}

func quote(s string) string { return strconv.Quote(s) }

// yamlQuote writes s as a YAML single-quoted scalar, which keeps the
// double quotes of expressions readable.
func yamlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = quote(x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// some returns k distinct values of xs in a random order.
func some[T any](r *rand.Rand, xs []weighted[T], k int) []T {
	idx := r.Perm(len(xs))
	out := make([]T, 0, k)
	for _, i := range idx[:min(k, len(xs))] {
		out = append(out, xs[i].v)
	}
	return out
}

var windows = []string{"24h", "7d", "14d", "30d", "90d"}

var shapes = []shape{
	{"trait-eq", func(r *rand.Rand, _ []string) (string, string) {
		p := plans[r.IntN(len(plans))].v
		return "Plan is " + p, fmt.Sprintf("traits.plan == %s", quote(p))
	}},
	{"trait-in", func(r *rand.Rand, _ []string) (string, string) {
		ps := some(r, plans, 2)
		return "Plans " + strings.Join(ps, " or "), fmt.Sprintf("traits.plan in %s", quoteList(ps))
	}},
	{"numeric-range", func(r *rand.Rand, _ []string) (string, string) {
		lo := []int{1, 10, 50, 200, 1000}[r.IntN(5)]
		return fmt.Sprintf("Companies of %d to %d", lo, lo*5), fmt.Sprintf("traits.companySize >= %d && traits.companySize < %d", lo, lo*5)
	}},
	{"location-in", func(r *rand.Rand, _ []string) (string, string) {
		cs := make([]string, 0, 4)
		for _, c := range some(r, countries, 2+r.IntN(3)) {
			cs = append(cs, c.code)
		}
		return "Visitors from " + strings.Join(cs, ", "), fmt.Sprintf("location.countryCode in %s", quoteList(cs))
	}},
	{"event-count", func(r *rand.Rand, _ []string) (string, string) {
		ev := trackEvents[r.IntN(len(trackEvents))].v
		w := windows[r.IntN(len(windows))]
		k := 1 + r.IntN(3)
		return fmt.Sprintf("%d+ %s in %s", k, ev, w), fmt.Sprintf("eventCount(%s, %s) >= %d", quote(ev), quote(w), k)
	}},
	{"suffix", func(r *rand.Rand, _ []string) (string, string) {
		d := domains[4+r.IntN(len(domains)-4)].v
		return "E-mail at " + d, fmt.Sprintf("traits.email endsWith %s", quote("@"+d))
	}},
	{"session", func(r *rand.Rand, _ []string) (string, string) {
		k := 2 + r.IntN(6)
		return fmt.Sprintf("Returning, %d+ sessions", k), fmt.Sprintf("session.isReturningVisitor && session.count >= %d", k)
	}},
	{"has-event", func(r *rand.Rand, _ []string) (string, string) {
		ev := trackEvents[r.IntN(len(trackEvents))].v
		w := windows[r.IntN(len(windows))]
		return fmt.Sprintf("Did %s in %s", ev, w), fmt.Sprintf("hasEvent(%s, %s)", quote(ev), quote(w))
	}},
	{"prefix", func(r *rand.Rand, _ []string) (string, string) {
		p := []string{"/docs", "/blog", "/product", "/account"}[r.IntN(4)]
		return "On " + p + " pages", fmt.Sprintf("page.path startsWith %s", quote(p))
	}},
	{"location-region", func(r *rand.Rand, _ []string) (string, string) {
		c := countries[r.IntN(5)].v
		reg := c.regions[r.IntN(len(c.regions))].v[0]
		return "Visitors from " + c.code + "-" + reg, fmt.Sprintf("location.countryCode == %s && location.regionCode == %s", quote(c.code), quote(reg))
	}},
	{"viewed-page", func(r *rand.Rand, _ []string) (string, string) {
		p := []string{"/pricing", "/docs/*", "/product/*", "/sale", "/blog/*"}[r.IntN(5)]
		w := windows[r.IntN(len(windows))]
		return "Viewed " + p + " in " + w, fmt.Sprintf("viewedPage(%s, %s)", quote(p), quote(w))
	}},
	{"device", func(r *rand.Rand, _ []string) (string, string) {
		d := []string{"mobile", "desktop", "tablet"}[r.IntN(3)]
		return d + " visitors", fmt.Sprintf("device.type == %s && device.os != \"\"", quote(d))
	}},
	{"contains", func(r *rand.Rand, _ []string) (string, string) {
		if r.IntN(2) == 0 {
			s := []string{"news", "partner", "goo"}[r.IntN(3)]
			return "Campaign source " + s + "*", fmt.Sprintf("campaign.source startsWith %s || campaign.medium == \"email\"", quote(s))
		}
		s := []string{"sale", "launch", "brand"}[r.IntN(3)]
		return "Campaign mentions " + s, fmt.Sprintf("campaign.name contains %s", quote(s))
	}},
	{"trait-bool", func(r *rand.Rand, _ []string) (string, string) {
		b := []string{"newsletter", "beta", "trial"}[r.IntN(3)]
		lo := 18 + 5*r.IntN(6)
		return fmt.Sprintf("%s, aged %d+", b, lo), fmt.Sprintf("traits.%s == true && traits.age >= %d", b, lo)
	}},
	{"jurisdiction", func(r *rand.Rand, _ []string) (string, string) {
		j := []string{"GDPR", "CCPA", "LGPD", "PIPEDA"}[r.IntN(4)]
		return "Under " + j, fmt.Sprintf("jurisdiction == %s", quote(j))
	}},
	{"in-audience", func(r *rand.Rand, prev []string) (string, string) {
		ref := prev[r.IntN(len(prev))]
		return "High-value " + ref, fmt.Sprintf("inAudience(%s) && traits.ltv > %d", quote(ref), 50*(1+r.IntN(8)))
	}},
	{"combined", func(r *rand.Rand, _ []string) (string, string) {
		ev := trackEvents[r.IntN(len(trackEvents))].v
		return "Engaged " + ev + " users", fmt.Sprintf("(traits.plan in [\"pro\", \"enterprise\"] || traits.seats > %d) && eventCount(%s, \"30d\") >= 1 && not traits.trial", 5+r.IntN(20), quote(ev))
	}},
}

// Shapes returns the names of the audience rule shapes a mixed workload
// cycles through, in order.
func Shapes() []string {
	out := make([]string, len(shapes))
	for i, s := range shapes {
		out[i] = s.kind
	}
	return out
}

var experienceTypes = []string{"experiment", "personalization"}

// RulesYAML returns the generated rules file. Audience k has shape
// k mod len(Shapes()) (inAudience refers to an earlier audience), so every
// shape is present from 17 audiences on. Experiences cycle through traffic
// 1, 0.5, 0.8 and 0.2, two to four variants, sticky or not, and come in
// namespaces of three mutually exclusive experiences.
func (g *Generator) RulesYAML() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# tailor bench workload (kind %s, seed %d): %d audiences, %d experiences.\n",
		g.cfg.Kind, g.cfg.Seed, g.numAudiences(), g.cfg.Experiences)
	b.WriteString("audiences:\n")
	if g.cfg.Kind == KindPeer {
		b.WriteString("  - id: aud-us-ca-pro\n    name: Pro plan in the US or Canada\n")
		b.WriteString("    when: location.countryCode in [\"US\", \"CA\"] && traits.plan == \"pro\"\n")
		b.WriteString("experiences:\n  - id: exp-peer\n    type: experiment\n    audience: aud-us-ca-pro\n")
		b.WriteString("    traffic: 1\n    distribution: [0.5, 0.5]\n    components:\n")
		b.WriteString("      - type: InlineVariable\n        key: peer-flag\n        baseline: false\n        variants: [true]\n")
		return []byte(b.String())
	}
	r := rand.New(rand.NewPCG(g.cfg.Seed, 0xa0d1e2ce))
	ids := make([]string, 0, g.cfg.Audiences)
	for k := 0; k < g.cfg.Audiences; k++ {
		sh := shapes[k%len(shapes)]
		if sh.kind == "in-audience" && len(ids) == 0 {
			sh = shapes[0]
		}
		name, when := sh.gen(r, ids)
		id := fmt.Sprintf("aud-%03d-%s", k, sh.kind)
		fmt.Fprintf(&b, "  - id: %s\n    name: %s\n    when: %s\n", id, yamlQuote(name), yamlQuote(when))
		ids = append(ids, id)
	}
	if g.cfg.Experiences == 0 {
		return []byte(b.String())
	}
	b.WriteString("experiences:\n")
	dists := []string{"[0.5, 0.5]", "[0.5, 0.25, 0.25]", "[0.2, 0.8]", "[0.25, 0.25, 0.25, 0.25]"}
	variants := []int{1, 2, 1, 3}
	traffic := []string{"1", "0.5", "0.8", "0.2"}
	nsRanges := []string{"[0, 0.34]", "[0.34, 0.67]", "[0.67, 1]"}
	for k := 0; k < g.cfg.Experiences; k++ {
		fmt.Fprintf(&b, "  - id: exp-%02d\n    type: %s\n", k, experienceTypes[k%2])
		if k%5 != 4 { // every fifth experience is for everyone
			fmt.Fprintf(&b, "    audience: %s\n", ids[r.IntN(len(ids))])
		}
		d := k % len(dists)
		fmt.Fprintf(&b, "    traffic: %s\n    distribution: %s\n", traffic[k%len(traffic)], dists[d])
		if k%2 == 0 {
			b.WriteString("    sticky: true\n")
		}
		fmt.Fprintf(&b, "    bucketVersion: %d\n", 1+k%3)
		if k%7 < 3 { // three of every seven share a namespace
			fmt.Fprintf(&b, "    namespace: {id: ns-%d, range: %s}\n", k/7, nsRanges[k%7])
		}
		b.WriteString("    components:\n")
		fmt.Fprintf(&b, "      - type: EntryReplacement\n        key: slot-%02d\n        baseline: entry-%02d-a\n        variants: [", k, k)
		for v := 0; v < variants[d]; v++ {
			if v > 0 {
				b.WriteString(", ")
			}
			if v == 1 && k%3 == 0 {
				fmt.Fprintf(&b, "{id: entry-%02d-%c, hidden: true}", k, 'b'+v)
			} else {
				fmt.Fprintf(&b, "entry-%02d-%c", k, 'b'+v)
			}
		}
		b.WriteString("]\n")
		fmt.Fprintf(&b, "      - type: InlineVariable\n        key: var-%02d\n        baseline: \"blue\"\n        variants: [", k)
		for v := 0; v < variants[d]; v++ {
			if v > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", []string{"green", "red", "orange"}[v])
		}
		b.WriteString("]\n")
	}
	return []byte(b.String())
}

func (g *Generator) numAudiences() int {
	if g.cfg.Kind == KindPeer {
		return 1
	}
	return g.cfg.Audiences
}
