package badger

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/storage"
)

// The store's value-log garbage collection: when it runs and what it runs.
// The package documentation (# Space on disk) says why.
//
// Badger rewrites a value-log file (RunValueLogGC) only when its discard
// statistics say that at least the given ratio of the file is garbage, and
// those statistics grow only when a compaction drops a version that a
// newer one overwrote. So garbage is reclaimed in three steps: a write
// overwrites a value; its key reaches the level of the older version by
// flushes and compactions, which counts the older value as discardable;
// GC rewrites the file. The store paces the last step by its writes and,
// once the writes stop, forces the first two so that the statistics cover
// every overwritten value and one last GC leaves little garbage behind.

// Defaults of the GC options.
const (
	// DefaultGCInterval is how often the GC wakes when no write step
	// wakes it: it then runs a round like a write step does, and tells
	// whether the store has gone idle.
	DefaultGCInterval = 10 * time.Second
	// DefaultGCDiscardRatio is the garbage fraction, as Badger's discard
	// statistics count it, from which a round rewrites a value-log file
	// under load. Uniform overwrites of a store whose files are rewritten
	// at garbage ratio r keep the value log near −ln(1−r)/r times the
	// live data, plus the garbage the statistics do not count yet; a
	// rewrite reads every entry of the file, so reclaiming a byte costs
	// 1/r bytes read and looked up. 0.35 keeps a million profiles under
	// 2× their live data from the first minute of full-speed updates of a
	// freshly loaded store, when every file ages at once (0.5 reached
	// 2.2×, 0.4 2.0×); see # Space on disk.
	DefaultGCDiscardRatio = 0.35
	// DefaultGCIdleAfter is how long the writes must stay below one
	// GCWriteStep before the store counts as idle and runs the idle pass.
	DefaultGCIdleAfter = 10 * time.Second
	// DefaultGCIdleDiscardRatio is the garbage fraction from which the
	// idle pass rewrites a file: afterwards no file is more than a fifth
	// garbage, so the value log is at most 1.25× the live values.
	DefaultGCIdleDiscardRatio = 0.2
)

// defaultGCWriteStep is GCWriteStep's default: a quarter of a value-log
// file, so the GC looks again before a new file fills.
func defaultGCWriteStep(valueLogFileSize int64) int64 { return max(valueLogFileSize/4, 1<<20) }

// flushPrefix is the reserved key prefix of the sentinel the idle pass
// writes and drops to make Badger flush its memtables.
const flushPrefix = "~flush"

// gcAction is what the GC loop runs when it wakes.
type gcAction int

const (
	gcNothing  gcAction = iota
	gcRoundAt           // a round at GCDiscardRatio
	gcIdlePass          // the idle pass: flush, flatten, a round at GCIdleDiscardRatio
)

// gcPolicy decides what the GC loop runs each time it wakes: when a write
// step (GCWriteStep bytes written to the value log) signals it, or on its
// GCInterval ticker. It reads the bytes written, not the signal, so a
// wake-up after a long round sees the steps written meanwhile whichever
// woke it. It holds no clock and touches no database, so tests drive it
// with their own times. It is used by one goroutine.
type gcPolicy struct {
	step      int64         // GCWriteStep; ≤ 0: any write is a step
	idleAfter time.Duration // negative: never idle
	// written is the byte count of the last step seen, lastStep when it
	// was seen (the store's Open counts as one, so a store reopened with
	// garbage is cleaned when left alone); idle is set once the idle
	// pass ran after it.
	written  int64
	lastStep time.Time
	idle     bool
}

func newGCPolicy(step int64, idleAfter time.Duration, opened time.Time) *gcPolicy {
	return &gcPolicy{step: step, idleAfter: idleAfter, lastStep: opened}
}

// decide returns what to run at now, written being the bytes written to
// the value log since Open.
//
// A step written since the last one seen runs a round. Otherwise the idle
// pass runs once the writes have stayed below a step for idleAfter, once
// per such quiet spell; until then a round runs, which costs little when
// no file qualifies (Badger reads its statistics and stops).
func (p *gcPolicy) decide(now time.Time, written int64) gcAction {
	if written-p.written >= max(p.step, 1) {
		p.written, p.lastStep, p.idle = written, now, false
		return gcRoundAt
	}
	if p.idle {
		return gcNothing // nothing much was written since the idle pass cleaned up
	}
	if p.idleAfter >= 0 && now.Sub(p.lastStep) >= p.idleAfter {
		p.idle = true
		return gcIdlePass
	}
	return gcRoundAt
}

