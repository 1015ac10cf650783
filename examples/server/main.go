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
// The rules file is reloaded on SIGHUP and whenever its modification time or
// size changes (polled every -rules-poll); an invalid file is logged and the
// rules in force keep serving. With -geoip, requests that enable the
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
	"context"
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
	metricsAddr    string
	otlpEndpoint   string
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
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "address of a separate listener serving Prometheus metrics at /metrics (empty: no metrics)")
	fs.StringVar(&c.otlpEndpoint, "otlp-endpoint", "", "base URL of an OTLP/HTTP receiver to export traces to, e.g. http://localhost:4318 (empty: no traces)")
	var redact string
	fs.StringVar(&redact, "redact-traits", "", "comma-separated trait keys never returned by the API (still stored and used by rules)")

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
	var err error
	if c.trustedProxies, err = parsePrefixes(proxies); err != nil {
		return nil, fmt.Errorf("-trusted-proxies: %w", err)
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
	eng, err := engine.Open(cfg.data, opts)
	if err != nil {
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
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if shuttingDown.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"status":"shutting down"}`+"\n")
			return
		}
		io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	mux.Handle("/", api)

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           tel.handler(accessLog(log, mux), ln.Addr().String()),
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
	log.Info("serving", "addr", ln.Addr().String(), "data", cfg.data, "inMemory", cfg.inMemory,
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

// rulesWatcher reloads a rules file into the engine when asked or when the
// file changes. An invalid file is logged and ignored.
type rulesWatcher struct {
	path    string
	log     *slog.Logger
	modTime time.Time
	size    int64
}

func newRulesWatcher(path string, log *slog.Logger) *rulesWatcher {
	return &rulesWatcher{path: path, log: log}
}

// load stats and loads the file, remembering what it loaded.
func (w *rulesWatcher) load() (*rules.Set, error) {
	fi, err := os.Stat(w.path)
	if err != nil {
		return nil, err
	}
	set, err := rules.Load(w.path)
	if err != nil {
		return nil, err
	}
	w.modTime, w.size = fi.ModTime(), fi.Size()
	w.loaded(set)
	return set, nil
}

func (w *rulesWatcher) loaded(set *rules.Set) {
	w.log.Info("rules loaded", "file", w.path, "audiences", len(set.Audiences), "experiences", len(set.Experiences),
		"digest", engine.RulesDigest(set))
}

// changed reports whether the file's modification time or size differ from
// the last load (or the last failed attempt, so a bad file is not retried
// until it changes again).
func (w *rulesWatcher) changed() bool {
	fi, err := os.Stat(w.path)
	if err != nil {
		return false
	}
	return !fi.ModTime().Equal(w.modTime) || fi.Size() != w.size
}

// reload loads the file into the engine (Engine.LoadRules, which counts
// the reload in tailor.rules.reloads), remembering its modification time
// and size either way, so that a bad file is not retried until it
// changes again.
func (w *rulesWatcher) reload(eng *engine.Engine, why string) {
	if fi, err := os.Stat(w.path); err == nil {
		w.modTime, w.size = fi.ModTime(), fi.Size()
	}
	set, err := eng.LoadRules(w.path)
	if err != nil {
		w.log.Error("rules reload failed; keeping the rules in force", "file", w.path, "trigger", why, "err", err)
		return
	}
	w.loaded(set)
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
			if watcher.changed() {
				watcher.reload(eng, "file changed")
			}
		}
	}
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
