package users

import (
	"context"
	"slices"
	"time"
)

// The MemoryStore's credentials: records by (kind, identifier), and the set of
// each user's keys. Every write holds the store's write lock, which is what
// makes an identifier unique under concurrency and a guard's view of the user
// hold until its delete.

// memCredentials is the part of a MemoryStore that holds credentials. Its maps
// are made on first write; m.mu guards them.
type memCredentials struct {
	byKey  map[memCredKey]*CredentialRecord
	byUser map[string]map[memCredKey]struct{} // user ID → keys
}

type memCredKey struct {
	kind CredentialKind
	id   string
}

// init makes the maps of c if they are not made yet. m.mu must be held for
// writing.
func (c *memCredentials) init() {
	if c.byKey == nil {
		c.byKey = make(map[memCredKey]*CredentialRecord)
		c.byUser = make(map[string]map[memCredKey]struct{})
	}
}

// CreateCredential stores a copy of c. It returns ErrNotFound if the user
// c.UserID does not exist and ErrConflict if (c.Kind, c.ID) is taken; it writes
// nothing then. It is safe for concurrent use.
func (m *MemoryStore) CreateCredential(ctx context.Context, c *CredentialRecord, audit ...*AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[c.UserID]; !ok {
		return ErrNotFound
	}
	m.creds.init()
	key := memCredKey{c.Kind, c.ID}
	if _, ok := m.creds.byKey[key]; ok {
		return ErrConflict
	}
	m.creds.byKey[key] = c.Clone()
	set := m.creds.byUser[c.UserID]
	if set == nil {
		set = make(map[memCredKey]struct{})
		m.creds.byUser[c.UserID] = set
	}
	set[key] = struct{}{}
	m.keepAudit(audit)
	return nil
}

// GetCredential returns a copy of the credential (kind, id), or ErrNotFound. It
// is safe for concurrent use.
func (m *MemoryStore) GetCredential(ctx context.Context, kind CredentialKind, id string) (*CredentialRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer m.mu.rlock(lastByte(id)).RUnlock()
	c, ok := m.creds.byKey[memCredKey{kind, id}]
	if !ok {
		return nil, ErrNotFound
	}
	return c.Clone(), nil
}

// ListCredentials returns copies of the user's credentials in ascending
// CreatedAt order (ties by Kind, then ID), or an empty slice. It is safe for
// concurrent use.
func (m *MemoryStore) ListCredentials(ctx context.Context, userID string) ([]*CredentialRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer m.mu.rlock(lastByte(userID)).RUnlock()
	out := m.userCredentials(userID, memCredKey{})
	for i, c := range out {
		out[i] = c.Clone()
	}
	return out, nil
}

// userCredentials returns the user's stored credentials except the one under
// skip, in ListCredentials order. They are the stored records, not copies. m.mu
// must be held.
func (m *MemoryStore) userCredentials(userID string, skip memCredKey) []*CredentialRecord {
	out := []*CredentialRecord{}
	for key := range m.creds.byUser[userID] {
		if key != skip {
			out = append(out, m.creds.byKey[key])
		}
	}
	slices.SortFunc(out, compareCredentials)
	return out
}

// UpdateCredential calls fn with a copy of the credential under the store's
// write lock and keeps what fn left. It returns ErrNotFound if there is no such
// credential, fn's error unchanged, or ErrKeyChanged if fn changed Kind, ID or
// UserID; it writes nothing then. It is safe for concurrent use: calls are
// serialised.
func (m *MemoryStore) UpdateCredential(ctx context.Context, kind CredentialKind, id string, fn func(c *CredentialRecord) error, audit ...*AuditEntry) (*CredentialRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := memCredKey{kind, id}
	old, ok := m.creds.byKey[key]
	if !ok {
		return nil, ErrNotFound
	}
	work := old.Clone()
	if err := fn(work); err != nil {
		return nil, err
	}
	if work.Kind != old.Kind || work.ID != old.ID || work.UserID != old.UserID {
		return nil, ErrKeyChanged
	}
	m.creds.byKey[key] = work.Clone()
	m.keepAudit(audit)
	return work, nil
}

// DeleteCredential deletes the user's credential (kind, id) under the store's
// write lock, after guard, if not nil, has allowed it there. It returns
// ErrNotFound if there is no such credential or it is another user's, and
// guard's error unchanged; it writes nothing then. It is safe for concurrent
// use: calls are serialised with every other write.
func (m *MemoryStore) DeleteCredential(ctx context.Context, userID string, kind CredentialKind, id string, guard CredentialGuard, audit ...*AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := memCredKey{kind, id}
	c, ok := m.creds.byKey[key]
	if !ok || c.UserID != userID {
		return ErrNotFound
	}
	if guard != nil {
		slot, ok := m.byID[userID]
		if !ok {
			return ErrNotFound // a credential without its user: never stored so
		}
		rest := m.userCredentials(userID, key)
		for i, r := range rest {
			rest[i] = r.Clone()
		}
		if err := guard(m.record(m.user(slot)), rest); err != nil {
			return err
		}
	}
	m.deleteCredential(key)
	m.keepAudit(audit)
	return nil
}

// RemovePassword clears the user's password and sets UpdatedAt under the
// store's write lock, after guard, if not nil, has allowed it there. It returns
// ErrNotFound if there is no such user, and guard's error unchanged; it writes
// nothing then. It is safe for concurrent use: calls are serialised with every
// other write.
func (m *MemoryStore) RemovePassword(ctx context.Context, userID string, at time.Time, guard CredentialGuard, audit ...*AuditEntry) (*UserRecord, error) {
	// UpdateUser calls fn holding the write lock, so fn may read the
	// credentials, and they cannot change until the user is written.
	return m.UpdateUser(ctx, userID, func(r *UserRecord) (Revoke, error) {
		if guard != nil {
			creds := m.userCredentials(userID, memCredKey{})
			for i, c := range creds {
				creds[i] = c.Clone()
			}
			if err := guard(r.Clone(), creds); err != nil {
				return Revoke{}, err
			}
		}
		r.PasswordHash = ""
		r.UpdatedAt = at
		return Revoke{}, nil
	}, audit...)
}

// deleteCredential deletes the credential stored under key, which must exist.
// m.mu must be held for writing.
func (m *MemoryStore) deleteCredential(key memCredKey) {
	c := m.creds.byKey[key]
	delete(m.creds.byKey, key)
	set := m.creds.byUser[c.UserID]
	delete(set, key)
	if len(set) == 0 {
		delete(m.creds.byUser, c.UserID)
	}
}

// deleteUserCredentials deletes every credential of the user, for DeleteUser.
// m.mu must be held for writing.
func (m *MemoryStore) deleteUserCredentials(userID string) {
	for key := range m.creds.byUser[userID] {
		m.deleteCredential(key)
	}
}
