package engine

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/tailorhq/tailor/engine/device"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/storage"
)

// stripes is the number of profile locks. Writers of one profile (and of
// one user id alias) serialize on the stripe its key hashes to, so
// concurrent Identify calls on a profile never lose an update and calls on
// different profiles rarely wait for each other.
const stripes = 4096

// Engine is an open tailor engine. All methods are safe for concurrent use.
type Engine struct {
	opts           Options
	store          storage.Store
	log            *slog.Logger
	now            func() time.Time
	sessionTimeout time.Duration
	devices        DeviceDetector
	rules          atomic.Pointer[rules.Set]

	// mu is held shared by every call for its duration and exclusively by
	// Close and Restore, which so wait for in-flight calls.
	mu     sync.RWMutex
	closed bool

	locks     [stripes]sync.Mutex
	admission *admission // overload limits (overload.go)
	// cache holds encoded profiles by lock stripe (cache.go);
	// cachePerStripe is each stripe's share in bytes, 0 when the cache is
	// off.
	cache          [stripes]cacheStripe
	cachePerStripe int
	bufs           sync.Pool // *[]byte scratch buffers for store reads
	recs           sync.Pool // *record decoded by loadLocked (lockSet.recs)
	evals          sync.Pool // *evalState scratch of evaluate
	encs           sync.Pool // *encoder of profile records

	queue *importQueue // Import's durable queue and worker (importqueue.go)
	tel   *telemetry   // metrics and traces (telemetry.go); nil without providers

	stopSweep     chan struct{} // closed by Close to stop the sweep goroutine
	stopSweepOnce sync.Once
	sweeping      sync.WaitGroup

	rulesWatch ruleWatchers // OnRulesChange subscribers (watch.go)
}

// Open opens (creating if needed) an engine storing its profiles in dir,
// or in opts.Store, or in memory with opts.InMemory. A nil opts means all
// defaults. Open does not modify *opts.
func Open(dir string, opts *Options) (*Engine, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.SessionTimeout < 0 {
		return nil, fmt.Errorf("tailor: Options.SessionTimeout %v is negative", o.SessionTimeout)
	}
	if o.ProfileTTL < 0 {
		return nil, fmt.Errorf("tailor: Options.ProfileTTL %v is negative", o.ProfileTTL)
	}
	if o.SessionTimeout == 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if err := validateOverload(&o); err != nil {
		return nil, err
	}
	o.IdentitySecret = bytes.Clone(o.IdentitySecret)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rules == nil {
		o.Rules = &rules.Set{}
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	}
	if o.Devices == nil {
		o.Devices = device.New()
	}
	if o.Store == nil {
		if dir == "" && !o.InMemory {
			return nil, errors.New("tailor: Open needs a directory, Options.InMemory or Options.Store")
		}
		s, err := openDefaultStore(dir, &o)
		if err != nil {
			return nil, err
		}
		o.Store = s
	}
	tel := newTelemetry(&o)
	e := &Engine{
		opts:           o,
		store:          tel.meterStore(o.Store),
		tel:            tel,
		log:            o.Logger,
		now:            o.Now,
		sessionTimeout: o.SessionTimeout,
		devices:        o.Devices,
		admission:      newAdmission(&o),
	}
	if n := o.CacheBytes; n >= 0 {
		if n == 0 {
			n = DefaultCacheBytes
		}
		e.cachePerStripe = int((n + stripes - 1) / stripes)
	}
	e.rules.Store(o.Rules)
	e.bufs.New = func() any { b := make([]byte, 0, 2048); return &b }
	e.recs.New = func() any { return new(record) }
	e.evals.New = func() any { return new(evalState) }
	e.encs.New = func() any { return &encoder{b: make([]byte, 0, 2048)} }
	if err := e.startImportQueue(); err != nil {
		e.store.Close()
		return nil, err
	}
	e.stopSweep = make(chan struct{})
	if o.SweepInterval >= 0 {
		if o.SweepInterval == 0 {
			o.SweepInterval = DefaultSweepInterval
		}
		e.sweeping.Add(1)
		go e.sweepLoop(o.SweepInterval)
	}
	tel.observe(e)
	return e, nil
}

