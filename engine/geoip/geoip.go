package geoip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/tailorhq/tailor/rules"
)

// DefaultPollInterval is how often an open DB checks its file for a
// replacement when no WithPollInterval option is given.
const DefaultPollInterval = time.Minute

var (
	// ErrClosed is returned by Locate, Reload and Info after Close.
	ErrClosed = errors.New("geoip: database closed")
	// ErrInvalidDatabase wraps every error about a file that is not a
	// usable MaxMind-format location database: not an .mmdb file, corrupt,
	// or a database type without locations (ASN, ISP, ...).
	ErrInvalidDatabase = errors.New("geoip: invalid database")
)

// Option configures Open.
type Option func(*config)

type config struct {
	poll   time.Duration
	logger *slog.Logger
	mmap   bool
	verify bool
}

// WithPollInterval sets how often the DB checks its file (size, modification
// time and identity) and reopens it when it changed. 0 or less disables
// polling; Reload still works.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) { c.poll = d }
}

// WithLogger sets where reloads and failed reloads are logged. Nil (the
// default) discards the logs.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithMmap maps the file into memory instead of reading it onto the heap.
// It saves the heap copy (about the file's size) but the file must then be
// replaced only by renaming a new file over it (as geoipupdate does):
// truncating or rewriting a mapped file in place can crash the process.
func WithMmap() Option {
	return func(c *config) { c.mmap = true }
}

// WithVerify checks the whole database structure when it is opened or
// reloaded, so a corrupt data section is an error then rather than a failed
// lookup later. It walks the entire file, so opening a full City database
// takes noticeably longer; measure before enabling it on a large file.
func WithVerify() Option {
	return func(c *config) { c.verify = true }
}

// Info describes the database file a DB is serving.
type Info struct {
	Path         string
	DatabaseType string    // e.g. "GeoLite2-City"
	BuildTime    time.Time // when the vendor built the file
	Languages    []string  // locales the names are available in
	IPVersion    int       // 4 (IPv4 only) or 6
}

// DB resolves IP addresses to locations from a MaxMind-format database
// (GeoLite2/GeoIP2 City or Country, or any vendor's file in that layout).
// It satisfies engine.Locator. A DB is safe for concurrent use, including
// Locate calls that race with Reload, the file poller and Close.
type DB struct {
	path string
	cfg  config
	log  *slog.Logger

	cur atomic.Pointer[handle] // nil once closed

	mu     sync.Mutex // serializes Reload and Close
	closed bool

	stop chan struct{} // nil when not polling
	done chan struct{}
}

// handle is one opened file. It counts one reference for being the DB's
// current handle and one per Locate in flight; the reader is closed when
// the count drops to zero, so a lookup never touches a closed reader.
type handle struct {
	reader    *maxminddb.Reader
	stat      os.FileInfo
	info      Info
	refs      atomic.Int64
	closeOnce sync.Once
}

func (h *handle) release() {
	if h.refs.Add(-1) == 0 {
		h.closeOnce.Do(func() { _ = h.reader.Close() })
	}
}

// Open opens the database at path and, unless WithPollInterval(0) is given,
// starts a goroutine that reopens it when the file is replaced; Close stops
// it. An unreadable, empty, corrupt or non-location file is an error here,
// never at lookup time.
func Open(path string, opts ...Option) (*DB, error) {
	cfg := config{poll: DefaultPollInterval}
	for _, o := range opts {
		o(&cfg)
	}
	if path == "" {
		return nil, errors.New("geoip: open: path is empty")
	}
	h, err := load(path, &cfg)
	if err != nil {
		return nil, err
	}
	db := &DB{path: path, cfg: cfg, log: cfg.logger}
	if db.log == nil {
		db.log = slog.New(slog.DiscardHandler)
	}
	db.cur.Store(h)
	if cfg.poll > 0 {
		db.stop = make(chan struct{})
		db.done = make(chan struct{})
		go db.poll(cfg.poll)
	}
	return db, nil
}

// load opens and checks one version of the file.
func load(path string, cfg *config) (*handle, error) {
	// Stat before reading: if the file changes while it is read, the next
	// poll sees a different stat and reads it again.
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("geoip: open: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("geoip: open %s: is a directory", path)
	}
	var r *maxminddb.Reader
	if cfg.mmap {
		r, err = maxminddb.Open(path)
	} else {
		var data []byte
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("geoip: open: %w", err)
		}
		r, err = maxminddb.OpenBytes(data)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidDatabase, path, err)
	}
	m := r.Metadata
	if cfg.verify {
		if err := r.Verify(); err != nil {
			_ = r.Close()
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidDatabase, path, err)
		}
	}
	if !hasLocations(m.DatabaseType) {
		_ = r.Close()
		return nil, fmt.Errorf("%w: %s: database type %q has no locations (want a City or Country database)",
			ErrInvalidDatabase, path, m.DatabaseType)
	}
	h := &handle{reader: r, stat: st, info: Info{
		Path:         path,
		DatabaseType: m.DatabaseType,
		BuildTime:    m.BuildTime(),
		Languages:    slices.Clone(m.Languages),
		IPVersion:    int(m.IPVersion),
	}}
	h.refs.Store(1)
	return h, nil
}