// gcCounter counts the bytes written to the value log and signals the GC
// loop every step bytes. It is safe for concurrent use.
type gcCounter struct {
	step    int64
	written atomic.Int64
	kick    chan struct{} // buffered 1: a pending step
}

func newGCCounter(step int64) *gcCounter {
	return &gcCounter{step: step, kick: make(chan struct{}, 1)}
}

// wrote records n bytes written to the value log.
func (c *gcCounter) wrote(n int64) {
	if c == nil || n <= 0 {
		return
	}
	after := c.written.Add(n)
	if c.step > 0 && (after-n)/c.step != after/c.step {
		select {
		case c.kick <- struct{}{}:
		default: // one is pending already
		}
	}
}

// valueLogBytes returns how many bytes of op's value go to the value log:
// its length when Badger keeps it there (at or above ValueThreshold).
func (s *Store) valueLogBytes(value []byte) int64 {
	if int64(len(value)) < s.opts.ValueThreshold {
		return 0
	}
	return int64(len(value))
}

// gcLoop runs the GC as gcPolicy decides until Close: woken by a write
// step or by the GCInterval ticker. It runs only with s.gcCount set.
func (s *Store) gcLoop() {
	defer s.done.Done()
	t := time.NewTicker(s.opts.GCInterval)
	defer t.Stop()
	p := newGCPolicy(s.gcCount.step, s.opts.GCIdleAfter, time.Now())
	s.measuredGCRun(gcNothing) // the live data, for the gauge, before any round
	for {
		select {
		case <-s.stop:
			return
		case <-s.gcCount.kick:
		case <-t.C:
		}
		s.measuredGCRun(p.decide(time.Now(), s.gcCount.written.Load()))
		s.gcRounds.Add(1)
	}
}

// gcRun runs a, under gcMu (Restore holds it while it replaces the
// store's contents), and returns the number of value-log files rewritten.
func (s *Store) gcRun(a gcAction) int {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	switch a {
	case gcRoundAt:
		return s.gcRound(s.opts.GCDiscardRatio)
	case gcIdlePass:
		return s.idlePass()
	}
	return 0
}

// idlePass makes Badger's discard statistics count every overwritten
// value, then rewrites every value-log file that is at least
// GCIdleDiscardRatio garbage, and returns how many it rewrote:
//
//  1. flush the memtables to level 0 (flushMemtables), so that the
//     latest writes take part in compactions;
//  2. compact the whole tree into its last level (DB.Flatten), which
//     drops every overwritten version and counts its value as
//     discardable in the file that holds it;
//  3. a GC round at GCIdleDiscardRatio.
//
// Each step is skipped when Close is called meanwhile; a failed step is
// logged and the next one runs anyway (it does less good, no harm).
func (s *Store) idlePass() int {
	if s.stopping() {
		return 0
	}
	s.gcIdles.Add(1)
	if err := s.flushMemtables(); errors.Is(err, storage.ErrClosed) {
		return 0 // Close has begun
	} else if err != nil {
		s.warn("badger: idle GC: flush the memtables", err)
	}
	if s.stopping() {
		return 0
	}
	if err := s.db.Flatten(s.opts.NumCompactors); err != nil {
		s.warn("badger: idle GC: flatten the LSM tree", err)
	}
	return s.gcRound(s.opts.GCIdleDiscardRatio)
}

// flushMemtables makes Badger write its memtables to level-0 tables and
// compact level 0 into the tree. Badger has no call for that alone, but
// DropPrefix does it before it drops anything, when some key has the
// prefix: so this writes a sentinel key under a reserved prefix, through
// the commit path like any Write (the committer hands out timestamps), and
// drops it. DropPrefix makes every transaction handed to Badger meanwhile
// fail, so it runs holding commitMu, which the committer holds while it
// hands transactions over (and callers without group commit while they
// commit): Write calls wait, for the flush of one memtable and a
// compaction of level 0 (a fraction of a second with the defaults),
// instead of failing. Transactions handed over before are in Badger's
// write queue, which DropPrefix writes out before it flushes.
func (s *Store) flushMemtables() error {
	if !s.gate.Enter() {
		return storage.ErrClosed
	}
	defer s.gate.Leave()
	key := []byte(flushPrefix)
	if _, err := s.write(context.Background(), &storage.Op{Key: key}); err != nil {
		return err
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	return s.db.DropPrefix(key)
}

// stopping reports whether Close has been called.
func (s *Store) stopping() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// warn logs err at warning level, if the store has a logger.
func (s *Store) warn(msg string, err error) {
	if s.opts.Logger != nil {
		s.opts.Logger.Warn(msg, "err", err)
	}
}
