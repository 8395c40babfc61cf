package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/userkit/users"
)

// TEMPORARY (contract step for issue 13): the MFA records of this store are
// built on the mfa-stores branch; until then these methods refuse. Must not
// land as is.
var errMFANotBuilt = errors.New("postgres: MFA records not built yet")

func (s *Store) GetMFA(ctx context.Context, userID string) (*users.MFARecord, error) {
	return nil, users.ErrNotFound // no user has a second factor until this store keeps them
}

func (s *Store) UpdateMFA(ctx context.Context, userID string, fn func(r *users.MFARecord) (bool, error), audit ...*users.AuditEntry) (*users.MFARecord, error) {
	return nil, errMFANotBuilt
}

func (s *Store) CreateChallenge(ctx context.Context, c *users.ChallengeRecord, audit ...*users.AuditEntry) error {
	return errMFANotBuilt
}

func (s *Store) GetChallenge(ctx context.Context, hash []byte) (*users.ChallengeRecord, error) {
	return nil, errMFANotBuilt
}

func (s *Store) CountChallengeAttempt(ctx context.Context, hash []byte, max int, audit ...*users.AuditEntry) (*users.ChallengeRecord, error) {
	return nil, errMFANotBuilt
}

func (s *Store) ConsumeChallenge(ctx context.Context, hash []byte, audit ...*users.AuditEntry) (*users.ChallengeRecord, error) {
	return nil, errMFANotBuilt
}

func (s *Store) StepUpSession(ctx context.Context, userID, sessionID string, method users.AuthMethod, at time.Time, audit ...*users.AuditEntry) (*users.SessionRecord, error) {
	return nil, errMFANotBuilt
}
