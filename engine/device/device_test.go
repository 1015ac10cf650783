package device_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/engine/device"
	"github.com/tailorhq/tailor/rules"
)

type agentCase struct {
	name string
	ua   string
	want rules.Device
}

func dev(typ, os, browser string) rules.Device {
	return rules.Device{Type: typ, OS: os, Browser: browser}
}

var agentCases = []agentCase{
	// Phones.
	{"iPhone Safari", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", dev("mobile", "iOS", "Safari")},
	{"iPhone Chrome", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/123.0.6312.52 Mobile/15E148 Safari/604.1", dev("mobile", "iOS", "Chrome")},
	{"iPhone Firefox", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15", dev("mobile", "iOS", "Firefox")},
	{"Android phone Chrome", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36", dev("mobile", "Android", "Chrome")},
	{"Android phone Chrome reduced UA", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", dev("mobile", "Android", "Chrome")},
	{"Android phone Firefox", "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0", dev("mobile", "Android", "Firefox")},
	{"Android phone Edge", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.64", dev("mobile", "Android", "Edge")},
	{"Android WebView", "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36", dev("mobile", "Android", "Chrome")},
	{"Samsung Internet phone", "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36", dev("mobile", "Android", "Samsung Internet")},
	{"Opera Mini", "Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) Presto/2.5.25 Version/10.54", dev("mobile", "", "Opera Mini")},

	// Tablets.
	{"iPad Safari", "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", dev("tablet", "iOS", "Safari")},
	// iPadOS desktop mode sends the Mac Safari agent byte for byte: it
	// cannot be told apart server-side, so it is a macOS desktop.
	{"iPadOS desktop mode", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", dev("desktop", "macOS", "Safari")},
	{"Android tablet Chrome", "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", dev("tablet", "Android", "Chrome")},
	{"Pixel Tablet", "Mozilla/5.0 (Linux; Android 14; Pixel Tablet) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", dev("tablet", "Android", "Chrome")},
	{"Android tablet Firefox", "Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0", dev("tablet", "Android", "Firefox")},
	{"Samsung Internet tablet", "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Safari/537.36", dev("tablet", "Android", "Samsung Internet")},
	{"iPadOS web view in desktop mode", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", dev("tablet", "iOS", "Safari")},
	{"iPad Chrome", "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1", dev("tablet", "iOS", "Chrome")},
	{"Kindle Fire Silk", "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/124.2.1 like Chrome/124.0.6367.118 Safari/537.36", dev("tablet", "Android", "Amazon Silk")},

	// Desktops.
	{"Windows Chrome", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", dev("desktop", "Windows", "Chrome")},
	{"Windows Edge", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51", dev("desktop", "Windows", "Edge")},
	{"Windows Edge legacy", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19582", dev("desktop", "Windows", "Edge")},
	{"Windows on ARM Edge", "Mozilla/5.0 (Windows NT 10.0; ARM64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0", dev("desktop", "Windows", "Edge")},
	{"Windows Firefox", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", dev("desktop", "Windows", "Firefox")},
	{"Windows Opera", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/110.0.0.0", dev("desktop", "Windows", "Opera")},
	{"Windows Vivaldi", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Vivaldi/6.7.3329.17", dev("desktop", "Windows", "Vivaldi")},
	{"Windows IE11", "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko", dev("desktop", "Windows", "Internet Explorer")},
	{"macOS Safari", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15", dev("desktop", "macOS", "Safari")},
	{"macOS Chrome", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", dev("desktop", "macOS", "Chrome")},
	{"macOS Firefox", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0", dev("desktop", "macOS", "Firefox")},
	{"Linux Firefox", "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", dev("desktop", "Linux", "Firefox")},
	{"Ubuntu Firefox", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", dev("desktop", "Linux", "Firefox")},
	{"ChromeOS", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", dev("desktop", "ChromeOS", "Chrome")},
	{"Windows Yandex", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 YaBrowser/24.4.0.0 Safari/537.36", dev("desktop", "Windows", "Yandex Browser")},
	{"Xbox", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edge/44.18363.8131", dev("desktop", "Windows", "Edge")},
	{"Samsung smart TV", "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36", dev("desktop", "Linux", "Samsung Internet")},

	// Bots and tools: platform left empty.
	{"Googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", dev("bot", "", "")},
	{"Googlebot smartphone", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", dev("bot", "", "")},
	{"Bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", dev("bot", "", "")},
	{"Bingbot desktop", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36", dev("bot", "", "")},
	{"YandexBot", "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", dev("bot", "", "")},
	{"facebookexternalhit", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", dev("bot", "", "")},
	{"HeadlessChrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36", dev("bot", "", "")},
	{"GPTBot", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)", dev("bot", "", "")},
	{"Applebot", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)", dev("bot", "", "")},
	{"DuckDuckBot", "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", dev("bot", "", "")},
	{"Slackbot", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", dev("bot", "", "")},
	{"Lighthouse", "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse", dev("bot", "", "")},
	{"curl", "curl/8.5.0", dev("bot", "", "")},
	{"python-requests", "python-requests/2.31.0", dev("bot", "", "")},
	{"Go http client", "Go-http-client/1.1", dev("bot", "", "")},
	{"wget", "Wget/1.21.4", dev("bot", "", "")},

	// Phones whose brand contains "bot" are not bots.
	{"Cubot phone", "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", dev("mobile", "Android", "Chrome")},
	{"Cubot phone with space", "Mozilla/5.0 (Linux; Android 9; CUBOT KING KONG 3 Build/PPR1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", dev("mobile", "Android", "Chrome")},

	// Unknown.
	{"empty", "", rules.Device{}},
	{"garbage", "zz!!@@ not a browser \x00\xff", rules.Device{}},
	{"bare Mozilla", "Mozilla/5.0", rules.Device{}},
	{"unknown app", "MyApp/1.0", rules.Device{}},
}

func TestDetect(t *testing.T) {
	for _, size := range []int{0, device.DefaultCacheSize} {
		d := device.New(device.WithCacheSize(size))
		for _, tc := range agentCases {
			t.Run(fmt.Sprintf("cache=%d/%s", size, tc.name), func(t *testing.T) {
				// Twice: the second answer comes from the cache.
				for i := range 2 {
					if got := d.Detect(tc.ua); got != tc.want {
						t.Fatalf("call %d: Detect(%q) = %+v, want %+v", i, tc.ua, got, tc.want)
					}
				}
			})
		}
	}
}

// TestDetectCacheCollisions alternates agents through a one-slot cache so
// every call evicts the previous agent: answers must never leak between
// agents sharing a slot.
func TestDetectCacheCollisions(t *testing.T) {
	d := device.New(device.WithCacheSize(1))
	for round := range 3 {
		for _, tc := range agentCases {
			if got := d.Detect(tc.ua); got != tc.want {
				t.Fatalf("round %d, %s: got %+v, want %+v", round, tc.name, got, tc.want)
			}
		}
	}
}

func TestDetectLongUserAgent(t *testing.T) {
	d := device.New()
	base := agentCases[0]
	long := base.ua + " " + strings.Repeat("x", 4*device.MaxUserAgentLen)
	if got := d.Detect(long); got != base.want {
		t.Fatalf("long agent: got %+v, want %+v", got, base.want)
	}
	// Agents that differ only past the cap share a cache entry and answer.
	if got := d.Detect(long + "y"); got != base.want {
		t.Fatalf("long agent variant: got %+v, want %+v", got, base.want)
	}
}

func TestDetectConcurrent(t *testing.T) {
	d := device.New(device.WithCacheSize(8)) // small: hits, misses and evictions race
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 4 {
		wg.Go(func() {
			for i := range 300 {
				tc := agentCases[(i*7+g)%len(agentCases)]
				if got := d.Detect(tc.ua); got != tc.want {
					select {
					case errs <- fmt.Sprintf("%s: got %+v, want %+v", tc.name, got, tc.want):
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestDetectHitAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	d := device.New()
	ua := agentCases[0].ua
	d.Detect(ua)
	if n := testing.AllocsPerRun(100, func() { d.Detect(ua) }); n != 0 {
		t.Fatalf("cache hit allocates %v times per call, want 0", n)
	}
}

func TestWithCacheSizeBounds(t *testing.T) {
	// Sizes that are not powers of two, and absurd ones, still work.
	for _, n := range []int{-1, 0, 1, 3, 1000, 1 << 30} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			d := device.New(device.WithCacheSize(n))
			tc := agentCases[0]
			if got := d.Detect(tc.ua); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func BenchmarkDetect(b *testing.B) {
	ua := agentCases[0].ua
	other := agentCases[len(agentCases)/2].ua
	b.Run("hit", func(b *testing.B) {
		d := device.New()
		d.Detect(ua)
		b.ReportAllocs()
		for b.Loop() {
			d.Detect(ua)
		}
	})
	b.Run("miss", func(b *testing.B) {
		// One slot and two agents: every call parses and replaces.
		d := device.New(device.WithCacheSize(1))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i&1 == 0 {
				d.Detect(ua)
			} else {
				d.Detect(other)
			}
			i++
		}
	})
	b.Run("nocache", func(b *testing.B) {
		d := device.New(device.WithCacheSize(0))
		b.ReportAllocs()
		for b.Loop() {
			d.Detect(ua)
		}
	})
}

var _ engine.DeviceDetector = (*device.Detector)(nil)
