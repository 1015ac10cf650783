// Command server is tailor as a single binary: it serves the Experience API
// (package engine/httpapi) over HTTP from a tailor engine stored in a
// directory, with a rules file reloaded while serving.
//
// Every flag can also be set by an environment variable (TAILOR_ plus the
// flag name in upper case with dashes as underscores, e.g. TAILOR_ADDR);
// a flag given on the command line wins over the variable.
//
//	server -data /var/lib/tailor -rules /etc/tailor/rules.yaml
//
// The rules file is reloaded on SIGHUP, and when it changes: polled every
// -rules-poll, a change is applied once two polls in a row see the same
// content, so a file caught half-written is not applied (replace the file
// by renaming a complete one over it). An invalid file is logged and the
// rules in force keep serving; a reload that removes more than half of the
// audiences or experiences is logged at WARN. With -geoip, requests that enable the
// "location" or "ip-enrichment" feature get their location from a
// MaxMind-format database (GeoLite2-City, ...), reopened when the file is
// replaced and on SIGHUP. SIGINT or SIGTERM shuts down gracefully:
// in-flight requests finish, then the engine closes (flushing the store and
// the import queue worker). Logs are JSON (log/slog) on standard error.
//
// With -metrics-addr, a second listener serves Prometheus metrics at
// /metrics: the engine's (tailor.*), the HTTP server's
// (http.server.request.duration by route and status) and the Go
// runtime's. With -otlp-endpoint, every request is traced (continuing an
// incoming traceparent header) and the spans are exported over OTLP/HTTP.
// README.md beside this file describes both and the Grafana dashboard.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/engine/geoip"
	"github.com/tailorhq/tailor/engine/httpapi"
	"github.com/tailorhq/tailor/rules"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, hup, nil); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "tailor server:", err)
		}
		os.Exit(1)
	}
}

// config is the parsed command line.
type config struct {
	addr           string
	data           string
	inMemory       bool
	sync           bool
	rulesPath      string
	rulesPoll      time.Duration
	origins        []string
	org, env       string
	trustedProxies []netip.Prefix
	geoip          string
	maxBody        int64
	timeout        time.Duration
	shutdown       time.Duration
	maxWaiting     int
	profileRate    float64
	profileBurst   int
	identitySecret string
	redactTraits   []string
	adminToken     string
	metricsAddr    string
	otlpEndpoint   string
	redis          redisConfig
}

