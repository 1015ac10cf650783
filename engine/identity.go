package engine

// The identity protocol: how Identify, Delete, the import worker and the
// sweep change several keys of a store that writes one key at a time.
//
// The store's contract (package storage) is a key → value map where every
// write is atomic on its key and may be conditional on the key's version;
// nothing spans two keys, because Redis Cluster cannot write keys of
// different slots together. Binding a user id, merging an anonymous
// profile into a known one and deleting a profile with its aliases touch
// several keys, so each is a sequence of single-key conditional steps,
// every step safe to repeat, and every intermediate state recognisable:
// any call that meets an unfinished operation finishes it before going on,
// and a background sweep finishes what crashed callers left.
//
// # Keys and states
//
//	p/<id>       a profile record, in one of these states:
//	               live          a profile (record.live)
//	               bind pending  live, UserID set, claim u/<UserID> maybe not made yet
//	               merge pending Forward = B, Pending: the id is merging into B and
//	                             the record still holds its data
//	               forwarder     Forward = B: the id was merged into B; valid only
//	                             while B is live and lists the id in B.Merged
//	               tombstone     Deleted: the profile was deleted; UserID and Merged
//	                             are the aliases still to remove
//	u/<userId>   the claim: the id of the profile known as userId; valid only
//	             while that profile is live with that UserID
//	j/<kind>/<id> an intent: an operation under way on p/<id> (bind, merge, delete)
//	m/<id>       the alias of a merged id in stores written before forwarders
//	             (read, removed with its survivor, never written)
//
// # Invariants
//
//  1. A user id is claimed by at most one profile: claims are made with a
//     write on condition that u/<userId> is absent (or still holds the
//     dangling claim read), so of two racing binders one wins.
//  2. A profile holds at most one user id, and sets it (bind pending)
//     before it claims it, so no second bind can start on it meanwhile.
//  3. The caller's events are applied in exactly one write: the last one,
//     to the profile the call ends on, on condition of the version its
//     computation read. Protocol steps carry no events, so a step repeated
//     by a retry, another process or the sweep never counts an event twice.
//  4. A merge's data moves once: the known profile absorbs a merge-pending
//     record in one conditional write that also records a receipt of that
//     record's version (record.Absorbed); a second absorb finds the receipt.
//  5. Deleting a profile removes its data in the first step (the tombstone
//     keeps only the aliases to remove), so no later step, crash or racing
//     call can bring the data back; an alias or claim left behind resolves
//     to nothing and is overwritten by the next profile that wants it.
//
// # Steps
//
// Bind (an anonymous or new profile A identifies as user u, unclaimed):
// write intent j/bind/A; write A with UserID u, bind pending; claim
// u/<u> → A (if another profile won the claim, A merges into it instead);
// write A without bind pending; delete the intent.
//
// Merge (anonymous A identifies as u, claimed by known B): write intent
// j/merge/A; write A merge pending (Forward B, its data kept); write B
// having absorbed A, with A in B.Merged and the receipt; write A as a plain
// forwarder; delete the intent. An id that was never stored and that the
// caller did not name (Identify with an empty id) has nothing to move and
// needs no forwarder: the call simply continues on B.
//
// Delete (profile P): write intent j/delete/P; write P's tombstone; delete
// the claim of its user id and the forwarders of its merged ids, each on
// condition that it still points to P; delete the tombstone; delete the
// intent. A merge pending into a deleted profile is deleted too.
//
// Every step that writes a record does so on condition of the version it
// read; a failed condition (storage.ErrConflict) makes the whole call read
// again and start over, up to maxAttempts times with jittered backoff,
// then fail with ErrOverload. Within one process the profile stripe locks
// keep writers of a profile from conflicting at all.
//
// # What is not guaranteed
//
// Between the steps of an operation other readers see the intermediate
// state (Get of B may briefly lack the events of a merge's last write).
// A profile absorbs the pending merges recorded in its last MaxAbsorbed
// receipts at most once; more than that many merges into one profile while
// one of them stays unfinished could absorb that one twice. With a
// ProfileTTL, claims and forwarders are written to live up to twice the
// TTL and may outlive their profile by that much (they then resolve to
// nothing).

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/tailorhq/tailor/storage"
)

