package users

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/userkit/users/internal/trigram"
)

var _ Store = (*MemoryStore)(nil)

// MemoryStore is a Store that keeps everything in process memory. It is the
// reference implementation of the Store contract: fast, exact and meant for
// tests, examples and single-process programs that can afford to lose their
// users on restart.
//
// Every value handed to or returned by a MemoryStore is copied. A MemoryStore is
// safe for concurrent use; one lock serialises writes, so every method is atomic.
// The zero MemoryStore is not usable: create one with NewMemoryStore.
//
// It indexes users for every question the Store contract asks: by ID, email and
// username (maps); by role, status and account, in ID order, for counts in O(1)
// and pages in O(log n + limit) whatever the offset (store_memory_index.go); and
// by the trigrams of their search fields (store_memory_search.go). Users are kept
// compactly (store_memory_record.go): 486 bytes per user with every index at a
// million users like those of BenchmarkMemoryFootprint, measured before
// LastActiveAt added 16 bytes to each user (and an activity-index entry to
// each user who was ever active, store_memory_activity.go). Roles and statuses
// are kept as numbers: a store holds at most 65,536 distinct ones of each.
type MemoryStore struct {
	mu memLock // store_memory_lock.go

	pages [][]memUser // users by slot number, memPageSize per page
	slots uint32      // slots handed out, used or free
	free  []uint32    // slots of deleted users, for reuse

	byID       map[string]uint32 // ID → slot; keys share the users' texts
	byEmail    map[string]uint32 // email → slot
	byUsername map[string]uint32 // non-empty username → slot
	byExternal map[string]uint32 // non-empty external ID → slot

	roles       []Role // by memUser.role
	roleIndex   map[Role]uint16
	statuses    []Status // by memUser.status
	statusIndex map[Status]uint16

	everyone *memGroup            // every user
	accounts map[string]*memGroup // the users of each non-empty AccountID
	terms    map[trigram.T]*memPosting

	sessions     map[string]*memSession         // by string(TokenHash)
	sessionIDs   map[string]string              // session ID → string(TokenHash)
	userSessions map[string]map[string]struct{} // user ID → string(TokenHash) set

	tokens     map[string]*memToken           // by string(Hash)
	userTokens map[string]map[string]struct{} // user ID → string(Hash) set

	attempts map[string]*memAttempts // by key

	mfa   memMFA              // MFA records and challenges (store_memory_mfa.go)
	creds memCredentials      // credentials (store_memory_credential.go)
	flows map[string]*memFlow // provider flows by hash (store_memory_flow.go)

	ceremonies map[string]*memCeremony // by string(Hash), made on first write (store_memory_ceremony.go)

	expiry expiryHeap // every session, token and attempts entry, soonest first

	activity memActivity // store_memory_activity.go
	audit    memAuditLog // store_memory_audit.go

	decoy      atomic.Pointer[UserRecord] // the last decoyCopy; never read
	decoyToken *memDecoy                  // the last CreateTokenDecoy's copies; never read
}

type memSession struct {
	rec  *SessionRecord
	slot uint32 // the user's
	exp  *expiryItem
}

// memDecoy holds the copies a CreateTokenDecoy made, as CreateToken keeps its
// own, so that the decoy does the same work; nothing reads them.
type memDecoy struct {
	token *TokenRecord
	audit []*AuditEntry
}

type memToken struct {
	rec *TokenRecord
	exp *expiryItem
}

type memAttempts struct {
	a   LoginAttempts
	exp *expiryItem
}

// NewMemoryStore returns an empty MemoryStore, safe for concurrent use.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		byID:         make(map[string]uint32),
		byEmail:      make(map[string]uint32),
		byUsername:   make(map[string]uint32),
		byExternal:   make(map[string]uint32),
		roleIndex:    make(map[Role]uint16),
		statusIndex:  make(map[Status]uint16),
		everyone:     newSplitGroup(),
		accounts:     make(map[string]*memGroup),
		terms:        make(map[trigram.T]*memPosting),
		sessions:     make(map[string]*memSession),
		sessionIDs:   make(map[string]string),
		userSessions: make(map[string]map[string]struct{}),
		tokens:       make(map[string]*memToken),
		userTokens:   make(map[string]map[string]struct{}),
		attempts:     make(map[string]*memAttempts),
	}
}

// CreateUser stores a copy of r. It returns ErrDuplicateEmail or
// ErrDuplicateUsername if another user has r.Email or r.Username (email is
// checked first), then ErrDuplicateExternalID if another has r.ExternalID,
// then ErrConflict if r.ID exists; it writes nothing then.
// It is safe for concurrent use.
func (m *MemoryStore) CreateUser(ctx context.Context, r *UserRecord, audit ...*AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.insert(r); err != nil {
		return err
	}
	m.keepAudit(audit)
	return nil
}

