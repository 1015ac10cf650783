package badger

import (
	"errors"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/tailorhq/tailor/storage"
)

// maxGroup bounds the Write calls one transaction carries, so that the
// first caller of a large group does not wait for an unbounded number of
// others to be gathered.
const maxGroup = 1024

// commitReq is one Write call handed to the committer: its op (whose
// slices the caller owns, and keeps alive and unchanged while it waits on
// done), its key as the committer's busy map holds it, and the result,
// set before done is signalled.
type commitReq struct {
	op      storage.Op
	key     string
	version storage.Version
	err     error
	done    chan struct{} // buffered 1
}

var commitReqPool = sync.Pool{New: func() any {
	return &commitReq{done: make(chan struct{}, 1)}
}}

func (r *commitReq) answer(v storage.Version, err error) {
	r.version, r.err = v, err
	r.done <- struct{}{}
}

// maxInflight bounds the transactions the committer has handed to Badger
// and not yet seen applied. With SyncWrites the bound is 1: Badger fsyncs
// the memtable's WAL once per transaction (not once per batch of them), so
// transactions in flight together would each pay an fsync, where one
// transaction gathering every op that waited meanwhile pays one for all.
const maxInflight = 16

// inflightTxn is a transaction the committer handed to Badger: its commit
// timestamp, its requests, and, once Badger applied it, the error. The
// committer reuses them (pipeline.free), each with its callback made once.
type inflightTxn struct {
	ts      uint64
	reqs    []*commitReq
	err     error
	applied func(error) // Badger's callback: hands the transaction back
}

// committer commits the Write calls, until Close. It does not wait for a
// transaction to be applied (and, with SyncWrites, fsynced) before it
// commits the next: it hands transactions to Badger, which writes all
// those waiting at the moment it is free in one batch with one fsync, and
// answers a transaction's callers when Badger reports it applied. So
// while one batch is written and synced, the next is gathered and
// checked, and throughput with SyncWrites is not bounded by one fsync per
// round.
//
// A condition must be checked against the latest write of its key, so an
// op whose key is in a transaction not yet applied (or already in the
// transaction being built) waits, in arrival order, until that one is;
// ops of other keys go ahead. Transactions take increasing timestamps,
// and Badger applies them in the order they were handed over.
func (s *Store) committer() {
	defer s.done.Done()
	c := &pipeline{s: s, busy: make(map[string]int), applied: make(chan *inflightTxn, maxInflight),
		issued: s.clock.now(), limit: maxInflight}
	if s.opts.SyncWrites {
		c.limit = 1
	}
	for {
		// Wait for work: a new Write, a transaction applied, or a batch
		// of the filter's seeding (seed.go).
		select {
		case r := <-s.commits:
			c.waiting = append(c.waiting, r)
		case t := <-c.applied:
			c.finish(t)
		case b := <-s.seeds:
			s.filter.seed(b.entries)
			b.applied <- struct{}{}
			continue
		case <-s.stop:
			return // Close waited for every Write: nothing is in flight
		}
	gather:
		for len(c.waiting) < maxGroup {
			select {
			case r := <-s.commits:
				c.waiting = append(c.waiting, r)
			case t := <-c.applied:
				c.finish(t)
			default:
				break gather
			}
		}
		// commitMu: the GC's idle pass holds commits back while it
		// flushes the memtables (gc.go).
		s.commitMu.Lock()
		for c.inflight < c.limit && c.commitNext() {
		}
		s.commitMu.Unlock()
	}
}

// pipeline is the committer's state; only the committer goroutine uses it.
type pipeline struct {
	s        *Store
	waiting  []*commitReq   // in arrival order
	busy     map[string]int // keys in transactions not yet applied
	inflight int            // transactions not yet applied
	limit    int            // of inflight
	applied  chan *inflightTxn
	free     []*inflightTxn // applied and finished, for reuse
	issued   uint64         // last timestamp handed out
}

// newTxn returns an inflightTxn without requests.
func (c *pipeline) newTxn() *inflightTxn {
	if n := len(c.free); n > 0 {
		t := c.free[n-1]
		c.free = c.free[:n-1]
		return t
	}
	t := &inflightTxn{}
	t.applied = func(err error) {
		t.err = err
		c.applied <- t // room: at most maxInflight are in flight
	}
	return t
}

// commitNext builds one transaction from the waiting ops whose keys are
// free, hands it to Badger and reports whether it did (false: nothing
// could go).
func (c *pipeline) commitNext() bool {
	s := c.s
	txn := s.db.NewTransactionAt(s.clock.now(), true)
	t := c.newTxn()
	rest := c.waiting[:0]
	full := false
	for _, r := range c.waiting {
		if full || c.busy[string(r.op.Key)] > 0 {
			rest = append(rest, r)
			continue
		}
		if err := s.checkCondition(txn, &r.op); err != nil {
			r.answer(0, err)
			continue
		}
		if err := addOp(txn, &r.op); err != nil {
			if errors.Is(err, badger.ErrTxnTooBig) && len(t.reqs) > 0 {
				full = true // the next transaction takes it
				rest = append(rest, r)
				continue
			}
			r.answer(0, fmt.Errorf("badger: write: %w", err))
			continue
		}
		r.key = string(r.op.Key)
		c.busy[r.key]++
		t.reqs = append(t.reqs, r)
	}
	clear(c.waiting[len(rest):])
	c.waiting = rest
	if len(t.reqs) == 0 {
		txn.Discard()
		c.free = append(c.free, t)
		return false
	}
	c.issued = max(c.issued, s.clock.now()) + 1
	t.ts = c.issued
	c.inflight++
	s.tel.committed(len(t.reqs))
	if err := txn.CommitAt(t.ts, t.applied); err != nil {
		// Not reached: CommitAt with a callback reports errors to it.
		t.err = err
	}
	return true
}

