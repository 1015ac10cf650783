package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/tailorhq/tailor/engine"
)

// The site's first-party cookies. All are HttpOnly and SameSite=Lax, and
// Secure when the request came over TLS (see setCookie).
const (
	// cookieProfile holds the visitor's tailor profile id. Only the server
	// reads it; the page gets the id in its tailor-state script.
	cookieProfile = "tailor_profile"
	// cookieConsent records the visitor's choice: consentGranted or
	// consentDenied; absent means not asked yet (no consent).
	cookieConsent = "tailor_consent"
	// cookieSession is the signed id of the logged-in user.
	cookieSession = "tailor_session"
	// cookieCart lists the SKUs in the cart.
	cookieCart = "tailor_cart"
)

// Values of cookieConsent.
const (
	consentGranted = "granted"
	consentDenied  = "denied"
)

// cookieMaxAge is how long the profile and consent cookies last (Chrome
// caps cookie lifetimes at 400 days).
const cookieMaxAge = 365 * 24 * time.Hour

// setCookie sets a first-party cookie the way every cookie of the site is
// set; maxAge < 0 deletes it, 0 makes it a session cookie. Secure follows
// the connection (serve with -tls-cert); behind a proxy that terminates
// TLS, set it from what the proxy says instead.
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	}
	switch {
	case maxAge < 0:
		c.MaxAge = -1
	case maxAge > 0:
		c.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, c)
}

// cookieValue returns the value of cookie name, or "" when it is absent or
// holds anything but [A-Za-z0-9._-] (at most 200 bytes): cookies come from
// the client and are checked before use.
func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil || len(c.Value) > 200 {
		return ""
	}
	for _, b := range []byte(c.Value) {
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-') {
			return ""
		}
	}
	return c.Value
}

// consentOf returns the visitor's recorded choice ("" when not asked yet).
func consentOf(r *http.Request) string {
	switch v := cookieValue(r, cookieConsent); v {
	case consentGranted, consentDenied:
		return v
	}
	return ""
}

// signer signs session cookies with a key kept in the data directory, so
// sessions survive restarts.
type signer struct{ key []byte }

// sign returns value.signature.
func (s signer) sign(value string) string {
	return value + "." + base64.RawURLEncoding.EncodeToString(s.mac(value))
}

// verify returns the value of a signed string, or "" when the signature is
// wrong.
func (s signer) verify(signed string) string {
	i := strings.LastIndexByte(signed, '.')
	if i <= 0 {
		return ""
	}
	sig, err := base64.RawURLEncoding.DecodeString(signed[i+1:])
	if err != nil || !hmac.Equal(sig, s.mac(signed[:i])) {
		return ""
	}
	return signed[:i]
}

func (s signer) mac(value string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(value))
	return m.Sum(nil)
}

// clientIP is the connection's peer. The example serves browsers directly;
// behind a reverse proxy, take the address from its header instead (as
// httpapi.Options.TrustedProxies does for the Experience API).
func clientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// locale is the first language of Accept-Language ("de-DE"), or "".
func locale(r *http.Request) string {
	l, _, _ := strings.Cut(r.Header.Get("Accept-Language"), ",")
	l, _, _ = strings.Cut(l, ";")
	l = strings.TrimSpace(l)
	if l == "*" || len(l) > 35 {
		return ""
	}
	return l
}

// eventContext is the context of an event the server sends, with consent,
// for request r, as Ninetailed's browser SDK builds it for the same page.
func eventContext(r *http.Request, title string) engine.EventContext {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := scheme + "://" + r.Host + r.URL.RequestURI()
	return engine.EventContext{
		Page: &engine.Page{
			URL:      u,
			Path:     r.URL.Path,
			Referrer: r.Referer(),
			Search:   searchOf(r),
			Title:    title,
		},
		Library:   &engine.Library{Name: "tailor examples/webapp", Version: "1"},
		Locale:    locale(r),
		UserAgent: r.UserAgent(),
		GDPR:      &engine.GDPR{IsConsentGiven: true},
	}
}

func searchOf(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return ""
	}
	return "?" + r.URL.RawQuery
}

// newEvent returns an event of type typ at now with a fresh message id.
func newEvent(typ string, ctx engine.EventContext, now time.Time) engine.Event {
	var id [16]byte
	rand.Read(id[:])
	ts := now.UTC().Format(time.RFC3339Nano)
	return engine.Event{
		Type:              typ,
		MessageID:         hex.EncodeToString(id[:]),
		Channel:           "server",
		Timestamp:         ts,
		OriginalTimestamp: ts,
		SentAt:            ts,
		Context:           ctx,
	}
}
