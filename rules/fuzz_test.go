package rules

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics and that every failure is a
// positioned rules.Errors, and that what it accepts can be matched.
func FuzzParse(f *testing.F) {
	for _, tc := range loadErrorCases {
		f.Add([]byte(tc.src))
	}
	files, _ := filepath.Glob("testdata/example.*")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	env := testEnv()
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("f.yaml", data)
		if err != nil {
			var list Errors
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %v is not a rules.Errors", err, err)
			}
			for _, e := range list {
				if e.Pos.File != "f.yaml" || e.Pos.Line < 1 || e.Pos.Column < 1 || e.Msg == "" {
					t.Fatalf("error without position or message: %+v", e)
				}
			}
			if s != nil {
				t.Fatal("Set returned with an error")
			}
			return
		}
		for _, e := range s.Experiences {
			if len(e.Distribution) == 0 || e.Traffic < 0 || e.Traffic > 1 {
				t.Fatalf("invalid experience accepted: %+v", e)
			}
			for _, c := range e.Components {
				if len(c.Variants)+1 != len(e.Distribution) {
					t.Fatalf("variant count %d with distribution %v", len(c.Variants), e.Distribution)
				}
			}
		}
		m := make([]bool, len(s.Audiences))
		_ = s.Match(env, m) // runtime errors are fine; panics are not
	})
}
