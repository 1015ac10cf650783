package engine

import "testing"

func TestJurisdiction(t *testing.T) {
	tests := []struct{ country, region, want string }{
		{"DE", "BY", "GDPR"},
		{"fr", "", "GDPR"},
		{"IE", "", "GDPR"},
		{"NO", "", "GDPR"}, // EEA
		{"IS", "", "GDPR"},
		{"LI", "", "GDPR"},
		{"GB", "ENG", "GDPR"}, // UK GDPR
		{"US", "CA", "CCPA"},
		{"US", "US-CA", "CCPA"},
		{"us", "ca", "CCPA"},
		{"US", "VA", "VCDPA"},
		{"US", "CO", "CPA"},
		{"US", "TX", "TDPSA"},
		{"US", "NY", JurisdictionNone},
		{"US", "", JurisdictionNone},
		{"BR", "SP", "LGPD"},
		{"CA", "ON", "PIPEDA"},
		{"CA", "QC", "PIPEDA"},
		{"CH", "", "FADP"},
		{"JP", "", "APPI"},
		{"KR", "", "PIPA"},
		{"CN", "", "PIPL"},
		{"IN", "", "DPDPA"},
		{"ZA", "", "POPIA"},
		{"MX", "", JurisdictionNone},
		{"", "", JurisdictionNone},
		{"XX", "", JurisdictionNone},
	}
	for _, tt := range tests {
		if got := Jurisdiction(tt.country, tt.region); got != tt.want {
			t.Errorf("Jurisdiction(%q, %q) = %q, want %q", tt.country, tt.region, got, tt.want)
		}
	}
}

func TestJurisdictionCountriesAreValid(t *testing.T) {
	for cc := range countryLaws {
		if !validCountryCode(cc) {
			t.Errorf("countryLaws has %q, not a country code the client accepts", cc)
		}
	}
}

func TestValidCountryCode(t *testing.T) {
	for _, c := range []string{"US", "DE", "XK", "AX", "ZW"} {
		if !validCountryCode(c) {
			t.Errorf("validCountryCode(%q) = false", c)
		}
	}
	for _, c := range []string{"", "XX", "T1", "us", "USA", "U", "EU", "UK"} {
		if validCountryCode(c) {
			t.Errorf("validCountryCode(%q) = true", c)
		}
	}
}
