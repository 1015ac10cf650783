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

// commitReq is one Write call handed to the committer: its op (owned by
// the caller, who waits on done and so keeps it alive and unchanged), and
// the result, set before done is signalled.
type commitReq struct {
	op      *storage.Op
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

// committer gathers the Write calls waiting at the moment it is free into
// one group and commits it, until Close. While it commits (and fsyncs),
// new callers queue on the unbuffered channel, ready for the next group.
func (s *Store) committer() {
	defer s.done.Done()
	group := make([]*commitReq, 0, 64)
	for {
		select {
		case r := <-s.commits:
			group = append(group, r)
		case <-s.stop:
			return
		}
	gather:
		for len(group) < maxGroup {
			select {
			case r := <-s.commits:
				group = append(group, r)
			default:
				break gather
			}
		}
		s.commitMu.Lock()
		s.commitGroup(group)
		s.commitMu.Unlock()
		clear(group)
		group = group[:0]
	}
}

// commitGroup commits the ops of reqs, in order, in as few transactions as
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
			if err := s.checkCondition(txn, r.op); err != nil {
				r.answer(0, err)
				continue
			}
			if err := addOp(txn, r.op); err != nil {
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
