package engine

import "strings"

// countryCodes are the ISO 3166-1 alpha-2 codes that Ninetailed's published
// client accepts (its schema is built from i18n-iso-countries 7.5.0, which
// also lists XK for Kosovo). A countryCode outside this list makes that
// client reject the whole response.
const countryCodes = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW"

// validCountryCode reports whether c is an upper-case code in countryCodes.
func validCountryCode(c string) bool {
	if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
		return false
	}
	// countryCodes is sorted: binary search over its 3-byte cells.
	lo, hi := 0, (len(countryCodes)+1)/3
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch code := countryCodes[3*m : 3*m+2]; {
		case code == c:
			return true
		case code < c:
			lo = m + 1
		default:
			hi = m
		}
	}
	return false
}

// JurisdictionNone is the jurisdiction of a location no table entry covers,
// or of an unknown location.
const JurisdictionNone = "none"

// countryLaws maps a country code to the comprehensive data-protection law
// that governs visitors there. Sources: the laws' own texts as summarised by
// the regulators (EU GDPR art. 3 and the EEA agreement; UK GDPR and DPA
// 2018; Swiss revFADP 2023; Brazil LGPD 13.709/2018; Canada PIPEDA; Japan
// APPI; South Korea PIPA; China PIPL; India DPDP Act 2023; South Africa
// POPIA; Singapore and Thailand PDPA; Turkey KVKK; Argentina Law 25.326;
// Australia Privacy Act 1988; New Zealand Privacy Act 2020; Israel PPL;
// Nigeria NDPA 2023; Kenya DPA 2019; Indonesia PDP Law 2022; Vietnam
// PDPD; Saudi Arabia PDPL; UAE PDPL).
var countryLaws = map[string]string{
	// EU member states.
	"AT": "GDPR", "BE": "GDPR", "BG": "GDPR", "HR": "GDPR", "CY": "GDPR",
	"CZ": "GDPR", "DK": "GDPR", "EE": "GDPR", "FI": "GDPR", "FR": "GDPR",
	"DE": "GDPR", "GR": "GDPR", "HU": "GDPR", "IE": "GDPR", "IT": "GDPR",
	"LV": "GDPR", "LT": "GDPR", "LU": "GDPR", "MT": "GDPR", "NL": "GDPR",
	"PL": "GDPR", "PT": "GDPR", "RO": "GDPR", "SK": "GDPR", "SI": "GDPR",
	"ES": "GDPR", "SE": "GDPR",
	// Outermost regions coded separately in ISO 3166 but part of the EU.
	"GF": "GDPR", "GP": "GDPR", "MQ": "GDPR", "RE": "GDPR", "YT": "GDPR",
	"MF": "GDPR", "AX": "GDPR",
	// EEA (EFTA members that apply the GDPR).
	"IS": "GDPR", "LI": "GDPR", "NO": "GDPR",
	// United Kingdom: the UK GDPR, the GDPR kept in UK law.
	"GB": "GDPR", "GG": "GDPR", "JE": "GDPR", "IM": "GDPR",

	"CH": "FADP",
	"BR": "LGPD",
	"CA": "PIPEDA",
	"JP": "APPI",
	"KR": "PIPA",
	"CN": "PIPL",
	"IN": "DPDPA",
	"ZA": "POPIA",
	"SG": "PDPA",
	"TH": "PDPA",
	"TR": "KVKK",
	"AR": "PDPL",
	"AU": "Privacy Act",
	"NZ": "Privacy Act",
	"IL": "PPL",
	"NG": "NDPA",
	"KE": "DPA",
	"ID": "PDP",
	"VN": "PDPD",
	"SA": "PDPL",
	"AE": "PDPL",
}

// usStateLaws maps a US state code to its comprehensive consumer privacy
// law (in force or enacted as of 2026).
var usStateLaws = map[string]string{
	"CA": "CCPA",    // California Consumer Privacy Act, as amended by CPRA
	"VA": "VCDPA",   // Virginia Consumer Data Protection Act
	"CO": "CPA",     // Colorado Privacy Act
	"CT": "CTDPA",   // Connecticut Data Privacy Act
	"UT": "UCPA",    // Utah Consumer Privacy Act
	"TX": "TDPSA",   // Texas Data Privacy and Security Act
	"OR": "OCPA",    // Oregon Consumer Privacy Act
	"MT": "MCDPA",   // Montana Consumer Data Privacy Act
	"IA": "ICDPA",   // Iowa Consumer Data Protection Act
	"DE": "DPDPA",   // Delaware Personal Data Privacy Act
	"NH": "NHPA",    // New Hampshire privacy act (SB 255)
	"NJ": "NJDPA",   // New Jersey Data Privacy Act
	"NE": "NDPA",    // Nebraska Data Privacy Act
	"TN": "TIPA",    // Tennessee Information Protection Act
	"MN": "MCDPA",   // Minnesota Consumer Data Privacy Act
	"MD": "MODPA",   // Maryland Online Data Privacy Act
	"IN": "ICDPA",   // Indiana Consumer Data Protection Act
	"KY": "KCDPA",   // Kentucky Consumer Data Protection Act
	"RI": "RIDTPPA", // Rhode Island Data Transparency and Privacy Protection Act
}

// Jurisdiction returns the data-protection regime for a country code
// (ISO 3166-1 alpha-2) and region code (ISO 3166-2 subdivision, with or
// without the country prefix, e.g. "CA" or "US-CA"), or JurisdictionNone.
// It is safe for concurrent use.
func Jurisdiction(countryCode, regionCode string) string {
	cc := strings.ToUpper(countryCode)
	if cc == "US" {
		rc := strings.ToUpper(strings.TrimPrefix(strings.ToUpper(regionCode), "US-"))
		if law, ok := usStateLaws[rc]; ok {
			return law
		}
		return JurisdictionNone
	}
	if law, ok := countryLaws[cc]; ok {
		return law
	}
	return JurisdictionNone
}
