package users

import (
	"container/heap"
	"context"
)

// The MemoryStore's second factors: MFA records by user ID, and challenges by
// their hash (as a string, like sessions and tokens), expired through the same
// heap as sessions.

// memMFA is the part of a MemoryStore that holds second factors. Its maps are
// made on first write; m.mu guards them.
type memMFA struct {
	records        map[string]*MFARecord          // by user ID
	challenges     map[string]*memChallenge       // by string(Hash)
	userChallenges map[string]map[string]struct{} // user ID → string(Hash) set
}

type memChallenge struct {
	rec *ChallengeRecord
	exp *expiryItem
}

// expiryChallenge is the expiryItem kind of a challenge.
const expiryChallenge = expiryAttempts + 1

// init makes the maps of f if they are not made yet. m.mu must be held for writing.
func (f *memMFA) init() {
	if f.records == nil {
		f.records = make(map[string]*MFARecord)
		f.challenges = make(map[string]*memChallenge)
		f.userChallenges = make(map[string]map[string]struct{})
	}
}

// GetMFA returns a copy of the user's MFA record, or ErrNotFound if the user
// has none. It is safe for concurrent use.
func (m *MemoryStore) GetMFA(ctx context.Context, userID string) (*MFARecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer m.mu.rlock(lastByte(userID)).RUnlock()
	r, ok := m.mfa.records[userID]
	if !ok {
		return nil, ErrNotFound
	}
	return r.Clone(), nil
}

// UpdateMFA calls fn with a copy of the user's MFA record (a new one if the user
// has none) under the store's write lock and keeps what fn left, deleting the
// record if fn left it empty and the user's challenges if fn asks. It returns
// ErrNotFound if there is no such user, fn's error unchanged, or ErrKeyChanged
// if fn changed UserID; it writes nothing then. It is safe for concurrent use:
// calls are serialised.
func (m *MemoryStore) UpdateMFA(ctx context.Context, userID string, fn func(r *MFARecord) (bool, error), audit ...*AuditEntry) (*MFARecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[userID]; !ok {
		return nil, ErrNotFound
	}
	m.mfa.init()
	work := &MFARecord{UserID: userID}
	if r, ok := m.mfa.records[userID]; ok {
		work = r.Clone()
	}
	deleteChallenges, err := fn(work)
	if err != nil {
		return nil, err
	}
	if work.UserID != userID {
		return nil, ErrKeyChanged
	}
	if work.IsEmpty() {
		delete(m.mfa.records, userID)
	} else {
		m.mfa.records[userID] = work.Clone()
	}
	if deleteChallenges {
		m.deleteUserChallenges(userID)
	}
	m.keepAudit(audit)
	return work, nil
}

// CreateChallenge stores a copy of c. It returns ErrNotFound if the user
// c.UserID does not exist, and ErrConflict if the user's Generation is not
// c.UserGeneration or another challenge has c.Hash; it writes nothing then. It
// is safe for concurrent use.
func (m *MemoryStore) CreateChallenge(ctx context.Context, c *ChallengeRecord, audit ...*AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	slot, ok := m.byID[c.UserID]
	if !ok {
		return ErrNotFound
	}
	if m.user(slot).gen != c.UserGeneration {
		return ErrConflict
	}
	m.mfa.init()
	key := string(c.Hash)
	if _, ok := m.mfa.challenges[key]; ok {
		return ErrConflict
	}
	mc := &memChallenge{rec: c.Clone(), exp: &expiryItem{at: c.ExpiresAt, kind: expiryChallenge, key: key}}
	m.mfa.challenges[key] = mc
	memSetAdd(m.mfa.userChallenges, c.UserID, key)
	heap.Push(&m.expiry, mc.exp)
	m.keepAudit(audit)
	return nil
}

// GetChallenge returns a copy of the challenge with this hash, whatever its
// expiry, or ErrNotFound. It is safe for concurrent use.
func (m *MemoryStore) GetChallenge(ctx context.Context, hash []byte) (*ChallengeRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer m.mu.rlock(lastByte(hash)).RUnlock()
	mc, ok := m.mfa.challenges[string(hash)]
	if !ok {
		return nil, ErrNotFound
	}
	return mc.rec.Clone(), nil
}

