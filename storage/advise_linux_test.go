//go:build linux

package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// randomReadMaps returns, for each mapping of a file under dir, whether
// its VmFlags in /proc/self/smaps carry "rr" (MADV_RANDOM).
func randomReadMaps(t *testing.T, dir string) map[string]bool {
	t.Helper()
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	out := map[string]bool{}
	current := ""
	for line := range bytes.Lines(smaps) {
		fields := strings.Fields(string(line))
		switch {
		case len(fields) == 6 && strings.HasPrefix(fields[5], dir+"/"):
			current = fields[5]
		case len(fields) > 0 && fields[0] == "VmFlags:":
			if current != "" {
				out[current] = out[current] || strings.Contains(string(line), " rr")
			}
			current = ""
		case len(fields) >= 5 && strings.Contains(fields[0], "-"):
			current = ""
		}
	}
	return out
}

func TestAdviseRandom(t *testing.T) {
	for _, readAhead := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "ReadAhead"}[readAhead], func(t *testing.T) {
			dir, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			s, err := OpenBadger(BadgerOptions{Dir: dir, ReadAhead: readAhead})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Apply(context.Background(), []Op{{Key: []byte("k"), Value: make([]byte, 4096)}}); err != nil {
				t.Fatal(err)
			}
			maps := randomReadMaps(t, dir)
			vlogs := 0
			for path, random := range maps {
				if !strings.HasSuffix(path, ".vlog") {
					continue
				}
				vlogs++
				if random == readAhead {
					t.Errorf("%s: MADV_RANDOM = %v with ReadAhead = %v", path, random, readAhead)
				}
			}
			if vlogs == 0 {
				t.Fatalf("no value-log mapping under %s among %v", dir, maps)
			}
		})
	}
}
