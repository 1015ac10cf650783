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
	// cache holds decoded profiles by lock stripe (cache.go);
	// cachePerStripe is 0 when the cache is off.
	cache          [stripes]cacheStripe
	cachePerStripe int
	bufs           sync.Pool // *[]byte scratch buffers for store reads
	evals          sync.Pool // *evalState scratch of evaluate
	encs           sync.Pool // *encoder of profile records

	queue *importQueue // Import's durable queue and worker (importqueue.go)

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
	e := &Engine{
		opts:           o,
		store:          o.Store,
		log:            o.Logger,
		now:            o.Now,
		sessionTimeout: o.SessionTimeout,
		devices:        o.Devices,
		admission:      newAdmission(&o),
	}
	if n := o.CacheProfiles; n >= 0 && o.ProfileTTL == 0 {
		if n == 0 {
			n = DefaultCacheProfiles
		}
		e.cachePerStripe = (n + stripes - 1) / stripes
	}
	e.rules.Store(o.Rules)
	e.bufs.New = func() any { b := make([]byte, 0, 2048); return &b }
	e.evals.New = func() any { return new(evalState) }
	e.encs.New = func() any { return &encoder{b: make([]byte, 0, 2048)} }
	if err := e.startImportQueue(); err != nil {
		e.store.Close()
		return nil, err
	}
	return e, nil
}

// Close waits for in-flight calls, stops background work and closes the
// store. It is safe to call twice; calls after Close return ErrClosed.
func (e *Engine) Close() error {
	e.stopImportQueue()
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
}

// Rules returns the rules in force. The Set is shared and must not be
// modified.
func (e *Engine) Rules() *rules.Set { return e.rules.Load() }

