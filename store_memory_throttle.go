package users

import (
	"container/heap"
	"context"
)

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

// deleteAttempts deletes the login-throttle entry for key, which must exist.
// m.mu must be held for writing.
func (m *MemoryStore) deleteAttempts(key string) {
	e := m.attempts[key]
	delete(m.attempts, key)
	heap.Remove(&m.expiry, e.exp.index)
}