// maxAttempts bounds how often a call reads and recomputes after a
// conflicting write by another process before it gives up with
// ErrOverload. Two processes hammering one profile each win about half
// the races, so a call loses them all with odds of 2^-32; the pauses
// between attempts (jittered, growing to 6.4 ms) bound the wait to about
// 100 ms.
const maxAttempts = 32

// errConflicts is the ErrOverload of a call that gave up after maxAttempts
// conflicting writes (it matches ErrOverload, and reads the same), told
// apart from the overload limits' in the tailor.identify.calls metric.
var errConflicts = fmt.Errorf("%w", ErrOverload)

// maxHops bounds how many forwarding records resolution follows; merges
// never chain (only anonymous profiles merge, into known ones, and known
// profiles never merge), so one hop is the most a consistent store needs.
const maxHops = 4

// MaxAbsorbed is how many receipts of absorbed merges a profile keeps
// (see the identity protocol in the package documentation of identity.go).
const MaxAbsorbed = 16

// Journal kinds.
const (
	kindBind   = "bind"
	kindMerge  = "merge"
	kindDelete = "delete"
)

// intent is the value of a journal key: what is under way, since when.
type intent struct {
	Kind string `json:"k"`
	ID   string `json:"id"`
	At   int64  `json:"t"` // Unix ms
}