// CountChallengeAttempt increments the challenge's Attempts and returns a copy
// of it, if its Attempts is less than max. It returns ErrNotFound if there is
// no such challenge or its Attempts is max already. It is safe for concurrent
// use: calls are serialised, so at most max of them ever get the challenge.
func (m *MemoryStore) CountChallengeAttempt(ctx context.Context, hash []byte, max int, audit ...*AuditEntry) (*ChallengeRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mc, ok := m.mfa.challenges[string(hash)]
	if !ok || mc.rec.Attempts >= max {
		return nil, ErrNotFound
	}
	// Readers hold copies made under a read lock: replace the record rather
	// than change the one they may be copying.
	c := mc.rec.Clone()
	c.Attempts++
	mc.rec = c
	m.keepAudit(audit)
	return c.Clone(), nil
}

// CompleteChallenge checks the challenge and s, calls fn with a copy of the
// user's MFA record, and then keeps the record as fn left it, deletes the
// challenge and stores s, all under the store's write lock. It returns
// ErrNotFound, ErrConflict, fn's error or ErrKeyChanged, writing nothing; see
// Store. It is safe for concurrent use: calls are serialised, so of concurrent
// calls for one challenge at most one succeeds.
func (m *MemoryStore) CompleteChallenge(ctx context.Context, hash []byte, fn func(r *MFARecord) error, s *SessionRecord, audit ...*AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := string(hash)
	mc, ok := m.mfa.challenges[key]
	if !ok {
		return ErrNotFound
	}
	userID := mc.rec.UserID
	if s.UserID != userID {
		return ErrConflict
	}
	slot, ok := m.byID[userID]
	if !ok {
		return ErrNotFound
	}
	skey := string(s.TokenHash)
	if m.user(slot).gen != s.UserGeneration {
		return ErrConflict
	}
	if _, ok := m.sessions[skey]; ok {
		return ErrConflict
	}
	if _, ok := m.sessionIDs[s.ID]; ok {
		return ErrConflict
	}
	work := &MFARecord{UserID: userID}
	if r, ok := m.mfa.records[userID]; ok {
		work = r.Clone()
	}
	if err := fn(work); err != nil {
		return err
	}
	if work.UserID != userID {
		return ErrKeyChanged
	}
	if work.IsEmpty() {
		delete(m.mfa.records, userID)
	} else {
		m.mfa.records[userID] = work.Clone()
	}
	m.deleteChallenge(key)
	// Stored as CreateSession stores it.
	ms := &memSession{rec: s.Clone(), slot: slot, exp: &expiryItem{at: s.ExpiresAt, kind: expirySession, key: skey}}
	m.sessions[skey] = ms
	m.sessionIDs[s.ID] = skey
	memSetAdd(m.userSessions, s.UserID, skey)
	heap.Push(&m.expiry, ms.exp)
	m.keepAudit(audit)
	return nil
}

// ConsumeChallenge deletes the challenge with this hash and returns it, whatever
// its expiry, or returns ErrNotFound. Of any number of concurrent calls for one
// challenge exactly one gets it. It is safe for concurrent use.
func (m *MemoryStore) ConsumeChallenge(ctx context.Context, hash []byte, audit ...*AuditEntry) (*ChallengeRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := string(hash)
	mc, ok := m.mfa.challenges[key]
	if !ok {
		return nil, ErrNotFound
	}
	m.deleteChallenge(key)
	for _, e := range audit {
		if e != nil && e.UserID == "" {
			e.UserID = mc.rec.UserID
		}
	}
	m.keepAudit(audit)
	return mc.rec, nil // deleted: nobody else holds it
}

// deleteChallenge deletes the challenge stored under key, which must exist,
// with its indexes. m.mu must be held for writing.
func (m *MemoryStore) deleteChallenge(key string) {
	mc := m.mfa.challenges[key]
	delete(m.mfa.challenges, key)
	memSetRemove(m.mfa.userChallenges, mc.rec.UserID, key)
	heap.Remove(&m.expiry, mc.exp.index)
}

// deleteUserChallenges deletes every challenge of the user. m.mu must be held
// for writing.
func (m *MemoryStore) deleteUserChallenges(userID string) {
	for key := range m.mfa.userChallenges[userID] {
		m.deleteChallenge(key)
	}
}

// deleteUserMFA deletes the user's MFA record and challenges. m.mu must be held
// for writing.
func (m *MemoryStore) deleteUserMFA(userID string) {
	delete(m.mfa.records, userID)
	m.deleteUserChallenges(userID)
}