// parseConfig reads flags from args, each defaulting to its TAILOR_*
// environment variable (via getenv) when set.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (*config, error) {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(out)
	c := &config{}
	var origins, proxies string
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&c.data, "data", "tailor-data", "directory holding the profile store")
	fs.BoolVar(&c.inMemory, "in-memory", false, "keep profiles in memory only (lost on exit); -data is ignored")
	fs.BoolVar(&c.sync, "sync", true, "fsync every write before answering, so no acknowledged write is lost")
	fs.StringVar(&c.rulesPath, "rules", "", "rules file (YAML or JSON); empty serves no audiences or experiences")
	fs.DurationVar(&c.rulesPoll, "rules-poll", 2*time.Second, "how often to check the rules file for changes (0 disables; SIGHUP always reloads)")
	fs.StringVar(&origins, "origins", "*", "comma-separated origins allowed by CORS; * allows all")
	fs.StringVar(&c.org, "org", "", "serve only this organization id (empty: any)")
	fs.StringVar(&c.env, "env", "", "serve only this environment (empty: any)")
	fs.StringVar(&proxies, "trusted-proxies", "", "comma-separated CIDRs (or addresses) of reverse proxies whose X-Forwarded-For is believed")
	fs.StringVar(&c.geoip, "geoip", "", "MaxMind-format location database (.mmdb, e.g. GeoLite2-City) for IP lookups; reopened when the file is replaced and on SIGHUP")
	fs.Int64Var(&c.maxBody, "max-body", httpapi.DefaultMaxBodyBytes, "maximum request body in bytes")
	fs.DurationVar(&c.timeout, "timeout", httpapi.DefaultTimeout, "per-request timeout")
	fs.DurationVar(&c.shutdown, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown waits for in-flight requests")
	fs.IntVar(&c.maxWaiting, "max-waiting", 32, "requests that may wait for one busy profile; more get 429 ERR_PROFILE_OVERLOAD (0: no bound)")
	fs.Float64Var(&c.profileRate, "profile-rate", 0, "requests per second admitted per profile; more get 429 ERR_PROFILE_OVERLOAD (0: no limit)")
	fs.IntVar(&c.profileBurst, "profile-burst", 0, "burst allowed by -profile-rate (0: the rate rounded up)")
	fs.StringVar(&c.identitySecret, "identity-secret", "", "secret of traits.userHash = hex(HMAC-SHA256(secret, userId)), required to identify as a user (empty: no verification); prefer TAILOR_IDENTITY_SECRET")
	fs.StringVar(&c.adminToken, "admin-token", "", "bearer token of the admin features (explain endpoint, QA overrides), at least 16 characters (empty: off); prefer TAILOR_ADMIN_TOKEN")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "address of a separate listener serving Prometheus metrics at /metrics (empty: no metrics)")
	fs.StringVar(&c.otlpEndpoint, "otlp-endpoint", "", "base URL of an OTLP/HTTP receiver to export traces to, e.g. http://localhost:4318 (empty: no traces)")
	var redact string
	fs.StringVar(&redact, "redact-traits", "", "comma-separated trait keys never returned by the API (still stored and used by rules)")
	var redisAddrs string
	c.redis.flags(fs, &redisAddrs)

	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "TAILOR_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.origins = append(c.origins, o)
		}
	}
	for _, k := range strings.Split(redact, ",") {
		if k = strings.TrimSpace(k); k != "" {
			c.redactTraits = append(c.redactTraits, k)
		}
	}
	if c.adminToken != "" && len(c.adminToken) < 16 {
		return nil, fmt.Errorf("-admin-token: %d characters, at least 16 required", len(c.adminToken))
	}
	var err error
	if c.trustedProxies, err = parsePrefixes(proxies); err != nil {
		return nil, fmt.Errorf("-trusted-proxies: %w", err)
	}
	if err := c.redis.finish(redisAddrs, c.inMemory); err != nil {
		return nil, err
	}
	return c, nil
}

// parsePrefixes parses a comma-separated list of CIDRs; a bare address
// means that one address.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, err
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// run serves until ctx is done, then shuts down gracefully. Every value on
// reload asks for a rules reload (main feeds it SIGHUP). When ready is not
// nil it receives the listening address once the server accepts requests.
func run(ctx context.Context, args []string, getenv func(string) string, logOut io.Writer,
	reload <-chan os.Signal, ready chan<- string) error {
	cfg, err := parseConfig(args, getenv, logOut)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(logOut, nil))

	tel, err := newTelemetry(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() { // after the engine has closed (deferred later, so run earlier)
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tel.shutdown(sctx); err != nil {
			log.Error("telemetry shutdown", "err", err)
		}
	}()

	opts := &engine.Options{InMemory: cfg.inMemory, SyncWrites: cfg.sync, Logger: log,
		MaxWaiting: cfg.maxWaiting, ProfileRate: cfg.profileRate, ProfileBurst: cfg.profileBurst}
	tel.engineOptions(opts)
	if cfg.identitySecret != "" {
		opts.IdentitySecret = []byte(cfg.identitySecret)
	}
	var watcher *rulesWatcher
	if cfg.rulesPath != "" {
		watcher = newRulesWatcher(cfg.rulesPath, log)
		set, err := watcher.load()
		if err != nil {
			return err // refuse to start on a bad rules file
		}
		opts.Rules = set
	}
	geo, err := openLocator(cfg, opts, log)
	if err != nil {
		return err
	}
	if geo != nil {
		defer geo.Close() // after the engine (deferred later, so run earlier)
	}
	rs, err := cfg.redis.open(ctx)
	if err != nil {
		return err
	}
	useStore(opts, rs) // the engine owns it from here: Close closes it
	eng, err := engine.Open(cfg.data, opts)
	if err != nil {
		if rs != nil {
			rs.Close()
		}
		return fmt.Errorf("open engine: %w", err)
	}
	closeEngine := sync.OnceValue(func() error {
		err := eng.Close()
		if err != nil {
			log.Error("close engine", "err", err)
		}
		return err
	})
	defer closeEngine()

	var shuttingDown atomic.Bool
	api := httpapi.New(eng, httpapi.Options{
		Org: cfg.org, Env: cfg.env,
		AllowedOrigins: cfg.origins,
		TrustedProxies: cfg.trustedProxies,
		MaxBodyBytes:   cfg.maxBody,
		Timeout:        cfg.timeout,
		Logger:         log,
		RedactTraits:   cfg.redactTraits,
		AdminToken:     cfg.adminToken,
	})
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           tel.handler(accessLog(log, routes(api, &shuttingDown, healthOf(opts.Store))), ln.Addr().String()),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.timeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		watch(watchCtx, log, eng, watcher, geo, reload, cfg.rulesPoll)
	}()
	defer func() { stopWatch(); <-watchDone }()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	storeName, _ := healthOf(opts.Store)(ctx)
	log.Info("serving", "addr", ln.Addr().String(), "store", storeName, "data", cfg.data, "inMemory", cfg.inMemory,
		"rules", cfg.rulesPath, "origins", cfg.origins, "org", cfg.org, "env", cfg.env)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shuttingDown.Store(true)
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-serveErr // http.ErrServerClosed
	stopWatch()
	<-watchDone
	if err := closeEngine(); err != nil {
		return fmt.Errorf("close engine: %w", err)
	}
	log.Info("stopped")
	return nil
}

