// Command rsscheck measures what issue 6 target 5 asks of the Badger store:
// the process's resident memory with a million profiles open after 200,000
// updates, and the time Open takes on that store.
//
//	go run ./storage/badger/internal/rsscheck -dir /tmp/rss -load     # once: write the profiles
//	go run ./storage/badger/internal/rsscheck -dir /tmp/rss           # open, update, report
//
// Profiles are 0.5–2 KB of JSON-like text. Updates read a uniformly random
// profile and write it back changed, from -concurrency goroutines. The
// report gives VmRSS and its anonymous and file-backed parts (Badger maps
// its files, so touched file pages count in VmRSS), VmHWM, the Go heap and
// the store's size.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/badger"
)

func main() {
	var (
		dir         = flag.String("dir", "", "store directory (required)")
		load        = flag.Bool("load", false, "write -n profiles, then exit")
		n           = flag.Int("n", 1_000_000, "number of profiles")
		updates     = flag.Int("updates", 200_000, "number of updates after Open")
		concurrency = flag.Int("concurrency", 16, "updating goroutines")
		vt          = flag.Int64("vt", 0, "badger.Options.ValueThreshold (0: default)")
		memtable    = flag.Int64("memtable", 0, "badger.Options.MemTableSize (0: default)")
		memtables   = flag.Int("memtables", 0, "badger.Options.NumMemtables (0: default)")
		blockCache  = flag.Int64("blockcache", 0, "badger.Options.BlockCacheSize (0: default)")
		indexCache  = flag.Int64("indexcache", 0, "badger.Options.IndexCacheSize (0: all in memory)")
		compactors  = flag.Int("compactors", 0, "badger.Options.NumCompactors (0: default)")
	)
	flag.Parse()
	if *dir == "" {
		log.Fatal("rsscheck: -dir is required")
	}
	opts := badger.Options{
		Dir:            *dir,
		ValueThreshold: *vt,
		MemTableSize:   *memtable,
		NumMemtables:   *memtables,
		BlockCacheSize: *blockCache,
		IndexCacheSize: *indexCache,
		NumCompactors:  *compactors,
	}
	ctx := context.Background()

	start := time.Now()
	s, err := badger.Open(opts)
	if err != nil {
		log.Fatal(err)
	}
	openTime := time.Since(start)

	if *load {
		start = time.Now()
		// 64 writers: group commit puts their writes in few transactions.
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := range 64 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(w), 1))
				for i := next.Add(1) - 1; i < int64(*n); i = next.Add(1) - 1 {
					if _, err := s.Write(ctx, storage.Op{Key: key(int(i)), Value: profile(r, 0)}); err != nil {
						log.Fatal(err)
					}
				}
			})
		}
		wg.Wait()
		if err := s.Close(); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("loaded %d profiles in %v\n", *n, time.Since(start).Round(time.Millisecond))
		report(s, 0, 0)
		return
	}

	start = time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range *concurrency {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 2))
			var buf []byte
			for next.Add(1) <= int64(*updates) {
				k := key(r.IntN(*n))
				var err error
				if buf, _, err = s.Get(ctx, k, buf); err != nil {
					log.Fatalf("get %s: %v", k, err)
				}
				if _, err := s.Write(ctx, storage.Op{Key: k, Value: profile(r, len(buf))}); err != nil {
					log.Fatal(err)
				}
			}
		})
	}
	wg.Wait()
	updateTime := time.Since(start)
	report(s, openTime, updateTime)
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}
}

func key(i int) []byte { return fmt.Appendf(nil, "p/%08d", i) }

// profile returns a JSON-like profile of size (or 512–2048 bytes when
// size is 0).
func profile(r *rand.Rand, size int) []byte {
	if size == 0 {
		size = 512 + r.IntN(1536)
	}
	b := make([]byte, 0, size)
	b = append(b, `{"traits":{`...)
	for len(b) < size-2 {
		b = fmt.Appendf(b, `"t%d":"%x",`, r.IntN(100), r.Uint32())
	}
	b = b[:size-2]
	return append(b, "}}"...)
}

func report(s *badger.Store, openTime, updateTime time.Duration) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	lsm, vlog := s.Size()
	fmt.Printf("open %v  updates %v  lsm %d MB  vlog %d MB\n",
		openTime.Round(time.Millisecond), updateTime.Round(time.Millisecond), lsm>>20, vlog>>20)
	fmt.Printf("go heap inuse %d MB  go sys %d MB\n", ms.HeapInuse>>20, ms.Sys>>20)
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		for _, p := range []string{"VmHWM", "VmRSS", "RssAnon", "RssFile"} {
			if strings.HasPrefix(line, p+":") {
				fmt.Println(strings.Join(strings.Fields(line), " "))
			}
		}
	}
}
