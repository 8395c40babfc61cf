package users

import (
	"container/heap"
	"context"
)

// The MemoryStore's ceremonies: by the hash of their challenge (as a string,
// like tokens), expired through the same heap as sessions.

type memCeremony struct {
	rec *CeremonyRecord
	exp *expiryItem
}

// expiryCeremony is the expiryItem kind of a ceremony.
const expiryCeremony = expiryFlow + 1

// CreateCeremony stores a copy of c, or returns ErrConflict, writing nothing,
// if another ceremony has c.Hash. It is safe for concurrent use.
func (m *MemoryStore) CreateCeremony(ctx context.Context, c *CeremonyRecord, audit ...*AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := string(c.Hash)
	if _, ok := m.ceremonies[key]; ok {
		return ErrConflict
	}
	if m.ceremonies == nil {
		m.ceremonies = make(map[string]*memCeremony)
	}
	mc := &memCeremony{rec: c.Clone(), exp: &expiryItem{at: c.ExpiresAt, kind: expiryCeremony, key: key}}
	m.ceremonies[key] = mc
	heap.Push(&m.expiry, mc.exp)
	m.keepAudit(audit)
	return nil
}

// ConsumeCeremony deletes the ceremony with this hash and kind and returns
// it, whatever its expiry. It returns ErrNotFound, deleting nothing, if there
// is no such ceremony or its kind differs. Of any number of concurrent calls
// for one ceremony exactly one gets it. It is safe for concurrent use.
func (m *MemoryStore) ConsumeCeremony(ctx context.Context, hash []byte, kind CeremonyKind, audit ...*AuditEntry) (*CeremonyRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := string(hash)
	mc, ok := m.ceremonies[key]
	if !ok || mc.rec.Kind != kind {
		return nil, ErrNotFound
	}
	m.deleteCeremony(key)
	m.keepAudit(audit)
	return mc.rec, nil // deleted: nobody else holds it
}

// deleteCeremony deletes the ceremony stored under key, which must exist.
// m.mu must be held for writing.
func (m *MemoryStore) deleteCeremony(key string) {
	mc := m.ceremonies[key]
	delete(m.ceremonies, key)
	heap.Remove(&m.expiry, mc.exp.index)
}
