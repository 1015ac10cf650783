package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/tailorhq/tailor/engine"
)

// Admin-only features: explanations and QA overrides reveal and bend the
// rules, so they are served only to callers presenting Options.AdminToken
// as "Authorization: Bearer <token>". Without a configured token they do
// not exist: the explain endpoint answers 404 like any unknown path and
// the override parameters are ignored like any unknown parameter, so the
// API is exactly the Experience API.

// Query parameters and headers of the QA overrides. Each holds one or
// more comma-separated entries: force-variant entries are
// "<experienceId>:<variantIndex>", force-audience entries
// "<audienceId>:in" or "<audienceId>:out" (the id is everything before
// the last colon). Query parameters may repeat.
const (
	ParamForceVariant   = "force-variant"
	ParamForceAudience  = "force-audience"
	HeaderForceVariant  = "X-Tailor-Force-Variant"
	HeaderForceAudience = "X-Tailor-Force-Audience"
)

// overridable lists the endpoints that take overrides: the ones that
// evaluate a request (Identify, IdentifyBatch) and explain.
var overridable = map[string]bool{
	"POST /profiles": true, "POST /profiles/{id}": true, "POST /events": true, explainRoute: true,
}

const explainRoute = "GET /profiles/{id}/explain"

// adminOnly reports whether the request needs the admin token: the
// explain endpoint, and any request carrying overrides.
func (h *handler) adminOnly(pattern string, r *http.Request) bool {
	return h.opts.AdminToken != "" && (pattern == explainRoute || hasOverrides(r))
}

func hasOverrides(r *http.Request) bool {
	q := r.URL.Query()
	return q.Has(ParamForceVariant) || q.Has(ParamForceAudience) ||
		r.Header.Get(HeaderForceVariant) != "" || r.Header.Get(HeaderForceAudience) != ""
}

// errUnauthorized is the answer to an admin request without the token.
var errUnauthorized = &apiError{http.StatusUnauthorized, "ERR_UNAUTHORIZED",
	"this request needs the admin token (Authorization: Bearer and the token)"}

// authorize checks the admin token of a request that needs it. It
// compares hashes in constant time, so the answer's timing tells nothing
// about the token. On failure it adds the WWW-Authenticate challenge.
func (h *handler) authorize(w http.ResponseWriter, pattern string, r *http.Request) error {
	if !h.adminOnly(pattern, r) {
		return nil
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	want := sha256.Sum256([]byte(h.opts.AdminToken))
	sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
	if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tailor admin"`)
		return errUnauthorized
	}
	if !overridable[pattern] && hasOverrides(r) {
		return invalidData(fmt.Sprintf("%s and %s are not accepted by %s", ParamForceVariant, ParamForceAudience, pattern))
	}
	return nil
}

// overridesOf reads the overrides of an authorized request; nil when it
// has none or the admin features are off.
func (h *handler) overridesOf(r *http.Request) (*engine.Overrides, error) {
	if h.opts.AdminToken == "" || !hasOverrides(r) {
		return nil, nil
	}
	o := &engine.Overrides{}
	q := r.URL.Query()
	for _, src := range []struct {
		name   string
		values []string
	}{
		{ParamForceVariant, q[ParamForceVariant]},
		{HeaderForceVariant, r.Header.Values(HeaderForceVariant)},
		{ParamForceAudience, q[ParamForceAudience]},
		{HeaderForceAudience, r.Header.Values(HeaderForceAudience)},
	} {
		variants := src.name == ParamForceVariant || src.name == HeaderForceVariant
		for _, v := range src.values {
			for _, entry := range strings.Split(v, ",") {
				entry = strings.TrimSpace(entry)
				i := strings.LastIndexByte(entry, ':')
				if i <= 0 {
					return nil, invalidData(fmt.Sprintf("%s: %q is not %s", src.name, entry, entryForm(variants)))
				}
				id, val := entry[:i], entry[i+1:]
				if variants {
					n, err := strconv.Atoi(val)
					if err != nil {
						return nil, invalidData(fmt.Sprintf("%s: %q is not %s", src.name, entry, entryForm(true)))
					}
					if o.Variants == nil {
						o.Variants = map[string]int{}
					}
					o.Variants[id] = n
					continue
				}
				var in bool
				switch val {
				case "in", "true":
					in = true
				case "out", "false":
				default:
					return nil, invalidData(fmt.Sprintf("%s: %q is not %s", src.name, entry, entryForm(false)))
				}
				if o.Audiences == nil {
					o.Audiences = map[string]bool{}
				}
				o.Audiences[id] = in
			}
		}
	}
	return o, nil
}

func entryForm(variants bool) string {
	if variants {
		return "<experienceId>:<variantIndex>"
	}
	return "<audienceId>:in or <audienceId>:out"
}

// explain answers GET /profiles/{id}/explain: engine.Engine.Explain with
// the request's overrides.
func (h *handler) explain(ctx context.Context, r *http.Request) (any, error) {
	ov, err := h.overridesOf(r)
	if err != nil {
		return nil, err
	}
	return h.eng.Explain(ctx, r.PathValue("id"), ov)
}

// redactExplanation removes the values of Options.RedactTraits from the
// values an explanation's clauses read.
func (h *handler) redactExplanation(x *engine.Explanation) {
	for i := range x.Audiences {
		c := x.Audiences[i].FailedClause
		if c == nil {
			continue
		}
		for j := range c.Reads {
			rd := &c.Reads[j]
			if rd.Expr == "traits" {
				if m, ok := rd.Value.(map[string]any); ok {
					for _, k := range h.opts.RedactTraits {
						delete(m, k)
					}
				}
				continue
			}
			for _, k := range h.opts.RedactTraits {
				if readsTrait(rd.Expr, k) {
					rd.Value, rd.Error = nil, "redacted"
				}
			}
		}
	}
}

// readsTrait reports whether the read expr is trait k or inside it:
// traits.k, traits.k.x, traits["k"], traits.k[0].
func readsTrait(expr, k string) bool {
	for _, p := range []string{"traits." + k, `traits["` + k + `"]`} {
		if rest, ok := strings.CutPrefix(expr, p); ok && (rest == "" || rest[0] == '.' || rest[0] == '[' || rest[0] == '?') {
			return true
		}
	}
	return false
}
