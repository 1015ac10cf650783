// Package device derives what a visitor's user agent says about the device:
// its type ("mobile", "tablet", "desktop" or "bot"), operating system and
// browser, as a [rules.Device] that audience rules read as device.type,
// device.os and device.browser.
//
// A [Detector] parses with github.com/medama-io/go-useragent (a trie built
// once per process from the module's embedded agent list; about 1 µs and no
// allocation per parse) and keeps the result per distinct user agent in a
// bounded, lock-free cache, so a repeated agent costs one hash and one
// string comparison.
//
// # Classification
//
//   - An empty user agent yields the zero Device (unknown).
//   - Crawlers, link previews, audits, headless browsers and HTTP tools
//     (Googlebot, Bingbot, GPTBot, Slackbot, Lighthouse, curl,
//     python-requests, Go-http-client, wget, ...) are "bot", with OS and
//     browser left empty: a crawler's claimed platform is not a visitor's.
//   - Android agents without the "Mobi" token are "tablet" (the convention
//     Chrome, Firefox and Samsung Internet follow on Android tablets);
//     with it, "mobile".
//   - iPadOS 13+ Safari in its default "desktop website" mode sends exactly
//     the user agent of Safari on a Mac, so it is reported as a macOS
//     desktop: nothing in the header tells them apart (only client-side
//     touch detection can). iPads that send "iPad" are "tablet", and so are
//     in-app web views that send the Mac platform with a "Mobile/" build
//     token (no Mac sends one), with OS "iOS".
//   - Smart TVs and consoles are "desktop" (a large-screen, non-touch layout).
//   - Anything unrecognised (garbage, unknown tools) yields the zero Device.
//
// OS names: "iOS", "Android", "Windows", "macOS", "Linux", "ChromeOS",
// "FreeBSD", "OpenBSD". Browser names: "Chrome", "Safari", "Firefox",
// "Edge", "Opera", "Opera Mini", "Samsung Internet", "Internet Explorer",
// "Vivaldi", "Yandex Browser", "Amazon Silk", "Android Browser", and a few
// more.
package device
