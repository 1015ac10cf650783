package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/response.golden.json")

// TestQuickstart runs the quickstart and compares its whole output with the
// golden response, with only generated values (session id, random)
// normalized.
func TestQuickstart(t *testing.T) {
	var buf bytes.Buffer
	if err := run(&buf); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(buf.Bytes()) {
		t.Fatalf("output is not JSON:\n%s", buf.String())
	}
	got := normalize(buf.Bytes())
	path := filepath.Join("testdata", "response.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("quickstart output differs from %s:\n got: %s\nwant: %s", path, got, want)
	}
}

var (
	sessionID = regexp.MustCompile(`("session": \{\n\s*"id": )"[0-9a-f]{32}"`)
	random    = regexp.MustCompile(`("random": )[0-9.e-]+`)
)

func normalize(b []byte) []byte {
	b = sessionID.ReplaceAll(b, []byte(`$1"<session-id>"`))
	return random.ReplaceAll(b, []byte(`${1}0.5`))
}
