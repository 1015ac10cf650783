package device

import (
	"bytes"
	"math/bits"
	"strings"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	useragent "github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"

	"github.com/tailorhq/tailor/rules"
)

// Device types reported in rules.Device.Type.
const (
	Mobile  = "mobile"
	Tablet  = "tablet"
	Desktop = "desktop"
	Bot     = "bot"
)

// DefaultCacheSize is the number of distinct user agents a Detector
// remembers when no WithCacheSize option is given.
const DefaultCacheSize = 4096

// maxCacheSize bounds WithCacheSize so a typo cannot reserve gigabytes.
const maxCacheSize = 1 << 20

// MaxUserAgentLen is the longest prefix of a user agent that is parsed and
// cached; the rest is ignored. Real agents are a few hundred bytes; the cap
// bounds the work and memory an abusive header can cost.
const MaxUserAgentLen = 1024

// Option configures a Detector.
type Option func(*config)

type config struct {
	cacheSize int
}

// WithCacheSize sets how many distinct user agents the Detector remembers.
// The size is rounded up to a power of two (at most 1<<20); 0 or less
// disables the cache, so every call parses.
func WithCacheSize(n int) Option {
	return func(c *config) { c.cacheSize = n }
}

// Detector derives a rules.Device from a user-agent string. It is safe for
// concurrent use; the zero value is not usable, call New.
type Detector struct {
	parser *useragent.Parser
	// slots is a direct-mapped cache: an agent lives in the slot its hash
	// selects, and a newer agent with the same slot replaces it. Entries
	// are immutable once published, so readers need no lock.
	slots []atomic.Pointer[entry]
	mask  uint64
}

type entry struct {
	hash uint64
	ua   string
	dev  rules.Device
}

// New returns a Detector. The first New in a process builds the parser's
// trie (tens of milliseconds, a few MiB shared by every Detector).
func New(opts ...Option) *Detector {
	c := config{cacheSize: DefaultCacheSize}
	for _, o := range opts {
		o(&c)
	}
	d := &Detector{parser: useragent.NewParser()}
	if c.cacheSize > 0 {
		n := min(c.cacheSize, maxCacheSize)
		n = 1 << bits.Len(uint(n-1)) // round up to a power of two
		d.slots = make([]atomic.Pointer[entry], n)
		d.mask = uint64(n - 1)
	}
	return d
}

// Detect returns what userAgent says about the device. An empty or
// unrecognised agent yields the zero Device. Repeated agents are answered
// from the cache without allocating. Safe for concurrent use.
func (d *Detector) Detect(userAgent string) rules.Device {
	if userAgent == "" {
		return rules.Device{}
	}
	if len(userAgent) > MaxUserAgentLen {
		userAgent = userAgent[:MaxUserAgentLen]
	}
	if d.slots == nil {
		return d.parse(userAgent)
	}
	h := xxhash.Sum64String(userAgent)
	slot := &d.slots[h&d.mask]
	if e := slot.Load(); e != nil && e.hash == h && e.ua == userAgent {
		return e.dev
	}
	dev := d.parse(userAgent)
	// Clone: the caller's string may be a slice of a large request body
	// that the cache must not keep alive.
	slot.Store(&entry{hash: h, ua: strings.Clone(userAgent), dev: dev})
	return dev
}

// parse classifies one agent without the cache.
func (d *Detector) parse(ua string) rules.Device {
	r := d.parser.Parse(ua)
	kind := r.Device()
	if kind == agents.DeviceBot || isBot(ua) {
		return rules.Device{Type: Bot}
	}
	dev := rules.Device{OS: osName(r.OS()), Browser: browserName(r.Browser())}
	if dev.Browser == "" {
		dev.Browser = browserFromTokens(ua)
	}
	switch kind {
	case agents.DeviceMobile:
		dev.Type = Mobile
	case agents.DeviceTablet:
		dev.Type = Tablet
	case agents.DeviceDesktop, agents.DeviceTV:
		dev.Type = Desktop
	}
	switch {
	case r.OS() == agents.OSAndroid && dev.Type != Desktop:
		// The parser calls most Android agents mobile; Android tablets
		// are the ones that leave out "Mobi".
		if strings.Contains(ua, "Mobi") {
			dev.Type = Mobile
		} else {
			dev.Type = Tablet
		}
	case r.OS() == agents.OSMacOS && strings.Contains(ua, "Mobile/"):
		// No Mac sends a "Mobile/" build token; iPadOS web views in
		// desktop mode send the Mac platform with it.
		dev.Type, dev.OS = Tablet, "iOS"
	}
	if dev.Type == "" && dev.Browser == "" && dev.OS == "" {
		return rules.Device{}
	}
	return dev
}

// botTokens are lowercase substrings of crawlers, previews, audits and HTTP
// tools, some of which the parser's list lacks (GPTBot, wget, Lighthouse).
// "bot" alone is not one: it would match phone brands such as Cubot. They
// are checked only on a cache miss.
var botTokens = [...]string{
	"bot/", "bot;", "bot)", "bot-", "crawl", "spider", "slurp", "externalhit",
	"headless", "lighthouse", "curl/", "wget/", "python-", "python/",
	"go-http-client", "java/", "libwww", "httpclient", "http-client",
	"scrapy", "axios/", "node-fetch", "httpie", "postmanruntime",
}

func isBot(ua string) bool {
	// Lower-case into a stack buffer: ua is at most MaxUserAgentLen bytes.
	var buf [MaxUserAgentLen]byte
	lower := buf[:len(ua)]
	for i := range len(ua) {
		c := ua[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	for _, t := range botTokens {
		if bytes.Contains(lower, []byte(t)) {
			return true
		}
	}
	return false
}

// browserTokens name a browser by its product token, most specific first
// (Edge and Opera also send "Chrome/"; Chrome also sends "Safari/"). They
// are a fallback for agents in which the parser finds no browser.
var browserTokens = [...]struct{ token, name string }{
	{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"}, {"Edge/", "Edge"},
	{"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"},
	{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
	{"CriOS/", "Chrome"}, {"Chrome/", "Chrome"},
	{"Version/", "Safari"}, // with Safari/: Safari proper, not a web view
}

func browserFromTokens(ua string) string {
	for _, b := range browserTokens {
		if strings.Contains(ua, b.token) && (b.name != "Safari" || strings.Contains(ua, "Safari/")) {
			return b.name
		}
	}
	return ""
}

func osName(o agents.OS) string {
	if o == agents.OSMacOS {
		return "macOS"
	}
	return string(o)
}

func browserName(b agents.Browser) string {
	switch b {
	case agents.BrowserSamsung:
		return "Samsung Internet"
	case agents.BrowserIE:
		return "Internet Explorer"
	}
	return string(b)
}