// Identify applies req to the profile profileID (created when unknown, or
// with a fresh id when profileID is empty), evaluates audiences and
// experiences, persists the profile unless req.Preflight, emits exposures
// and returns the result. Invalid input returns an *InputError (matching
// ErrInvalidInput) and writes nothing. The Response belongs to the caller.
func (e *Engine) Identify(ctx context.Context, profileID string, req Request) (*Response, error) {
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
	err = e.locked(keys, func(l *lockSet) error {
		var err error
		out, err = e.identifyLocked(ctx, l, id, profileID != "", userID, evs, &req, rs, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	if e.opts.OnExposure != nil {
		for _, x := range out.exposures {
			e.opts.OnExposure(x)
		}
	}
	return out.resp, nil
}

// identifyLocked is the body of Identify that runs under the profile locks.
// It returns errRelock when it discovers a key it must also lock.
//
// explicit reports that the caller named the profile id (rather than
// Identify generating one): a named anonymous profile that merges leaves its
// id as an alias of the survivor even if it was never stored.
func (e *Engine) identifyLocked(ctx context.Context, l *lockSet, id string, explicit bool, userID string, evs []event,
	req *Request, rs *rules.Set, now time.Time) (evaluation, error) {
	rec, err := e.resolveLocked(ctx, l, id)
	if err != nil {
		return evaluation{}, err
	}
	nowMs := now.UnixMilli()
	var ops []storage.Op
	target := rec
	if userID != "" && rec.UserID != userID {
		if err := e.checkIdentity(req); err != nil {
			return evaluation{}, err
		}
		owner, err := e.ownerLocked(ctx, l, userID)
		if err != nil {
			return evaluation{}, err
		}
		switch {
		case owner == nil && rec.UserID == "":
			// The anonymous profile becomes known as userID.
			rec.UserID = userID
			ops = append(ops, e.setOp(prefixUser+userID, rec.ID))
		case owner == nil:
			// Known as another user: continue on a new profile for userID
			// and leave the current one untouched.
			target = newRecord(newID(), nowMs)
			target.UserID = userID
			ops = append(ops, e.setOp(prefixUser+userID, target.ID))
		case owner.ID == rec.ID:
			rec.UserID = userID
		case rec.UserID == "":
			// The anonymous profile merges into the known one.
			mergeInto(owner, rec)
			if rec.stored {
				ops = append(ops, storage.Op{Key: []byte(prefixProfile + rec.ID), Delete: true})
			}
			if rec.stored || explicit {
				ops = append(ops, e.setOp(prefixMerged+rec.ID, owner.ID))
			}
			for _, m := range rec.Merged {
				ops = append(ops, e.setOp(prefixMerged+m, owner.ID))
			}
			if n := len(owner.Merged) - MaxMergedIDs; n > 0 {
				// Forget the oldest aliases so the record stays small.
				for _, m := range owner.Merged[:n] {
					ops = append(ops, storage.Op{Key: []byte(prefixMerged + m), Delete: true})
				}
				owner.Merged = append(owner.Merged[:0], owner.Merged[n:]...)
			}
			target = owner
		default:
			// Known as another user, and userID has a profile: continue
			// there; the current profile is left untouched.
			target = owner
		}
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
	out := e.evaluateWith(target, rs, now, !req.Preflight, req.Overrides)
	if req.Preflight {
		out.exposures = nil
		return out, nil
	}
	target.Updated = nowMs
	encoder := e.encs.Get().(*encoder)
	defer e.encs.Put(encoder)
	enc, err := encoder.encode(target)
	if err != nil {
		return evaluation{}, err
	}
	ops = append(ops, storage.Op{Key: []byte(prefixProfile + target.ID), Value: enc, TTL: e.opts.ProfileTTL})
	if e.opts.ProfileTTL > 0 {
		ops = append(ops, e.refreshAliases(target, ops)...)
	}
	ops = append(ops, req.queueOps...)
	if err := ctx.Err(); err != nil {
		return evaluation{}, err
	}
	if err := e.store.Apply(ctx, ops); err != nil {
		return evaluation{}, fmt.Errorf("tailor: write profile %s: %w", target.ID, err)
	}
	e.cachePut(l, target)
	return out, nil
}

// refreshAliases rewrites target's aliases so they expire with it; ops
// already writing an alias are skipped.
func (e *Engine) refreshAliases(target *record, ops []storage.Op) []storage.Op {
	written := func(key string) bool {
		return slices.ContainsFunc(ops, func(o storage.Op) bool { return string(o.Key) == key })
	}
	var more []storage.Op
	if target.UserID != "" && !written(prefixUser+target.UserID) {
		more = append(more, e.setOp(prefixUser+target.UserID, target.ID))
	}
	for _, m := range target.Merged {
		if !written(prefixMerged + m) {
			more = append(more, e.setOp(prefixMerged+m, target.ID))
		}
	}
	return more
}

func (e *Engine) setOp(key, value string) storage.Op {
	return storage.Op{Key: []byte(key), Value: []byte(value), TTL: e.opts.ProfileTTL}
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

// resolveLocked loads the profile id names, following a merged-away alias
// to the survivor (locking it too). An unknown id gives a new record.
func (e *Engine) resolveLocked(ctx context.Context, l *lockSet, id string) (*record, error) {
	rec, err := e.loadLocked(ctx, l, id)
	if err == nil {
		return rec, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	survivor, err := e.getString(ctx, prefixMerged+id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return newRecord(id, e.now().UnixMilli()), nil
	case err != nil:
		return nil, err
	}
	if err := l.need(prefixProfile + survivor); err != nil {
		return nil, err
	}
	rec, err = e.loadLocked(ctx, l, survivor)
	if errors.Is(err, storage.ErrNotFound) {
		// A dangling alias (the survivor was deleted or expired).
		return newRecord(id, e.now().UnixMilli()), nil
	}
	return rec, err
}

// ownerLocked returns the profile known as userID, or nil.
func (e *Engine) ownerLocked(ctx context.Context, l *lockSet, userID string) (*record, error) {
	pid, err := e.getString(ctx, prefixUser+userID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := l.need(prefixProfile + pid); err != nil {
		return nil, err
	}
	rec, err := e.loadLocked(ctx, l, pid)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return rec, err
}

// loadLocked is load for a caller holding the stripe of "p/"+id: it takes
// the profile out of the cache when it is there. The caller owns the
// record; only cachePut puts it back.
func (e *Engine) loadLocked(ctx context.Context, l *lockSet, id string) (*record, error) {
	if rec := e.cacheTake(l, id); rec != nil {
		return rec, nil
	}
	return e.load(ctx, id)
}

// load reads and decodes the stored profile id.
func (e *Engine) load(ctx context.Context, id string) (*record, error) {
	bufp := e.bufs.Get().(*[]byte)
	defer e.bufs.Put(bufp)
	b, err := e.store.Get(ctx, []byte(prefixProfile+id), *bufp)
	if err != nil {
		return nil, err
	}
	*bufp = b
	rec, err := decodeRecord(b)
	if err != nil {
		return nil, fmt.Errorf("tailor: profile %s: %w", id, err)
	}
	rec.stored = true
	return rec, nil
}

func (e *Engine) getString(ctx context.Context, key string) (string, error) {
	b, err := e.store.Get(ctx, []byte(key), nil)
	return string(b), err
}

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
	return e.evaluate(rec, e.rules.Load(), e.now(), false).resp, nil
}

// find loads a profile by id or merged-away alias without locking.
func (e *Engine) find(ctx context.Context, id string) (*record, error) {
	rec, err := e.load(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		survivor, aerr := e.getString(ctx, prefixMerged+id)
		if errors.Is(aerr, storage.ErrNotFound) {
			return nil, ErrNotFound
		}
		if aerr != nil {
			return nil, aerr
		}
		rec, err = e.load(ctx, survivor)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotFound
	}
	return rec, err
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
	return e.locked([]string{prefixProfile + profileID}, func(l *lockSet) error {
		rec, err := e.resolveLocked(ctx, l, profileID)
		if err != nil {
			return err
		}
		if !rec.stored {
			return ErrNotFound
		}
		ops := []storage.Op{{Key: []byte(prefixProfile + rec.ID), Delete: true}}
		if rec.UserID != "" {
			if err := l.need(prefixUser + rec.UserID); err != nil {
				return err
			}
			owner, err := e.getString(ctx, prefixUser+rec.UserID)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			if owner == rec.ID {
				ops = append(ops, storage.Op{Key: []byte(prefixUser + rec.UserID), Delete: true})
			}
		}
		for _, m := range rec.Merged {
			ops = append(ops, storage.Op{Key: []byte(prefixMerged + m), Delete: true})
		}
		return e.store.Apply(ctx, ops)
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

// Profiles calls fn for every stored profile, in id order, with its
// current evaluation (nothing is written). It stops at the first error fn
// returns and returns it. The Profile belongs to fn.
func (e *Engine) Profiles(ctx context.Context, fn func(*Profile) error) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.leave()
	rs := e.rules.Load()
	now := e.now()
	return e.store.Scan(ctx, []byte(prefixProfile), func(key, value []byte) error {
		rec, err := decodeRecord(value)
		if err != nil {
			return fmt.Errorf("tailor: profile %s: %w", key[len(prefixProfile):], err)
		}
		return fn(e.evaluate(rec, rs, now, false).resp.Profile)
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

func stripeOf(key string) int { return int(xxhash.Sum64String(key) % stripes) }

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
		if err != errRelock {
			return err
		}
	}
}
