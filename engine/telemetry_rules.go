package engine

// The rules version in force and the reloads (see telemetry.go).

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tailorhq/tailor/rules"
)

// rulesInfo is what the tailor.rules.version gauge reports: the number of
// rule sets the engine has had (1 for the rules given to Open, one more
// per SetRules) with the digest of the one in force.
type rulesInfo struct {
	version int64
	opts    []metric.ObserveOption
}

// rulesReplaced counts a successful reload and makes s the version the
// gauge reports.
func (t *telemetry) rulesReplaced(s *rules.Set) {
	if t == nil || t.m == nil {
		return
	}
	t.setRules(s, true)
}

// rulesRefused counts a reload that failed: the rules in force stay.
func (t *telemetry) rulesRefused() {
	if t == nil || t.m == nil {
		return
	}
	t.m.reloads.Add(context.Background(), 1, t.m.reloadFailed...)
}

func (t *telemetry) setRules(s *rules.Set, reload bool) {
	t.rulesMu.Lock()
	defer t.rulesMu.Unlock()
	v := int64(1)
	if prev := t.rules.Load(); prev != nil {
		v = prev.version + 1
	}
	t.rules.Store(&rulesInfo{version: v, opts: []metric.ObserveOption{
		metric.WithAttributes(attribute.String("tailor.rules.digest", RulesDigest(s)))}})
	if reload {
		t.m.reloads.Add(context.Background(), 1, t.m.reloadOK...)
	}
}

// RulesDigest returns a digest of what s says — its audiences and
// experiences, leaving out where in which file each was defined — as 16
// hex digits: two processes serving the same rules report the same
// digest (the tailor.rules.version gauge's tailor.rules.digest
// attribute). A nil or empty s has the digest of no rules.
func RulesDigest(s *rules.Set) string {
	var auds []rules.Audience
	var exps []rules.Experience
	if s != nil {
		auds, exps = slices.Clone(s.Audiences), slices.Clone(s.Experiences)
	}
	for i := range auds {
		auds[i].Pos = rules.Pos{}
	}
	for i := range exps {
		exps[i].Pos = rules.Pos{}
	}
	b, err := json.Marshal(struct {
		Audiences   []rules.Audience
		Experiences []rules.Experience
	}{auds, exps})
	if err != nil {
		// Parse accepts only values JSON can encode; keep the gauge
		// going all the same.
		return "unknown"
	}
	return fmt.Sprintf("%016x", xxhash.Sum64(b))
}
