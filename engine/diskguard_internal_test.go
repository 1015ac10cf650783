package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/badger"
)

// TestDiskGuard drives the guard with a fake statfs and clock: writes pass
// while free space minus what was written since the last check stays above
// the minimum, a large write forces a fresh check, an unknown free space
// lets writes through, and writes resume when space returns.
func TestDiskGuard(t *testing.T) {
	st, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	const min = 1000
	free, statErr, checks := uint64(2000), error(nil), 0
	now := time.Unix(0, 0)
	g := newDiskGuard(st, "/data", min)
	g.now = func() time.Time { return now }
	g.statfs = func(string) (uint64, error) { checks++; return free, statErr }
	ctx := context.Background()
	write := func(n int) error {
		_, err := g.Write(ctx, storage.Op{Key: []byte("k"), Value: make([]byte, n-1)})
		return err
	}

	steps := []struct {
		name    string
		before  func()
		n       int
		wantErr bool
		checks  int
	}{
		{"first write checks", nil, 100, false, 1},
		{"small write uses the cached figure", nil, 100, false, 1},
		{"a quarter of the margin forces a check", nil, 250, false, 2},
		{"free space drops", func() { free = 1100; now = now.Add(time.Second) }, 200, true, 3},
		{"a write that still fits above the minimum", nil, 10, false, 3},
		{"unknown free space lets writes through", func() { statErr = errors.New("no statfs"); now = now.Add(time.Second) }, 500, false, 4},
		{"space returns", func() { statErr = nil; free = 10000; now = now.Add(time.Second) }, 200, false, 5},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		err := write(s.n)
		if got := errors.Is(err, ErrDiskFull); got != s.wantErr || (err != nil && !s.wantErr) {
			t.Errorf("%s: %v, want full=%v", s.name, err, s.wantErr)
		}
		if checks != s.checks {
			t.Errorf("%s: %d statfs calls, want %d", s.name, checks, s.checks)
		}
	}
}
