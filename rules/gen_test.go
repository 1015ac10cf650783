package rules

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Generators of realistic audiences and profiles for the differential
// tests and the benchmarks.

var (
	genPlans      = []string{"free", "starter", "pro", "enterprise"}
	genIndustries = []string{"retail", "finance", "health", "media", "travel", "saas", "education", "gaming"}
	genCountries  = []string{"US", "CA", "GB", "DE", "FR", "BR", "JP", "IN", "AU", "ES", "IT", "NL"}
	genCities     = []string{"San Francisco", "Toronto", "London", "Berlin", "Paris", "São Paulo", "Tokyo", "Mumbai"}
	genContinents = []string{"NA", "EU", "SA", "AS", "OC"}
	genDevices    = []string{"mobile", "tablet", "desktop", "bot", ""}
	genSources    = []string{"google", "newsletter", "facebook", "twitter", ""}
	genEvents     = []string{"purchase", "signup", "add_to_cart", "checkout", "search", "share"}
	genPaths      = []string{"/", "/pricing", "/blog/go-tips", "/blog/launch", "/docs/intro", "/docs/api/errors", "/sale/winter", "/account"}
	genDomains    = []string{"acme.com", "globex.com", "gmail.com", "example.org"}
	genWindows    = []string{"90m", "24h", "7d", "30d", "2w", "60d"}
	genLocales    = []string{"en-US", "fr-FR", "de-DE", "pt-BR", "ja-JP"}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func quoteList(r *rand.Rand, xs []string, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("%q", pick(r, xs))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// genRule returns one audience rule of a mixed, realistic shape. Rules
// may use inAudience on the audiences before index i.
func genRule(r *rand.Rand, i int) string {
	switch r.IntN(14) {
	case 0:
		return fmt.Sprintf("traits.plan == %q", pick(r, genPlans))
	case 1:
		return fmt.Sprintf("traits.industry in %s", quoteList(r, genIndustries, 3))
	case 2:
		return fmt.Sprintf("location.countryCode in %s", quoteList(r, genCountries, 1+r.IntN(5)))
	case 3:
		lo := 18 + r.IntN(30)
		return fmt.Sprintf("traits.age >= %d && traits.age < %d", lo, lo+10+r.IntN(20))
	case 4:
		return fmt.Sprintf("session.count > %d && session.averageSessionLength >= %d", r.IntN(10), 30*r.IntN(10))
	case 5:
		return fmt.Sprintf("page.path startsWith %q", pick(r, []string{"/blog", "/docs", "/sale", "/pricing"}))
	case 6:
		return fmt.Sprintf("traits.email endsWith %q || page.url contains %q", "@"+pick(r, genDomains), "utm_source="+pick(r, genSources))
	case 7:
		return fmt.Sprintf("eventCount(%q, %q) >= %d", pick(r, genEvents), pick(r, genWindows), 1+r.IntN(3))
	case 8:
		return fmt.Sprintf("hasEvent(%q, %q) && not hasEvent(%q)", pick(r, genEvents), pick(r, genWindows), pick(r, genEvents))
	case 9:
		return fmt.Sprintf("location.city == %q || location.continent == %q", pick(r, genCities), pick(r, genContinents))
	case 10:
		return fmt.Sprintf("session.isReturningVisitor && device.type == %q", pick(r, genDevices))
	case 11:
		if i >= 2 {
			return fmt.Sprintf("inAudience(\"aud-%d\") && !inAudience(\"aud-%d\")", r.IntN(i), r.IntN(i))
		}
		return "jurisdiction == \"GDPR\""
	case 12:
		return fmt.Sprintf("viewedPage(%q, %q) && campaign.source == %q", pick(r, genPaths), pick(r, genWindows), pick(r, genSources))
	default:
		return fmt.Sprintf("traits.seats > %d && traits.beta == true && locale startsWith %q", r.IntN(50), pick(r, []string{"en", "fr", "de"}))
	}
}

// genRules returns a YAML rules file with n generated audiences.
func genRules(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	b.WriteString("audiences:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: aud-%d\n    when: %q\n", i, genRule(r, i))
	}
	return []byte(b.String())
}

// genHistory returns a history of up to max occurrences in the last 80
// days before now.
func genHistory(r *rand.Rand, now time.Time, max int) *History {
	h := &History{}
	for range 1 + r.IntN(max) {
		h.Add(now.Add(-time.Duration(r.Int64N(int64(80 * 24 * time.Hour)))).UnixMilli())
	}
	return h
}

// genEnv returns a realistic profile. With odd set, traits take unusual
// types (ints, strings for numbers, nil, lists, nested maps) so the
// differential tests reach the fast path's bail-outs.
func genEnv(r *rand.Rand, odd bool) *Env {
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(1000)) * time.Minute)
	traits := map[string]any{
		"plan":     pick(r, genPlans),
		"industry": pick(r, genIndustries),
		"age":      float64(16 + r.IntN(60)),
		"email":    fmt.Sprintf("user%d@%s", r.IntN(1000), pick(r, genDomains)),
		"seats":    float64(r.IntN(100)),
		"beta":     r.IntN(2) == 0,
	}
	if odd && r.IntN(5) == 0 {
		delete(traits, pick(r, []string{"plan", "industry", "age", "email", "seats", "beta"}))
	}
	if odd {
		for k := range traits {
			if r.IntN(3) != 0 {
				continue
			}
			switch r.IntN(9) {
			case 0:
				traits[k] = nil
			case 1:
				traits[k] = r.IntN(100)
			case 2:
				traits[k] = int64(r.IntN(100))
			case 3:
				traits[k] = fmt.Sprint(r.IntN(100))
			case 4:
				traits[k] = []any{"pro", 1.0, nil}
			case 5:
				traits[k] = map[string]any{"tier": "gold"}
			case 6:
				traits[k] = true
			case 7:
				traits[k] = float32(1)
			default:
				traits[k] = ""
			}
		}
	}
	env := &Env{
		Traits: traits,
		Location: Location{
			CountryCode: pick(r, genCountries), City: pick(r, genCities), Continent: pick(r, genContinents),
			Region: pick(r, []string{"CA", "NY", "", "BY"}),
		},
		Session: Session{
			ID: "s", Count: int64(r.IntN(20)), IsReturningVisitor: r.IntN(2) == 0,
			AverageSessionLength: int64(r.IntN(600)), SessionLength: int64(r.IntN(600)),
		},
		Page: Page{
			Path: pick(r, genPaths), URL: "https://x.test" + pick(r, genPaths) + "?utm_source=" + pick(r, genSources),
			Query: map[string]string{"utm_source": pick(r, genSources)},
		},
		Campaign:     Campaign{Source: pick(r, genSources)},
		Device:       Device{Type: pick(r, genDevices)},
		UserID:       fmt.Sprint("u", r.IntN(100)),
		Locale:       pick(r, genLocales),
		Jurisdiction: pick(r, []string{"GDPR", "CCPA", ""}),
		Random:       r.Float64(),
		Now:          now,
		Events:       map[string]*History{},
		Views:        map[string]*History{},
	}
	for _, e := range genEvents {
		if r.IntN(2) == 0 {
			env.Events[e] = genHistory(r, now, 5)
		}
	}
	for _, p := range genPaths {
		if r.IntN(3) == 0 {
			env.Views[p] = genHistory(r, now, 3)
		}
	}
	if odd && r.IntN(4) == 0 {
		env.Traits = nil
	}
	return env
}
