package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/tailorhq/tailor/engine"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes = engine.MaxBodyBytes
	DefaultTimeout      = 10 * time.Second
)

// Prefix is the path every endpoint lives under; {org} and {env} are the
// organization (the clients' clientId) and the environment.
const Prefix = "/v2/organizations/{org}/environments/{env}"

// Options configures the handler. The zero value serves every organization
// and environment to every origin with the default limits.
type Options struct {
	// Org and Env, when set, restrict the handler to one organization and
	// one environment; other paths get 404 ERR_NAMESPACE_MISMATCH.
	Org, Env string

	// AllowedOrigins lists the origins allowed by CORS. Empty, or a list
	// holding "*", allows every origin (Access-Control-Allow-Origin: *).
	AllowedOrigins []string

	// TrustedProxies lists the networks of reverse proxies whose
	// X-Forwarded-For header is believed. Empty (the default) ignores the
	// header: the client IP is the connection's peer. When the peer is
	// trusted, the client IP is the right-most X-Forwarded-For address that
	// is not itself trusted.
	TrustedProxies []netip.Prefix

	// MaxBodyBytes limits request bodies (413 beyond); 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Timeout bounds each request's engine call (503 beyond); 0 means
	// DefaultTimeout.
	Timeout time.Duration

	// Logger receives internal errors and recovered panics with their
	// stack. Nil discards them.
	Logger *slog.Logger

	// RedactTraits lists trait keys removed from every profile the handler
	// returns: they stay stored and visible to audience rules and to the
	// Go API, but whoever holds a profile id cannot read them. Keys are
	// top-level trait names, matched exactly. New copies the slice.
	RedactTraits []string

	// AdminToken, when set, turns on the admin features: the explain
	// endpoint and QA overrides (force-variant, force-audience), served
	// only to requests with "Authorization: Bearer <AdminToken>"; others
	// get 401 ERR_UNAUTHORIZED and nothing runs. Empty (the default)
	// leaves them off. Use a long random token (server flag
	// -admin-token, or TAILOR_ADMIN_TOKEN).
	AdminToken string
}

// backend is what the handler needs from the engine; *engine.Engine
// implements it. Tests substitute fakes to reach error paths (overload,
// panics) the real engine rarely produces.
type backend interface {
	Identify(ctx context.Context, profileID string, req engine.Request) (*engine.Response, error)
	IdentifyBatch(ctx context.Context, req engine.Request) ([]*engine.Response, error)
	Get(ctx context.Context, profileID string) (*engine.Response, error)
	Delete(ctx context.Context, profileID string) error
	Import(ctx context.Context, req engine.Request) error
	Explain(ctx context.Context, profileID string, ov *engine.Overrides) (*engine.Explanation, error)
}

type handler struct {
	eng     backend
	opts    Options
	anyOrig bool
	mux     *http.ServeMux
	log     *slog.Logger
}

// New returns an http.Handler serving eng under [Prefix]. The handler is
// safe for concurrent use; it does not close eng.
func New(eng *engine.Engine, opts Options) http.Handler {
	return newHandler(eng, opts)
}

func newHandler(b backend, opts Options) *handler {
	opts.AllowedOrigins = slices.Clone(opts.AllowedOrigins)
	opts.TrustedProxies = slices.Clone(opts.TrustedProxies)
	opts.RedactTraits = slices.Clone(opts.RedactTraits)
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	h := &handler{
		eng:     b,
		opts:    opts,
		anyOrig: len(opts.AllowedOrigins) == 0 || slices.Contains(opts.AllowedOrigins, "*"),
		mux:     http.NewServeMux(),
		log:     opts.Logger,
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.route("POST /profiles", h.createProfile)
	h.route("POST /profiles/{id}", h.upsertProfile)
	h.route("GET /profiles/{id}", h.getProfile)
	h.route("DELETE /profiles/{id}", h.deleteProfile)
	h.route("POST /events", h.batchEvents)
	h.route("POST /import/events", h.importEvents)
	if opts.AdminToken != "" {
		h.route(explainRoute, h.explain) // admin.go
	}
	h.mux.HandleFunc("/", h.noRoute)
	return h
}

// endpoint handles one request; it returns the success data or an error
// that writeError maps to a status and code.
type endpoint func(ctx context.Context, r *http.Request) (any, error)

func (h *handler) route(pattern string, fn endpoint) {
	method, path, _ := strings.Cut(pattern, " ")
	h.mux.HandleFunc(method+" "+Prefix+path, func(w http.ResponseWriter, r *http.Request) {
		if err := h.checkNamespace(r); err != nil {
			h.writeError(w, r, err)
			return
		}
		if err := h.authorize(w, pattern, r); err != nil {
			h.writeError(w, r, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
		ctx, cancel := context.WithTimeout(r.Context(), h.opts.Timeout)
		defer cancel()
		data, err := fn(ctx, r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		h.redact(data)
		h.writeData(w, r, data)
	})
}

// ServeHTTP implements http.Handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tw := &trackingWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.log.Error("httpapi: panic serving request", "method", r.Method, "path", r.URL.Path,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if tw.wrote {
				// Part of an answer is out: break the connection rather
				// than let a truncated answer pass for a whole one.
				panic(http.ErrAbortHandler)
			}
			h.writeError(tw, r, errInternal)
		}
	}()
	h.setCORS(tw, r)
	if r.Method == http.MethodOptions {
		h.preflight(tw, r)
		return
	}
	if p := r.URL.Path; !strings.HasPrefix(p, "/") || !isClean(p) {
		// ServeMux would answer these with a bare 400 or a redirect.
		h.writeError(tw, r, &apiError{http.StatusNotFound, "ERR_NOT_FOUND", "no endpoint at this path"})
		return
	}
	h.mux.ServeHTTP(tw, r)
}

