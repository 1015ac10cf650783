package rules

import (
	"errors"
	"reflect"
	"testing"
)

const qaExperience = "experiences:\n  - id: e\n    components:\n      - type: InlineVariable\n        key: k\n        baseline: a\n        variants: [b, c]\n    qaUsers:\n"

// qaErrorCases holds one invalid qaUsers list per check; the golden file
// testdata/errors/<name>.txt holds the exact error text.
var qaErrorCases = []struct {
	name, file, src string
}{
	{"qa-not-a-list", "r.yaml", qaExperience + "      user-1: 1\n"},
	{"qa-no-id", "r.yaml", qaExperience + "      - variant: 1\n"},
	{"qa-both-ids", "r.yaml", qaExperience + "      - {userId: u, profileId: p, variant: 1}\n"},
	{"qa-empty-id", "r.yaml", qaExperience + "      - {userId: \"\", variant: 1}\n"},
	{"qa-missing-variant", "r.yaml", qaExperience + "      - {userId: u}\n"},
	{"qa-variant-range", "r.yaml", qaExperience + "      - {userId: u, variant: 3}\n"},
	{"qa-variant-fraction", "r.yaml", qaExperience + "      - {profileId: p, variant: 0.5}\n"},
	{"qa-variant-type", "r.yaml", qaExperience + "      - {userId: u, variant: \"1\"}\n"},
	{"qa-unknown-field", "r.yaml", qaExperience + "      - {userId: u, variant: 1, note: x}\n"},
	{"qa-duplicate", "r.yaml", qaExperience + "      - {userId: u, variant: 1}\n      - {userId: u, variant: 2}\n"},
	{"qa-json", "r.json", `{"experiences": [{"id": "e", "distribution": [0.5, 0.5],
  "components": [{"type": "EntryReplacement", "baseline": "x", "variants": ["y"]}],
  "qaUsers": [{"userId": "u", "variant": 2}]}]}`},
}

func TestParseQAUserErrors(t *testing.T) {
	for _, tc := range qaErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.file, []byte(tc.src))
			if err == nil || s != nil {
				t.Fatalf("Parse accepted the file: %+v", s)
			}
			var list Errors
			if !errors.As(err, &list) || len(list) != 1 || !errors.Is(err, ErrInvalid) {
				t.Fatalf("want one rules error, got %v", err)
			}
			e := list[0]
			if e.Pos.File != tc.file || e.Pos.Line < 1 || e.Pos.Column < 1 || e.Kind != "experience" || e.Rule != "e" {
				t.Errorf("error without its position or rule: %+v", e)
			}
			golden(t, "errors/"+tc.name+".txt", err.Error()+"\n")
		})
	}
}

func TestParseQAUsers(t *testing.T) {
	s, err := Parse("q.yaml", []byte(qaExperience+"      - userId: qa-ann\n        variant: 2\n      - {profileId: p-1, variant: 0}\n"))
	if err != nil {
		t.Fatal(err)
	}
	x := &s.Experiences[0]
	want := []QAUser{
		{UserID: "qa-ann", Variant: 2, Pos: Pos{File: "q.yaml", Line: 9, Column: 9}},
		{ProfileID: "p-1", Variant: 0, Pos: Pos{File: "q.yaml", Line: 11, Column: 9}},
	}
	if !reflect.DeepEqual(x.QAUsers, want) {
		t.Fatalf("QAUsers = %+v, want %+v", x.QAUsers, want)
	}
	for _, tc := range []struct {
		user, profile string
		v             int
		ok            bool
	}{
		{"qa-ann", "", 2, true},
		{"qa-ann", "p-1", 2, true}, // first listed wins
		{"", "p-1", 0, true},
		{"bob", "p-2", 0, false},
		{"", "", 0, false},
		{"p-1", "qa-ann", 0, false}, // a user id is not a profile id
	} {
		if v, ok := x.QAVariant(tc.user, tc.profile); v != tc.v || ok != tc.ok {
			t.Errorf("QAVariant(%q, %q) = %d, %v; want %d, %v", tc.user, tc.profile, v, ok, tc.v, tc.ok)
		}
	}
}
