package users

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The write path of the audit log: how a change and its entries are committed
// in each user's order, how the entries reach Options.OnEvent after their
// commit, and how login failures for identifiers that name nobody are kept
// from filling the log. The audit model and its query are in audit.go.

// auditEntry returns a new audit entry of type t about the user userID, with
// the actor (the Session in ctx) and the client (WithClient) of ctx. Its ID
// and Time are left for write (or writeMany) to set, at the moment the entry
// is committed. The error is for callers that may one day need it; there is
// none now.
func (m *Manager) auditEntry(ctx context.Context, t EventType, userID string) (*AuditEntry, error) {
	c := client(ctx)
	e := &AuditEntry{Type: t, UserID: userID, IP: c.IP, UserAgent: c.UserAgent}
	if s, ok := FromContext(ctx); ok {
		e.ActorID, e.SessionID = s.UserID, s.ID
	}
	return e, nil
}

// stamp sets the ID and Time of entries to now. It runs under the locks of
// the entries' users, just before the store call that commits them.
func (m *Manager) stamp(entries []*AuditEntry) error {
	now := m.now()
	for _, e := range entries {
		if e == nil {
			continue
		}
		id, err := m.newID(now)
		if err != nil {
			return err
		}
		e.ID, e.Time = id, now
	}
	return nil
}

// userLockShards is how many locks order the events of different users.
const userLockShards = 256

// write calls do, the store call that commits entries with their change, and
// when it succeeds hands the entries (those whose Type is set, as do left
// them) to Options.OnEvent's queue, if there is a hook. The entries get their
// ID and Time (stamp) and do runs under a lock picked by userID, so that the
// changes of one user are committed one at a time and each gets IDs after
// those of the change before: a user's entries, listed by ID, are in the order
// their changes committed, and reach the hook in that order too. The hook
// itself never runs under the lock. The lock orders the writes of one
// Manager: Managers in several processes sharing a store rely on the store to
// keep a user's entries in commit order, as the PostgreSQL store does by
// giving an entry a later ID when it must (see AuditStore).
func (m *Manager) write(ctx context.Context, userID string, do func() error, entries ...*AuditEntry) error {
	if userID != "" { // nobody's events have no order to keep
		mu := &m.userLocks[shardOf(userID)]
		mu.Lock()
		defer mu.Unlock()
	}
	if err := m.stamp(entries); err != nil {
		return err
	}
	if err := do(); err != nil {
		return err
	}
	if m.events != nil {
		m.events.push(ctx, entries)
	}
	return nil
}

// writeMany is write for a change of many users (Import): it holds the locks
// of all their shards, taken in order, and stamps the entries do returns in
// entries, which must be all those do may write.
func (m *Manager) writeMany(ctx context.Context, userIDs []string, entries []*AuditEntry, do func() ([]*AuditEntry, error)) error {
	shards := make([]int, 0, len(userIDs))
	for _, id := range userIDs {
		shards = append(shards, shardOf(id))
	}
	slices.Sort(shards)
	shards = slices.Compact(shards)
	for _, s := range shards {
		m.userLocks[s].Lock()
	}
	defer func() {
		for _, s := range shards {
			m.userLocks[s].Unlock()
		}
	}()
	if err := m.stamp(entries); err != nil {
		return err
	}
	written, err := do()
	if err != nil {
		return err
	}
	if m.events != nil {
		m.events.push(ctx, written)
	}
	return nil
}

// shardOf picks the lock of a user ID (FNV-1a).
func shardOf(id string) int {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % userLockShards)
}

// eventQueue holds committed entries for Options.OnEvent and calls it from
// one goroutine at a time, in the order they were pushed. The goroutine runs
// only while there are events: it starts on a push to an empty queue and ends
// when the queue is empty, so a Manager needs no Close.
type eventQueue struct {
	fn  func(context.Context, AuditEntry)
	max int

	mu      sync.Mutex
	pending []queuedEvent
	running bool
	idle    chan struct{} // closed when the goroutine ends; nil while none waits

	dropped atomic.Uint64
	panics  atomic.Uint64
}

type queuedEvent struct {
	ctx context.Context
	e   AuditEntry
}