// retry runs attempt until it returns anything but storage.ErrConflict,
// at most maxAttempts times, waiting a jittered, growing pause between
// attempts; after the last conflict it returns ErrOverload.
func (e *Engine) retry(ctx context.Context, attempt func() error) error {
	for n := 0; ; n++ {
		err := attempt()
		if !errors.Is(err, storage.ErrConflict) {
			return err
		}
		if n == maxAttempts-1 {
			return fmt.Errorf("%w: %d conflicting writes by other processes: %v", errConflicts, maxAttempts, err)
		}
		e.tel.conflictRetried(ctx)
		pause := time.Duration(rand.Int64N(int64(100*time.Microsecond) << min(n, 6)))
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// writeRecord writes rec at p/<rec.ID> on condition of the version it was
// read at (absent when it was not read), records the new version in rec,
// and keeps the cache in step: a live record written is cached, anything
// else (a protocol state, a conflict) drops the cached copy.
// storage.ErrConflict means someone wrote the key since.
func (e *Engine) writeRecord(ctx context.Context, l *lockSet, rec *record) error {
	encoder := e.encs.Get().(*encoder)
	defer e.encs.Put(encoder)
	enc, err := encoder.encode(rec)
	if err != nil {
		return err
	}
	if err := checkRecordSize(len(enc)); err != nil {
		return err
	}
	op := storage.Op{Key: l.profileKey(rec.ID), Value: enc, TTL: e.opts.ProfileTTL}
	if rec.ver != 0 {
		op.IfVersion = rec.ver
	} else {
		op.IfAbsent = true
	}
	v, err := e.store.Write(ctx, op)
	if err != nil {
		e.cacheDrop(l, rec.ID) // stale, or in doubt
		if errors.Is(err, storage.ErrConflict) {
			return err
		}
		return fmt.Errorf("tailor: write profile %s: %w", rec.ID, err)
	}
	rec.ver = v
	rec.stored = rec.live()
	if rec.stored && !l.noCache {
		e.cachePut(l, rec.ID, v, enc)
	} else {
		e.cacheDrop(l, rec.ID)
	}
	return nil
}

// deleteKey deletes key on condition that it is still at version v.
// A conflict is not an error: the key changed hands and is left alone.
func (e *Engine) deleteKey(ctx context.Context, key string, v storage.Version) error {
	_, err := e.store.Write(ctx, storage.Op{Key: []byte(key), Delete: true, IfVersion: v})
	if err != nil && !errors.Is(err, storage.ErrConflict) {
		return fmt.Errorf("tailor: delete %s: %w", key, err)
	}
	return nil
}

// beginIntent writes the journal entry of an operation on id and returns
// the entry's version, for endIntent.
func (e *Engine) beginIntent(ctx context.Context, kind, id string) (storage.Version, error) {
	b, _ := json.Marshal(intent{Kind: kind, ID: id, At: e.now().UnixMilli()})
	v, err := e.store.Write(ctx, storage.Op{Key: []byte(journalKey(kind, id)), Value: b})
	if err != nil {
		return 0, fmt.Errorf("tailor: journal %s %s: %w", kind, id, err)
	}
	return v, nil
}

// endIntent deletes the journal entry of an operation on id: the one
// written at version v, or, with v zero (the sweep, or a call finishing
// another's operation), whatever entry is there.
func (e *Engine) endIntent(ctx context.Context, kind, id string, v storage.Version) error {
	op := storage.Op{Key: []byte(journalKey(kind, id)), Delete: true, IfVersion: v}
	if _, err := e.store.Write(ctx, op); err != nil && !errors.Is(err, storage.ErrConflict) {
		return fmt.Errorf("tailor: journal %s %s: %w", kind, id, err)
	}
	return nil
}

// abandon ends the intent of an operation whose first step failed with
// err (nothing of it was written), and returns err. If the intent cannot
// be removed, the sweep finds nothing to finish and removes it.
func (e *Engine) abandon(ctx context.Context, kind, id string, iv storage.Version, err error) error {
	if ierr := e.endIntent(ctx, kind, id, iv); ierr != nil {
		e.log.Warn("tailor: intent left for the sweep", "kind", kind, "id", id, "err", ierr)
	}
	return err
}

func journalKey(kind, id string) string { return prefixJournal + kind + "/" + id }

// resolveLocked returns the live profile id names — following a forwarder
// to its survivor, and finishing any unfinished operation it meets on the
// way — or a new record for id when there is none. The record belongs to
// the caller, with the version to write it on condition of.
func (e *Engine) resolveLocked(ctx context.Context, l *lockSet, id string) (*record, error) {
	for range maxHops {
		rec, err := e.loadLocked(ctx, l, id)
		if errors.Is(err, storage.ErrNotFound) {
			return e.resolveLegacy(ctx, l, id)
		}
		if err != nil {
			return nil, err
		}
		switch {
		case rec.Deleted:
			if err := e.finishDelete(ctx, l, rec); err != nil {
				return nil, err
			}
			return e.newRecord(id), nil
		case rec.Forward != "":
			if err := l.need(prefixProfile + rec.Forward); err != nil {
				return nil, err
			}
			// Read the latest copy, not a cached one: whether the
			// forwarder is valid decides a write of another key (see
			// ownerLocked).
			b, err := e.loadLatest(ctx, rec.Forward)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return nil, err
			}
			live := err == nil && b.live()
			switch {
			case rec.Pending && live:
				return e.finishMerge(ctx, l, rec, b)
			case rec.Pending:
				// Merging into a profile deleted meanwhile: the data
				// goes with it, and the id is read again.
				if err := e.deleteKey(ctx, prefixProfile+id, rec.ver); err != nil {
					return nil, err
				}
				if err := e.endIntent(ctx, kindMerge, id, 0); err != nil {
					return nil, err
				}
				continue
			case live && slices.Contains(b.Merged, id):
				return b, nil
			}
			// A forwarder its survivor no longer lists (deleted,
			// expired, trimmed): the id starts afresh in its place.
			fresh := e.newRecord(id)
			fresh.ver = rec.ver
			return fresh, nil
		case rec.BindPending:
			return e.finishBind(ctx, l, rec)
		}
		return rec, nil
	}
	return nil, fmt.Errorf("tailor: profile %s: more than %d forwarding records", id, maxHops)
}

// resolveLegacy resolves an id without a record through the alias of a
// store written before forwarders (m/<id> → survivor).
func (e *Engine) resolveLegacy(ctx context.Context, l *lockSet, id string) (*record, error) {
	survivor, _, err := e.getString(ctx, prefixMerged+id)
	if errors.Is(err, storage.ErrNotFound) {
		return e.newRecord(id), nil
	}
	if err != nil {
		return nil, err
	}
	if err := l.need(prefixProfile + survivor); err != nil {
		return nil, err
	}
	b, err := e.loadLatest(ctx, survivor)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return e.newRecord(id), nil
	case err != nil:
		return nil, err
	case b.live() && slices.Contains(b.Merged, id):
		return b, nil
	}
	return e.newRecord(id), nil
}

