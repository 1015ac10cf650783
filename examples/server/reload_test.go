package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine"
)

const rulesFull = `audiences:
  - id: audience-pro
    when: traits.plan == "pro"
  - id: audience-returning
    when: session.count > 1
experiences:
  - id: exp-hero
    audience: audience-pro
    components:
      - type: EntryReplacement
        key: hero
        baseline: hero-a
        variants: [hero-b]
`

const rulesFullV2 = rulesFull + `  - id: exp-cta
    components:
      - type: InlineVariable
        key: cta
        baseline: blue
        variants: [green]
`

// reloadFixture is a rules file, an engine and a watcher whose polls the
// test runs itself, in order, with no ticker.
type reloadFixture struct {
	t     *testing.T
	path  string
	logs  *bytes.Buffer
	eng   *engine.Engine
	w     *rulesWatcher
	mtime time.Time
}

func newReloadFixture(t *testing.T, initial string) *reloadFixture {
	t.Helper()
	f := &reloadFixture{t: t, path: filepath.Join(t.TempDir(), "rules.yaml"), logs: &bytes.Buffer{},
		mtime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f.write(initial)
	f.w = newRulesWatcher(f.path, slog.New(slog.NewJSONHandler(f.logs, nil)))
	set, err := f.w.load()
	if err != nil {
		t.Fatal(err)
	}
	f.eng, err = engine.Open("", &engine.Options{InMemory: true, Rules: set})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.eng.Close() })
	return f
}

// write replaces the file's content in place (as an editor or a copy
// does), giving it a new modification time.
func (f *reloadFixture) write(content string) {
	f.t.Helper()
	if err := os.WriteFile(f.path, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
	f.mtime = f.mtime.Add(time.Second)
	if err := os.Chtimes(f.path, f.mtime, f.mtime); err != nil {
		f.t.Fatal(err)
	}
}

// serving checks the number of audiences and experiences in force.
func (f *reloadFixture) serving(step string, audiences, experiences int) {
	f.t.Helper()
	rs := f.eng.Rules()
	if len(rs.Audiences) != audiences || len(rs.Experiences) != experiences {
		f.t.Fatalf("%s: serving %d audiences and %d experiences, want %d and %d\nlogs:\n%s",
			step, len(rs.Audiences), len(rs.Experiences), audiences, experiences, f.logs)
	}
}

// warnings returns the messages logged at WARN.
func (f *reloadFixture) warnings() []string {
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		var rec struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Level == "WARN" {
			out = append(out, rec.Msg)
		}
	}
	return out
}

// TestRulesReloadWaitsForAStableFile is the regression test of a
// half-written rules file (still valid YAML, such as "audiences:" alone)
// being applied, dropping every audience and experience until the next
// write: a change is applied only once two polls in a row see the same
// file.
func TestRulesReloadWaitsForAStableFile(t *testing.T) {
	f := newReloadFixture(t, rulesFull)
	f.serving("start", 2, 1)

	f.w.poll(f.eng) // nothing changed
	f.serving("unchanged", 2, 1)

	// A writer has written the first line so far.
	f.write("audiences:\n")
	f.w.poll(f.eng)
	f.serving("half-written file, first poll", 2, 1)

	// It finishes before the next poll: the new content is seen once.
	f.write(rulesFullV2)
	f.w.poll(f.eng)
	f.serving("finished file, first poll", 2, 1)
	f.w.poll(f.eng)
	f.serving("finished file, second poll", 2, 2)
	f.w.poll(f.eng)
	f.serving("finished file, third poll", 2, 2)
	if w := f.warnings(); len(w) != 0 {
		t.Errorf("warnings for a reload that removes nothing: %q", w)
	}
}

// TestRulesReloadWarnsOnLargeRemovals checks that a file that stays cut
// short is applied (it is valid) but logged at WARN, as is any reload that
// removes more than half of the audiences or experiences.
func TestRulesReloadWarnsOnLargeRemovals(t *testing.T) {
	f := newReloadFixture(t, rulesFullV2)
	f.serving("start", 2, 2)

	f.write("audiences:\n")
	f.w.poll(f.eng)
	f.w.poll(f.eng)
	f.serving("empty file, stable", 0, 0)
	w := f.warnings()
	if len(w) != 2 || !strings.Contains(w[0], "audiences") || !strings.Contains(w[1], "experiences") {
		t.Fatalf("warnings %q, want one for audiences and one for experiences", w)
	}

	// Removing one of two experiences is half, not more: no warning.
	f.logs.Reset()
	f.write(rulesFullV2)
	f.w.poll(f.eng)
	f.w.poll(f.eng)
	f.serving("restored", 2, 2)
	f.write(rulesFull)
	f.w.poll(f.eng)
	f.w.poll(f.eng)
	f.serving("one experience removed", 2, 1)
	if w := f.warnings(); len(w) != 0 {
		t.Errorf("warnings for removing half: %q", w)
	}

	// SIGHUP reloads at once, and warns the same way.
	f.write("experiences: []\n")
	f.w.reload(f.eng, "SIGHUP")
	f.serving("SIGHUP", 0, 0)
	if w := f.warnings(); len(w) != 2 || !strings.Contains(w[0], "audiences") || !strings.Contains(w[1], "experiences") {
		t.Errorf("warnings after SIGHUP: %q", w)
	}
}

// TestRulesReloadBadFileWaitsToo checks that an invalid file is reported
// once it is stable, and that the rules in force keep serving.
func TestRulesReloadBadFileWaitsToo(t *testing.T) {
	f := newReloadFixture(t, rulesFull)
	f.write("audiences:\n  - id: broken\n    when: traits.plan ==\n")
	f.w.poll(f.eng)
	if strings.Contains(f.logs.String(), "rules reload failed") {
		t.Errorf("a file seen once was already loaded:\n%s", f.logs)
	}
	f.w.poll(f.eng)
	if !strings.Contains(f.logs.String(), "rules reload failed") || !strings.Contains(f.logs.String(), "rules.yaml:3:") {
		t.Errorf("invalid stable file not reported with its position:\n%s", f.logs)
	}
	f.w.poll(f.eng)
	if n := strings.Count(f.logs.String(), "rules reload failed"); n != 1 {
		t.Errorf("reported %d times, want once until it changes", n)
	}
	f.serving("after the bad file", 2, 1)
}
