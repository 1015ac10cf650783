package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// writeCityDB writes a one-network GeoLite2-City database whose city is
// named city (English) and cityDE (German).
func writeCityDB(t *testing.T, path, city, cityDE string) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City", RecordSize: 24, Languages: []string{"de", "en"}})
	if err != nil {
		t.Fatal(err)
	}
	_, network, _ := net.ParseCIDR("81.2.69.0/24")
	names := func(en, de string) mmdbtype.Map {
		return mmdbtype.Map{"en": mmdbtype.String(en), "de": mmdbtype.String(de)}
	}
	rec := mmdbtype.Map{
		"city":      mmdbtype.Map{"names": names(city, cityDE)},
		"country":   mmdbtype.Map{"iso_code": mmdbtype.String("GB"), "names": names("United Kingdom", "Vereinigtes Königreich")},
		"continent": mmdbtype.Map{"code": mmdbtype.String("EU"), "names": names("Europe", "Europa")},
	}
	if err := tree.Insert(network, rec); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := tree.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestServerGeoIP(t *testing.T) {
	db := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
	writeCityDB(t, db, "London", "London")
	ts := startServer(t, map[string]string{"TAILOR_GEOIP": db})

	locate := func(query, ip, features string) string {
		t.Helper()
		body := `{"events":[{"type":"page"}],"options":{"features":` + features + `}}`
		r, err := newRequest("POST", ts.url+"/v2/organizations/o/environments/main/profiles"+query, body, map[string]string{"X-Force-IP": ip})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name, query, ip, features string
		want, notWant             []string
	}{
		{"lookup with consent", "", "81.2.69.142", `["location"]`,
			[]string{`"city":"London"`, `"countryCode":"GB"`, `"continent":"EU"`, `"jurisdiction":"GDPR"`}, nil},
		{"names in the request locale", "?locale=de", "81.2.69.142", `["ip-enrichment"]`,
			[]string{`"country":"Vereinigtes Königreich"`, `"countryCode":"GB"`}, nil},
		{"no lookup without consent", "", "81.2.69.142", `[]`, []string{`"location":{}`}, []string{"GB"}},
		{"address not in the database", "", "203.0.113.5", `["location"]`, []string{`"location":{}`}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := locate(tc.query, tc.ip, tc.features)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("answer lacks %s: %s", w, got)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("answer has %s: %s", w, got)
				}
			}
		})
	}

	// A replaced file is picked up on SIGHUP.
	writeCityDB(t, db, "Londinium", "Londinium")
	ts.hup <- os.Interrupt
	waitFor(t, "geoip reload", func() bool {
		return strings.Contains(locate("", "81.2.69.142", `["location"]`), `"city":"Londinium"`)
	})
}
