package users

import (
	"cmp"
	"container/heap"
	"context"
	"slices"
	"strings"
	"time"
)

// The MemoryStore's sessions, one-time tokens and login-throttle entries, and
// the heap that expires them. Sessions and tokens are kept by their hash as a
// string (the bytes themselves), which a map lookup with string(hash) finds
// without allocating.

// CreateSession stores a copy of s. It returns ErrNotFound if the user s.UserID
// does not exist, and ErrConflict if the user's Generation is not
// s.UserGeneration or another session has s.TokenHash or s.ID; it writes nothing
// then. It is safe for concurrent use.
func (m *MemoryStore) CreateSession(ctx context.Context, s *SessionRecord, audit ...*AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	slot, ok := m.byID[s.UserID]
	if !ok {
		return ErrNotFound
	}
	if m.user(slot).gen != s.UserGeneration {
		return ErrConflict
	}
	key := string(s.TokenHash)
	if _, ok := m.sessions[key]; ok {
		return ErrConflict
	}
	if _, ok := m.sessionIDs[s.ID]; ok {
		return ErrConflict
	}
	ms := &memSession{rec: s.Clone(), slot: slot, exp: &expiryItem{at: s.ExpiresAt, kind: expirySession, key: key}}
	m.sessions[key] = ms
	m.sessionIDs[s.ID] = key
	memSetAdd(m.userSessions, s.UserID, key)
	heap.Push(&m.expiry, ms.exp)
	m.keepAudit(audit)
	return nil
}

// GetSession fills s and u with copies of the session with this token hash
// and of its user, whatever the session's expiry, or returns ErrNotFound. Its
// token hash and methods are appended to s.TokenHash[:0] and s.Methods[:0],
// so it allocates nothing when they fit there and the user has no
// preferences. It is safe for concurrent use.
func (m *MemoryStore) GetSession(ctx context.Context, tokenHash []byte, s *SessionRecord, u *UserRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer m.mu.rlock(lastByte(tokenHash)).RUnlock()
	ms, ok := m.sessions[string(tokenHash)]
	if !ok {
		return ErrNotFound
	}
	hash, methods := s.TokenHash[:0], s.Methods[:0]
	*s = *ms.rec
	s.TokenHash = append(hash, ms.rec.TokenHash...)
	s.Methods = append(methods, ms.rec.Methods...)
	m.unpack(m.user(ms.slot), u) // DeleteUser deletes its sessions: slot is the user's
	return nil
}

// TouchSession sets the session's LastSeenAt, and its user's LastActiveAt, to
// seen where seen is later. It returns ErrNotFound, creating nothing, if there
// is no such session. It is safe for concurrent use.
func (m *MemoryStore) TouchSession(ctx context.Context, tokenHash []byte, seen time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ms, ok := m.sessions[string(tokenHash)]
	if !ok {
		return ErrNotFound
	}
	if seen.After(ms.rec.LastSeenAt) {
		ms.rec.LastSeenAt = seen
	}
	m.setActive(ms.slot, seen)
	return nil
}

// DeleteSession deletes the session with this token hash, or returns ErrNotFound.
// It is safe for concurrent use.
func (m *MemoryStore) DeleteSession(ctx context.Context, tokenHash []byte, audit ...*AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := string(tokenHash)
	ms, ok := m.sessions[key]
	if !ok {
		return ErrNotFound
	}
	for _, e := range audit {
		if e != nil && e.UserID == "" {
			e.UserID = ms.rec.UserID
		}
		if e != nil && e.SessionID == "" {
			e.SessionID = ms.rec.ID
		}
	}
	m.deleteSession(key)
	m.keepAudit(audit)
	return nil
}

// DeleteSessionByID deletes the session with this public ID if it belongs to
// userID, or returns ErrNotFound. It is safe for concurrent use.
func (m *MemoryStore) DeleteSessionByID(ctx context.Context, userID, id string, audit ...*AuditEntry) error {
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
	m.keepAudit(audit)
	return nil
}

// DeleteUserSessions deletes every session of the user and increments its
// Generation, in one step. It returns ErrNotFound if there is no such user. It is
// safe for concurrent use.
func (m *MemoryStore) DeleteUserSessions(ctx context.Context, userID string, audit ...*AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	slot, ok := m.byID[userID]
	if !ok {
		return ErrNotFound
	}
	m.deleteUserSessions(userID)
	m.deleteUserChallenges(userID)
	m.user(slot).gen++
	m.keepAudit(audit)
	return nil
}

// ListSessions returns copies of the user's sessions in ascending CreatedAt order,
// ties by ID, whatever their expiry. It returns an empty slice, never nil, for a
// user without sessions or no such user. It is safe for concurrent use.
func (m *MemoryStore) ListSessions(ctx context.Context, userID string) ([]*SessionRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer m.mu.rlock(lastByte(userID)).RUnlock()
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
	defer m.mu.rlock(lastByte(key)).RUnlock()
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
func (m *MemoryStore) UpdateLoginAttempts(ctx context.Context, tk ThrottleKey, fn func(a *LoginAttempts) error, audit ...*AuditEntry) (LoginAttempts, error) {
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
	m.keepAudit(audit)
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
func (m *MemoryStore) CreateToken(ctx context.Context, t *TokenRecord, replace bool, audit ...*AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[t.UserID]; !ok {
		return ErrNotFound
	}
	key := string(t.Hash)
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
	m.keepAudit(audit)
	return nil
}

// CreateTokenDecoy does CreateToken's work, the lock and the copies, and keeps
// none of it; see Store. It is safe for concurrent use.
func (m *MemoryStore) CreateTokenDecoy(ctx context.Context, t *TokenRecord, audit ...*AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := &memDecoy{token: t.Clone()}
	for _, e := range audit {
		if e != nil && e.Type != "" {
			d.audit = append(d.audit, e.Clone())
		}
	}
	m.decoyToken = d
	return nil
}

// GetToken returns a copy of the token with this hash if its purpose is purpose,
// whatever its expiry, and ErrNotFound otherwise. It deletes nothing. It is safe
// for concurrent use.
func (m *MemoryStore) GetToken(ctx context.Context, hash []byte, purpose Purpose) (*TokenRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer m.mu.rlock(lastByte(hash)).RUnlock()
	mt, ok := m.tokens[string(hash)]
	if !ok || mt.rec.Purpose != purpose {
		return nil, ErrNotFound
	}
	return mt.rec.Clone(), nil
}

// ConsumeToken deletes the token with this hash and purpose and returns it,
// whatever its expiry. It returns ErrNotFound, deleting nothing, if there is no
// such token or its purpose differs. Of any number of concurrent calls for one
// token exactly one gets it. It is safe for concurrent use.
func (m *MemoryStore) ConsumeToken(ctx context.Context, hash []byte, purpose Purpose, audit ...*AuditEntry) (*TokenRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := string(hash)
	mt, ok := m.tokens[key]
	if !ok || mt.rec.Purpose != purpose {
		return nil, ErrNotFound
	}
	for _, e := range audit {
		if e != nil && e.UserID == "" {
			e.UserID = mt.rec.UserID
		}
	}
	m.deleteToken(key)
	m.keepAudit(audit)
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
		case expiryChallenge:
			m.deleteChallenge(it.key)
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
