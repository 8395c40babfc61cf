package users

import (
	"errors"
	"sync"

	"go.etcd.io/bbolt"
)

// Group commit. A bbolt write transaction ends in an fsync, which costs far more
// than the work of a typical write; writers that arrive while a transaction
// commits therefore queue, and the first of them, the next leader, runs every
// queued write in one transaction and one fsync, then wakes the others. A lone
// writer never waits for company: with nobody ahead, it commits at once.
//
// A write that fails must not take the others with it, and bbolt cannot roll
// back part of a transaction. The write functions in this package keep a rule:
// they return one of the errors writeNothing accepts only before they write
// anything. Such a failure is simply that write's result. Any other error, or a
// panic, may come after a partial write: then the whole group is rolled back and
// each write is run again in a transaction of its own, so a write function may
// run more than once (as the Store contract allows for UpdateUser's fn).

// committer queues the writes waiting for the next group.
type committer struct {
	mu      sync.Mutex
	queue   []*writeReq
	leading bool // a leader is running a group
}

type writeReq struct {
	fn       func(b *boltTx) error
	err      error
	panicked any
	wake     chan bool // true: lead the next group; false: done
}

// errGroupFailed rolls back a group in which a write failed after it may have
// written.
var errGroupFailed = errors.New("users: bolt: a write of the group failed")

// writeNothing reports whether err, returned by a write function, means that
// it wrote nothing.
func writeNothing(err error) bool {
	switch err {
	case errRollback, errFnFailed, ErrKeyChanged,
		ErrNotFound, ErrConflict, ErrDuplicateEmail, ErrDuplicateUsername:
		return true
	}
	return false
}

// write runs fn in a write transaction, with whatever other writes are queued,
// and returns fn's error or the commit's. It panics with fn's panic.
func (s *BoltStore) write(fn func(b *boltTx) error) error {
	r := &writeReq{fn: fn}
	if s.soloWrites {
		s.commitSolo(r)
		return r.result()
	}
	g := &s.group
	g.mu.Lock()
	g.queue = append(g.queue, r)
	if g.leading {
		r.wake = make(chan bool, 1)
		g.mu.Unlock()
		if lead := <-r.wake; !lead {
			return r.result()
		}
		g.mu.Lock()
	}
	g.leading = true
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()

	s.commitGroup(batch)

	g.mu.Lock()
	var next *writeReq
	if len(g.queue) > 0 {
		next = g.queue[0]
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	for _, w := range batch {
		if w != r {
			w.wake <- false
		}
	}
	if next != nil {
		next.wake <- true
	}
	return r.result()
}

func (r *writeReq) result() error {
	if r.panicked != nil {
		panic(r.panicked)
	}
	return r.err
}

// run calls r.fn, turning a panic into r.panicked.
func (r *writeReq) run(b *boltTx) {
	defer func() {
		if p := recover(); p != nil {
			r.panicked = p
		}
	}()
	r.err, r.panicked = r.fn(b), nil
}

// commitGroup runs the writes of batch in one transaction, or, if one of them
// fails after it may have written, each in its own.
func (s *BoltStore) commitGroup(batch []*writeReq) {
	if len(batch) == 1 {
		s.commitSolo(batch[0])
		return
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b, err := txBuckets(tx)
		if err != nil {
			return err
		}
		b.activityPath = s.activityPath
		wrote := false
		for _, w := range batch {
			w.run(b)
			switch {
			case w.panicked != nil, w.err != nil && !writeNothing(w.err):
				return errGroupFailed
			case w.err == nil:
				wrote = true
			}
		}
		if !wrote {
			return errRollback
		}
		return b.flushCounts()
	})
	switch err {
	case nil, errRollback:
	case errGroupFailed:
		for _, w := range batch {
			s.commitSolo(w)
		}
	default:
		// Nothing was committed; what the writes saw of each other never
		// happened. Each reports the failure.
		for _, w := range batch {
			w.err, w.panicked = err, nil
		}
	}
}

// commitSolo runs r in a transaction of its own.
func (s *BoltStore) commitSolo(r *writeReq) {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b, err := txBuckets(tx)
		if err != nil {
			return err
		}
		b.activityPath = s.activityPath
		r.run(b)
		if r.panicked != nil {
			return errGroupFailed
		}
		if r.err != nil {
			return r.err
		}
		return b.flushCounts()
	})
	if r.panicked == nil {
		r.err = err // fn's error, or the commit's
	}
}
