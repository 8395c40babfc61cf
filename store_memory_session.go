package users

import (
	"cmp"
	"container/heap"
	"context"
	"crypto/sha256"
	"slices"
	"strings"
	"time"
)

// The MemoryStore's sessions. They are kept by their token hash as a string
// (the bytes themselves), which a map lookup with string(hash) finds without
// allocating; one-time tokens are too (store_memory_token.go). The heap that
// expires them is in store_memory_expiry.go.

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

// GetSession returns the session with this token hash, whatever its expiry,
// and fills u with a copy of its user, or returns ErrNotFound. The session's
// TokenHash and Methods are the store's own, which it never modifies (a
// change replaces the record): the caller must not modify them either. It
// allocates nothing when the user has no preferences. It is safe for
// concurrent use.
func (m *MemoryStore) GetSession(ctx context.Context, tokenHash [sha256.Size]byte, u *UserRecord) (SessionRecord, error) {
	if err := ctx.Err(); err != nil {
		return SessionRecord{}, err
	}
	defer m.mu.rlock(tokenHash[len(tokenHash)-1]).RUnlock()
	ms, ok := m.sessions[string(tokenHash[:])]
	if !ok {
		return SessionRecord{}, ErrNotFound
	}
	m.unpack(m.user(ms.slot), u) // DeleteUser deletes its sessions: slot is the user's
	return *ms.rec, nil
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

// DeleteOtherSessions deletes every session of the user except the one with
// the public ID keepID, and returns how many it deleted; the user's Generation
// stays as it is. It returns ErrNotFound if there is no such user. It is safe
// for concurrent use.
func (m *MemoryStore) DeleteOtherSessions(ctx context.Context, userID, keepID string, audit ...*AuditEntry) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[userID]; !ok {
		return 0, ErrNotFound
	}
	n := 0
	for key := range m.userSessions[userID] {
		if m.sessions[key].rec.ID != keepID {
			m.deleteSession(key)
			n++
		}
	}
	m.keepAudit(audit)
	return n, nil
}

// StepUpSession sets the AuthenticatedAt of the user's session with this
// public ID and, for a method that is not empty, its SecondFactorAt, and adds
// method to its Methods, returning a copy as written, or returns ErrNotFound.
// It is safe for concurrent use.
func (m *MemoryStore) StepUpSession(ctx context.Context, userID, sessionID string, method AuthMethod, at time.Time, audit ...*AuditEntry) (*SessionRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key, ok := m.sessionIDs[sessionID]
	if !ok || m.sessions[key].rec.UserID != userID {
		return nil, ErrNotFound
	}
	// Readers hold copies, and GetSession copies under a read lock: replace
	// the record rather than change the one they may be copying.
	s := m.sessions[key].rec.Clone()
	s.AuthenticatedAt = at
	if method != "" {
		s.SecondFactorAt = at
		if !slices.Contains(s.Methods, method) {
			s.Methods = append(s.Methods, method)
		}
	}
	m.sessions[key].rec = s
	m.keepAudit(audit)
	return s.Clone(), nil
}
