package geoip_test

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/engine/geoip"
	"github.com/tailorhq/tailor/rules"
)

// openDB opens path and closes it when the test ends.
func openDB(t testing.TB, path string, opts ...geoip.Option) *geoip.DB {
	t.Helper()
	db, err := geoip.Open(path, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func locate(t testing.TB, db *geoip.DB, ip, locale string) rules.Location {
	t.Helper()
	loc, err := db.Locate(context.Background(), netip.MustParseAddr(ip), locale)
	if err != nil {
		t.Fatalf("Locate(%s, %q): %v", ip, locale, err)
	}
	return loc
}

func coords(lat, lon float64) *rules.Coordinates {
	return &rules.Coordinates{Latitude: lat, Longitude: lon}
}

func london(city, region, country, continentCode string) rules.Location {
	return rules.Location{
		Coordinates: coords(51.5142, -0.0931),
		City:        city,
		PostalCode:  "EC2V",
		Region:      region,
		RegionCode:  "ENG",
		Country:     country,
		CountryCode: "GB",
		Continent:   continentCode,
		Timezone:    "Europe/London",
	}
}

func TestLocateCity(t *testing.T) {
	db := openDB(t, cityDB(t), geoip.WithPollInterval(0))
	tests := []struct {
		name   string
		ip     string
		locale string
		want   rules.Location
	}{
		{"IPv4 all fields, English by default", londonIP, "", london("London", "England", "United Kingdom", "EU")},
		{"explicit en", londonIP, "en", london("London", "England", "United Kingdom", "EU")},
		{"German", londonIP, "de", london("London", "England", "Vereinigtes Königreich", "EU")},
		{"French", londonIP, "fr", london("Londres", "Angleterre", "Royaume-Uni", "EU")},
		{"Brazilian Portuguese exact", londonIP, "pt-BR", london("Londres", "Inglaterra", "Reino Unido", "EU")},
		{"locale case and underscore", londonIP, "PT_br", london("Londres", "Inglaterra", "Reino Unido", "EU")},
		{"language with region falls back to language", londonIP, "de-AT", london("London", "England", "Vereinigtes Königreich", "EU")},
		{"other region of the language", londonIP, "pt-PT", london("Londres", "Inglaterra", "Reino Unido", "EU")},
		{"Simplified Chinese, English where missing", londonIP, "zh-CN", london("伦敦", "England", "英国", "EU")},
		{"unknown locale falls back to English", londonIP, "sw-KE", london("London", "England", "United Kingdom", "EU")},
		{"garbage locale falls back to English", londonIP, "-", london("London", "England", "United Kingdom", "EU")},
		{"IPv4-mapped IPv6 is unmapped", "::ffff:" + londonIP, "", london("London", "England", "United Kingdom", "EU")},
		{"second record, US", miltonIP, "fr", rules.Location{
			Coordinates: coords(47.2513, -122.3149), City: "Milton", PostalCode: "98354",
			Region: "État de Washington", RegionCode: "WA", Country: "États-Unis", CountryCode: "US",
			Continent: "NA", Timezone: "America/Los_Angeles",
		}},
		{"IPv6, no city, postal or region", tokyoIP6, "ja", rules.Location{
			Coordinates: coords(35.69, 139.69), Country: "日本", CountryCode: "JP",
			Continent: "AS", Timezone: "Asia/Tokyo",
		}},
		{"sparse record: no longitude means no coordinates", swedenIP, "de", rules.Location{
			Country: "Sweden", CountryCode: "SE",
		}},
		{"invalid country code dropped, continent name without code", badIP, "", rules.Location{
			Continent: "Antarctica",
		}},
		{"public address not in the database", unknownIP, "", rules.Location{}},
		{"IPv6 not in the database", "2a00:1450:4001:80b::200e", "", rules.Location{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := locate(t, db, tc.ip, tc.locale)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Locate(%s, %q)\n got %+v %v\nwant %+v %v", tc.ip, tc.locale, got, got.Coordinates, tc.want, tc.want.Coordinates)
			}
		})
	}
}

func TestLocateCountryDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "GeoLite2-Country.mmdb")
	writeDB(t, path, dbSpec{dbType: "GeoLite2-Country", networks: countryNetworks()})
	db := openDB(t, path, geoip.WithPollInterval(0))
	tests := []struct {
		ip, locale string
		want       rules.Location
	}{
		{londonIP, "de", rules.Location{Country: "Vereinigtes Königreich", CountryCode: "GB", Continent: "EU"}},
		{miltonIP, "", rules.Location{Country: "United States", CountryCode: "US", Continent: "NA"}},
		{tokyoIP6, "xx", rules.Location{Country: "Japan", CountryCode: "JP", Continent: "AS"}},
		{unknownIP, "", rules.Location{}},
	}
	for _, tc := range tests {
		t.Run(tc.ip, func(t *testing.T) {
			if got := locate(t, db, tc.ip, tc.locale); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLocateIPv4OnlyDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v4.mmdb")
	writeDB(t, path, dbSpec{dbType: "GeoIP2-City", ipV: 4, networks: map[string]mmdbtype.Map{
		"81.2.69.0/24": londonRecord("London"),
	}})
	db := openDB(t, path, geoip.WithPollInterval(0))
	if got := locate(t, db, londonIP, ""); got.City != "London" {
		t.Errorf("IPv4 in IPv4-only database: got %+v", got)
	}
	// An IPv6 address is simply unknown to an IPv4-only database.
	if got := locate(t, db, tokyoIP6, ""); !got.IsZero() {
		t.Errorf("IPv6 in IPv4-only database: got %+v, want zero", got)
	}
	if got := locate(t, db, "::ffff:"+londonIP, ""); got.City != "London" {
		t.Errorf("IPv4-mapped in IPv4-only database: got %+v", got)
	}
}

// TestLocateNonPublic uses a database that does have records for private,
// loopback and other reserved ranges: an empty answer proves Locate never
// looked them up.
func TestLocateNonPublic(t *testing.T) {
	trap := londonRecord("Trap")
	path := filepath.Join(t.TempDir(), "reserved.mmdb")
	writeDB(t, path, dbSpec{dbType: "GeoLite2-City", reserved: true, networks: map[string]mmdbtype.Map{
		"0.0.0.0/1":   trap,
		"128.0.0.0/1": trap,
		"::/1":        trap,
		"8000::/1":    trap,
	}})
	db := openDB(t, path, geoip.WithPollInterval(0))
	if got := locate(t, db, londonIP, ""); got.City != "Trap" {
		t.Fatalf("control: public address should hit the trap record, got %+v", got)
	}
	for _, ip := range []string{
		"10.1.2.3", "172.16.0.1", "192.168.1.1", // RFC 1918
		"127.0.0.1", "::1", // loopback
		"169.254.1.1", "fe80::1", // link-local
		"0.0.0.0", "::", "0.1.2.3", // unspecified, "this network"
		"224.0.0.1", "ff02::1", // multicast
		"255.255.255.255",                          // broadcast
		"100.64.0.1",                               // CGNAT
		"192.0.2.1", "198.51.100.7", "203.0.113.9", // documentation
		"2001:db8::1",                                   // documentation
		"198.18.0.1", "240.0.0.1", "fd00::1", "fc00::1", // benchmarking, reserved, ULA
		"::ffff:10.0.0.1", "::ffff:127.0.0.1", // mapped private and loopback
		"fe80::1%eth0", // zoned link-local
	} {
		t.Run(ip, func(t *testing.T) {
			if got := locate(t, db, ip, "de"); !got.IsZero() {
				t.Errorf("Locate(%s) = %+v, want zero", ip, got)
			}
		})
	}
	t.Run("invalid address", func(t *testing.T) {
		loc, err := db.Locate(context.Background(), netip.Addr{}, "")
		if err != nil || !loc.IsZero() {
			t.Errorf("Locate(invalid) = %+v, %v; want zero, nil", loc, err)
		}
	})
}

func TestIsPublic(t *testing.T) {
	for ip, want := range map[string]bool{
		"81.2.69.142": true, "2a00:1450::1": true, "::ffff:81.2.69.142": true, "1.1.1.1": true,
		"10.0.0.1": false, "::1": false, "100.127.255.255": false, "100.128.0.0": true,
	} {
		if got := geoip.IsPublic(netip.MustParseAddr(ip)); got != want {
			t.Errorf("IsPublic(%s) = %v, want %v", ip, got, want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	valid, err := buildDB(dbSpec{dbType: "GeoLite2-City", networks: cityNetworks("London")})
	if err != nil {
		t.Fatal(err)
	}
	asn, err := buildDB(dbSpec{dbType: "GeoLite2-ASN", networks: map[string]mmdbtype.Map{
		"81.2.69.0/24": {"autonomous_system_number": mmdbtype.Uint32(20712)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dangling := filepath.Join(dir, "dangling.mmdb")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	regular := write("regular-file", []byte("x"))

	tests := []struct {
		name   string
		path   string
		opts   []geoip.Option
		wantIs error
	}{
		{"missing file", filepath.Join(dir, "missing.mmdb"), nil, fs.ErrNotExist},
		{"dangling symlink", dangling, nil, fs.ErrNotExist},
		{"parent is a file", filepath.Join(regular, "x.mmdb"), nil, nil},
		{"directory", dir, nil, nil},
		{"empty file", write("empty.mmdb", nil), nil, geoip.ErrInvalidDatabase},
		{"garbage", write("garbage.mmdb", []byte("this is not a MaxMind database\x00\x01\x02")), nil, geoip.ErrInvalidDatabase},
		{"truncated download", write("truncated.mmdb", valid[:len(valid)/2]), nil, geoip.ErrInvalidDatabase},
		{"truncated download, mmap", write("truncated2.mmdb", valid[:len(valid)/2]), []geoip.Option{geoip.WithMmap()}, geoip.ErrInvalidDatabase},
		{"ASN database has no locations", write("GeoLite2-ASN.mmdb", asn), nil, geoip.ErrInvalidDatabase},
		{"empty path", "", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := geoip.Open(tc.path, append(tc.opts, geoip.WithPollInterval(0))...)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tc.path)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("Open(%q) = %v, want errors.Is %v", tc.path, err, tc.wantIs)
			}
			if msg := err.Error(); len(msg) < len("geoip: ") || msg[:len("geoip: ")] != "geoip: " {
				t.Errorf("error %q lacks the package prefix", msg)
			}
			t.Log(err)
		})
	}

	t.Run("permission denied", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads files whatever their mode")
		}
		p := write("secret.mmdb", valid)
		if err := os.Chmod(p, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := geoip.Open(p, geoip.WithPollInterval(0)); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("got %v, want fs.ErrPermission", err)
		}
	})
}

// TestOpenVerify corrupts the search tree of a valid file: without
// WithVerify the damage would only surface at lookup time.
func TestOpenVerify(t *testing.T) {
	data, err := buildDB(dbSpec{dbType: "GeoLite2-City", networks: cityNetworks("London")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 64 {
		data[i] = 0xff
	}
	path := filepath.Join(t.TempDir(), "corrupt.mmdb")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = geoip.Open(path, geoip.WithPollInterval(0), geoip.WithVerify())
	if !errors.Is(err, geoip.ErrInvalidDatabase) {
		t.Fatalf("Open with WithVerify = %v, want ErrInvalidDatabase", err)
	}
	// Without verification the file opens; a lookup that hits the damage
	// is an error, never a crash.
	db := openDB(t, path, geoip.WithPollInterval(0))
	for _, ip := range []string{londonIP, miltonIP, tokyoIP6, unknownIP} {
		loc, err := db.Locate(context.Background(), netip.MustParseAddr(ip), "")
		if err != nil && !errors.Is(err, geoip.ErrInvalidDatabase) {
			t.Errorf("Locate(%s) on a corrupt file: %v, want nil or ErrInvalidDatabase", ip, err)
		}
		t.Logf("%s: %+v, %v", ip, loc, err)
	}
}

func TestInfo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "city.mmdb")
	writeDB(t, path, dbSpec{dbType: "GeoIP2-City", epoch: 1_700_000_000, networks: cityNetworks("London")})
	db := openDB(t, path, geoip.WithPollInterval(0))
	info, err := db.Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.Path != path || info.DatabaseType != "GeoIP2-City" || info.BuildTime.Unix() != 1_700_000_000 ||
		info.IPVersion != 6 || !reflect.DeepEqual(info.Languages, []string{"de", "en", "fr", "ja", "pt-BR", "zh-CN"}) {
		t.Errorf("Info() = %+v", info)
	}
	info.Languages[0] = "changed" // the caller's copy
	if again, _ := db.Info(); again.Languages[0] != "de" {
		t.Error("Info shares its Languages slice with the caller")
	}
}

func TestClosed(t *testing.T) {
	db, err := geoip.Open(cityDB(t), geoip.WithPollInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := db.Locate(context.Background(), netip.MustParseAddr(londonIP), ""); !errors.Is(err, geoip.ErrClosed) {
		t.Errorf("Locate after Close: %v, want ErrClosed", err)
	}
	if _, err := db.Locate(context.Background(), netip.MustParseAddr("10.0.0.1"), ""); !errors.Is(err, geoip.ErrClosed) {
		t.Errorf("Locate of a private address after Close: %v, want ErrClosed", err)
	}
	if err := db.Reload(); !errors.Is(err, geoip.ErrClosed) {
		t.Errorf("Reload after Close: %v, want ErrClosed", err)
	}
	if _, err := db.Info(); !errors.Is(err, geoip.ErrClosed) {
		t.Errorf("Info after Close: %v, want ErrClosed", err)
	}
}

func TestLocateCanceledContext(t *testing.T) {
	db := openDB(t, cityDB(t), geoip.WithPollInterval(0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.Locate(ctx, netip.MustParseAddr(londonIP), ""); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestLocateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	db := openDB(t, cityDB(t), geoip.WithPollInterval(0))
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		ip   string
		max  float64
	}{
		{"hit with coordinates", londonIP, 1}, // the *Coordinates of the result
		{"hit without coordinates", swedenIP, 0},
		{"not found", unknownIP, 0},
		{"private", "192.168.1.1", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip := netip.MustParseAddr(tc.ip)
			db.Locate(ctx, ip, "de") // warm the reader's string cache
			if n := testing.AllocsPerRun(200, func() { db.Locate(ctx, ip, "de") }); n > tc.max {
				t.Errorf("Locate allocates %v times per call, want at most %v", n, tc.max)
			}
		})
	}
}

func BenchmarkLocate(b *testing.B) {
	db := openDB(b, cityDB(b), geoip.WithPollInterval(0))
	ctx := context.Background()
	for _, bc := range []struct{ name, ip, locale string }{
		{"hit", londonIP, ""},
		{"hit-locale", londonIP, "pt-BR"},
		{"hit-ipv6", tokyoIP6, ""},
		{"notfound", unknownIP, ""},
		{"private", "10.1.2.3", ""},
	} {
		ip := netip.MustParseAddr(bc.ip)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := db.Locate(ctx, ip, bc.locale); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("hit-parallel", func(b *testing.B) {
		ip := netip.MustParseAddr(londonIP)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := db.Locate(ctx, ip, ""); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

var _ engine.Locator = (*geoip.DB)(nil)
