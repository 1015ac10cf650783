package geoip_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// This file builds small but real MaxMind DB files with MaxMind's own
// writer, in the GeoIP2/GeoLite2 record layouts, so the tests exercise the
// same bytes a downloaded GeoLite2 file has.

type names map[string]string

func namesMap(n names) mmdbtype.Map {
	m := mmdbtype.Map{}
	for k, v := range n {
		m[mmdbtype.String(k)] = mmdbtype.String(v)
	}
	return m
}

func entity(code, codeKey string, geonameID uint32, n names) mmdbtype.Map {
	m := mmdbtype.Map{"geoname_id": mmdbtype.Uint32(geonameID)}
	if code != "" {
		m[mmdbtype.String(codeKey)] = mmdbtype.String(code)
	}
	if n != nil {
		m["names"] = namesMap(n)
	}
	return m
}

var (
	europe        = entity("EU", "code", 6255148, names{"en": "Europe", "de": "Europa", "fr": "Europe", "pt-BR": "Europa", "zh-CN": "欧洲"})
	northAmerica  = entity("NA", "code", 6255149, names{"en": "North America", "de": "Nordamerika", "fr": "Amérique du Nord"})
	asia          = entity("AS", "code", 6255147, names{"en": "Asia", "de": "Asien"})
	unitedKingdom = entity("GB", "iso_code", 2635167, names{"en": "United Kingdom", "de": "Vereinigtes Königreich", "fr": "Royaume-Uni", "pt-BR": "Reino Unido", "zh-CN": "英国"})
	unitedStates  = entity("US", "iso_code", 6252001, names{"en": "United States", "de": "Vereinigte Staaten", "fr": "États-Unis"})
	japan         = entity("JP", "iso_code", 1861060, names{"en": "Japan", "de": "Japan", "ja": "日本"})
	sweden        = entity("SE", "iso_code", 2661886, names{"en": "Sweden"})
)

// londonRecord is a complete GeoLite2-City record; city is its English
// city name (reload tests change it to tell database versions apart).
func londonRecord(city string) mmdbtype.Map {
	return mmdbtype.Map{
		"city":               entity("", "", 2643743, names{"en": city, "de": city, "fr": "Londres", "pt-BR": "Londres", "zh-CN": "伦敦"}),
		"continent":          europe,
		"country":            unitedKingdom,
		"registered_country": unitedKingdom,
		"location": mmdbtype.Map{
			"accuracy_radius": mmdbtype.Uint16(10),
			"latitude":        mmdbtype.Float64(51.5142),
			"longitude":       mmdbtype.Float64(-0.0931),
			"time_zone":       mmdbtype.String("Europe/London"),
		},
		"postal": mmdbtype.Map{"code": mmdbtype.String("EC2V")},
		"subdivisions": mmdbtype.Slice{
			entity("ENG", "iso_code", 6269131, names{"en": "England", "de": "England", "fr": "Angleterre", "pt-BR": "Inglaterra"}),
			entity("WSM", "iso_code", 3333218, names{"en": "Westminster"}),
		},
		"traits": mmdbtype.Map{"is_anycast": mmdbtype.Bool(false)},
	}
}

var miltonRecord = mmdbtype.Map{
	"city":      entity("", "", 5803556, names{"en": "Milton"}),
	"continent": northAmerica,
	"country":   unitedStates,
	"location": mmdbtype.Map{
		"latitude":   mmdbtype.Float64(47.2513),
		"longitude":  mmdbtype.Float64(-122.3149),
		"metro_code": mmdbtype.Uint16(819),
		"time_zone":  mmdbtype.String("America/Los_Angeles"),
	},
	"postal":       mmdbtype.Map{"code": mmdbtype.String("98354")},
	"subdivisions": mmdbtype.Slice{entity("WA", "iso_code", 5815135, names{"en": "Washington", "fr": "État de Washington"})},
}

// tokyoV6Record has no city, postal code or subdivision.
var tokyoV6Record = mmdbtype.Map{
	"continent": asia,
	"country":   japan,
	"location": mmdbtype.Map{
		"latitude":  mmdbtype.Float64(35.69),
		"longitude": mmdbtype.Float64(139.69),
		"time_zone": mmdbtype.String("Asia/Tokyo"),
	},
}

