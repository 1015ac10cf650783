package storage

import (
	"errors"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// maxGroup bounds the Apply calls one transaction carries, so that the
// first caller of a large group does not wait for an unbounded number of
// others to be gathered.
const maxGroup = 1024

// commitReq is one Apply call handed to the committer: its ops (owned by
// the caller, who waits on done and so keeps them alive and unchanged) and
// the channel its own result is sent on.
type commitReq struct {
	ops  []Op
	done chan error // buffered 1
}

var commitReqPool = sync.Pool{New: func() any {
	return &commitReq{done: make(chan error, 1)}
}}

// committer gathers the Apply calls waiting at the moment it is free into
// one group and commits it, until Close. While it commits (and fsyncs),
// new callers queue on the unbuffered channel, ready for the next group.
func (s *Badger) committer() {
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
		s.commitGroup(group)
		clear(group)
		group = group[:0]
	}
}

// commitGroup commits the batches of reqs, in order, in as few transactions
// as Badger's size limit allows, each batch whole in one transaction, and
// answers every request with the result of the commit that carried it. A
// batch too big for a transaction of its own fails with ErrTxnTooBig.
func (s *Badger) commitGroup(reqs []*commitReq) {
	for len(reqs) > 0 {
		txn := s.db.NewTransaction(true)
		n, err := addBatches(txn, reqs)
		if err != nil && n == 0 {
			// The first batch fails alone: too big, or rejected by Badger.
			txn.Discard()
			reqs[0].done <- fmt.Errorf("storage: apply: %w", err)
			reqs = reqs[1:]
			continue
		}
		if err != nil {
			// reqs[n] did not fit and is partly in txn: rebuild txn
			// without it and commit the batches before it.
			txn.Discard()
			txn = s.db.NewTransaction(true)
			if _, err := addBatches(txn, reqs[:n]); err != nil {
				txn.Discard()
				answer(reqs[:n], fmt.Errorf("storage: apply: %w", err))
				reqs = reqs[n:]
				continue
			}
		}
		err = txn.Commit()
		if errors.Is(err, badger.ErrTxnTooBig) && n > 1 {
			// Badger measures a commit the way it measures additions,
			// so this should not happen; if it does, halve and retry.
			s.commitGroup(reqs[:n/2])
			s.commitGroup(reqs[n/2 : n])
		} else if err != nil {
			answer(reqs[:n], fmt.Errorf("storage: apply: commit: %w", err))
		} else {
			answer(reqs[:n], nil)
		}
		reqs = reqs[n:]
	}
}

// addBatches adds the ops of reqs to txn in order. It returns how many
// batches were added whole and, if it stopped early, the error of the next
// one (whose ops may then be partly in txn).
func addBatches(txn *badger.Txn, reqs []*commitReq) (int, error) {
	for i, r := range reqs {
		for j := range r.ops {
			op := &r.ops[j]
			var err error
			switch {
			case op.Delete:
				err = txn.Delete(op.Key)
			case op.TTL > 0:
				err = txn.SetEntry(badger.NewEntry(op.Key, op.Value).WithTTL(op.TTL))
			default:
				err = txn.SetEntry(badger.NewEntry(op.Key, op.Value))
			}
			if err != nil {
				return i, err
			}
		}
	}
	return len(reqs), nil
}

func answer(reqs []*commitReq, err error) {
	for _, r := range reqs {
		r.done <- err
	}
}
