package users

import (
	"context"
	"errors"
	"time"
)

// TEMPORARY (contract step for issue 13): the MFA records of this store are
// built on the mfa-stores branch; until then these methods refuse. Must not
// land as is.
var errMFANotBuilt = errors.New("users: MFA records not built yet")

func (s *BoltStore) GetMFA(ctx context.Context, userID string) (*MFARecord, error) {
	return nil, ErrNotFound // no user has a second factor until this store keeps them
}

func (s *BoltStore) UpdateMFA(ctx context.Context, userID string, fn func(r *MFARecord) (bool, error), audit ...*AuditEntry) (*MFARecord, error) {
	return nil, errMFANotBuilt
}

func (s *BoltStore) CreateChallenge(ctx context.Context, c *ChallengeRecord, audit ...*AuditEntry) error {
	return errMFANotBuilt
}

func (s *BoltStore) GetChallenge(ctx context.Context, hash []byte) (*ChallengeRecord, error) {
	return nil, errMFANotBuilt
}

func (s *BoltStore) CountChallengeAttempt(ctx context.Context, hash []byte, max int, audit ...*AuditEntry) (*ChallengeRecord, error) {
	return nil, errMFANotBuilt
}

func (s *BoltStore) ConsumeChallenge(ctx context.Context, hash []byte, audit ...*AuditEntry) (*ChallengeRecord, error) {
	return nil, errMFANotBuilt
}

func (s *BoltStore) StepUpSession(ctx context.Context, userID, sessionID string, method AuthMethod, at time.Time, audit ...*AuditEntry) (*SessionRecord, error) {
	return nil, errMFANotBuilt
}
