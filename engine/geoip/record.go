package geoip

import (
	"fmt"

	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"

	"github.com/tailorhq/tailor/rules"
)

// maxStringSize bounds every string read from a record, so a corrupt
// database cannot make a lookup materialise huge values.
const maxStringSize = 1024

// maxSubdivisions bounds the subdivisions array of a record.
const maxSubdivisions = 32

// record decodes the GeoIP2/GeoLite2 City and Country layout straight into
// a rules.Location. It implements mmdbdata.CursorUnmarshaler so decoding
// walks the record once, reads only the fields and the one name per entity
// that the caller's locale selects, and allocates nothing for the strings it
// keeps (the reader interns them). Records are pooled; the locale fields are
// set before each decode.
type record struct {
	locale  string // as the caller gave it: "pt-BR", "de_DE", "fr", ""
	baseLen int    // length of the language part of locale

	out            rules.Location
	lat, lon       float64
	hasLat, hasLon bool
	continentName  string
	continentCode  string
}

func (r *record) reset(locale string) {
	*r = record{locale: locale, baseLen: languageLen(locale)}
}

// languageLen returns the length of the language subtag of a locale.
func languageLen(locale string) int {
	for i := 0; i < len(locale); i++ {
		if locale[i] == '-' || locale[i] == '_' {
			return i
		}
	}
	return len(locale)
}

// nameTier ranks a names key for the record's locale: 4 exact locale
// ("pt-BR" for "pt-BR" or "pt_br"), 3 its language ("de" for "de-AT"),
// 2 another region of its language ("pt-BR" for "pt-PT"), 1 English,
// 0 not wanted. Comparison is ASCII case-insensitive with '-' == '_'.
func (r *record) nameTier(key []byte) int {
	loc, n := r.locale, r.baseLen
	switch {
	case loc != "" && tagEqual(key, loc):
		return 4
	case n > 0 && len(key) == n && tagEqual(key, loc[:n]):
		return 3
	case n > 0 && len(key) > n && key[n] == '-' && tagEqual(key[:n], loc[:n]):
		return 2
	case string(key) == "en":
		return 1
	}
	return 0
}

func tagEqual(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := lowerTag(a[i]), lowerTag(b[i])
		if x != y {
			return false
		}
	}
	return true
}

func lowerTag(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + ('a' - 'A')
	case c == '_':
		return '-'
	}
	return c
}

// fields calls field for each entry of the map at c, in file order, and
// returns the cursor after the map. field must consume the value and return
// the cursor after it.
func fields(c mmdbdata.Cursor, field func(key []byte, value mmdbdata.Cursor) (mmdbdata.Cursor, error)) (mmdbdata.Cursor, error) {
	entries, err := c.MapReader()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	next := entries.First()
	for range entries.Len() {
		key, value, err := next.ReadMapKey()
		if err != nil {
			return mmdbdata.Cursor{}, err
		}
		if next, err = field(key, value); err != nil {
			return mmdbdata.Cursor{}, fmt.Errorf("%s: %w", key, err)
		}
	}
	return entries.End(next)
}

// UnmarshalMaxMindDBCursor implements mmdbdata.CursorUnmarshaler for the
// top-level record map.
func (r *record) UnmarshalMaxMindDBCursor(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	return fields(c, func(key []byte, value mmdbdata.Cursor) (mmdbdata.Cursor, error) {
		switch string(key) {
		case "city":
			return r.entity(value, &r.out.City, nil)
		case "country":
			return r.entity(value, &r.out.Country, &r.out.CountryCode)
		case "continent":
			return r.entity(value, &r.continentName, &r.continentCode)
		case "postal":
			return r.postal(value)
		case "subdivisions":
			return r.subdivisions(value)
		case "location":
			return r.location(value)
		}
		return value.Skip()
	})
}

// entity decodes a map with "names" and a code ("iso_code", or "code" for
// continents) into name and code (code may be nil).
func (r *record) entity(c mmdbdata.Cursor, name, code *string) (mmdbdata.Cursor, error) {
	return fields(c, func(key []byte, value mmdbdata.Cursor) (next mmdbdata.Cursor, err error) {
		switch k := string(key); {
		case k == "names":
			return r.names(value, name)
		case code != nil && (k == "iso_code" || k == "code"):
			*code, next, err = value.ReadStringMaxSize(maxStringSize)
			return next, err
		}
		return value.Skip()
	})
}

// names picks the best name for the locale from a names map.
func (r *record) names(c mmdbdata.Cursor, out *string) (mmdbdata.Cursor, error) {
	best := 0
	return fields(c, func(key []byte, value mmdbdata.Cursor) (mmdbdata.Cursor, error) {
		tier := r.nameTier(key)
		if tier <= best {
			return value.Skip()
		}
		s, next, err := value.ReadStringMaxSize(maxStringSize)
		if err == nil && s != "" {
			*out, best = s, tier
		}
		return next, err
	})
}

func (r *record) postal(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	return fields(c, func(key []byte, value mmdbdata.Cursor) (next mmdbdata.Cursor, err error) {
		if string(key) != "code" {
			return value.Skip()
		}
		r.out.PostalCode, next, err = value.ReadStringMaxSize(maxStringSize)
		return next, err
	})
}

// subdivisions decodes the first (largest) subdivision as the region and
// skips the others.
func (r *record) subdivisions(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	items, err := c.SliceMaxSize(maxSubdivisions)
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	var next mmdbdata.Cursor
	for {
		i, value, ok := items.Next(next)
		if !ok {
			break
		}
		if i == 0 {
			next, err = r.entity(value, &r.out.Region, &r.out.RegionCode)
		} else {
			next, err = value.Skip()
		}
		if err != nil {
			return mmdbdata.Cursor{}, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return items.End()
}

func (r *record) location(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	return fields(c, func(key []byte, value mmdbdata.Cursor) (next mmdbdata.Cursor, err error) {
		switch string(key) {
		case "latitude":
			r.lat, next, err = value.ReadFloat()
			r.hasLat = err == nil
		case "longitude":
			r.lon, next, err = value.ReadFloat()
			r.hasLon = err == nil
		case "time_zone":
			r.out.Timezone, next, err = value.ReadStringMaxSize(maxStringSize)
		default:
			next, err = value.Skip()
		}
		return next, err
	})
}

// result returns the decoded Location. Continent is the two-letter
// continent code ("EU", "NA"), or the localized name when the database has
// no code. A country code that is not two ASCII capital letters is dropped
// (the Ninetailed client rejects a response with an invalid one).
func (r *record) result() rules.Location {
	loc := r.out
	loc.Continent = r.continentCode
	if loc.Continent == "" {
		loc.Continent = r.continentName
	}
	if !isAlpha2(loc.CountryCode) {
		loc.CountryCode = ""
	}
	if r.hasLat && r.hasLon {
		loc.Coordinates = &rules.Coordinates{Latitude: r.lat, Longitude: r.lon}
	}
	return loc
}

func isAlpha2(s string) bool {
	return len(s) == 2 && 'A' <= s[0] && s[0] <= 'Z' && 'A' <= s[1] && s[1] <= 'Z'
}
