package main

import (
	"context"
	"crypto/sha256"
	"slices"
	"sync"
	"time"

	"github.com/userkit/users"
)

// tracingStore records the name of every Store method called on it, so that a
// test can compare the store work of two requests.
type tracingStore struct {
	users.Store
	mu    sync.Mutex
	calls []string
}

func (s *tracingStore) record(name string) {
	s.mu.Lock()
	s.calls = append(s.calls, name)
	s.mu.Unlock()
}

// take returns the calls recorded so far and forgets them.
func (s *tracingStore) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := slices.Clone(s.calls)
	s.calls = nil
	return c
}

func (ts *tracingStore) CreateUser(ctx context.Context, r *users.UserRecord, audit ...*users.AuditEntry) error {
	ts.record("CreateUser")
	return ts.Store.CreateUser(ctx, r, audit...)
}

func (ts *tracingStore) GetUser(ctx context.Context, id string) (*users.UserRecord, error) {
	ts.record("GetUser")
	return ts.Store.GetUser(ctx, id)
}

func (ts *tracingStore) GetUserByEmail(ctx context.Context, email string) (*users.UserRecord, error) {
	ts.record("GetUserByEmail")
	return ts.Store.GetUserByEmail(ctx, email)
}

func (ts *tracingStore) GetUserByUsername(ctx context.Context, username string) (*users.UserRecord, error) {
	ts.record("GetUserByUsername")
	return ts.Store.GetUserByUsername(ctx, username)
}

func (ts *tracingStore) UpdateUser(ctx context.Context, id string, fn func(r *users.UserRecord) (users.Revoke, error), audit ...*users.AuditEntry) (*users.UserRecord, error) {
	ts.record("UpdateUser")
	return ts.Store.UpdateUser(ctx, id, fn, audit...)
}

func (ts *tracingStore) DeleteUser(ctx context.Context, id string, audit ...*users.AuditEntry) error {
	ts.record("DeleteUser")
	return ts.Store.DeleteUser(ctx, id, audit...)
}

func (ts *tracingStore) ListUsers(ctx context.Context, q users.ListQuery) ([]*users.UserRecord, error) {
	ts.record("ListUsers")
	return ts.Store.ListUsers(ctx, q)
}

func (ts *tracingStore) CountUsers(ctx context.Context, f users.Match) (int, error) {
	ts.record("CountUsers")
	return ts.Store.CountUsers(ctx, f)
}

func (ts *tracingStore) CreateUsers(ctx context.Context, rs []*users.UserRecord, audit ...*users.AuditEntry) ([]error, error) {
	ts.record("CreateUsers")
	return ts.Store.CreateUsers(ctx, rs, audit...)
}

func (ts *tracingStore) GetUsers(ctx context.Context, ids []string) ([]*users.UserRecord, error) {
	ts.record("GetUsers")
	return ts.Store.GetUsers(ctx, ids)
}

func (ts *tracingStore) GetUsersByEmail(ctx context.Context, emails []string) ([]*users.UserRecord, error) {
	ts.record("GetUsersByEmail")
	return ts.Store.GetUsersByEmail(ctx, emails)
}

func (ts *tracingStore) CreateSession(ctx context.Context, s *users.SessionRecord, audit ...*users.AuditEntry) error {
	ts.record("CreateSession")
	return ts.Store.CreateSession(ctx, s, audit...)
}

func (ts *tracingStore) GetSession(ctx context.Context, tokenHash [sha256.Size]byte, u *users.UserRecord) (users.SessionRecord, error) {
	ts.record("GetSession")
	return ts.Store.GetSession(ctx, tokenHash, u)
}

func (ts *tracingStore) TouchSession(ctx context.Context, tokenHash []byte, seen time.Time) error {
	ts.record("TouchSession")
	return ts.Store.TouchSession(ctx, tokenHash, seen)
}

func (ts *tracingStore) DeleteSession(ctx context.Context, tokenHash []byte, audit ...*users.AuditEntry) error {
	ts.record("DeleteSession")
	return ts.Store.DeleteSession(ctx, tokenHash, audit...)
}

func (ts *tracingStore) DeleteSessionByID(ctx context.Context, userID, id string, audit ...*users.AuditEntry) error {
	ts.record("DeleteSessionByID")
	return ts.Store.DeleteSessionByID(ctx, userID, id, audit...)
}

func (ts *tracingStore) DeleteUserSessions(ctx context.Context, userID string, audit ...*users.AuditEntry) error {
	ts.record("DeleteUserSessions")
	return ts.Store.DeleteUserSessions(ctx, userID, audit...)
}

func (ts *tracingStore) ListSessions(ctx context.Context, userID string) ([]*users.SessionRecord, error) {
	ts.record("ListSessions")
	return ts.Store.ListSessions(ctx, userID)
}

func (ts *tracingStore) GetLoginAttempts(ctx context.Context, key users.ThrottleKey) (users.LoginAttempts, error) {
	ts.record("GetLoginAttempts")
	return ts.Store.GetLoginAttempts(ctx, key)
}

func (ts *tracingStore) UpdateLoginAttempts(ctx context.Context, key users.ThrottleKey, fn func(a *users.LoginAttempts) error, audit ...*users.AuditEntry) (users.LoginAttempts, error) {
	ts.record("UpdateLoginAttempts")
	return ts.Store.UpdateLoginAttempts(ctx, key, fn, audit...)
}

func (ts *tracingStore) CreateToken(ctx context.Context, t *users.TokenRecord, replace bool, audit ...*users.AuditEntry) error {
	ts.record("CreateToken")
	return ts.Store.CreateToken(ctx, t, replace, audit...)
}

func (ts *tracingStore) GetToken(ctx context.Context, hash []byte, purpose users.Purpose) (*users.TokenRecord, error) {
	ts.record("GetToken")
	return ts.Store.GetToken(ctx, hash, purpose)
}

func (ts *tracingStore) ConsumeToken(ctx context.Context, hash []byte, purpose users.Purpose, audit ...*users.AuditEntry) (*users.TokenRecord, error) {
	ts.record("ConsumeToken")
	return ts.Store.ConsumeToken(ctx, hash, purpose, audit...)
}

func (ts *tracingStore) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	ts.record("DeleteExpired")
	return ts.Store.DeleteExpired(ctx, now)
}
