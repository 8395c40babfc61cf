package users

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
)

var _ Store = (*MemoryStore)(nil)

// errMemKeyChanged is returned by MemoryStore.UpdateUser when fn changed the
// record's ID or Generation, which the Store contract forbids.
var errMemKeyChanged = errors.New("users: UpdateUser: fn must not change the record's ID or Generation")

// MemoryStore is a Store that keeps everything in process memory. It is the
// reference implementation of the Store contract: fast, exact and meant for
// tests, examples and single-process programs that can afford to lose their
// users on restart.
//
// Every value handed to or returned by a MemoryStore is copied. A MemoryStore is
// safe for concurrent use; one lock serialises writes, so every method is atomic.
// The zero MemoryStore is not usable: create one with NewMemoryStore.
//
// User IDs are kept in a sorted slice for ListUsers: a new ULID goes at its end,
// while creating a user with an older ID, or deleting one, moves the IDs after it.
type MemoryStore struct {
	mu sync.RWMutex

	users      map[string]*UserRecord // by ID
	ids        []string               // every user ID, ascending
	byEmail    map[string]string      // email → user ID
	byUsername map[string]string      // non-empty username → user ID

	sessions     map[string]*memSession         // by hex(TokenHash)
	sessionIDs   map[string]string              // session ID → hex(TokenHash)
	userSessions map[string]map[string]struct{} // user ID → hex(TokenHash) set

	tokens     map[string]*memToken           // by hex(Hash)
	userTokens map[string]map[string]struct{} // user ID → hex(Hash) set

	attempts map[string]*memAttempts // by key

	expiry expiryHeap // every session, token and attempts entry, soonest first
}

type memSession struct {
	rec *SessionRecord
	exp *expiryItem
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
		users:        make(map[string]*UserRecord),
		byEmail:      make(map[string]string),
		byUsername:   make(map[string]string),
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
// checked first), then ErrConflict if r.ID exists; it writes nothing then.
// It is safe for concurrent use.
func (m *MemoryStore) CreateUser(ctx context.Context, r *UserRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.insert(r)
}

// insert stores a copy of r under m.mu, or returns why it cannot.
func (m *MemoryStore) insert(r *UserRecord) error {
	if _, ok := m.byEmail[r.Email]; ok {
		return ErrDuplicateEmail
	}
	if _, ok := m.byUsername[r.Username]; ok && r.Username != "" {
		return ErrDuplicateUsername
	}
	if _, ok := m.users[r.ID]; ok {
		return ErrConflict
	}
	m.users[r.ID] = r.Clone()
	i, _ := slices.BinarySearch(m.ids, r.ID)
	m.ids = slices.Insert(m.ids, i, r.ID)
	m.byEmail[r.Email] = r.ID
	if r.Username != "" {
		m.byUsername[r.Username] = r.ID
	}
	return nil
}

// CreateUsers stores copies of the records CreateUser would store, under one
// lock, and returns one error per record as the Store contract describes. It is
// safe for concurrent use.
func (m *MemoryStore) CreateUsers(ctx context.Context, rs []*UserRecord) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	errs := make([]error, len(rs))
	for i, r := range rs {
		errs[i] = m.insert(r)
	}
	return errs, nil
}

// GetUsers returns copies of the users with these IDs, nil for a missing one,
// in the order given. It is safe for concurrent use.
func (m *MemoryStore) GetUsers(ctx context.Context, ids []string) ([]*UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*UserRecord, len(ids))
	for i, id := range ids {
		out[i] = m.users[id].Clone()
	}
	return out, nil
}

// GetUsersByEmail returns copies of the users with these emails, nil for a
// missing one, in the order given. It is safe for concurrent use.
func (m *MemoryStore) GetUsersByEmail(ctx context.Context, emails []string) ([]*UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*UserRecord, len(emails))
	for i, e := range emails {
		if id, ok := m.byEmail[e]; ok {
			out[i] = m.users[id].Clone()
		}
	}
	return out, nil
}

// GetUser returns a copy of the user with the ID, or ErrNotFound. It is safe for
// concurrent use.
func (m *MemoryStore) GetUser(ctx context.Context, id string) (*UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.userCopy(id)
}

// GetUserByEmail returns a copy of the user with exactly this email, or
// ErrNotFound. It is safe for concurrent use.
func (m *MemoryStore) GetUserByEmail(ctx context.Context, email string) (*UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.byEmail[email]
	if !ok {
		m.decoyCopy()
		return nil, ErrNotFound
	}
	return m.userCopy(id)
}

