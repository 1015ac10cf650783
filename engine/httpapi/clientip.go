package httpapi

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientIP returns the address of the client that sent r:
//
//   - the X-Force-IP header when present (400 when it is not an address);
//   - else, when the connection's peer is in trusted, the right-most
//     X-Forwarded-For address that is not itself trusted (the left-most one
//     when every hop is trusted; the last trusted hop when the chain holds
//     something unparsable, since nothing left of it can be believed);
//   - else the peer.
//
// IPv4-mapped IPv6 addresses are unmapped and zones dropped. The zero Addr
// means unknown (a RemoteAddr that does not parse, as in some tests).
func clientIP(r *http.Request, trusted []netip.Prefix) (netip.Addr, error) {
	if v := strings.TrimSpace(r.Header.Get("X-Force-IP")); v != "" {
		a, ok := parseHop(v)
		if !ok {
			return netip.Addr{}, invalidData("X-Force-IP: not an IP address")
		}
		return a, nil
	}
	peer, _ := parseHop(r.RemoteAddr)
	if !peer.IsValid() || !isTrusted(peer, trusted) {
		return peer, nil
	}
	hops := r.Header.Values("X-Forwarded-For")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			p := strings.TrimSpace(parts[j])
			if p == "" {
				continue
			}
			a, ok := parseHop(p)
			if !ok {
				return client, nil
			}
			client = a
			if !isTrusted(a, trusted) {
				return a, nil
			}
		}
	}
	return client, nil
}

// parseHop parses an address as it appears in RemoteAddr, X-Forwarded-For
// or X-Force-IP: "1.2.3.4", "1.2.3.4:80", "::1", "[::1]:80".
func parseHop(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(s)
		if err2 != nil {
			if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
				a, err = netip.ParseAddr(s[1 : len(s)-1])
			}
			if err != nil {
				return netip.Addr{}, false
			}
		} else {
			a = ap.Addr()
		}
	}
	return a.Unmap().WithZone(""), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
