// Command webapp is a small shop (home, pricing, cart, login) that embeds
// the tailor engine in its own process: it personalizes its pages on the
// server, mounts the Experience API under /experience for Ninetailed's
// browser SDK, and shares one profile between the two. See README.md.
//
//	go run ./examples/webapp
//
// The first start runs `npm ci` and `npm run build` in the web directory to
// bundle the SDK (Node.js 20+ with npm is needed once). Profiles, variants
// and logins live in -data and survive restarts.
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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tailorhq/tailor/engine/geoip"
	"github.com/tailorhq/tailor/rules"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "webapp:", err)
		}
		os.Exit(1)
	}
}

// run parses the flags, builds the SDK bundle when needed and serves until
// ctx is done.
func run(ctx context.Context, args []string, logOut io.Writer) error {
	fs := flag.NewFlagSet("webapp", flag.ContinueOnError)
	fs.SetOutput(logOut)
	addr := fs.String("addr", "127.0.0.1:8090", "address to listen on")
	data := fs.String("data", "tailor-webapp-data", "directory of the profile store and the session key (kept across restarts)")
	web := fs.String("web", "", "npm project of the browser bundle (default: the web directory next to the source)")
	rulesPath := fs.String("rules", "", "rules file replacing the embedded rules.yaml")
	geoPath := fs.String("geoip", "", "MaxMind-format database (.mmdb) to locate visitors who consented")
	cert := fs.String("tls-cert", "", "TLS certificate file (with -tls-key): serve HTTPS, and the cookies become Secure")
	key := fs.String("tls-key", "", "TLS key file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if (*cert == "") != (*key == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	log := slog.New(slog.NewTextHandler(logOut, nil))

	cfg := Config{DataDir: *data, WebDir: *web, Logger: log}
	if cfg.WebDir == "" {
		cfg.WebDir = defaultWebDir()
	}
	if err := ensureBundle(ctx, cfg.WebDir, func(format string, args ...any) {
		log.Info(fmt.Sprintf(format, args...))
	}); err != nil {
		return err
	}
	if *rulesPath != "" {
		set, err := rules.Load(*rulesPath)
		if err != nil {
			return err
		}
		cfg.Rules = set
	}
	if *geoPath != "" {
		db, err := geoip.Open(*geoPath, geoip.WithLogger(log))
		if err != nil {
			return err
		}
		defer db.Close() // after the app, deferred below
		cfg.Locator = db
	}
	app, err := New(cfg)
	if err != nil {
		return err
	}
	defer app.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           app,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	scheme := "http"
	go func() {
		if *cert != "" {
			serveErr <- srv.ServeTLS(ln, *cert, *key)
			return
		}
		serveErr <- srv.Serve(ln)
	}()
	if *cert != "" {
		scheme = "https"
	}
	log.Info("serving", "url", scheme+"://"+ln.Addr().String()+"/", "data", *data, "experienceAPI", apiPath)

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	<-serveErr
	if err := app.Close(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