// finish answers the callers of an applied transaction and frees its keys.
func (c *pipeline) finish(t *inflightTxn) {
	s := c.s
	c.inflight--
	s.clock.committed(t.ts)
	var vlog int64
	for _, r := range t.reqs {
		if c.busy[r.key]--; c.busy[r.key] <= 0 {
			delete(c.busy, r.key)
		}
		switch {
		case t.err != nil:
			r.answer(0, fmt.Errorf("badger: write: commit: %w", t.err))
		case r.op.Delete:
			s.filter.wrote(r.op.Key, t.ts, false)
			r.answer(0, nil)
		default:
			vlog += s.valueLogBytes(r.op.Value)
			s.filter.wrote(r.op.Key, t.ts, r.op.TTL > 0)
			r.answer(storage.Version(t.ts), nil)
		}
	}
	s.gcCount.wrote(vlog)
	clear(t.reqs)
	t.reqs, t.err = t.reqs[:0], nil
	c.free = append(c.free, t)
}

// commitGroup commits the ops of reqs, in order, and waits for each
// transaction to be applied: the commit path without group commit
// (Options.DisableGroupCommit), serialized by commitMu. It uses as few
// transactions as
// Badger's size limit and the rule of one write per key and transaction
// allow, and answers every request. An op whose condition fails is
// answered with ErrConflict and left out; the others are unaffected.
//
// A key is written at most once per transaction because all the writes of
// a transaction get one version (its commit timestamp): a second write of
// the key in the same transaction would leave the first writer holding
// the version of a value it did not write. A condition is checked against
// the state before the transaction, which is right because no earlier op
// of the transaction touched the key.
func (s *Store) commitGroup(reqs []*commitReq) {
	var keys map[string]struct{}
	if len(reqs) > 1 {
		keys = make(map[string]struct{}, len(reqs))
	}
	for len(reqs) > 0 {
		clear(keys)
		txn := s.db.NewTransactionAt(s.clock.now(), true)
		var added []*commitReq
		n := 0 // reqs taken from the front: added, or answered
		for ; n < len(reqs); n++ {
			r := reqs[n]
			if keys != nil {
				if _, dup := keys[string(r.op.Key)]; dup {
					break // next transaction
				}
			}
			if err := s.checkCondition(txn, &r.op); err != nil {
				r.answer(0, err)
				continue
			}
			if err := addOp(txn, &r.op); err != nil {
				if errors.Is(err, badger.ErrTxnTooBig) && len(added) > 0 {
					break // commit what fits; r starts the next one
				}
				r.answer(0, fmt.Errorf("badger: write: %w", err))
				continue
			}
			if keys != nil {
				keys[string(r.op.Key)] = struct{}{}
			}
			added = append(added, r)
		}
		reqs = reqs[n:]
		if len(added) == 0 {
			txn.Discard()
			continue
		}
		ts := s.clock.next()
		err := txn.CommitAt(ts, nil)
		s.clock.committed(ts)
		if err != nil {
			for _, r := range added {
				r.answer(0, fmt.Errorf("badger: write: commit: %w", err))
			}
			continue
		}
		var vlog int64
		for _, r := range added {
			vlog += s.valueLogBytes(r.op.Value)
			s.filter.wrote(r.op.Key, ts, r.op.TTL > 0 && !r.op.Delete)
			if r.op.Delete {
				r.answer(0, nil)
			} else {
				r.answer(storage.Version(ts), nil)
			}
		}
		s.gcCount.wrote(vlog)
	}
}

// checkCondition returns ErrConflict unless op's condition holds in txn.
func (s *Store) checkCondition(txn *badger.Txn, op *storage.Op) error {
	if op.IfVersion == 0 && !op.IfAbsent || s.filter.holds(op.Key, uint64(op.IfVersion)) {
		return nil
	}
	item, err := txn.Get(op.Key)
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		if op.IfAbsent {
			return nil
		}
		return storage.ErrConflict
	case err != nil:
		return fmt.Errorf("badger: write: check condition: %w", err)
	case op.IfAbsent || storage.Version(item.Version()) != op.IfVersion:
		return storage.ErrConflict
	}
	return nil
}

func addOp(txn *badger.Txn, op *storage.Op) error {
	switch {
	case op.Delete:
		return txn.Delete(op.Key)
	case op.TTL > 0:
		return txn.SetEntry(badger.NewEntry(op.Key, op.Value).WithTTL(op.TTL))
	default:
		return txn.SetEntry(badger.NewEntry(op.Key, op.Value))
	}
}
