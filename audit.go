package users

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// EventType names what an audit entry records.
type EventType string

// The events the Manager records, each in the same store transaction as the
// change it describes.
const (
	EventUserCreated        EventType = "user.created"
	EventUserUpdated        EventType = "user.updated" // AuditEntry.Fields names the changed fields
	EventRoleChanged        EventType = "user.role_changed"
	EventStatusChanged      EventType = "user.status_changed"
	EventEmailChanged       EventType = "user.email_changed"
	EventEmailVerified      EventType = "user.email_verified"
	EventPasswordChanged    EventType = "user.password_changed"
	EventPasswordReset      EventType = "user.password_reset"
	EventUserRemoved        EventType = "user.removed"
	EventLoginSucceeded     EventType = "login.succeeded"
	EventLoginFailed        EventType = "login.failed" // AuditEntry.Reason says why
	EventAccountLocked      EventType = "account.locked"
	EventAccountUnlocked    EventType = "account.unlocked"
	EventLogout             EventType = "session.logout"
	EventSessionRevoked     EventType = "session.revoked"
	EventSessionsRevoked    EventType = "session.revoked_all"
	EventTokenIssued        EventType = "token.issued"   // AuditEntry.Purpose says for what
	EventTokenRedeemed      EventType = "token.redeemed" // used up, but its change was refused: Purpose and Reason say which and why
	EventInvitationAccepted EventType = "invitation.accepted"
)

// AuditEntry is one record of the audit log. It never holds a secret: no
// password, token, hash or second-factor code, and for a login failure not the
// identifier that was typed.
type AuditEntry struct {
	// ID is a ULID made by the Manager from Time: its timestamp is Time to the
	// millisecond, so entries sort by time and Stores find time ranges by ID.
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	Type EventType `json:"type"`
	// UserID is the subject: the user the event is about. It is empty only for a
	// login failure with an identifier that names nobody.
	UserID string `json:"user_id,omitempty"`
	// ActorID is the user who caused the event through an authenticated caller:
	// the user of the Session in the context (see NewContext), who may be the
	// subject. It is empty for the system or an anonymous caller.
	ActorID string `json:"actor_id,omitempty"`
	// SessionID is the session the event concerns (a login's new session, a
	// logout's or revocation's session), or the actor's session.
	SessionID string `json:"session_id,omitempty"`
	// IP and UserAgent describe the client, when the caller passed them (see
	// WithClient).
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	// Reason is a machine-readable code for failures and locks, for operators.
	Reason string `json:"reason,omitempty"`
	// Purpose is the one-time token's purpose, for token events.
	Purpose Purpose `json:"purpose,omitempty"`
	// Fields names the fields an update changed, never their values.
	Fields []string `json:"fields,omitempty"`
	// Data holds other non-secret details, such as a role's old and new value.
	Data map[string]string `json:"data,omitempty"`
}

// Clone returns a deep copy of e.
func (e *AuditEntry) Clone() *AuditEntry {
	if e == nil {
		return nil
	}
	c := *e
	c.Fields = slices.Clone(e.Fields)
	c.Data = maps.Clone(e.Data)
	return &c
}

// AuditQuery selects audit entries for ListAudit. Its fields combine with AND;
// an empty field selects every entry.
type AuditQuery struct {
	UserID  string
	ActorID string
	Types   []EventType // any of these
	Since   time.Time   // Time at or after
	Until   time.Time   // Time before
	// Before is an exclusive upper bound on ID: the next page of a listing
	// passes the ID of the last entry of the page before.
	Before string
	Limit  int // at most this many entries; always positive
}

// Matches reports whether q selects e (ignoring Before and Limit). Every Store
// selects exactly the entries this function selects.
func (q *AuditQuery) Matches(e *AuditEntry) bool {
	switch {
	case q.UserID != "" && e.UserID != q.UserID,
		q.ActorID != "" && e.ActorID != q.ActorID,
		len(q.Types) > 0 && !slices.Contains(q.Types, e.Type),
		!q.Since.IsZero() && e.Time.Before(q.Since),
		!q.Until.IsZero() && !e.Time.Before(q.Until):
		return false
	}
	return true
}

// AuthMethod names a way a user proved who they are, as recorded on a session.
type AuthMethod string

// The authentication methods.
const (
	MethodPassword  AuthMethod = "password"
	MethodEmailLink AuthMethod = "email_link" // magic link, or an invitation accepted from mail
)

// Client describes the client a request came from, for sessions and audit
// entries. Both fields are free text as the caller passes them; the Manager
// cuts them to maxClientBytes.
type Client struct {
	IP        string
	UserAgent string
}