// ownerLocked returns the live profile that holds the claim of userID, or
// nil when the claim is absent or dangling (its profile gone, or no longer
// known as userID), with the claim's version (0 when absent).
//
// The profile is read as it is stored now, never from the engine's cache
// nor the store's (storage.Latest): a claim found dangling is taken over
// by a write of the claim, which its condition protects only against a
// change of the claim, not of the profile, so that judgement must rest on
// the profile as stored. (A cached copy is only ever used for the record
// the call then writes on condition of the copy's version.)
func (e *Engine) ownerLocked(ctx context.Context, l *lockSet, userID string) (*record, storage.Version, error) {
	pid, cv, err := e.getString(ctx, prefixUser+userID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	if err := l.need(prefixProfile + pid); err != nil {
		return nil, 0, err
	}
	rec, err := e.loadLatest(ctx, pid)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, cv, nil
	case err != nil:
		return nil, 0, err
	case !rec.live() || rec.UserID != userID:
		return nil, cv, nil
	}
	return rec, cv, nil
}

// bind makes userID the user id of rec, a live anonymous or new profile,
// and returns the profile the call continues on: rec, or, when another
// profile won the claim meanwhile, that profile (rec merged into it), with
// the steps left once the caller has written that profile (nil when
// none). The caller's write of the returned profile is the bind's last
// record write (it clears bind pending). With dry set (preflight, or a
// trial run) it only changes rec in memory.
func (e *Engine) bind(ctx context.Context, l *lockSet, rec *record, userID string, dry bool) (*record, func() error, error) {
	rec.UserID = userID
	if dry {
		return rec, nil, nil
	}
	iv, err := e.beginIntent(ctx, kindBind, rec.ID)
	if err != nil {
		return nil, nil, err
	}
	rec.BindPending = true
	if err := e.writeRecord(ctx, l, rec); err != nil {
		return nil, nil, e.abandon(ctx, kindBind, rec.ID, iv, err)
	}
	owner, err := e.claim(ctx, l, rec)
	if err != nil {
		return nil, nil, err
	}
	if owner == nil {
		rec.BindPending = false
		return rec, func() error { return e.endIntent(ctx, kindBind, rec.ID, iv) }, nil
	}
	// Another profile won the claim: rec is anonymous after all, and
	// merges into it.
	rec.UserID, rec.BindPending = "", false
	// (merge ends the bind's intent once rec is merge pending.)
	return e.merge(ctx, l, rec, owner, true, false)
}

// claim claims u/<rec.UserID> for rec (bind pending), taking over a
// dangling claim. It returns nil when rec holds the claim, or the live
// profile that holds it instead.
func (e *Engine) claim(ctx context.Context, l *lockSet, rec *record) (*record, error) {
	ckey := prefixUser + rec.UserID
	if err := l.need(ckey); err != nil {
		return nil, err
	}
	owner, cv, err := e.ownerLocked(ctx, l, rec.UserID)
	switch {
	case err != nil:
		return nil, err
	case owner != nil && owner.ID == rec.ID:
		return nil, nil
	case owner != nil:
		return owner, nil
	}
	op := storage.Op{Key: []byte(ckey), Value: []byte(rec.ID), TTL: e.aliasTTL(), IfVersion: cv, IfAbsent: cv == 0}
	if _, err := e.store.Write(ctx, op); err != nil {
		return nil, err // a conflict: someone claimed it; start over
	}
	return nil, nil
}