// insert stores a copy of r under m.mu, or returns why it cannot.
func (m *MemoryStore) insert(r *UserRecord) error {
	if _, ok := m.byEmail[r.Email]; ok {
		return ErrDuplicateEmail
	}
	if _, ok := m.byUsername[r.Username]; ok && r.Username != "" {
		return ErrDuplicateUsername
	}
	if _, ok := m.byExternal[r.ExternalID]; ok && r.ExternalID != "" {
		return ErrDuplicateExternalID
	}
	if _, ok := m.byID[r.ID]; ok {
		return ErrConflict
	}
	u := pack(r, m.roleNumber(r.Role), m.statusNumber(r.Status))
	slot := m.newSlot()
	*m.user(slot) = u
	m.indexUser(slot)
	return nil
}

func (m *MemoryStore) roleNumber(r Role) uint16 { return intern(&m.roles, m.roleIndex, r) }
func (m *MemoryStore) statusNumber(s Status) uint16 {
	return intern(&m.statuses, m.statusIndex, s)
}

// CreateUsers stores copies of the records CreateUser would store, under one
// lock, and returns one error per record as the Store contract describes. It is
// safe for concurrent use.
func (m *MemoryStore) CreateUsers(ctx context.Context, rs []*UserRecord, audit ...*AuditEntry) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	errs := make([]error, len(rs))
	for i, r := range rs {
		errs[i] = m.insert(r)
		if errs[i] == nil && i < len(audit) {
			m.keepAudit(audit[i : i+1])
		}
	}
	return errs, nil
}

// GetUsers returns copies of the users with these IDs, nil for a missing one,
// in the order given, under one lock. It is safe for concurrent use.
func (m *MemoryStore) GetUsers(ctx context.Context, ids []string) ([]*UserRecord, error) {
	return m.getUsers(ctx, m.byID, ids)
}

// GetUsersByEmail returns copies of the users with these emails, nil for a
// missing one, in the order given, under one lock. It is safe for concurrent use.
func (m *MemoryStore) GetUsersByEmail(ctx context.Context, emails []string) ([]*UserRecord, error) {
	return m.getUsers(ctx, m.byEmail, emails)
}

func (m *MemoryStore) getUsers(ctx context.Context, index map[string]uint32, keys []string) ([]*UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer m.mu.rlock(lastByte(firstKey(keys))).RUnlock()
	out := make([]*UserRecord, len(keys))
	for i, k := range keys {
		if slot, ok := index[k]; ok {
			out[i] = m.record(m.user(slot))
		}
	}
	return out, nil
}

// GetUser returns a copy of the user with the ID, or ErrNotFound. It is safe for
// concurrent use.
func (m *MemoryStore) GetUser(ctx context.Context, id string) (*UserRecord, error) {
	return m.getUser(ctx, m.byID, id)
}

// GetUserByEmail returns a copy of the user with exactly this email, or
// ErrNotFound. It is safe for concurrent use.
func (m *MemoryStore) GetUserByEmail(ctx context.Context, email string) (*UserRecord, error) {
	return m.getUser(ctx, m.byEmail, email)
}

// GetUserByUsername returns a copy of the user with exactly this username, or
// ErrNotFound. An empty username never matches. It is safe for concurrent use.
func (m *MemoryStore) GetUserByUsername(ctx context.Context, username string) (*UserRecord, error) {
	return m.getUser(ctx, m.byUsername, username)
}

// GetUserByExternalID returns a copy of the user whose ExternalID is exactly
// id, or ErrNotFound. An empty id never matches. It is safe for concurrent use.
func (m *MemoryStore) GetUserByExternalID(ctx context.Context, id string) (*UserRecord, error) {
	if id == "" {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, ErrNotFound
	}
	return m.getUser(ctx, m.byExternal, id)
}

// getUser returns a copy of the user that index has under key, or ErrNotFound.
func (m *MemoryStore) getUser(ctx context.Context, index map[string]uint32, key string) (*UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer m.mu.rlock(lastByte(key)).RUnlock()
	slot, ok := index[key]
	if !ok {
		m.decoyCopy()
		return nil, ErrNotFound
	}
	return m.record(m.user(slot)), nil
}

// decoyCopy copies some user, so that a lookup that finds nobody costs what one
// that finds someone does, and a login's timing does not tell whether its
// identifier names an account. The copy is stored in m.decoy only so that it
// is made on the heap, as a returned copy is; a copy the compiler could keep
// on the stack was measurably cheaper (1.12 times). m.mu must be held.
func (m *MemoryStore) decoyCopy() {
	if ch := m.everyone.all.chunks; len(ch) > 0 {
		m.decoy.Store(m.record(m.user(ch[0][0])))
	}
}

