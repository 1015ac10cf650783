package geoip_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/engine/geoip"
)

// syncBuffer is a log sink safe for the poller goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cityVersion builds the City test database whose London record is named
// city: the name tells versions apart.
func cityVersion(t testing.TB, city string) []byte {
	t.Helper()
	data, err := buildDB(dbSpec{dbType: "GeoLite2-City", networks: cityNetworks(city)})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// waitForCity polls Locate until London's city is want, or fails after 5s.
func waitForCity(t *testing.T, db *geoip.DB, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := locate(t, db, londonIP, "").City
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("city is still %q after 5s, want %q", got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// loadModes are the two ways a DB holds its file; reload must be safe in
// both.
var loadModes = []struct {
	name string
	opts []geoip.Option
}{
	{"heap", nil},
	{"mmap", []geoip.Option{geoip.WithMmap()}},
}

func TestPollReloadsReplacedFile(t *testing.T) {
	for _, mode := range loadModes {
		t.Run(mode.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
			if err := installFile(path, cityVersion(t, "London")); err != nil {
				t.Fatal(err)
			}
			logs := &syncBuffer{}
			opts := append([]geoip.Option{
				geoip.WithPollInterval(2 * time.Millisecond),
				geoip.WithLogger(slog.New(slog.NewTextHandler(logs, nil))),
			}, mode.opts...)
			db := openDB(t, path, opts...)
			waitForCity(t, db, "London")

			// A good replacement is picked up.
			if err := installFile(path, cityVersion(t, "Londinium")); err != nil {
				t.Fatal(err)
			}
			waitForCity(t, db, "Londinium")

			// A bad replacement is logged once and the old version keeps
			// serving, however many polls pass.
			if err := installFile(path, []byte("not a database")); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(logs.String(), "rejected") {
				if time.Now().After(deadline) {
					t.Fatalf("bad file not reported; logs:\n%s", logs)
				}
				time.Sleep(2 * time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond) // ~10 more polls
			waitForCity(t, db, "Londinium")
			if n := strings.Count(logs.String(), "rejected"); n != 1 {
				t.Errorf("bad file reported %d times, want once; logs:\n%s", n, logs)
			}

			// The file disappearing (mid-replacement) keeps the old one too.
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
			waitForCity(t, db, "Londinium")

			// The next good file is picked up again.
			if err := installFile(path, cityVersion(t, "Lundenwic")); err != nil {
				t.Fatal(err)
			}
			waitForCity(t, db, "Lundenwic")
		})
	}
}

func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
	if err := installFile(path, cityVersion(t, "London")); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, path, geoip.WithPollInterval(0)) // no poller: only Reload
	if err := installFile(path, cityVersion(t, "Londinium")); err != nil {
		t.Fatal(err)
	}
	if got := locate(t, db, londonIP, "").City; got != "London" {
		t.Fatalf("without polling the file is not reread: got %q", got)
	}
	if err := db.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := locate(t, db, londonIP, "").City; got != "Londinium" {
		t.Fatalf("after Reload: got %q, want Londinium", got)
	}
	if err := installFile(path, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if err := db.Reload(); !errors.Is(err, geoip.ErrInvalidDatabase) {
		t.Fatalf("Reload of a garbage file: %v, want ErrInvalidDatabase", err)
	}
	if got := locate(t, db, londonIP, "").City; got != "Londinium" {
		t.Fatalf("after a failed Reload: got %q, want the previous version", got)
	}
}

// TestHotSwap replaces the file again and again, by polling and by Reload,
// while goroutines look up: no lookup may fail or see a mix of versions.
// Run it with -race.
func TestHotSwap(t *testing.T) {
	for _, mode := range loadModes {
		t.Run(mode.name, func(t *testing.T) {
			const versions = 12
			path := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
			files := make([][]byte, versions)
			for i := range files {
				files[i] = cityVersion(t, fmt.Sprintf("London-%d", i))
			}
			if err := installFile(path, files[0]); err != nil {
				t.Fatal(err)
			}
			db := openDB(t, path, append([]geoip.Option{geoip.WithPollInterval(time.Millisecond)}, mode.opts...)...)

			var stop atomic.Bool
			var lookups atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			ips := []netip.Addr{netip.MustParseAddr(londonIP), netip.MustParseAddr(tokyoIP6), netip.MustParseAddr(miltonIP)}
			for g := range 3 {
				wg.Go(func() {
					ctx := context.Background()
					for i := 0; !stop.Load(); i++ {
						ip := ips[(i+g)%len(ips)]
						loc, err := db.Locate(ctx, ip, "de")
						lookups.Add(1)
						if err == nil && ip == ips[0] && (!strings.HasPrefix(loc.City, "London-") || loc.Country != "Vereinigtes Königreich") {
							err = fmt.Errorf("torn or wrong record: %+v", loc)
						}
						if err == nil && ip != ips[0] && loc.CountryCode == "" {
							err = fmt.Errorf("%s: lost its record: %+v", ip, loc)
						}
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			for i := 1; i < versions; i++ {
				if err := installFile(path, files[i]); err != nil {
					t.Fatal(err)
				}
				if i%2 == 0 {
					if err := db.Reload(); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(3 * time.Millisecond)
			}
			waitForCity(t, db, fmt.Sprintf("London-%d", versions-1))
			stop.Store(true)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if lookups.Load() == 0 {
				t.Fatal("no lookups ran")
			}
			t.Logf("%d lookups across %d versions", lookups.Load(), versions)
		})
	}
}

// TestCloseWhileLocating closes the DB under concurrent lookups: every
// lookup either succeeds or returns ErrClosed.
func TestCloseWhileLocating(t *testing.T) {
	db, err := geoip.Open(cityDB(t), geoip.WithPollInterval(time.Millisecond), geoip.WithMmap())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	started := make(chan struct{}, 4)
	for range 4 {
		wg.Go(func() {
			ip := netip.MustParseAddr(londonIP)
			for i := 0; ; i++ {
				if i == 10 {
					started <- struct{}{}
				}
				loc, err := db.Locate(context.Background(), ip, "")
				if errors.Is(err, geoip.ErrClosed) {
					return
				}
				if err != nil || loc.City != "London" {
					errs <- fmt.Errorf("got %+v, %v", loc, err)
					return
				}
			}
		})
	}
	for range 4 {
		<-started
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
