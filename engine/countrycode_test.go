package engine

import (
	"sort"
	"strings"
	"testing"
)

// TestValidCountryCodeEveryCode: the binary search finds every listed code
// and nothing else, which needs countryCodes sorted.
func TestValidCountryCodeEveryCode(t *testing.T) {
	codes := strings.Fields(countryCodes)
	if !sort.StringsAreSorted(codes) {
		t.Fatal("countryCodes is not sorted")
	}
	listed := map[string]bool{}
	for _, c := range codes {
		listed[c] = true
	}
	for a := 'A' - 1; a <= 'Z'+1; a++ {
		for b := 'A' - 1; b <= 'Z'+1; b++ {
			c := string([]rune{a, b})
			if got := validCountryCode(c); got != listed[c] {
				t.Errorf("validCountryCode(%q) = %v, want %v", c, got, listed[c])
			}
		}
	}
	for _, c := range []string{"", "U", "USA", "us"} {
		if validCountryCode(c) {
			t.Errorf("validCountryCode(%q) = true", c)
		}
	}
}