// GetUserByUsername returns a copy of the user with exactly this username, or
// ErrNotFound. An empty username never matches. It is safe for concurrent use.
func (m *MemoryStore) GetUserByUsername(ctx context.Context, username string) (*UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.byUsername[username]
	if !ok || username == "" {
		m.decoyCopy()
		return nil, ErrNotFound
	}
	return m.userCopy(id)
}

// decoyCopy copies some user and discards the copy, so that a lookup that finds
// nobody costs what one that finds someone does, and a login's timing does not
// tell whether its identifier names an account. m.mu must be held.
func (m *MemoryStore) decoyCopy() {
	for _, r := range m.users {
		_ = r.Clone()
		return
	}
}

// userCopy returns a copy of the user with the ID, or ErrNotFound. m.mu must be held.
func (m *MemoryStore) userCopy(id string) (*UserRecord, error) {
	r, ok := m.users[id]
	if !ok {
		return nil, ErrNotFound
	}
	return r.Clone(), nil
}

// UpdateUser calls fn with a copy of the user while holding the store's write
// lock, so fn must not block or call the store. If fn succeeds it writes what fn
// left, updates the email and username indexes and applies fn's Revoke, and
// returns a copy of the record as written.
//
// It returns ErrNotFound if there is no such user, fn's error unchanged if fn
// fails, ErrDuplicateEmail or ErrDuplicateUsername (checked in that order) if fn
// took another user's email or username, and an error if fn changed the ID or
// the Generation. In every one of those cases it writes nothing. It is safe for
// concurrent use.
func (m *MemoryStore) UpdateUser(ctx context.Context, id string, fn func(r *UserRecord) (Revoke, error)) (*UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.users[id]
	if !ok {
		return nil, ErrNotFound
	}
	work := old.Clone()
	rv, err := fn(work)
	if err != nil {
		return nil, err
	}
	if work.ID != old.ID || work.Generation != old.Generation {
		return nil, errMemKeyChanged
	}
	if owner, ok := m.byEmail[work.Email]; ok && owner != id {
		return nil, ErrDuplicateEmail
	}
	if owner, ok := m.byUsername[work.Username]; ok && owner != id && work.Username != "" {
		return nil, ErrDuplicateUsername
	}

	// fn may have kept work; store a copy of its own.
	r := work.Clone()
	if r.Email != old.Email {
		delete(m.byEmail, old.Email)
		m.byEmail[r.Email] = id
	}
	if r.Username != old.Username {
		if old.Username != "" {
			delete(m.byUsername, old.Username)
		}
		if r.Username != "" {
			m.byUsername[r.Username] = id
		}
	}
	if rv.Sessions {
		m.deleteUserSessions(id)
		r.Generation++
	}
	for _, p := range rv.Tokens {
		m.deleteUserTokens(id, p)
	}
	m.users[id] = r
	return r.Clone(), nil
}

// DeleteUser deletes the user, frees its email and username, and deletes its
// sessions, its one-time tokens and its login-throttle entry (UserThrottleKey(id)), all
// in one step. It returns ErrNotFound if there is no such user. It is safe for
// concurrent use.
func (m *MemoryStore) DeleteUser(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.users[id]
	if !ok {
		return ErrNotFound
	}
	m.deleteUserSessions(id)
	for key := range m.userTokens[id] {
		m.deleteToken(key)
	}
	if k := string(UserThrottleKey(id)); m.attempts[k] != nil {
		m.deleteAttempts(k)
	}
	delete(m.byEmail, r.Email)
	if r.Username != "" {
		delete(m.byUsername, r.Username)
	}
	if i, found := slices.BinarySearch(m.ids, id); found {
		m.ids = slices.Delete(m.ids, i, i+1)
	}
	delete(m.users, id)
	return nil
}