// rulesWatcher reloads a rules file into the engine when asked (SIGHUP) or
// when the file changes. A changed file is applied only once two polls in a
// row have seen the same content, so a file caught half-written (which may
// still be valid YAML, say "audiences:" alone) is not applied; replacing
// the file by renaming a complete one over it avoids the window entirely.
// An invalid file is logged and ignored until it changes again. Not safe
// for concurrent use: the watch goroutine owns it.
type rulesWatcher struct {
	path string
	log  *slog.Logger
	// applied is the file as last loaded or refused.
	applied fileStat
	// pending is a changed file seen by the last poll, not applied yet.
	pending *fileVersion
}

// fileStat is what a poll compares first: an unchanged modification time
// and size mean an unchanged file.
type fileStat struct {
	modTime time.Time
	size    int64
}

// fileVersion is one content of the file, as a poll read it.
type fileVersion struct {
	stat fileStat
	data []byte
}

func newRulesWatcher(path string, log *slog.Logger) *rulesWatcher {
	return &rulesWatcher{path: path, log: log}
}

// read stats and reads the file.
func (w *rulesWatcher) read() (*fileVersion, error) {
	fi, err := os.Stat(w.path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(w.path)
	if err != nil {
		return nil, err
	}
	return &fileVersion{stat: fileStat{fi.ModTime(), fi.Size()}, data: data}, nil
}

// load reads and loads the file, remembering what it loaded.
func (w *rulesWatcher) load() (*rules.Set, error) {
	v, err := w.read()
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return w.parse(v)
}

// parse loads version v of the file (the rules the engine opens with); a
// version that fails to load is remembered too, so it is not retried until
// it changes.
func (w *rulesWatcher) parse(v *fileVersion) (*rules.Set, error) {
	w.applied, w.pending = v.stat, nil
	set, err := rules.Parse(w.path, v.data)
	if err != nil {
		return nil, err
	}
	w.loaded(set)
	return set, nil
}

func (w *rulesWatcher) loaded(set *rules.Set) {
	w.log.Info("rules loaded", "file", w.path, "audiences", len(set.Audiences), "experiences", len(set.Experiences),
		"digest", engine.RulesDigest(set))
}

// poll is one periodic check of the file (every -rules-poll). A change is
// applied at the poll after the one that first saw it, if the content has
// not changed in between; a file still being written is seen to change and
// waits for another poll.
func (w *rulesWatcher) poll(eng *engine.Engine) {
	fi, err := os.Stat(w.path)
	if err != nil {
		return // missing for a moment (being replaced) or unreadable: keep the rules in force
	}
	if (fileStat{fi.ModTime(), fi.Size()}) == w.applied {
		w.pending = nil
		return
	}
	v, err := w.read()
	if err != nil {
		return
	}
	if p := w.pending; p == nil || p.stat != v.stat || !bytes.Equal(p.data, v.data) {
		w.pending = v
		w.log.Info("rules file changed; applying it if unchanged at the next poll", "file", w.path)
		return
	}
	w.apply(eng, v, "file changed")
}

// reload loads the file at once (SIGHUP).
func (w *rulesWatcher) reload(eng *engine.Engine, why string) {
	v, err := w.read()
	if err != nil {
		w.log.Error("rules reload failed; keeping the rules in force", "file", w.path, "trigger", why, "err", err)
		return
	}
	w.apply(eng, v, why)
}

// apply loads version v into eng, logging a failure (the rules in force
// stay) and, at WARN, a reload that removes more than half of the
// audiences or of the experiences: a file cut short is still valid.
//
// The engine parses it (Engine.ParseRules), counting the reload, ok or
// failed, in its tailor.rules.reloads metric.
func (w *rulesWatcher) apply(eng *engine.Engine, v *fileVersion, why string) {
	w.applied, w.pending = v.stat, nil
	old := eng.Rules()
	set, err := eng.ParseRules(w.path, v.data)
	if err != nil {
		w.log.Error("rules reload failed; keeping the rules in force", "file", w.path, "trigger", why, "err", err)
		return
	}
	w.loaded(set)
	audIDs := func(s *rules.Set) []string {
		ids := make([]string, len(s.Audiences))
		for i, a := range s.Audiences {
			ids[i] = a.ID
		}
		return ids
	}
	expIDs := func(s *rules.Set) []string {
		ids := make([]string, len(s.Experiences))
		for i, x := range s.Experiences {
			ids[i] = x.ID
		}
		return ids
	}
	for _, kind := range []struct {
		name     string
		old, new []string
	}{{"audiences", audIDs(old), audIDs(set)}, {"experiences", expIDs(old), expIDs(set)}} {
		if removed := countRemoved(kind.old, kind.new); 2*removed > len(kind.old) {
			w.log.Warn("rules reload removes more than half of the "+kind.name, "file", w.path, "trigger", why,
				"removed", removed, "before", len(kind.old), "after", len(kind.new))
		}
	}
}

// countRemoved returns how many of the ids in old are not in new.
func countRemoved(old, new []string) int {
	keep := make(map[string]bool, len(new))
	for _, id := range new {
		keep[id] = true
	}
	n := 0
	for _, id := range old {
		if !keep[id] {
			n++
		}
	}
	return n
}

// watch reloads the rules (when watcher is not nil) on every value of hup
// and whenever the file changes (polled every poll), and the GeoIP
// database (when geo is not nil) on every value of hup; it returns when ctx
// is done.
func watch(ctx context.Context, log *slog.Logger, eng *engine.Engine, watcher *rulesWatcher, geo *geoip.DB,
	hup <-chan os.Signal, poll time.Duration) {
	var tick <-chan time.Time
	if watcher != nil && poll > 0 {
		t := time.NewTicker(poll)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if watcher != nil {
				watcher.reload(eng, "SIGHUP")
			}
			if geo != nil {
				if err := geo.Reload(); err != nil {
					log.Error("geoip reload failed; keeping the database in use", "err", err)
				} else if info, err := geo.Info(); err == nil {
					log.Info("geoip database reloaded", "file", info.Path, "built", info.BuildTime)
				}
			}
		case <-tick:
			watcher.poll(eng)
		}
	}
}

// routes is the server's handler: GET (and HEAD) /healthz answers the
// health check (with the store's: 503 when the store cannot serve),
// everything else goes to the API. No http.ServeMux sits in front of the
// API: ServeMux answers paths with "..", "." or "//" with a redirect (which
// a client follows, re-sending a DELETE or POST to another path), where
// the API answers them with its 404 envelope.
func routes(api http.Handler, shuttingDown *atomic.Bool, store storeHealth) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			api.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		name, err := store(r.Context())
		status, code := "ok", http.StatusOK
		switch {
		case shuttingDown.Load():
			status, code = "shutting down", http.StatusServiceUnavailable
		case err != nil:
			status, code = "store unavailable", http.StatusServiceUnavailable
		}
		body := map[string]string{"status": status, "store": name}
		if err != nil {
			body["error"] = err.Error()
		}
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(body)
	})
}

// accessLog logs one line per request.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		log.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"bytes", sw.bytes, "ms", float64(time.Since(start).Microseconds())/1000, "remote", r.RemoteAddr)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