// swedenSparseRecord has a country with English names only, a latitude
// without longitude and no time zone.
var swedenSparseRecord = mmdbtype.Map{
	"country":  sweden,
	"location": mmdbtype.Map{"latitude": mmdbtype.Float64(59.33)},
}

// badCodeRecord has country and continent codes the wire format cannot
// carry, and no names.
var badCodeRecord = mmdbtype.Map{
	"country":   mmdbtype.Map{"iso_code": mmdbtype.String("gbr")},
	"continent": mmdbtype.Map{"names": namesMap(names{"en": "Antarctica"})},
}

const (
	londonIP  = "81.2.69.142"
	miltonIP  = "216.160.83.56"
	tokyoIP6  = "2001:218:85a3::8a2e:370:7334"
	swedenIP  = "89.160.20.112"
	badIP     = "2.125.160.216"
	unknownIP = "8.8.8.8" // public, but not in the test databases
)

// cityNetworks returns the networks of a test City database whose London
// record names the city londonCity.
func cityNetworks(londonCity string) map[string]mmdbtype.Map {
	return map[string]mmdbtype.Map{
		"81.2.69.0/24":    londonRecord(londonCity),
		"216.160.83.0/24": miltonRecord,
		"2001:218::/32":   tokyoV6Record,
		"89.160.20.0/24":  swedenSparseRecord,
		"2.125.160.0/24":  badCodeRecord,
	}
}

// countryNetworks is the GeoLite2-Country layout: country, continent and
// registered country only.
func countryNetworks() map[string]mmdbtype.Map {
	m := map[string]mmdbtype.Map{}
	for cidr, r := range map[string]mmdbtype.Map{
		"81.2.69.0/24":    {"continent": europe, "country": unitedKingdom, "registered_country": unitedKingdom},
		"216.160.83.0/24": {"continent": northAmerica, "country": unitedStates, "registered_country": unitedStates},
		"2001:218::/32":   {"continent": asia, "country": japan, "registered_country": japan},
	} {
		m[cidr] = r
	}
	return m
}

type dbSpec struct {
	dbType   string
	ipV      int  // 4 or 6 (default 6)
	reserved bool // allow reserved networks (private, loopback, ...)
	epoch    int64
	networks map[string]mmdbtype.Map
}

// buildDB returns the bytes of a MaxMind DB file.
func buildDB(spec dbSpec) ([]byte, error) {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            spec.dbType,
		IPVersion:               spec.ipV,
		RecordSize:              24,
		Languages:               []string{"de", "en", "fr", "ja", "pt-BR", "zh-CN"},
		Description:             map[string]string{"en": "tailor test database"},
		IncludeReservedNetworks: spec.reserved,
		BuildEpoch:              spec.epoch,
	})
	if err != nil {
		return nil, err
	}
	for cidr, rec := range spec.networks {
		_, network, err := net.ParseCIDR(cidr)
		if err != nil {
			return nil, err
		}
		if err := tree.Insert(network, rec); err != nil {
			return nil, fmt.Errorf("insert %s: %w", cidr, err)
		}
	}
	f := &bytesWriter{}
	if _, err := tree.WriteTo(f); err != nil {
		return nil, err
	}
	return f.b, nil
}

type bytesWriter struct{ b []byte }

func (w *bytesWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// installFile writes data to path the way geoipupdate does: into a
// temporary file in the same directory, then renamed over path.
func installFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.mmdb")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// writeDB builds a database and installs it at path.
func writeDB(t testing.TB, path string, spec dbSpec) {
	t.Helper()
	data, err := buildDB(spec)
	if err != nil {
		t.Fatalf("build %s: %v", spec.dbType, err)
	}
	if err := installFile(path, data); err != nil {
		t.Fatal(err)
	}
}

// cityDB writes a test City database into a temporary directory and
// returns its path.
func cityDB(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
	writeDB(t, path, dbSpec{dbType: "GeoLite2-City", networks: cityNetworks("London")})
	return path
}