// UpdateUser calls fn with a copy of the user while holding the store's write
// lock, so fn must not block or call the store. If fn succeeds it writes what fn
// left, updates the indexes and applies fn's Revoke, and returns a copy of the
// record as written.
//
// It returns ErrNotFound if there is no such user, fn's error unchanged if fn
// fails, ErrDuplicateEmail or ErrDuplicateUsername (checked in that order) if fn
// took another user's email or username, and ErrKeyChanged if fn changed the
// ID, the ExternalID or the Generation. In every one of those cases it writes nothing. It is safe for
// concurrent use.
func (m *MemoryStore) UpdateUser(ctx context.Context, id string, fn func(r *UserRecord) (Revoke, error), audit ...*AuditEntry) (*UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	slot, ok := m.byID[id]
	if !ok {
		return nil, ErrNotFound
	}
	u := m.user(slot)
	work := m.record(u)
	rv, err := fn(work)
	if err != nil {
		return nil, err
	}
	if work.ID != id || work.Generation != u.gen || work.ExternalID != u.externalID() {
		return nil, ErrKeyChanged
	}
	if owner, ok := m.byEmail[work.Email]; ok && owner != slot {
		return nil, ErrDuplicateEmail
	}
	if owner, ok := m.byUsername[work.Username]; ok && owner != slot && work.Username != "" {
		return nil, ErrDuplicateUsername
	}

	old := *u
	*u = pack(work, m.roleNumber(work.Role), m.statusNumber(work.Status))
	m.reindexUser(slot, &old)
	if rv.Sessions {
		m.deleteUserSessions(id)
		m.deleteUserChallenges(id)
		u.gen++
	}
	for _, p := range rv.Tokens {
		m.deleteUserTokens(id, p)
	}
	m.keepAudit(audit)
	return m.record(u), nil
}

// reindexUser moves the user in slot from the index entries of old, what it
// was, to those of what it is now. The ID is the same. m.mu must be held for
// writing.
func (m *MemoryStore) reindexUser(slot uint32, old *memUser) {
	u := m.user(slot)
	// Map keys share the user's text: point them at the new one, so the old
	// one can be freed.
	m.byID[u.id()] = slot
	if old.email() != u.email() {
		delete(m.byEmail, old.email())
	}
	m.byEmail[u.email()] = slot
	if old.username() != u.username() && old.username() != "" {
		delete(m.byUsername, old.username())
	}
	if u.username() != "" {
		m.byUsername[u.username()] = slot
	}
	if u.externalID() != "" {
		m.byExternal[u.externalID()] = slot // the same ID; a key sharing the new text
	}

	if old.role != u.role || old.status != u.status {
		m.everyone.regroup(m, slot, old.role, old.status)
	}
	switch oldAcct, acct := old.accountID(), u.accountID(); {
	case oldAcct != acct:
		if oldAcct != "" {
			g := m.accounts[oldAcct]
			g.remove(m, slot, old.role, old.status)
			if g.all.n == 0 {
				delete(m.accounts, oldAcct)
			}
		}
		if acct != "" {
			g := m.accounts[acct]
			if g == nil {
				g = &memGroup{}
				m.accounts[strings.Clone(acct)] = g
			}
			g.add(m, slot)
		}
	case acct != "" && (old.role != u.role || old.status != u.status):
		m.accounts[acct].regroup(m, slot, old.role, old.status)
	}

	if old.email() != u.email() || old.username() != u.username() ||
		old.field(memFirstName) != u.field(memFirstName) || old.field(memLastName) != u.field(memLastName) {
		m.retermUser(slot, old, u)
	}
	m.activity.move(slot, old.time(memLastActiveAt), u.time(memLastActiveAt))
}

// DeleteUser deletes the user, frees its email, username and external ID, and deletes its
// sessions, its one-time tokens, its MFA record and challenges, its credentials
// and its login-throttle entry ("user:"+id), all in one step. It returns ErrNotFound if there is no such user. It is safe for
// concurrent use.
func (m *MemoryStore) DeleteUser(ctx context.Context, id string, audit ...*AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	slot, ok := m.byID[id]
	if !ok {
		return ErrNotFound
	}
	m.deleteUserSessions(id)
	m.deleteUserMFA(id)
	m.deleteUserCredentials(id)
	for key := range m.userTokens[id] {
		m.deleteToken(key)
	}
	if _, ok := m.attempts["user:"+id]; ok {
		m.deleteAttempts("user:" + id)
	}
	m.unindexUser(slot)
	m.freeSlot(slot)
	m.keepAudit(audit)
	return nil
}

