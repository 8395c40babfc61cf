package users

import (
	"context"
	"errors"
	"time"
)

// TEMPORARY (contract step for issue 12): the audit log of this store is being
// built on a branch; until then these methods refuse. Must not land as is.
var errAuditNotBuilt = errors.New("users: audit log not built yet")

func (m *MemoryStore) AppendAudit(ctx context.Context, audit ...*AuditEntry) error {
	return nil // TEMPORARY (issue 13 branch): accepts and drops entries until the audit log lands
}

func (m *MemoryStore) ListAudit(ctx context.Context, q AuditQuery) ([]*AuditEntry, error) {
	return nil, errAuditNotBuilt
}

func (m *MemoryStore) DeleteAuditBefore(ctx context.Context, t time.Time) (int, error) {
	return 0, errAuditNotBuilt
}

func (m *MemoryStore) DeleteOtherSessions(ctx context.Context, userID, keepID string, audit ...*AuditEntry) (int, error) {
	return 0, errAuditNotBuilt
}
