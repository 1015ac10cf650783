package geoip_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/engine/geoip"
)

// TestEngineJurisdictionFromIP drives Identify with a real database as the
// engine's Locator: with the location feature enabled, the jurisdiction
// follows from the request IP alone.
func TestEngineJurisdictionFromIP(t *testing.T) {
	db := openDB(t, cityDB(t), geoip.WithPollInterval(0))
	eng, err := engine.Open("", &engine.Options{InMemory: true, Locator: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	tests := []struct {
		ip, locale    string
		features      []string
		city, country string
		jurisdiction  string
	}{
		{miltonIP, "", []string{"location"}, "Milton", "US", "none"}, // Washington: no state law in the table
		{londonIP, "de", []string{"ip-enrichment"}, "London", "GB", "GDPR"},
		{londonIP, "", nil, "", "", "none"}, // no consent: no lookup
		{"10.1.2.3", "", []string{"location"}, "", "", "none"},
	}
	for _, tt := range tests {
		resp, err := eng.Identify(context.Background(), "", engine.Request{
			Events:  []engine.Event{{Type: engine.EventPage}},
			Options: engine.RequestOptions{Features: tt.features},
			IP:      netip.MustParseAddr(tt.ip),
			Locale:  tt.locale,
		})
		if err != nil {
			t.Fatal(err)
		}
		l := resp.Profile.Location
		if l.City != tt.city || l.CountryCode != tt.country || resp.Profile.Jurisdiction != tt.jurisdiction {
			t.Errorf("%s %v: location %+v jurisdiction %q; want %s/%s %s",
				tt.ip, tt.features, l, resp.Profile.Jurisdiction, tt.city, tt.country, tt.jurisdiction)
		}
	}
}
