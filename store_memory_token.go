package users

import (
	"container/heap"
	"context"
)

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