// finishBind completes the bind of rec (bind pending) that another call
// left unfinished: rec claims its user id, or merges into the profile
// that holds it. It returns the profile to continue on.
func (e *Engine) finishBind(ctx context.Context, l *lockSet, rec *record) (*record, error) {
	owner, err := e.claim(ctx, l, rec)
	if err != nil {
		return nil, err
	}
	if owner != nil {
		// (mergeNow ends the bind's intent once rec is merge pending.)
		rec.UserID, rec.BindPending = "", false
		return e.mergeNow(ctx, l, rec, owner)
	}
	rec.BindPending = false
	if err := e.writeRecord(ctx, l, rec); err != nil {
		return nil, err
	}
	return rec, e.endIntent(ctx, kindBind, rec.ID, 0)
}

// merge merges a, a live anonymous profile (stored or new), into b, the
// live profile known by the user id a identified as. It returns b,
// having absorbed a in memory, and the steps left once the caller has
// written b (nil when none): the caller's write of b is the merge's
// absorbing write. explicit says that the caller named a's id, which must
// then keep resolving to b even if a was never stored. With dry set
// (preflight, or a trial run) it only merges in memory.
func (e *Engine) merge(ctx context.Context, l *lockSet, a, b *record, explicit, dry bool) (*record, func() error, error) {
	if dry {
		mergeInto(b, a)
		return b, nil, nil
	}
	if a.ver == 0 && !explicit {
		return b, nil, nil // nothing to move, and nobody knows a's id
	}
	iv, err := e.pend(ctx, l, a, b)
	if err != nil {
		return nil, nil, err
	}
	trimmed := e.absorb(b, a)
	return b, func() error {
		if err := e.forward(ctx, l, a, b, trimmed); err != nil {
			return err
		}
		return e.endIntent(ctx, kindMerge, a.ID, iv)
	}, nil
}

// pend starts the merge of a into b: the merge's intent, then a merge
// pending, and returns the intent's version. A bind of a that lost its
// claim to b is over once a is merge pending: its intent goes too, or a
// failure of a later step would leave it behind for good (the merge's
// own intent covers what is left).
func (e *Engine) pend(ctx context.Context, l *lockSet, a, b *record) (storage.Version, error) {
	iv, err := e.beginIntent(ctx, kindMerge, a.ID)
	if err != nil {
		return 0, err
	}
	a.Forward, a.Pending = b.ID, true
	if err := e.writeRecord(ctx, l, a); err != nil {
		return 0, e.abandon(ctx, kindMerge, a.ID, iv, err)
	}
	e.tel.merged(ctx)
	if err := e.endIntent(ctx, kindBind, a.ID, 0); err != nil {
		e.log.Warn("tailor: intent left for the sweep", "kind", kindBind, "id", a.ID, "err", err)
	}
	return iv, nil
}

// mergeNow merges a into b as merge does, writing b itself, and finishes
// the merge: for a merge without events of its own (a lost bind met by
// another call).
func (e *Engine) mergeNow(ctx context.Context, l *lockSet, a, b *record) (*record, error) {
	iv, err := e.pend(ctx, l, a, b)
	if err != nil {
		return nil, err
	}
	if _, err := e.finishMerge(ctx, l, a, b); err != nil {
		return nil, err
	}
	return b, e.endIntent(ctx, kindMerge, a.ID, iv)
}

// finishMerge completes the merge of a (merge pending) into b, live, that
// another call left unfinished: b absorbs a's data unless its receipts
// show it did, a becomes a plain forwarder, and the ids b no longer keeps
// lose their forwarders. It returns b.
func (e *Engine) finishMerge(ctx context.Context, l *lockSet, a, b *record) (*record, error) {
	var trimmed []string
	if !slices.Contains(b.Absorbed, absorbReceipt(a.ID, a.ver)) {
		trimmed = e.absorb(b, a)
		if err := e.writeRecord(ctx, l, b); err != nil {
			return nil, err
		}
	}
	if err := e.forward(ctx, l, a, b, trimmed); err != nil {
		return nil, err
	}
	return b, e.endIntent(ctx, kindMerge, a.ID, 0)
}