// ListUsers returns copies of at most q.Limit users selected by q.Match, in
// ascending ID order, as the Store contract describes: after q.After, or the last
// ones before q.Before, skipping q.Offset matching users counted from the cursor.
// If both After and Before are set (the contract forbids it) both bounds apply,
// with Before's meaning of Offset and Limit. A Limit of zero or less gives no
// users. The result is never nil. It is safe for concurrent use.
//
// It finds the cursor by binary search and then reads only as many users as it
// needs, plus those the filter skips.
func (m *MemoryStore) ListUsers(ctx context.Context, q ListQuery) ([]*UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()

	out := []*UserRecord{}
	if q.Limit <= 0 {
		return out, nil
	}
	lo := 0 // first index to consider
	if q.After != "" {
		i, found := slices.BinarySearch(m.ids, q.After)
		if found {
			i++
		}
		lo = i
	}
	hi := len(m.ids) // one past the last index to consider
	if q.Before != "" {
		hi, _ = slices.BinarySearch(m.ids, q.Before)
	}
	skip := max(q.Offset, 0)
	take := func(i int) bool { // reports whether the page is full
		r := m.users[m.ids[i]]
		if !q.Match.Matches(&r.User) {
			return false
		}
		if skip > 0 {
			skip--
			return false
		}
		out = append(out, r.Clone())
		return len(out) == q.Limit
	}
	if q.Before != "" {
		for i := hi - 1; i >= lo; i-- {
			if take(i) {
				break
			}
		}
		slices.Reverse(out)
		return out, nil
	}
	for i := lo; i < hi; i++ {
		if take(i) {
			break
		}
	}
	return out, nil
}

// CountUsers returns how many users f selects. It reads every user. It is safe
// for concurrent use.
func (m *MemoryStore) CountUsers(ctx context.Context, f Match) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, r := range m.users {
		if f.Matches(&r.User) {
			n++
		}
	}
	return n, nil
}

// CreateSession stores a copy of s. It returns ErrNotFound if the user s.UserID
// does not exist, and ErrConflict if the user's Generation is not
// s.UserGeneration or another session has s.TokenHash or s.ID; it writes nothing
// then. It is safe for concurrent use.
func (m *MemoryStore) CreateSession(ctx context.Context, s *SessionRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[s.UserID]
	if !ok {
		return ErrNotFound
	}
	if u.Generation != s.UserGeneration {
		return ErrConflict
	}
	key := hex.EncodeToString(s.TokenHash)
	if _, ok := m.sessions[key]; ok {
		return ErrConflict
	}
	if _, ok := m.sessionIDs[s.ID]; ok {
		return ErrConflict
	}
	ms := &memSession{rec: s.Clone(), exp: &expiryItem{at: s.ExpiresAt, kind: expirySession, key: key}}
	m.sessions[key] = ms
	m.sessionIDs[s.ID] = key
	memSetAdd(m.userSessions, s.UserID, key)
	heap.Push(&m.expiry, ms.exp)
	return nil
}

// GetSession returns copies of the session with this token hash and of its user,
// whatever the session's expiry, or ErrNotFound. It is safe for concurrent use.
func (m *MemoryStore) GetSession(ctx context.Context, tokenHash []byte) (*SessionRecord, *UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	ms, ok := m.sessions[hex.EncodeToString(tokenHash)]
	if !ok {
		return nil, nil, ErrNotFound
	}
	u, ok := m.users[ms.rec.UserID]
	if !ok { // cannot happen: DeleteUser deletes the user's sessions
		return nil, nil, ErrNotFound
	}
	return ms.rec.Clone(), u.Clone(), nil
}

// TouchSession sets the session's LastSeenAt to seen if seen is later. It returns
// ErrNotFound, creating nothing, if there is no such session. It is safe for
// concurrent use.
func (m *MemoryStore) TouchSession(ctx context.Context, tokenHash []byte, seen time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ms, ok := m.sessions[hex.EncodeToString(tokenHash)]
	if !ok {
		return ErrNotFound
	}
	if seen.After(ms.rec.LastSeenAt) {
		ms.rec.LastSeenAt = seen
	}
	return nil
}

// DeleteSession deletes the session with this token hash, or returns ErrNotFound.
// It is safe for concurrent use.
func (m *MemoryStore) DeleteSession(ctx context.Context, tokenHash []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := hex.EncodeToString(tokenHash)
	if _, ok := m.sessions[key]; !ok {
		return ErrNotFound
	}
	m.deleteSession(key)
	return nil
}

// DeleteSessionByID deletes the session with this public ID if it belongs to
// userID, or returns ErrNotFound. It is safe for concurrent use.
func (m *MemoryStore) DeleteSessionByID(ctx context.Context, userID, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key, ok := m.sessionIDs[id]
	if !ok || m.sessions[key].rec.UserID != userID {
		return ErrNotFound
	}
	m.deleteSession(key)
	return nil
}

