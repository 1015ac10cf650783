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

// BenchmarkIdentifyEnrichment measures what location and device
// enrichment add to Identify (one page event, in-memory store): plain (no
// user agent, no IP lookup), device (a user agent: detected when it
// changes, then stored with the profile), location (the IP looked up in a
// City database on every call, as the request enables it) and both.
func BenchmarkIdentifyEnrichment(b *testing.B) {
	db := openDB(b, cityDB(b), geoip.WithPollInterval(0))
	const ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
	for _, bc := range []struct {
		name     string
		ua       string
		lookupIP bool
		wantCity string
	}{
		{"plain", "", false, ""},
		{"device", ua, false, ""},
		{"location", "", true, "Milton"},
		{"both", ua, true, "Milton"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			eng, err := engine.Open("", &engine.Options{InMemory: true, Locator: db})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { eng.Close() })
			req := engine.Request{
				Events: []engine.Event{{Type: engine.EventPage, Context: engine.EventContext{
					UserAgent: bc.ua, Page: &engine.Page{URL: "https://example.com/", Path: "/"}}}},
				IP: netip.MustParseAddr(miltonIP),
			}
			if bc.lookupIP {
				req.Options.Features = []string{"location"}
			}
			ctx := context.Background()
			resp, err := eng.Identify(ctx, "bench", req)
			if err != nil {
				b.Fatal(err)
			}
			if resp.Profile.Location.City != bc.wantCity {
				b.Fatalf("city %q, want %q", resp.Profile.Location.City, bc.wantCity)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := eng.Identify(ctx, "bench", req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