// absorb merges a (merge pending, at version a.ver) into b in memory,
// with the receipt that makes a second absorb of a a no-op, and returns
// the merged ids b stops keeping. When a's traits would take b's over the
// stored-traits bound, b keeps its own traits alone: a merge that has
// started must be able to finish.
func (e *Engine) absorb(b, a *record) (trimmed []string) {
	saved := maps.Clone(b.Traits)
	mergeInto(b, a)
	if err := checkStoredTraits(b.Traits); err != nil {
		e.log.Warn("tailor: merge: the merged traits are too large; the known profile keeps its own",
			"profile", b.ID, "merged", a.ID, "err", err)
		b.Traits = saved
	}
	b.Absorbed = append(b.Absorbed, absorbReceipt(a.ID, a.ver))
	if n := len(b.Absorbed) - MaxAbsorbed; n > 0 {
		b.Absorbed = slices.Delete(b.Absorbed, 0, n)
	}
	if n := len(b.Merged) - MaxMergedIDs; n > 0 {
		// Forget the oldest aliases so the record stays small.
		trimmed = slices.Clone(b.Merged[:n])
		b.Merged = slices.Delete(b.Merged, 0, n)
	}
	return trimmed
}

// forward turns a (merge pending, absorbed by b) into a plain forwarder
// to b and removes the forwarders of the trimmed ids. A conflict on a
// means that another call finished the merge first.
func (e *Engine) forward(ctx context.Context, l *lockSet, a, b *record, trimmed []string) error {
	fw := &record{ID: a.ID, Forward: b.ID, ver: a.ver}
	if err := e.writeRecord(ctx, l, fw); err != nil && !errors.Is(err, storage.ErrConflict) {
		return err
	}
	for _, m := range trimmed {
		if err := e.dropAlias(ctx, m, b.ID); err != nil {
			return err
		}
	}
	return nil
}

// absorbReceipt identifies one merge-pending record: its id and version.
func absorbReceipt(id string, v storage.Version) uint64 {
	var d xxhash.Digest
	d.Reset()
	d.WriteString(id)
	var sep [9]byte // 0x00, then the version
	binary.LittleEndian.PutUint64(sep[1:], uint64(v))
	d.Write(sep[:])
	return d.Sum64()
}

// dropAlias deletes the forwarder p/<id> (or legacy alias m/<id>) when it
// points to survivor.
func (e *Engine) dropAlias(ctx context.Context, id, survivor string) error {
	rec, err := e.loadLatest(ctx, id)
	switch {
	case err == nil && rec.Forward == survivor:
		if err := e.deleteKey(ctx, prefixProfile+id, rec.ver); err != nil {
			return err
		}
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return err
	}
	to, v, err := e.getStringLatest(ctx, prefixMerged+id)
	switch {
	case err == nil && to == survivor:
		return e.deleteKey(ctx, prefixMerged+id, v)
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return err
	}
	return nil
}

// deleteLocked deletes the live profile rec: its tombstone replaces it,
// then its aliases go.
func (e *Engine) deleteLocked(ctx context.Context, l *lockSet, rec *record) error {
	if rec.UserID != "" {
		if err := l.need(prefixUser + rec.UserID); err != nil {
			return err
		}
	}
	iv, err := e.beginIntent(ctx, kindDelete, rec.ID)
	if err != nil {
		return err
	}
	tomb := &record{ID: rec.ID, Deleted: true, UserID: rec.UserID, Merged: rec.Merged, ver: rec.ver}
	if err := e.writeRecord(ctx, l, tomb); err != nil {
		return e.abandon(ctx, kindDelete, rec.ID, iv, err)
	}
	if err := e.finishDelete(ctx, l, tomb); err != nil {
		return err
	}
	return e.endIntent(ctx, kindDelete, rec.ID, iv)
}

// finishDelete removes the aliases a tombstone lists, then the tombstone.
func (e *Engine) finishDelete(ctx context.Context, l *lockSet, tomb *record) error {
	if tomb.UserID != "" {
		if err := l.need(prefixUser + tomb.UserID); err != nil {
			return err
		}
		pid, cv, err := e.getStringLatest(ctx, prefixUser+tomb.UserID)
		switch {
		case err == nil && pid == tomb.ID:
			if err := e.deleteKey(ctx, prefixUser+tomb.UserID, cv); err != nil {
				return err
			}
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			return err
		}
	}
	for _, m := range tomb.Merged {
		if err := e.dropAlias(ctx, m, tomb.ID); err != nil {
			return err
		}
	}
	if err := e.deleteKey(ctx, prefixProfile+tomb.ID, tomb.ver); err != nil {
		return err
	}
	return e.endIntent(ctx, kindDelete, tomb.ID, 0)
}