// isClean reports whether p is already in canonical form (no "//", "/./",
// "/../"), so ServeMux will route rather than redirect it.
func isClean(p string) bool {
	c := path.Clean(p)
	return c == p || (c != "/" && c+"/" == p)
}

// noRoute answers requests no endpoint pattern matched: 405 when the path
// exists with another method, 404 otherwise.
func (h *handler) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		probe := *r
		probe.Method = m
		if _, pattern := h.mux.Handler(&probe); pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		h.writeError(w, r, &apiError{http.StatusNotFound, "ERR_NOT_FOUND", "no endpoint at " + r.URL.Path})
		return
	}
	allow = append(allow, http.MethodOptions)
	w.Header().Set("Allow", strings.Join(allow, ", "))
	h.writeError(w, r, &apiError{http.StatusMethodNotAllowed, "ERR_METHOD_NOT_ALLOWED",
		fmt.Sprintf("method %s not allowed; use %s", r.Method, strings.Join(allow, ", "))})
}

func (h *handler) checkNamespace(r *http.Request) error {
	if org := r.PathValue("org"); h.opts.Org != "" && org != h.opts.Org {
		return &apiError{http.StatusNotFound, "ERR_NAMESPACE_MISMATCH", fmt.Sprintf("organization %q is not served here", org)}
	}
	if env := r.PathValue("env"); h.opts.Env != "" && env != h.opts.Env {
		return &apiError{http.StatusNotFound, "ERR_NAMESPACE_MISMATCH", fmt.Sprintf("environment %q is not served here", env)}
	}
	return nil
}

// setCORS adds the CORS response headers for an allowed Origin.
func (h *handler) setCORS(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	if h.anyOrig {
		hd.Set("Access-Control-Allow-Origin", "*")
		return
	}
	hd.Add("Vary", "Origin")
	if o := r.Header.Get("Origin"); o != "" && slices.Contains(h.opts.AllowedOrigins, o) {
		hd.Set("Access-Control-Allow-Origin", o)
	}
}

// preflight answers a CORS preflight (OPTIONS) request. Disallowed origins
// get the same 204 without Access-Control-Allow-Origin, which the browser
// treats as a refusal.
func (h *handler) preflight(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
	allow := "Content-Type, X-Force-IP"
	if h.opts.AdminToken != "" {
		allow += ", Authorization, " + HeaderForceVariant + ", " + HeaderForceAudience
	}
	hd.Set("Access-Control-Allow-Headers", allow)
	hd.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// request builds the engine request of r: body (when withBody), client IP,
// locale and preflight.
func (h *handler) request(r *http.Request, withBody bool) (engine.Request, error) {
	var req engine.Request
	if withBody {
		if err := decodeBody(r, &req, h.opts.MaxBodyBytes); err != nil {
			return req, err
		}
	}
	ip, err := clientIP(r, h.opts.TrustedProxies)
	if err != nil {
		return req, err
	}
	q := r.URL.Query()
	if req.Overrides, err = h.overridesOf(r); err != nil {
		return req, err
	}
	req.IP = ip
	req.Locale = q.Get("locale")
	req.Preflight = q.Get("type") == "preflight"
	// The body comes from a visitor's device: identify events must prove
	// their userId when the engine has an IdentitySecret.
	req.Untrusted = true
	return req, nil
}

func (h *handler) createProfile(ctx context.Context, r *http.Request) (any, error) {
	req, err := h.request(r, true)
	if err != nil {
		return nil, err
	}
	return h.eng.Identify(ctx, "", req)
}

func (h *handler) upsertProfile(ctx context.Context, r *http.Request) (any, error) {
	req, err := h.request(r, true)
	if err != nil {
		return nil, err
	}
	return h.eng.Identify(ctx, r.PathValue("id"), req)
}

func (h *handler) getProfile(ctx context.Context, r *http.Request) (any, error) {
	return h.eng.Get(ctx, r.PathValue("id"))
}

func (h *handler) deleteProfile(ctx context.Context, r *http.Request) (any, error) {
	if err := h.eng.Delete(ctx, r.PathValue("id")); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// batchResponse is the data of POST /events.
type batchResponse struct {
	Profiles []*engine.Profile `json:"profiles"`
}

func (h *handler) batchEvents(ctx context.Context, r *http.Request) (any, error) {
	req, err := h.request(r, true)
	if err != nil {
		return nil, err
	}
	resps, err := h.eng.IdentifyBatch(ctx, req)
	if err != nil {
		return nil, err
	}
	out := batchResponse{Profiles: make([]*engine.Profile, len(resps))}
	for i, resp := range resps {
		out.Profiles[i] = resp.Profile
	}
	return out, nil
}

func (h *handler) importEvents(ctx context.Context, r *http.Request) (any, error) {
	req, err := h.request(r, true)
	if err != nil {
		return nil, err
	}
	if err := h.eng.Import(ctx, req); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// trackingWriter records whether the response has started, so a recovered
// panic does not write a second status.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackingWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
