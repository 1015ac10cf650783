package badger_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/badger"
)

// crashDirEnv names the directory the child process of TestBadgerKilled
// writes to.
const crashDirEnv = "TAILOR_STORAGE_CRASH_DIR"

// crashWriters is the number of goroutines of the child, each counting on
// its own key.
const crashWriters = 8

// TestBadgerKilled kills a process (SIGKILL) while goroutines count, each
// on its own key, by read and conditional write, and a new key per count;
// then reopens its store and checks that every acknowledged count is
// there (the counter at least at the last acknowledged value, every
// acknowledged key present, values whole) and that the versions read
// after the restart take conditional writes. A killed process leaves the
// page cache behind, so this checks Badger's recovery, not the fsync (a
// power cut would).
func TestBadgerKilled(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(exe, "-test.run=^TestBadgerKilled$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[int]int{} // writer → last acknowledged count
	total := 0
	sc := bufio.NewScanner(out)
	for total < 400 && sc.Scan() {
		var w, n int
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &w, &n); err == nil {
			acked[w] = max(acked[w], n)
			total++
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if total < 400 {
		t.Fatalf("child acknowledged only %d writes before exiting", total)
	}

	s := openBadger(t, badger.Options{Dir: dir})
	ctx := context.Background()
	for w := range crashWriters {
		b, v, err := s.Get(ctx, fmt.Appendf(nil, "n/%d", w), nil)
		if err != nil {
			if acked[w] == 0 && errors.Is(err, storage.ErrNotFound) {
				continue
			}
			t.Fatalf("writer %d: %v", w, err)
		}
		n, ok := parseCount(b)
		if !ok {
			t.Fatalf("writer %d: counter value corrupt: %.40q", w, b)
		}
		if n < acked[w] {
			t.Errorf("writer %d: counter %d after the kill, %d was acknowledged", w, n, acked[w])
		}
		for i := 1; i <= acked[w]; i++ {
			got, _, err := s.Get(ctx, fmt.Appendf(nil, "k/%d/%06d", w, i), nil)
			if err != nil || !bytes.Equal(got, crashValue(i)) {
				t.Fatalf("writer %d: acknowledged key %d: %d bytes, %v", w, i, len(got), err)
			}
		}
		if _, err := s.Write(ctx, storage.Op{Key: fmt.Appendf(nil, "n/%d", w), Value: countValue(n + 1), IfVersion: v}); err != nil {
			t.Fatalf("writer %d: conditional write on the version read after the kill: %v", w, err)
		}
	}
	t.Logf("%d writes acknowledged before the kill, last counts %v", total, acked)
}

func crashValue(n int) []byte {
	return bytes.Repeat([]byte{byte(n)}, 1000)
}

// countValue is the counter's value: the count, padded into the value log.
func countValue(n int) []byte {
	return fmt.Appendf(nil, "%d %0500d", n, n)
}

func parseCount(b []byte) (int, bool) {
	var n, m int
	if _, err := fmt.Sscanf(string(b), "%d %d", &n, &m); err != nil || n != m || !bytes.Equal(b, countValue(n)) {
		return 0, false
	}
	return n, true
}

// crashChild counts until killed, printing "writer count" for each
// acknowledged count.
func crashChild(dir string) {
	s, err := badger.Open(badger.Options{Dir: dir, SyncWrites: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	acks := make(chan [2]int, 64)
	for w := range crashWriters {
		go func() {
			key := fmt.Appendf(nil, "n/%d", w)
			var v storage.Version
			for n := 1; ; n++ {
				if _, err := s.Write(ctx, storage.Op{Key: fmt.Appendf(nil, "k/%d/%06d", w, n), Value: crashValue(n)}); err != nil {
					fail(err)
				}
				op := storage.Op{Key: key, Value: countValue(n), IfVersion: v, IfAbsent: v == 0}
				if v, err = s.Write(ctx, op); err != nil {
					fail(err)
				}
				acks <- [2]int{w, n}
			}
		}()
	}
	out := bufio.NewWriter(os.Stdout)
	for a := range acks {
		fmt.Fprintln(out, a[0], a[1])
		if len(acks) == 0 {
			out.Flush()
		}
	}
}