// hasLocations reports whether a database type has the City/Country record
// layout: MaxMind's GeoIP2/GeoLite2 City, Country and Enterprise, and other
// vendors' files named alike (DBIP-City-Lite, ...).
func hasLocations(dbType string) bool {
	t := strings.ToLower(dbType)
	return strings.Contains(t, "city") || strings.Contains(t, "country") || strings.Contains(t, "enterprise")
}

// acquire returns the current handle with a reference taken, or nil after
// Close. The re-check after taking the reference makes sure the handle was
// still current then, so its reader cannot have been closed.
func (db *DB) acquire() *handle {
	for {
		h := db.cur.Load()
		if h == nil {
			return nil
		}
		h.refs.Add(1)
		if db.cur.Load() == h {
			return h
		}
		h.release()
	}
}

var recordPool = sync.Pool{New: func() any { return new(record) }}

// Locate returns the location of ip with names in locale ("de", "pt-BR",
// "zh-CN"; "pt_BR" and any case work too). A name missing in that locale
// falls back to its language ("de" for "de-AT"), then to another region of
// the language ("pt-BR" for "pt-PT"), then to English. Fields the database
// does not have are left empty; see the package documentation for the
// mapping.
//
// Loopback, private, link-local, unspecified, multicast, shared (CGNAT),
// documentation and other reserved addresses, and addresses the database
// does not cover, yield the zero Location and a nil error without a lookup.
// IPv4-mapped IPv6 addresses are looked up as IPv4. Locate returns ErrClosed
// after Close, ctx's error if it is done, and an error wrapping
// ErrInvalidDatabase if the record cannot be decoded.
//
// Safe for concurrent use. The only allocation is the Coordinates value
// when the record has coordinates.
func (db *DB) Locate(ctx context.Context, ip netip.Addr, locale string) (rules.Location, error) {
	if err := ctx.Err(); err != nil {
		return rules.Location{}, err
	}
	if db.cur.Load() == nil {
		return rules.Location{}, ErrClosed
	}
	ip = ip.Unmap()
	if !IsPublic(ip) {
		return rules.Location{}, nil
	}
	h := db.acquire()
	if h == nil {
		return rules.Location{}, ErrClosed
	}
	defer h.release()
	if ip.Is6() && h.info.IPVersion == 4 {
		return rules.Location{}, nil
	}
	res := h.reader.Lookup(ip)
	if err := res.Err(); err != nil {
		return rules.Location{}, fmt.Errorf("%w: lookup %s: %w", ErrInvalidDatabase, ip, err)
	}
	if !res.Found() {
		return rules.Location{}, nil
	}
	rec := recordPool.Get().(*record)
	rec.reset(locale)
	err := res.Decode(rec)
	loc := rec.result()
	rec.reset("") // drop references to strings before pooling
	recordPool.Put(rec)
	if err != nil {
		return rules.Location{}, fmt.Errorf("%w: record for %s: %w", ErrInvalidDatabase, ip, err)
	}
	return loc, nil
}

// Reload reopens the file now, whether or not it changed (for SIGHUP).
// Lookups in flight finish on the old version, later ones use the new one,
// and the old one is closed when its last lookup ends. If the new file
// cannot be opened, Reload returns the error and the DB keeps serving the
// version it had. Safe for concurrent use.
func (db *DB) Reload() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return ErrClosed
	}
	h, err := load(db.path, &db.cfg)
	if err != nil {
		return err
	}
	old := db.cur.Swap(h)
	old.release()
	db.log.Info("geoip: database reloaded", "path", db.path,
		"type", h.info.DatabaseType, "built", h.info.BuildTime)
	return nil
}

// Info describes the file currently served. The Languages slice is the
// caller's. It returns ErrClosed after Close. Safe for concurrent use.
func (db *DB) Info() (Info, error) {
	h := db.acquire()
	if h == nil {
		return Info{}, ErrClosed
	}
	defer h.release()
	info := h.info
	info.Languages = slices.Clone(info.Languages)
	return info, nil
}

// Close stops the file poller, waits for it to exit, and releases the
// database; lookups still in flight finish first. Later calls to Locate,
// Reload and Info return ErrClosed. Close is safe to call more than once
// and concurrently with lookups.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	db.mu.Unlock()
	if db.stop != nil {
		close(db.stop)
		<-db.done
	}
	if h := db.cur.Swap(nil); h != nil {
		h.release()
	}
	return nil
}

// poll reloads the file when its identity, size or modification time
// changes. A file that fails to open is logged once and not retried until
// it changes again; the DB keeps serving the version it has.
func (db *DB) poll(interval time.Duration) {
	defer close(db.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	var failed os.FileInfo // the version that last failed to open
	var statErr string     // the last stat error logged
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
		}
		st, err := os.Stat(db.path)
		if err != nil {
			// Often transient while the file is being replaced.
			if err.Error() != statErr {
				statErr = err.Error()
				db.log.Warn("geoip: cannot check database file", "path", db.path, "err", err)
			}
			continue
		}
		statErr = ""
		h := db.cur.Load()
		if h == nil {
			return
		}
		if sameVersion(h.stat, st) || (failed != nil && sameVersion(failed, st)) {
			continue
		}
		if err := db.Reload(); err != nil {
			if errors.Is(err, ErrClosed) {
				return
			}
			failed = st
			db.log.Error("geoip: new database file rejected; still serving the previous one",
				"path", db.path, "err", err)
			continue
		}
		failed = nil
	}
}

func sameVersion(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
