package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
)

// slowRules returns n audiences of two nested all(...) over 150-element
// literal arrays, within the rules cost budget but not cheap.
func slowRules(t *testing.T, n int) *rules.Set {
	t.Helper()
	xs := make([]string, 150)
	for i := range xs {
		xs[i] = fmt.Sprint(i)
	}
	arr := "[" + strings.Join(xs, ",") + "]"
	var b strings.Builder
	b.WriteString("audiences:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: slow-%d\n    when: 'all(%s, all(%s, # >= 0))'\n", i, arr, arr)
	}
	set, err := rules.Parse("slow.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestTimeoutCoversEvaluation is the regression test of a GET that
// ignored the request timeout (200 after seconds of rule evaluation) and a
// POST that answered 503 only once every rule had run: both now stop at
// the deadline, between two audiences.
func TestTimeoutCoversEvaluation(t *testing.T) {
	eng := openTestEngine(t, "", engine.Options{Rules: slowRules(t, 80)})
	ctx := context.Background()
	if _, err := eng.Identify(ctx, "p1", engine.Request{Events: []engine.Event{{Type: engine.EventPage}}}); err != nil {
		t.Fatal(err)
	}
	// What one whole evaluation takes on this machine, now.
	start := time.Now()
	full, err := eng.Get(ctx, "p1")
	if err != nil || len(full.Profile.Audiences) != 80 {
		t.Fatalf("Get: %v", err)
	}
	whole := time.Since(start)

	h := New(eng, Options{Timeout: whole / 40})
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/profiles/p1", ""},
		{"POST", "/profiles/p1", `{"events":[{"type":"identify","traits":{"late":1}}]}`},
		{"POST", "/profiles", `{"events":[{"type":"identify","traits":{"late":1}}]}`},
		{"POST", "/profiles/p1?type=preflight", `{"events":[{"type":"page"}]}`},
		{"POST", "/events", `{"events":[{"type":"identify","traits":{"late":1},"anonymousId":"p1"}]}`},
	} {
		start := time.Now()
		a := do(t, h, tc.method, base+tc.path, tc.body, nil)
		took := time.Since(start)
		if a.status != http.StatusServiceUnavailable || a.Error == nil || a.Error.Code != "ERR_SERVICE_UNAVAILABLE" {
			t.Errorf("%s %s: %d %.120s..., want 503 ERR_SERVICE_UNAVAILABLE", tc.method, tc.path, a.status, a.raw)
		}
		// Stopping at the deadline takes a small part of a whole
		// evaluation, however fast or busy the machine: the margin is
		// twentyfold.
		if took > whole/2 {
			t.Errorf("%s %s: answered after %v; a whole evaluation takes %v, the timeout is %v",
				tc.method, tc.path, took, whole, whole/40)
		}
	}
	// Nothing was written by the timed-out POSTs.
	if p, err := eng.Get(ctx, "p1"); err != nil || p.Profile.Traits["late"] != nil {
		t.Errorf("after timeouts: %+v, %v", p, err)
	}
}