// push queues copies of the entries whose Type is set. An entry that finds
// the queue full is dropped and counted.
func (q *eventQueue) push(ctx context.Context, entries []*AuditEntry) {
	ctx = context.WithoutCancel(ctx)
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range entries {
		if e == nil || e.Type == "" {
			continue
		}
		if len(q.pending) >= q.max {
			q.dropped.Add(1)
			continue
		}
		q.pending = append(q.pending, queuedEvent{ctx, *e.Clone()})
	}
	if len(q.pending) > 0 && !q.running {
		q.running = true
		go q.drain()
	}
}

// drain calls the hook for each queued event until the queue is empty.
func (q *eventQueue) drain() {
	for {
		q.mu.Lock()
		if len(q.pending) == 0 {
			q.running = false
			q.pending = nil // let a burst's array go
			if q.idle != nil {
				close(q.idle)
				q.idle = nil
			}
			q.mu.Unlock()
			return
		}
		ev := q.pending[0]
		q.pending[0] = queuedEvent{}
		q.pending = q.pending[1:]
		q.mu.Unlock()
		q.call(ev)
	}
}

// call runs the hook, recovering a panic.
func (q *eventQueue) call(ev queuedEvent) {
	defer func() {
		if recover() != nil {
			q.panics.Add(1)
		}
	}()
	q.fn(ev.ctx, ev.e)
}

// wait returns when every event pushed before it was called has been handed
// to the hook, or ctx is done.
func (q *eventQueue) wait(ctx context.Context) error {
	q.mu.Lock()
	if !q.running {
		q.mu.Unlock()
		return nil
	}
	if q.idle == nil {
		q.idle = make(chan struct{})
	}
	idle := q.idle
	q.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// EventStats counts what happened to events on their way to Options.OnEvent.
type EventStats struct {
	// Dropped counts events that found the queue full (Options.EventQueueSize)
	// and were not delivered. They are in the audit log all the same.
	Dropped uint64 `json:"dropped"`
	// Panics counts calls of OnEvent that panicked (and were recovered).
	Panics uint64 `json:"panics"`
	// UnrecordedStrangers counts failed logins for identifiers that name
	// nobody which were not recorded because the log had recorded
	// strangerEntriesPerMinute of them in the last minute (see SECURITY.md).
	UnrecordedStrangers uint64 `json:"unrecorded_strangers"`
	// RateLimited counts attempts refused by a rate limit (ErrRateLimited).
	// The attempt that filled each window is in the audit log as
	// EventRateLimitReached.
	RateLimited uint64 `json:"rate_limited"`
}

// EventStats returns the counts of dropped events, recovered panics of
// Options.OnEvent, unrecorded failed logins of unknown identifiers and
// rate-limited attempts since New. It is safe for concurrent use.
func (m *Manager) EventStats() EventStats {
	var s EventStats
	if m.events != nil {
		s.Dropped, s.Panics = m.events.dropped.Load(), m.events.panics.Load()
	}
	s.UnrecordedStrangers = m.strangers.refused.Load()
	s.RateLimited = m.rate.refused.Load()
	return s
}

// FlushEvents waits until every event committed before it was called has
// been handed to Options.OnEvent (or dropped), or until ctx is done, and
// returns ctx's error then. Without a hook it returns at once. Call it before
// a program exits, and in tests. It is safe for concurrent use.
func (m *Manager) FlushEvents(ctx context.Context) error {
	if m.events == nil {
		return nil
	}
	return m.events.wait(ctx)
}

// strangerEntriesPerMinute is how many failed logins of identifiers that
// name nobody a Manager records per minute at most (see SECURITY.md, "Audit").
const strangerEntriesPerMinute = 60

// strangerBudget is a token bucket: strangerEntriesPerMinute entries a
// minute, as a burst or spread out.
type strangerBudget struct {
	mu      sync.Mutex
	tokens  float64
	last    time.Time
	refused atomic.Uint64
}

// take reports whether one more entry may be written at now, and counts a
// refusal.
func (b *strangerBudget) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.tokens = strangerEntriesPerMinute
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(strangerEntriesPerMinute, b.tokens+d.Minutes()*strangerEntriesPerMinute)
	}
	b.last = now
	if b.tokens < 1 {
		b.refused.Add(1)
		return false
	}
	b.tokens--
	return true
}