type clientKey struct{}

// WithClient returns a copy of ctx that carries c. Manager methods called with
// it record c on the sessions they create and on their audit entries.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientFromContext returns the Client that WithClient put in ctx, and whether
// there was one.
func ClientFromContext(ctx context.Context) (Client, bool) {
	c, ok := ctx.Value(clientKey{}).(Client)
	return c, ok
}

// maxClientBytes bounds what is kept of Client.IP and Client.UserAgent.
const maxClientBytes = 256

// clip cuts s to at most n bytes, on a UTF-8 boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// client returns the Client in ctx, clipped.
func client(ctx context.Context) Client {
	c, _ := ClientFromContext(ctx)
	return Client{IP: clip(c.IP, maxClientBytes), UserAgent: clip(c.UserAgent, maxClientBytes)}
}

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

// The Manager's side of the audit log: how entries reach Options.OnEvent
// after their commit, how the log is queried, and how login failures for
// identifiers that name nobody are kept from filling it.

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
// Manager: Managers in several processes sharing a store order a user's
// entries by their clocks.
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
}

// EventStats returns the counts of dropped events, recovered panics of
// Options.OnEvent and unrecorded failed logins of unknown identifiers since
// New. It is safe for concurrent use.
func (m *Manager) EventStats() EventStats {
	var s EventStats
	if m.events != nil {
		s.Dropped, s.Panics = m.events.dropped.Load(), m.events.panics.Load()
	}
	s.UnrecordedStrangers = m.strangers.refused.Load()
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

// AuditFilter selects audit entries for Manager.Audit. Its fields combine
// with AND; an empty field selects every entry.
type AuditFilter struct {
	UserID  string      // the subject
	ActorID string      // who caused it
	Types   []EventType // any of these, at most maxAuditTypes
	Since   time.Time   // at or after
	Until   time.Time   // before
	// Limit is the page size: default 50, at most 500 (larger values are
	// clamped).
	Limit int
	// Before is the cursor from an AuditPage's Next, for the next (older)
	// page; a malformed one is a *ValidationError.
	Before string
}

// AuditPage is one page of Manager.Audit's entries, newest first.
type AuditPage struct {
	Entries []*AuditEntry `json:"entries"`
	// Next is the cursor of the following (older) page, for
	// AuditFilter.Before; empty when there are no more entries.
	Next string `json:"next,omitempty"`
}

const (
	maxIDBytes        = 128 // of a user ID in an AuditFilter
	defaultAuditLimit = 50
	maxAuditLimit     = 500
	maxAuditTypes     = 32
)

// Audit returns one page of the audit entries f selects, newest first.
// Follow AuditPage.Next with AuditFilter.Before for older pages; each page
// costs about what it returns when f selects by user, actor or time. It
// returns a *ValidationError naming the field for a negative Limit, an empty
// or too long Types list entry, Until not after Since, a malformed cursor or
// an over-long ID. Deciding who may read whose entries is the application's.
// It is safe for concurrent use.
func (m *Manager) Audit(ctx context.Context, f AuditFilter) (*AuditPage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q := AuditQuery{UserID: f.UserID, ActorID: f.ActorID, Since: f.Since, Until: f.Until}
	switch {
	case f.Limit < 0:
		return nil, invalid("limit", "must not be negative")
	case len(f.UserID) > maxIDBytes:
		return nil, invalid("user_id", "is too long")
	case len(f.ActorID) > maxIDBytes:
		return nil, invalid("actor_id", "is too long")
	case len(f.Types) > maxAuditTypes:
		return nil, invalid("types", "must list at most "+strconv.Itoa(maxAuditTypes)+" types")
	case slices.Contains(f.Types, ""):
		return nil, invalid("types", "must not contain an empty type")
	case !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since):
		return nil, invalid("until", "must be after since")
	}
	if f.Before != "" {
		var err error
		if q.Before, err = decodeCursor("before", f.Before); err != nil {
			return nil, err
		}
	}
	q.Types = slices.Clone(f.Types)
	limit := min(or(f.Limit, defaultAuditLimit), maxAuditLimit)
	q.Limit = limit + 1 // one more tells whether there is another page
	es, err := m.store.ListAudit(ctx, q)
	if err != nil {
		return nil, storeErr("audit", err)
	}
	p := &AuditPage{Entries: es}
	if len(es) > limit {
		p.Entries = es[:limit]
		p.Next = encodeCursor(es[limit-1].ID)
	}
	return p, nil
}
