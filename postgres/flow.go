package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/userkit/users"
)

// ---- Provider flows ----
//
// A flow is a row of userkit_provider_flows (migration version 7), keyed by
// its hash. ConsumeFlow is one DELETE … RETURNING, so of concurrent calls for
// one flow, from any process, exactly one gets it.

// CreateFlow inserts the flow if its hash is free. It returns ErrConflict if
// the hash is taken and an error wrapping ErrTimeRange for a time it cannot
// keep; it writes nothing then. It is safe for concurrent use, also across
// processes.
func (s *Store) CreateFlow(ctx context.Context, f *users.FlowRecord, audit ...*users.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var terr error
	args := []any{nonNil(f.Hash), nonNil(f.Data), encodeTime(f.CreatedAt, &terr), encodeTime(f.ExpiresAt, &terr)}
	if terr == nil {
		terr = checkAudit(audit)
	}
	if terr != nil {
		return fmt.Errorf("postgres: create flow: %w", terr)
	}
	err := s.write(ctx, audit, func(q querier) error {
		tag, err := q.Exec(ctx, `INSERT INTO userkit_provider_flows (hash, data, created_at, expires_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (hash) DO NOTHING`, args...)
		if err == nil && tag.RowsAffected() == 0 {
			return users.ErrConflict
		}
		return err
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, users.ErrConflict):
		return users.ErrConflict
	default:
		return fmt.Errorf("postgres: create flow: %w", err)
	}
}

// ConsumeFlow deletes the flow with this hash and returns it, whatever its
// expiry, in one DELETE … RETURNING. It returns ErrNotFound, deleting
// nothing, if there is no such flow. It is safe for concurrent use, also
// across processes.
func (s *Store) ConsumeFlow(ctx context.Context, hash []byte, audit ...*users.AuditEntry) (*users.FlowRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkAudit(audit); err != nil {
		return nil, fmt.Errorf("postgres: consume flow: %w", err)
	}
	var data []byte
	var createdAt, expiresAt int64
	err := s.write(ctx, audit, func(q querier) error {
		err := q.QueryRow(ctx, `DELETE FROM userkit_provider_flows WHERE hash = $1 RETURNING data, created_at, expires_at`,
			nonNil(hash)).Scan(&data, &createdAt, &expiresAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return users.ErrNotFound
		}
		return err
	})
	if errors.Is(err, users.ErrNotFound) {
		return nil, users.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: consume flow: %w", err)
	}
	return &users.FlowRecord{Hash: slices.Clone(hash), Data: data, CreatedAt: decodeTime(createdAt), ExpiresAt: decodeTime(expiresAt)}, nil
}

// CreateUserWithCredential inserts the user and its first credential in one
// transaction. It returns ErrConflict if the credential's (Kind, ID) is
// taken (checked again after a failed insert, so a concurrent winner's
// credential is reported before its email), then what CreateUser returns;
// it writes nothing then. It is safe for concurrent use, also across
// processes.
func (s *Store) CreateUserWithCredential(ctx context.Context, u *users.UserRecord, c *users.CredentialRecord, audit ...*users.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.UserID != u.ID {
		return users.ErrConflict
	}
	uargs, err := userArgs(u)
	if err != nil {
		return fmt.Errorf("postgres: create user with credential: %w", err)
	}
	cargs, err := credentialArgs(c)
	if err == nil {
		err = checkAudit(audit)
	}
	if err != nil {
		return fmt.Errorf("postgres: create user with credential: %w", err)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM userkit_credentials WHERE kind = $1 AND identifier = $2`,
			string(c.Kind), nonNil([]byte(c.ID))).Scan(&one)
		if err == nil {
			return users.ErrConflict
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(ctx, sqlInsertUser, uargs...); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, sqlInsertCredential, cargs...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return users.ErrConflict
		}
		return insertAudit(ctx, tx, audit)
	})
	if errors.Is(err, users.ErrConflict) {
		return users.ErrConflict
	}
	if code, constraint := pgCode(err); code == codeUniqueViolation {
		if _, gerr := s.GetCredential(ctx, c.Kind, c.ID); gerr == nil {
			return users.ErrConflict
		}
		return s.userConflict(ctx, constraint, u.Email, u.Username, u.ExternalID, nil)
	}
	if err != nil {
		return fmt.Errorf("postgres: create user with credential: %w", err)
	}
	return nil
}