// DeleteUserSessions deletes every session of the user and increments its
// Generation, in one step. It returns ErrNotFound if there is no such user. It is
// safe for concurrent use.
func (m *MemoryStore) DeleteUserSessions(ctx context.Context, userID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[userID]
	if !ok {
		return ErrNotFound
	}
	m.deleteUserSessions(userID)
	u.Generation++ // u is the store's own copy, never handed out
	return nil
}

// ListSessions returns copies of the user's sessions in ascending CreatedAt order,
// ties by ID, whatever their expiry. It returns an empty slice, never nil, for a
// user without sessions or no such user. It is safe for concurrent use.
func (m *MemoryStore) ListSessions(ctx context.Context, userID string) ([]*SessionRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	keys := m.userSessions[userID]
	out := make([]*SessionRecord, 0, len(keys))
	for key := range keys {
		out = append(out, m.sessions[key].rec.Clone())
	}
	slices.SortFunc(out, func(a, b *SessionRecord) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// GetLoginAttempts returns the throttle entry for key, or the zero LoginAttempts
// if there is none. It is safe for concurrent use.
func (m *MemoryStore) GetLoginAttempts(ctx context.Context, key ThrottleKey) (LoginAttempts, error) {
	if err := ctx.Err(); err != nil {
		return LoginAttempts{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if e, ok := m.attempts[string(key)]; ok {
		return e.a, nil
	}
	return LoginAttempts{}, nil
}

// UpdateLoginAttempts calls fn with the entry for key (the zero value if there is
// none) while holding the store's write lock, so fn must not block or call the
// store. It writes what fn left and returns it; a zero LoginAttempts deletes the
// entry. If fn fails, it writes nothing and returns fn's error unchanged. It is
// safe for concurrent use.
func (m *MemoryStore) UpdateLoginAttempts(ctx context.Context, tk ThrottleKey, fn func(a *LoginAttempts) error) (LoginAttempts, error) {
	if err := ctx.Err(); err != nil {
		return LoginAttempts{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := string(tk)
	e, exists := m.attempts[key]
	var a LoginAttempts
	if exists {
		a = e.a
	}
	if err := fn(&a); err != nil {
		return LoginAttempts{}, err
	}
	switch {
	case a.IsZero():
		if exists {
			m.deleteAttempts(key)
		}
		return LoginAttempts{}, nil
	case exists:
		e.a = a
		if !e.exp.at.Equal(a.ExpiresAt) {
			e.exp.at = a.ExpiresAt
			heap.Fix(&m.expiry, e.exp.index)
		}
	default:
		e = &memAttempts{a: a, exp: &expiryItem{at: a.ExpiresAt, kind: expiryAttempts, key: key}}
		m.attempts[key] = e
		heap.Push(&m.expiry, e.exp)
	}
	return a, nil
}

// CreateToken stores a copy of t. It returns ErrNotFound if the user t.UserID does
// not exist and ErrConflict if another token has t.Hash; it writes nothing then.
// Otherwise, when replace is true, it first deletes the user's tokens of
// t.Purpose. It is safe for concurrent use.
func (m *MemoryStore) CreateToken(ctx context.Context, t *TokenRecord, replace bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[t.UserID]; !ok {
		return ErrNotFound
	}
	key := hex.EncodeToString(t.Hash)
	if _, ok := m.tokens[key]; ok {
		return ErrConflict
	}
	if replace {
		m.deleteUserTokens(t.UserID, t.Purpose)
	}
	mt := &memToken{rec: t.Clone(), exp: &expiryItem{at: t.ExpiresAt, kind: expiryToken, key: key}}
	m.tokens[key] = mt
	memSetAdd(m.userTokens, t.UserID, key)
	heap.Push(&m.expiry, mt.exp)
	return nil
}

// GetToken returns a copy of the token with this hash if its purpose is purpose
// and it expires after now, and ErrNotFound otherwise. It deletes nothing. It is
// safe for concurrent use.
func (m *MemoryStore) GetToken(ctx context.Context, hash []byte, purpose Purpose, now time.Time) (*TokenRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	mt, ok := m.tokens[hex.EncodeToString(hash)]
	if !ok || mt.rec.Purpose != purpose || !mt.rec.ExpiresAt.After(now) {
		return nil, ErrNotFound
	}
	return mt.rec.Clone(), nil
}

// ConsumeToken deletes the token with this hash and purpose and returns it. It
// returns ErrNotFound, deleting nothing, if there is no such token or its purpose
// differs, and ErrNotFound, deleting it, if it expired at or before now. Of any
// number of concurrent calls for one token exactly one gets it. It is safe for
// concurrent use.
func (m *MemoryStore) ConsumeToken(ctx context.Context, hash []byte, purpose Purpose, now time.Time) (*TokenRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := hex.EncodeToString(hash)
	mt, ok := m.tokens[key]
	if !ok || mt.rec.Purpose != purpose {
		return nil, ErrNotFound
	}
	m.deleteToken(key)
	if !mt.rec.ExpiresAt.After(now) {
		return nil, ErrNotFound
	}
	return mt.rec, nil // deleted: nobody else holds it
}

// DeleteExpired deletes every session, one-time token and login-throttle entry
// whose ExpiresAt is at or before now, and returns how many it deleted; a zero
// ExpiresAt is before every now. It keeps them all in a heap ordered by expiry,
// so its cost is O(k log n) for k deleted out of n stored. It is safe for
// concurrent use.
func (m *MemoryStore) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for len(m.expiry) > 0 && !m.expiry[0].at.After(now) {
		it := m.expiry[0]
		switch it.kind {
		case expirySession:
			m.deleteSession(it.key)
		case expiryToken:
			m.deleteToken(it.key)
		case expiryAttempts:
			m.deleteAttempts(it.key)
		}
		n++
	}
	return n, nil
}

// deleteSession deletes the session stored under key, which must exist, with its
// indexes. m.mu must be held for writing.
func (m *MemoryStore) deleteSession(key string) {
	ms := m.sessions[key]
	delete(m.sessions, key)
	delete(m.sessionIDs, ms.rec.ID)
	memSetRemove(m.userSessions, ms.rec.UserID, key)
	heap.Remove(&m.expiry, ms.exp.index)
}

// deleteUserSessions deletes every session of the user. m.mu must be held for writing.
func (m *MemoryStore) deleteUserSessions(userID string) {
	for key := range m.userSessions[userID] {
		m.deleteSession(key)
	}
}

// deleteToken deletes the token stored under key, which must exist, with its
// indexes. m.mu must be held for writing.
func (m *MemoryStore) deleteToken(key string) {
	mt := m.tokens[key]
	delete(m.tokens, key)
	memSetRemove(m.userTokens, mt.rec.UserID, key)
	heap.Remove(&m.expiry, mt.exp.index)
}

// deleteUserTokens deletes the user's tokens of purpose p. m.mu must be held for
// writing.
func (m *MemoryStore) deleteUserTokens(userID string, p Purpose) {
	for key := range m.userTokens[userID] {
		if m.tokens[key].rec.Purpose == p {
			m.deleteToken(key)
		}
	}
}

// deleteAttempts deletes the login-throttle entry for key, which must exist.
// m.mu must be held for writing.
func (m *MemoryStore) deleteAttempts(key string) {
	e := m.attempts[key]
	delete(m.attempts, key)
	heap.Remove(&m.expiry, e.exp.index)
}

func memSetAdd(sets map[string]map[string]struct{}, owner, key string) {
	s, ok := sets[owner]
	if !ok {
		s = make(map[string]struct{})
		sets[owner] = s
	}
	s[key] = struct{}{}
}

func memSetRemove(sets map[string]map[string]struct{}, owner, key string) {
	s := sets[owner]
	delete(s, key)
	if len(s) == 0 {
		delete(sets, owner)
	}
}

// The kinds of record an expiryItem stands for.
const (
	expirySession = iota
	expiryToken
	expiryAttempts
)

// expiryItem is one record's place in the expiry heap.
type expiryItem struct {
	at    time.Time // the record's ExpiresAt
	kind  int       // expirySession, expiryToken or expiryAttempts
	key   string    // the record's key in its map
	index int       // position in the heap, kept up to date by expiryHeap
}

// expiryHeap is a min-heap of expiryItems by time, for container/heap.
type expiryHeap []*expiryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }

func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *expiryHeap) Push(x any) {
	it := x.(*expiryItem)
	it.index = len(*h)
	*h = append(*h, it)
}

func (h *expiryHeap) Pop() any {
	old := *h
	n := len(old)
	it := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	it.index = -1
	return it
}