// aliasTTL is the expiry of claims and forwarders: twice the ProfileTTL
// (they are rewritten before their profile outlives them), or none.
func (e *Engine) aliasTTL() time.Duration { return 2 * e.opts.ProfileTTL }

// refreshAliases rewrites the claim and forwarders of rec when rec, about
// to be written with a ProfileTTL, would outlive them, and moves
// rec.AliasesUntil. It runs before rec's write, so a failure leaves
// nothing worse than aliases that live longer.
func (e *Engine) refreshAliases(ctx context.Context, rec *record, now time.Time) error {
	ttl := e.opts.ProfileTTL
	if ttl <= 0 || now.Add(ttl).UnixMilli() <= rec.AliasesUntil {
		return nil
	}
	if rec.UserID != "" {
		if _, err := e.store.Write(ctx, storage.Op{Key: []byte(prefixUser + rec.UserID), Value: []byte(rec.ID), TTL: e.aliasTTL()}); err != nil {
			return fmt.Errorf("tailor: refresh alias: %w", err)
		}
	}
	for _, m := range rec.Merged {
		fw, err := e.loadLatest(ctx, m)
		var v storage.Version
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return err
		case fw.Forward != rec.ID:
			continue // the id lives on as something else
		default:
			v = fw.ver
		}
		enc, err := encodeRecord(nil, &record{ID: m, Forward: rec.ID})
		if err != nil {
			return err
		}
		op := storage.Op{Key: []byte(prefixProfile + m), Value: enc, TTL: e.aliasTTL(), IfVersion: v, IfAbsent: v == 0}
		if _, err := e.store.Write(ctx, op); err != nil && !errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("tailor: refresh alias: %w", err)
		}
	}
	rec.AliasesUntil = now.Add(e.aliasTTL()).UnixMilli()
	return nil
}

// sweep finishes the operations whose intents are older than age: each
// intent's record is resolved, which finishes whatever it meets, and the
// intent goes.
func (e *Engine) sweep(ctx context.Context, age time.Duration) error {
	before := e.now().Add(-age).UnixMilli()
	var todo []intent
	err := e.store.Scan(ctx, []byte(prefixJournal), func(key, value []byte, _ storage.Version) error {
		var in intent
		if err := json.Unmarshal(value, &in); err != nil || in.ID == "" || journalKey(in.Kind, in.ID) != string(key) {
			e.log.Warn("tailor: sweep: dropping a malformed intent", "key", string(key))
			todo = append(todo, intent{Kind: "", ID: string(key)})
			return nil
		}
		if in.At <= before {
			todo = append(todo, in)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tailor: sweep: %w", err)
	}
	for _, in := range todo {
		if in.Kind == "" {
			if _, err := e.store.Write(ctx, storage.Op{Key: []byte(in.ID), Delete: true}); err != nil {
				return fmt.Errorf("tailor: sweep: %w", err)
			}
			continue
		}
		err := e.retry(ctx, func() error {
			return e.locked([]string{prefixProfile + in.ID}, func(l *lockSet) error {
				if _, err := e.resolveLocked(ctx, l, in.ID); err != nil {
					return err
				}
				return e.endIntent(ctx, in.Kind, in.ID, 0)
			})
		})
		if err != nil {
			return fmt.Errorf("tailor: sweep: %s %s: %w", in.Kind, in.ID, err)
		}
		e.log.Info("tailor: sweep: finished an operation left unfinished", "kind", in.Kind, "id", in.ID)
	}
	return nil
}

// Sweep finishes every identity operation (bind, merge, delete) left
// unfinished by a caller that crashed, however recent: the background
// sweep (Options.SweepInterval) does the same for operations older than
// the interval. It is safe to call at any time, from any process sharing
// the store.
func (e *Engine) Sweep(ctx context.Context) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.leave()
	return e.sweep(ctx, 0)
}
