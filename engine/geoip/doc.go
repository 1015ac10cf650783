// Package geoip resolves IP addresses to locations from MaxMind-format
// databases: GeoLite2 and GeoIP2 City or Country files (.mmdb), or any
// vendor's file in the same layout. A [DB] satisfies engine.Locator and
// does not import the engine, so it can be used on its own.
//
//	db, err := geoip.Open("/var/lib/GeoIP/GeoLite2-City.mmdb")
//	...
//	defer db.Close()
//	loc, err := db.Locate(ctx, netip.MustParseAddr("81.2.69.142"), "de")
//
// Reading uses github.com/oschwald/maxminddb-golang/v2 with a hand-written
// decoder that walks each record once and keeps one name per place.
//
// # Fields
//
// Every field of [rules.Location] that the database has is filled:
//
//   - City: city.names; PostalCode: postal.code.
//   - Region: the name of the first (largest) subdivision; RegionCode: its
//     ISO 3166-2 code without the country prefix ("CA" for California,
//     "ENG" for England), so countryCode + regionCode name the subdivision.
//   - Country: country.names; CountryCode: country.iso_code (ISO 3166-1
//     alpha-2; dropped if it is not two capital letters).
//   - Continent: the two-letter continent code ("EU", "NA", "AS", "AF",
//     "OC", "SA", "AN"), which does not change with the locale and is what
//     rules compare against; the continent's name only when a database has
//     no code.
//   - Timezone: location.time_zone (IANA, "Europe/London").
//   - Coordinates: location.latitude/longitude, set only when both exist.
//
// Country databases have no city, postal code, region, time zone or
// coordinates; those stay empty.
//
// # Names and locales
//
// Names come in the request's locale when the database has them. The best
// of: the exact locale ("pt-BR", "zh-CN"; case and '-' versus '_' do not
// matter), its language ("de" for "de-AT"), another region of the language
// ("pt-BR" for "pt-PT"), then English. GeoLite2 files carry de, en, es, fr,
// ja, pt-BR, ru and zh-CN.
//
// # Addresses that resolve to nothing
//
// Loopback, private, link-local, unspecified, multicast, broadcast, shared
// (CGNAT), documentation and other reserved addresses yield the zero
// Location without a lookup (see [IsPublic]); so do addresses the database
// does not cover. IPv4-mapped IPv6 addresses are looked up as IPv4.
//
// # Replacing the file while serving
//
// By default the file is read into memory (about its size on the heap), so
// it may be replaced in any way: renamed over, copied over, or rewritten.
// [WithMmap] maps it instead, saving the heap copy; the file must then be
// replaced only by renaming a new file over it (geoipupdate does this),
// because rewriting a mapped file in place can crash the process.
//
// A goroutine checks the file every [DefaultPollInterval] (see
// [WithPollInterval]) and reopens it when its identity, size or
// modification time changed; [DB.Reload] reopens it on demand (for
// SIGHUP). The new version is swapped in atomically: lookups in flight
// finish on the old version, which is closed when its last lookup ends
// (reference counted, never earlier). A new file that fails to open is
// logged once and ignored until it changes again; the old version keeps
// serving. [DB.Close] stops the goroutine and waits for it.
//
// # Cost
//
// A lookup takes a few microseconds and allocates only the Coordinates of
// its result; private addresses cost a few tens of nanoseconds.
package geoip
