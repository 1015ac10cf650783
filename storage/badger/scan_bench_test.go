package badger_test

import (
	"context"
	"testing"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/badger"
)

// BenchmarkScan measures a Scan over 100,000 ~1 KB values (an export);
// ns/op is per store-wide Scan.
func BenchmarkScan(b *testing.B) {
	s := openBadger(b, badger.Options{Dir: b.TempDir(), GCInterval: -1})
	const n = 100_000
	fill(b, s, n)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		count, bytes := 0, 0
		if err := s.Scan(ctx, []byte("profile/"), func(_, v []byte, _ storage.Version) error {
			count++
			bytes += len(v)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		if count != n || bytes != n*len(benchValue) {
			b.Fatalf("scanned %d keys, %d bytes", count, bytes)
		}
	}
}
