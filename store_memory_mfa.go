package users

// TEMPORARY: the memory store's MFA records are built next on this branch.

import (
	"context"
	"time"
)

func (s *MemoryStore) GetMFA(ctx context.Context, userID string) (*MFARecord, error) {
	return nil, errMFANotBuilt
}

func (s *MemoryStore) UpdateMFA(ctx context.Context, userID string, fn func(r *MFARecord) (bool, error), audit ...*AuditEntry) (*MFARecord, error) {
	return nil, errMFANotBuilt
}

func (s *MemoryStore) CreateChallenge(ctx context.Context, c *ChallengeRecord, audit ...*AuditEntry) error {
	return errMFANotBuilt
}

func (s *MemoryStore) GetChallenge(ctx context.Context, hash []byte) (*ChallengeRecord, error) {
	return nil, errMFANotBuilt
}

func (s *MemoryStore) CountChallengeAttempt(ctx context.Context, hash []byte, max int, audit ...*AuditEntry) (*ChallengeRecord, error) {
	return nil, errMFANotBuilt
}

func (s *MemoryStore) ConsumeChallenge(ctx context.Context, hash []byte, audit ...*AuditEntry) (*ChallengeRecord, error) {
	return nil, errMFANotBuilt
}

func (s *MemoryStore) StepUpSession(ctx context.Context, userID, sessionID string, method AuthMethod, at time.Time, audit ...*AuditEntry) (*SessionRecord, error) {
	return nil, errMFANotBuilt
}
