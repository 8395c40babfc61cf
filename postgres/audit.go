package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/userkit/users"
)

// TEMPORARY (contract step for issue 12): the audit log of this store is being
// built on a branch; until then these methods refuse. Must not land as is.
var errAuditNotBuilt = errors.New("postgres: audit log not built yet")

func (s *Store) AppendAudit(ctx context.Context, audit ...*users.AuditEntry) error {
	return nil // TEMPORARY (issue 13 branch): accepts and drops entries until the audit log lands
}

func (s *Store) ListAudit(ctx context.Context, q users.AuditQuery) ([]*users.AuditEntry, error) {
	return nil, errAuditNotBuilt
}

func (s *Store) DeleteAuditBefore(ctx context.Context, t time.Time) (int, error) {
	return 0, errAuditNotBuilt
}

func (s *Store) DeleteOtherSessions(ctx context.Context, userID, keepID string, audit ...*users.AuditEntry) (int, error) {
	return 0, errAuditNotBuilt
}
