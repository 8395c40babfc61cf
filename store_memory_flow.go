package users

import (
	"container/heap"
	"context"
)

// expiryFlow is the expiryItem kind of a provider flow.
const expiryFlow = expiryChallenge + 1

// memFlow is a stored provider flow with its place in the expiry heap.
type memFlow struct {
	rec *FlowRecord
	exp *expiryItem
}

// CreateFlow stores a copy of f. It returns ErrConflict, writing nothing, if
// another flow has f.Hash. It is safe for concurrent use.
func (m *MemoryStore) CreateFlow(ctx context.Context, f *FlowRecord, audit ...*AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := string(f.Hash)
	if _, ok := m.flows[key]; ok {
		return ErrConflict
	}
	if m.flows == nil {
		m.flows = make(map[string]*memFlow)
	}
	mf := &memFlow{rec: f.Clone(), exp: &expiryItem{at: f.ExpiresAt, kind: expiryFlow, key: key}}
	m.flows[key] = mf
	heap.Push(&m.expiry, mf.exp)
	m.keepAudit(audit)
	return nil
}

// ConsumeFlow deletes the flow with this hash and returns it, whatever its
// expiry, or returns ErrNotFound, deleting nothing. Of any number of
// concurrent calls for one flow exactly one gets it. It is safe for
// concurrent use.
func (m *MemoryStore) ConsumeFlow(ctx context.Context, hash []byte, audit ...*AuditEntry) (*FlowRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mf, ok := m.flows[string(hash)]
	if !ok {
		return nil, ErrNotFound
	}
	m.deleteFlow(string(hash))
	m.keepAudit(audit)
	return mf.rec, nil // deleted: nobody else holds it
}

// deleteFlow deletes the flow stored under key, which must exist. m.mu must
// be held for writing.
func (m *MemoryStore) deleteFlow(key string) {
	mf := m.flows[key]
	delete(m.flows, key)
	heap.Remove(&m.expiry, mf.exp.index)
}

// CreateUserWithCredential stores copies of the user u and its credential c
// under one lock: it returns ErrConflict if (c.Kind, c.ID) is taken, then
// what CreateUser returns, writing nothing. It is safe for concurrent use.
func (m *MemoryStore) CreateUserWithCredential(ctx context.Context, u *UserRecord, c *CredentialRecord, audit ...*AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.creds.init()
	key := memCredKey{c.Kind, c.ID}
	if _, ok := m.creds.byKey[key]; ok || c.UserID != u.ID {
		return ErrConflict
	}
	if err := m.insert(u); err != nil {
		return err
	}
	m.creds.byKey[key] = c.Clone()
	m.creds.byUser[c.UserID] = map[memCredKey]struct{}{key: {}}
	m.keepAudit(audit)
	return nil
}
