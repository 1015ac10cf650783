package geoip_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/tailorhq/tailor/engine/geoip"
)

func ExampleDB_Locate() {
	// A real deployment points Open at a GeoLite2-City.mmdb download; the
	// example builds a small file in the same format.
	dir, err := os.MkdirTemp("", "geoip-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "GeoLite2-City.mmdb")
	data, err := buildDB(dbSpec{dbType: "GeoLite2-City", networks: cityNetworks("London")})
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		log.Fatal(err)
	}

	db, err := geoip.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	ctx := context.Background()
	for _, q := range []struct{ ip, locale string }{
		{"81.2.69.142", "en"},
		{"81.2.69.142", "fr-CA"},
		{"::ffff:216.160.83.56", ""},
		{"192.168.1.10", "en"}, // private: nothing, and no lookup
	} {
		loc, err := db.Locate(ctx, netip.MustParseAddr(q.ip), q.locale)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %q: %q %q %q/%q %s %s\n", q.ip, q.locale,
			loc.City, loc.Region, loc.CountryCode, loc.RegionCode, loc.Continent, loc.Timezone)
	}
	// Output:
	// 81.2.69.142 "en": "London" "England" "GB"/"ENG" EU Europe/London
	// 81.2.69.142 "fr-CA": "Londres" "Angleterre" "GB"/"ENG" EU Europe/London
	// ::ffff:216.160.83.56 "": "Milton" "Washington" "US"/"WA" NA America/Los_Angeles
	// 192.168.1.10 "en": "" "" ""/""
}