// sweepLoop runs the sweep every interval until Close, finishing the
// operations older than the interval.
func (e *Engine) sweepLoop(interval time.Duration) {
	defer e.sweeping.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-e.stopSweep
		cancel()
	}()
	for {
		select {
		case <-e.stopSweep:
			return
		case <-t.C:
		}
		if err := e.enter(); err != nil {
			return
		}
		err := e.sweep(ctx, interval)
		e.leave()
		if err != nil && ctx.Err() == nil {
			e.log.Error("tailor: sweep failed", "err", err)
		}
	}
}

// Close waits for in-flight calls, stops background work and closes the
// store. It is safe to call twice; calls after Close return ErrClosed.
func (e *Engine) Close() error {
	e.tel.close()
	e.stopImportQueue()
	e.stopSweepOnce.Do(func() { close(e.stopSweep) })
	e.sweeping.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	return e.store.Close()
}

// enter registers an in-flight call; leave must follow unless it failed.
func (e *Engine) enter() error {
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (e *Engine) leave() { e.mu.RUnlock() }

// SetRules atomically replaces the rules in force; nil means none. Calls
// already running finish with the rules they started with. Functions
// registered with OnRulesChange are called before it returns.
func (e *Engine) SetRules(s *rules.Set) {
	if s == nil {
		s = &rules.Set{}
	}
	e.rules.Store(s)
	e.rulesWatch.notify(s)
	e.tel.rulesReplaced(s)
}

// Rules returns the rules in force. The Set is shared and must not be
// modified.
func (e *Engine) Rules() *rules.Set { return e.rules.Load() }

// Identify applies req to the profile profileID (created when unknown, or
// with a fresh id when profileID is empty), evaluates audiences and
// experiences, persists the profile unless req.Preflight, emits exposures
// and returns the result. Invalid input returns an *InputError (matching
// ErrInvalidInput) and writes nothing. The Response belongs to the caller.
func (e *Engine) Identify(ctx context.Context, profileID string, req Request) (resp *Response, err error) {
	ctx, call := e.tel.startIdentify(ctx, len(req.Events), req.Preflight)
	defer func() { e.tel.endIdentify(ctx, call, resp, err) }()
	if err := e.enter(); err != nil {
		return nil, err
	}
	defer e.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if profileID != "" {
		if err := checkID("profileId", profileID); err != nil {
			return nil, err
		}
	}
	now := e.now()
	evs, err := validate(&req, now)
	if err != nil {
		return nil, err
	}
	userID := ""
	for _, ev := range evs {
		if ev.Type == EventIdentify && ev.UserID != "" {
			userID = ev.UserID
		}
	}
	req.identityVerified = takeProofs(evs, e.opts.IdentitySecret, userID)
	rs := e.rules.Load()
	if err := checkOverrides(req.Overrides, rs); err != nil {
		return nil, err
	}

	id := profileID
	if id == "" {
		id = newID()
	} else if !req.admitted {
		if err := e.admission.admit(id, now); err != nil {
			return nil, err
		}
		defer e.admission.release(id)
	}
	keys := []string{prefixProfile + id}
	if userID != "" {
		keys = append(keys, prefixUser+userID)
	}
	var out evaluation
	err = e.retry(ctx, func() error {
		return e.locked(keys, func(l *lockSet) error {
			var err error
			out, err = e.identifyLocked(ctx, l, id, profileID != "", userID, evs, &req, rs, now)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	e.tel.exposed(ctx, out.exposures)
	if e.opts.OnExposure != nil {
		for _, x := range out.exposures {
			e.opts.OnExposure(x)
		}
	}
	return out.resp, nil
}

// identifyLocked is the body of Identify that runs under the profile locks.
// It returns errRelock when it discovers a key it must also lock, and
// storage.ErrConflict when another process wrote a record it read.
//
// explicit reports that the caller named the profile id (rather than
// Identify generating one): a named anonymous profile that merges leaves its
// id as an alias of the survivor even if it was never stored.
func (e *Engine) identifyLocked(ctx context.Context, l *lockSet, id string, explicit bool, userID string, evs []event,
	req *Request, rs *rules.Set, now time.Time) (evaluation, error) {
	l.noCache = req.Preflight
	lctx, load := e.tel.span(ctx, SpanLoad)
	rec, err := e.resolveLocked(lctx, l, id)
	load.end(err)
	if err != nil {
		return evaluation{}, err
	}
	target := rec
	var after func() error // the identity operation's steps after target's write
	if userID != "" && rec.UserID != userID {
		if err := e.checkIdentity(req); err != nil {
			return evaluation{}, err
		}
		owner, _, err := e.ownerLocked(ctx, l, userID)
		if err != nil {
			return evaluation{}, err
		}
		var op func(rec, owner *record, dry bool) (*record, func() error, error)
		switch {
		case owner == nil && rec.UserID == "":
			// The anonymous profile becomes known as userID.
			op = func(rec, _ *record, dry bool) (*record, func() error, error) {
				return e.bind(ctx, l, rec, userID, dry)
			}
		case owner == nil:
			// Known as another user: continue on a new profile for userID
			// and leave the current one untouched.
			fresh := e.newRecord(newID())
			op = func(_, _ *record, dry bool) (*record, func() error, error) {
				if dry {
					return e.bind(ctx, l, cloneRecord(fresh), userID, dry)
				}
				return e.bind(ctx, l, fresh, userID, dry)
			}
		case owner.ID == rec.ID:
			rec.UserID = userID
		case rec.UserID == "":
			// The anonymous profile merges into the known one.
			op = func(rec, owner *record, dry bool) (*record, func() error, error) {
				return e.merge(ctx, l, rec, owner, explicit, dry)
			}
		default:
			// Known as another user, and userID has a profile: continue
			// there; the current profile is left untouched.
			target = owner
		}
		if op != nil {
			if !req.Preflight {
				// The operation writes before the events are applied:
				// try it on copies first, so that a request the
				// outcome would refuse writes nothing.
				t, _, _ := op(cloneRecord(rec), cloneRecord(owner), true)
				e.applyEvents(t, evs, rs, req.Overrides)
				if err := checkStoredTraits(t.Traits); err != nil {
					return evaluation{}, err
				}
			}
			if target, after, err = op(rec, owner, req.Preflight); err != nil {
				return evaluation{}, err
			}
		}
	}
	if m := req.importMark; m != nil && slices.Contains(target.Imports, *m) {
		return evaluation{}, nil // applied before a crash, or by another worker
	}

	located := e.applyEvents(target, evs, rs, req.Overrides)
	if traitsChanged(evs) || target != rec {
		if err := checkStoredTraits(target.Traits); err != nil {
			return evaluation{}, err
		}
	}
	if !located {
		e.locate(ctx, target, req)
	}
	ectx, eval := e.tel.span(ctx, SpanEvaluate)
	out := e.evaluateWith(ectx, target, rs, now, !req.Preflight, req.Overrides)
	eval.end(nil)
	if err := ctx.Err(); err != nil {
		return evaluation{}, err // the deadline passed during evaluation
	}
	if req.Preflight {
		out.exposures = nil
		return out, nil
	}
	target.Updated = now.UnixMilli()
	if m := req.importMark; m != nil {
		target.Imports = append(pruneImports(target.Imports, req.importOldest), *m)
	}
	if err := e.refreshAliases(ctx, target, now); err != nil {
		return evaluation{}, err
	}
	if err := ctx.Err(); err != nil {
		return evaluation{}, err
	}
	cctx, commit := e.tel.span(ctx, SpanCommit)
	err = e.writeRecord(cctx, l, target)
	commit.end(err)
	if err != nil {
		return evaluation{}, err
	}
	if after != nil {
		// The call's events are written; what is left of the operation
		// is for the sweep to finish if it fails here.
		if err := after(); err != nil {
			e.log.Warn("tailor: identity operation left for the sweep to finish", "profile", target.ID, "err", err)
		}
	}
	return out, nil
}

// locate fills the location from the request IP when the request enables
// it and a Locator is configured (step 5); failures keep the stored one.
func (e *Engine) locate(ctx context.Context, rec *record, req *Request) {
	if e.opts.Locator == nil || !req.IP.IsValid() || !wantsLocation(req.Options.Features) {
		return
	}
	locale := req.Locale
	if locale == "" {
		locale = rec.Locale
	}
	loc, err := e.opts.Locator.Locate(ctx, req.IP, locale)
	if err != nil {
		e.log.Warn("location lookup failed", "err", err)
		return
	}
	if !loc.IsZero() {
		rec.Location = normalizeLocation(loc)
	}
}

func wantsLocation(features []string) bool {
	for _, f := range features {
		if f == FeatureLocation || f == FeatureIPEnrichment {
			return true
		}
	}
	return false
}

// loadLocked is load for a caller holding the stripe of "p/"+id: it
// decodes the cached copy when there is one, unless the call writes
// nothing (l.noCache), which must read what is stored. The record comes
// from the engine's pool and goes back to it when the call's body returns
// (see lockSet.recs); the caller must keep nothing of it past that.
func (e *Engine) loadLocked(ctx context.Context, l *lockSet, id string) (*record, error) {
	rec := e.recs.Get().(*record)
	l.recs = append(l.recs, rec)
	var v storage.Version
	var enc []byte
	if !l.noCache {
		enc, v = e.cacheGet(l, id)
	}
	if enc == nil {
		bufp := e.bufs.Get().(*[]byte)
		defer e.bufs.Put(bufp)
		var err error
		if enc, v, err = e.store.Get(ctx, l.profileKey(id), *bufp); err != nil {
			return nil, err
		}
		*bufp = enc
	}
	if err := decodeRecordInto(rec, enc); err != nil {
		return nil, fmt.Errorf("tailor: profile %s: %w", id, err)
	}
	rec.ver, rec.stored = v, rec.live()
	return rec, nil
}

// load reads and decodes the record p/<id>, in whatever state it is, with
// its version.
func (e *Engine) load(ctx context.Context, id string) (*record, error) {
	return e.loadFrom(ctx, id, e.store.Get)
}

// loadLatest is load bypassing any cache of the store (storage.Cached):
// for a record whose state decides a write of another key.
func (e *Engine) loadLatest(ctx context.Context, id string) (*record, error) {
	return e.loadFrom(ctx, id, func(ctx context.Context, key, dst []byte) ([]byte, storage.Version, error) {
		return storage.Latest(ctx, e.store, key, dst)
	})
}

func (e *Engine) loadFrom(ctx context.Context, id string, get func(ctx context.Context, key, dst []byte) ([]byte, storage.Version, error)) (*record, error) {
	bufp := e.bufs.Get().(*[]byte)
	defer e.bufs.Put(bufp)
	b, v, err := get(ctx, []byte(prefixProfile+id), *bufp)
	if err != nil {
		return nil, err
	}
	*bufp = b
	rec, err := decodeRecord(b)
	if err != nil {
		return nil, fmt.Errorf("tailor: profile %s: %w", id, err)
	}
	rec.ver = v
	rec.stored = rec.live()
	return rec, nil
}

// getString reads a key holding an id (a claim, a legacy alias).
func (e *Engine) getString(ctx context.Context, key string) (string, storage.Version, error) {
	b, v, err := e.store.Get(ctx, []byte(key), nil)
	return string(b), v, err
}

// getStringLatest is getString bypassing any cache of the store.
func (e *Engine) getStringLatest(ctx context.Context, key string) (string, storage.Version, error) {
	b, v, err := storage.Latest(ctx, e.store, []byte(key), nil)
	return string(b), v, err
}

// newRecord returns a new profile with id, created now.
func (e *Engine) newRecord(id string) *record { return newRecord(id, e.now().UnixMilli()) }

func newRecord(id string, nowMs int64) *record {
	return &record{ID: id, StableID: id, Random: rand.Float64(), Created: nowMs}
}

// newID returns 64 lowercase hex characters from crypto/rand: profile ids
// are bearer credentials and must not be guessable.
func newID() string {
	var b [32]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newSessionID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Get returns the profile profileID (following aliases) with its current
// evaluation. It writes nothing: assignments it draws are not stored and no
// exposure is emitted. A missing profile gives ErrNotFound.
func (e *Engine) Get(ctx context.Context, profileID string) (*Response, error) {
	if err := e.enter(); err != nil {
		return nil, err
	}
	defer e.leave()
	if err := checkID("profileId", profileID); err != nil {
		return nil, err
	}
	if profileID == "" {
		return nil, invalid("profileId", "is required")
	}
	rec, err := e.find(ctx, profileID)
	if err != nil {
		return nil, err
	}
	out := e.evaluate(ctx, rec, e.rules.Load(), e.now(), false)
	if err := ctx.Err(); err != nil {
		return nil, err // the deadline passed during evaluation
	}
	return out.resp, nil
}

// find returns the live profile id names, following forwarders and
// legacy aliases, without locking and without writing: a merge under way
// is shown merged, a deletion under way as gone.
func (e *Engine) find(ctx context.Context, id string) (*record, error) {
	rec, err := e.load(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		survivor, _, aerr := e.getString(ctx, prefixMerged+id)
		if errors.Is(aerr, storage.ErrNotFound) {
			return nil, ErrNotFound
		}
		if aerr != nil {
			return nil, aerr
		}
		b, err := e.load(ctx, survivor)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && (!b.live() || !slices.Contains(b.Merged, id))) {
			return nil, ErrNotFound
		}
		return b, err
	case err != nil:
		return nil, err
	case rec.Deleted:
		return nil, ErrNotFound
	case rec.Forward != "":
		b, err := e.load(ctx, rec.Forward)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && !b.live()) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		if rec.Pending {
			if !slices.Contains(b.Absorbed, absorbReceipt(rec.ID, rec.ver)) {
				mergeInto(b, rec) // as it will be
			}
			return b, nil
		}
		if !slices.Contains(b.Merged, id) {
			return nil, ErrNotFound
		}
		return b, nil
	}
	return rec, nil
}

// Delete removes the profile profileID (or the profile it was merged into)
// with all its aliases: its user id and every id merged into it. A missing
// profile gives ErrNotFound.
func (e *Engine) Delete(ctx context.Context, profileID string) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.leave()
	if err := checkID("profileId", profileID); err != nil {
		return err
	}
	if profileID == "" {
		return invalid("profileId", "is required")
	}
	return e.retry(ctx, func() error {
		return e.locked([]string{prefixProfile + profileID}, func(l *lockSet) error {
			rec, err := e.resolveLocked(ctx, l, profileID)
			if err != nil {
				return err
			}
			if !rec.stored {
				return ErrNotFound
			}
			return e.deleteLocked(ctx, l, rec)
		})
	})
}

// Backup writes a consistent snapshot of the whole store to w.
func (e *Engine) Backup(ctx context.Context, w io.Writer) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.leave()
	return e.store.Backup(ctx, w)
}

// Restore loads a snapshot written by Backup into the engine's store,
// replacing profiles with the same ids. It waits for in-flight calls and
// blocks new ones while it runs.
func (e *Engine) Restore(ctx context.Context, r io.Reader) error {
	e.stopImportQueue() // it writes to the store; restarted on what was restored
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	e.cacheClear()
	return errors.Join(e.store.Restore(ctx, r), e.queue.start())
}

// Profiles calls fn for every stored profile, in the store's order (id
// order on Badger), with its current evaluation (nothing is written). It stops at the first error fn
// returns and returns it. The Profile belongs to fn.
func (e *Engine) Profiles(ctx context.Context, fn func(*Profile) error) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.leave()
	rs := e.rules.Load()
	now := e.now()
	return e.store.Scan(ctx, []byte(prefixProfile), func(key, value []byte, _ storage.Version) error {
		rec, err := decodeRecord(value)
		if err != nil {
			return fmt.Errorf("tailor: profile %s: %w", key[len(prefixProfile):], err)
		}
		if !rec.live() {
			return nil // an alias, or an operation under way
		}
		out := e.evaluate(ctx, rec, rs, now, false)
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(out.resp.Profile)
	})
}

// Export writes every profile (as Profiles gives them) to w as one JSON
// object per line (NDJSON).
func (e *Engine) Export(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := e.Profiles(ctx, func(p *Profile) error { return enc.Encode(p) }); err != nil {
		return err
	}
	return bw.Flush()
}

// errRelock tells locked that the body needs one more lock.
var errRelock = errors.New("tailor: relock")

// lockSet is the set of stripe locks a call holds.
type lockSet struct {
	keys    []string
	stripes []int
	// recs are the pooled records the call decoded (loadLocked), given
	// back when the call's body returns: nothing of them outlives it
	// (the response copies what it shows, the cache keeps bytes).
	recs []*record
	// noCache makes the call read profiles from the store only, for a
	// call that writes nothing (preflight), whose answer must not rest
	// on a copy another process may have made stale.
	noCache bool
	// keyBuf holds the store key profileKey builds (a 32-digit id's key
	// does not fit a conversion's stack buffer; a key longer than keyBuf
	// is allocated).
	keyBuf [64]byte
}

// profileKey returns the store key p/<id>, in l's buffer while it fits,
// valid until the next call: for a store call, which retains no slice
// passed to it.
func (l *lockSet) profileKey(id string) []byte {
	return append(append(l.keyBuf[:0], prefixProfile...), id...)
}

// need returns nil when key's stripe is held, else adds key and returns
// errRelock so the body runs again holding it too.
func (l *lockSet) need(key string) error {
	if slices.Contains(l.stripes, stripeOf(key)) {
		return nil
	}
	l.keys = append(l.keys, key)
	return errRelock
}

// holds reports whether l holds stripe s.
func (l *lockSet) holds(s int) bool { return slices.Contains(l.stripes, s) }

func stripeOf(key string) int { return int(keyHash(key) % stripes) }

// keyHash is the hash of a store key that picks its lock stripe.
func keyHash(key string) uint64 { return xxhash.Sum64String(key) }

// profileKeyHash is keyHash(prefixProfile + id), without building the key
// (a profile id of 32 hex digits makes a key too long for the stack).
func profileKeyHash(id string) uint64 {
	var d xxhash.Digest
	d.Reset()
	d.WriteString(prefixProfile)
	d.WriteString(id)
	return d.Sum64()
}

// locked runs fn holding the stripes of keys, growing the set and running
// fn again whenever fn returns errRelock. Stripes are always taken in
// ascending order, so two calls never deadlock. fn must not write before
// it has every lock it needs.
func (e *Engine) locked(keys []string, fn func(l *lockSet) error) error {
	l := &lockSet{keys: keys}
	for {
		l.stripes = l.stripes[:0]
		for _, k := range l.keys {
			l.stripes = append(l.stripes, stripeOf(k))
		}
		slices.Sort(l.stripes)
		l.stripes = slices.Compact(l.stripes)
		for _, s := range l.stripes {
			e.locks[s].Lock()
		}
		err := fn(l)
		for _, s := range l.stripes {
			e.locks[s].Unlock()
		}
		for _, r := range l.recs {
			// Drop what may be the caller's (pageOf keeps its query).
			r.Page.Query, r.Session.LandingPage.Query = nil, nil
			e.recs.Put(r)
		}
		clear(l.recs)
		l.recs = l.recs[:0]
		if err != errRelock {
			return err
		}
	}
}
