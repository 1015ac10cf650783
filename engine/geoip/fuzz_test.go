package geoip_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/tailorhq/tailor/engine/geoip"
)

// FuzzCorruptDatabase overwrites bytes of a valid City database: Open may
// reject the result and Locate may return an error, but neither may panic
// or hang. Each pair of fuzz bytes is (position in the file scaled to its
// length, new value).
func FuzzCorruptDatabase(f *testing.F) {
	valid, err := buildDB(dbSpec{dbType: "GeoLite2-City", networks: cityNetworks("London")})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0xff})
	f.Add([]byte{128, 0x00, 200, 0xe0})
	f.Add([]byte{250, 0x20, 251, 0xff, 252, 0x7f})
	ips := []netip.Addr{
		netip.MustParseAddr(londonIP), netip.MustParseAddr(miltonIP),
		netip.MustParseAddr(tokyoIP6), netip.MustParseAddr(swedenIP),
		netip.MustParseAddr(badIP), netip.MustParseAddr(unknownIP),
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, edits []byte) {
		data := append([]byte(nil), valid...)
		for i := 0; i+1 < len(edits); i += 2 {
			data[int(edits[i])*len(data)/256] = edits[i+1]
		}
		path := filepath.Join(dir, "fuzz.mmdb")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		db, err := geoip.Open(path, geoip.WithPollInterval(0))
		if err != nil {
			return
		}
		defer db.Close()
		for _, ip := range ips {
			for _, locale := range []string{"", "de", "pt-BR"} {
				if _, err := db.Locate(context.Background(), ip, locale); err != nil && !errors.Is(err, geoip.ErrInvalidDatabase) {
					t.Fatalf("Locate(%s): unexpected error kind: %v", ip, err)
				}
			}
		}
	})
}
