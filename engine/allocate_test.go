package engine

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/tailorhq/tailor/rules"
)

// TestTrafficHoldout allocates 100,000 stable ids into an experience with
// traffic 0.9: 10% ± 0.5% must be held out, and the entrants split by the
// distribution.
func TestTrafficHoldout(t *testing.T) {
	x := &rules.Experience{ID: "exp-holdout", Traffic: 0.9, Distribution: []float64{0.25, 0.75},
		Status: rules.StatusRunning, AudienceIndex: -1, BucketVersion: 3}
	const n = 100_000
	out, variants := 0, [2]int{}
	for i := range n {
		v, why := allocate(x, &Visitor{StableID: fmt.Sprintf("stable-%d", i)}, nil, time.Now())
		if !why.In() {
			if why != ReasonTraffic {
				t.Fatalf("out for %v", why)
			}
			out++
			continue
		}
		variants[v]++
	}
	if share := float64(out) / n; math.Abs(share-0.10) > 0.005 {
		t.Errorf("held out %.4f, want 0.10 ± 0.005", share)
	}
	in := float64(n - out)
	if share := float64(variants[0]) / in; math.Abs(share-0.25) > 0.01 {
		t.Errorf("baseline share %.4f of entrants, want 0.25 ± 0.01", share)
	}
}