// ListUsers returns copies of at most q.Limit users selected by q.Match, in
// ascending ID order, as the Store contract describes: after q.After, or the last
// ones before q.Before, skipping q.Offset matching users counted from the cursor.
// If both After and Before are set (the contract forbids it) both bounds apply,
// with Before's meaning of Offset and Limit. A Limit of zero or less gives no
// users. The result is never nil. It is safe for concurrent use.
//
// With any combination of role, status and account and no search, it finds the
// cursor by binary search and the offset by arithmetic, and reads only the users
// it returns. A search reads the users the trigram index proposes, or, for a
// term too short or too common for the index, walks the filter's users in order
// until the page is full.
func (m *MemoryStore) ListUsers(ctx context.Context, q ListQuery) ([]*UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer m.mu.rlock(lastByte(q.After)).RUnlock()

	out := []*UserRecord{}
	if q.Limit <= 0 {
		return out, nil
	}
	skip := max(q.Offset, 0)
	back := q.Before != ""
	p := m.plan(&q.Match, false)
	take := func(slot uint32) { out = append(out, m.record(m.user(slot))) }
	switch {
	case p.none:
	case p.cands != nil:
		var found []uint32
		for _, s := range p.cands {
			id := m.idOf(s)
			if (q.After == "" || id > q.After) && (q.Before == "" || id < q.Before) && m.matches(s, &q.Match) {
				found = append(found, s)
			}
		}
		slices.SortFunc(found, func(a, b uint32) int { return strings.Compare(m.idOf(a), m.idOf(b)) })
		lo, hi := skip, skip+q.Limit
		if back {
			lo, hi = len(found)-skip-q.Limit, len(found)-skip
		}
		lo = min(max(lo, 0), len(found))
		for _, s := range found[lo:max(min(hi, len(found)), lo)] {
			take(s)
		}
	default:
		l := p.list
		lo, hi := 0, l.n
		if q.After != "" {
			lo = l.after(m, q.After)
		}
		if q.Before != "" {
			hi, _ = l.search(m, q.Before)
		}
		if p.exact { // every user in [lo, hi) matches: count, don't walk
			if back {
				hi -= skip
				lo = max(lo, hi-q.Limit)
			} else {
				lo += skip
				hi = min(hi, lo+q.Limit)
			}
			l.walk(lo, hi, false, func(s uint32) bool { take(s); return true })
			break
		}
		l.walk(lo, hi, back, func(s uint32) bool {
			switch {
			case !m.matches(s, &q.Match):
			case skip > 0:
				skip--
			default:
				take(s)
			}
			return len(out) < q.Limit
		})
		if back {
			slices.Reverse(out)
		}
	}
	return out, nil
}

// CountUsers returns how many users f selects. Without a search it reads no user
// (except in accounts too small to have role and status lists, and those the
// activity index names for ActiveSince and InactiveSince); a search reads
// the users the trigram index proposes, or, for terms of one or two bytes, every
// user the other fields select. It is safe for concurrent use.
func (m *MemoryStore) CountUsers(ctx context.Context, f Match) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	defer m.mu.rlock(lastByte(f.AccountID)).RUnlock()
	if n, ok := m.countInactive(&f); ok {
		return n, nil
	}
	p := m.plan(&f, true)
	n := 0
	switch {
	case p.none:
	case p.cands != nil:
		for _, s := range p.cands {
			if m.matches(s, &f) {
				n++
			}
		}
	case p.exact:
		n = p.list.n
	default:
		p.list.walk(0, p.list.n, false, func(s uint32) bool {
			if m.matches(s, &f) {
				n++
			}
			return true
		})
	}
	return n, nil
}

// countInactive counts the users f selects when f asks only for users inactive
// since a time within a role, status or account list that needs no check:
// those in the list minus those in it active since then, which the activity
// index finds without reading the rest. It reports false when f asks anything
// else, or when more users were active than the list holds. m.mu must be held.
func (m *MemoryStore) countInactive(f *Match) (int, bool) {
	if f.InactiveSince.IsZero() || !f.ActiveSince.IsZero() || f.Search != "" || f.Email != "" || f.Username != "" {
		return 0, false
	}
	rest := *f
	rest.InactiveSince = time.Time{}
	p := m.plan(&rest, true)
	switch {
	case p.none:
		return 0, true
	case !p.exact:
		return 0, false
	}
	cands, ok := m.activity.since(f.InactiveSince, p.list.n)
	if !ok {
		return 0, false
	}
	active := rest
	active.ActiveSince = f.InactiveSince
	n := p.list.n
	for _, s := range cands {
		if m.matches(s, &active) {
			n--
		}
	}
	return n, true
}

// firstKey returns the first of keys, or "", to pick a read lock by.
func firstKey(keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}
