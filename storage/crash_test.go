package storage_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/tailorhq/tailor/storage"
)

// crashDirEnv names the directory the child process of TestBadgerKilled
// writes to.
const crashDirEnv = "TAILOR_STORAGE_CRASH_DIR"

// TestBadgerKilled kills a process (SIGKILL) while it writes batches of
// two keys from several goroutines, reopens its store and checks that
// every acknowledged batch is there and that no batch is half there. A
// killed process leaves the page cache behind, so this checks Badger's
// recovery and Apply's atomicity, not the fsync (a power cut would).
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
	acked := map[int]bool{}
	sc := bufio.NewScanner(out)
	for len(acked) < 200 && sc.Scan() {
		if n, err := strconv.Atoi(sc.Text()); err == nil {
			acked[n] = true
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if len(acked) < 200 {
		t.Fatalf("child acknowledged only %d batches before exiting", len(acked))
	}

	s := openBadger(t, storage.BadgerOptions{Dir: dir})
	ctx := context.Background()
	present := map[int]int{}
	if err := s.Scan(ctx, []byte("k/"), func(k, v []byte) error {
		var n int
		var half string
		if _, err := fmt.Sscanf(string(k), "k/%d/%s", &n, &half); err != nil {
			return fmt.Errorf("unexpected key %q", k)
		}
		if !bytes.Equal(v, crashValue(n)) {
			return fmt.Errorf("key %q holds a wrong value", k)
		}
		present[n]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for n := range acked {
		if present[n] != 2 {
			t.Errorf("acknowledged batch %d: %d of 2 keys after the kill", n, present[n])
		}
	}
	for n, c := range present {
		if c != 2 {
			t.Errorf("batch %d half written: %d of 2 keys", n, c)
		}
	}
	t.Logf("%d batches acknowledged before the kill, %d found", len(acked), len(present))
}

func crashValue(n int) []byte {
	return bytes.Repeat([]byte{byte(n)}, 1000)
}

// crashChild writes batches until killed, printing each acknowledged one.
func crashChild(dir string) {
	s, err := storage.OpenBadger(storage.BadgerOptions{Dir: dir, SyncWrites: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	acks := make(chan int, 64)
	for w := range 8 {
		go func() {
			for i := w; ; i += 8 {
				err := s.Apply(context.Background(), []storage.Op{
					{Key: fmt.Appendf(nil, "k/%06d/a", i), Value: crashValue(i)},
					{Key: fmt.Appendf(nil, "k/%06d/b", i), Value: crashValue(i)},
				})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				acks <- i
			}
		}()
	}
	w := bufio.NewWriter(os.Stdout)
	for i := range acks {
		fmt.Fprintln(w, i)
		if len(acks) == 0 {
			w.Flush()
		}
	}
}
