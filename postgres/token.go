package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/userkit/users"
)

const tokenCols = `hash, user_id, purpose, email, created_at, expires_at`

// tokenRow receives one row of tokenCols.
type tokenRow struct {
	r                    users.TokenRecord
	purpose              string
	createdAt, expiresAt int64
}

func (t *tokenRow) dest() []any {
	return []any{&t.r.Hash, &t.r.UserID, &t.purpose, &t.r.Email, &t.createdAt, &t.expiresAt}
}

func (t *tokenRow) record() *users.TokenRecord {
	r := t.r
	r.Hash = slices.Clone(t.r.Hash)
	r.Purpose = users.Purpose(t.purpose)
	r.CreatedAt = decodeTime(t.createdAt)
	r.ExpiresAt = decodeTime(t.expiresAt)
	return &r
}

// CreateToken stores a one-time token in one transaction that first locks the
// user row: FOR KEY SHARE, which keeps the user from being deleted until the
// insert commits, or, when replace is true, FOR NO KEY UPDATE, which also makes
// concurrent replacements for one user run one after the other, so that exactly
// one token of the purpose is left. With replace it then deletes the user's
// other tokens of t.Purpose. It returns ErrNotFound if the user does not exist,
// ErrConflict if t.Hash is taken, and an error wrapping ErrTimeRange for a time
// it cannot keep; it writes nothing then. It is safe for concurrent use, also
// across processes.
func (s *Store) CreateToken(ctx context.Context, t *users.TokenRecord, replace bool, audit ...*users.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var terr error
	args := []any{nonNil(t.Hash), t.UserID, string(t.Purpose), t.Email, encodeTime(t.CreatedAt, &terr), encodeTime(t.ExpiresAt, &terr)}
	if terr == nil {
		terr = checkAudit(audit)
	}
	if terr != nil {
		return fmt.Errorf("postgres: create token: %w", terr)
	}
	lock := "FOR KEY SHARE"
	if replace {
		lock = "FOR NO KEY UPDATE"
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM userkit_users WHERE id = $1 `+lock, t.UserID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return users.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO userkit_tokens (`+tokenCols+`) VALUES ($1, $2, $3, $4, $5, $6)`, args...); err != nil {
			return err
		}
		if replace {
			_, err = tx.Exec(ctx, `DELETE FROM userkit_tokens WHERE user_id = $1 AND purpose = $2 AND hash <> $3`,
				t.UserID, string(t.Purpose), nonNil(t.Hash))
			if err != nil {
				return err
			}
		}
		return insertAudit(ctx, tx, audit)
	})
	switch code, _ := pgCode(err); {
	case err == nil:
		return nil
	case errors.Is(err, users.ErrNotFound), code == codeForeignKeyViolation:
		return users.ErrNotFound
	case code == codeUniqueViolation:
		return users.ErrConflict
	default:
		return fmt.Errorf("postgres: create token: %w", err)
	}
}

// GetToken returns the token with this hash if its purpose is purpose, whatever
// its expiry, without consuming it; otherwise ErrNotFound. It is safe for
// concurrent use, also across processes.
func (s *Store) GetToken(ctx context.Context, hash []byte, purpose users.Purpose) (*users.TokenRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var tr tokenRow
	err := retry(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT `+tokenCols+` FROM userkit_tokens
			WHERE hash = $1 AND purpose = $2`,
			nonNil(hash), string(purpose)).Scan(tr.dest()...)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, users.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get token: %w", err)
	}
	return tr.record(), nil
}

// ConsumeToken deletes the token with this hash and purpose and returns it, in
// one DELETE … RETURNING: of any number of concurrent calls for one token, from
// any process, exactly one gets it, whatever its expiry. It returns ErrNotFound,
// deleting nothing, if there is no such token or its purpose differs. It is safe
// for concurrent use, also across processes.
func (s *Store) ConsumeToken(ctx context.Context, hash []byte, purpose users.Purpose, audit ...*users.AuditEntry) (*users.TokenRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkAudit(audit); err != nil {
		return nil, fmt.Errorf("postgres: consume token: %w", err)
	}
	var tr tokenRow
	err := s.write(ctx, audit, func(q querier) error {
		err := q.QueryRow(ctx, `DELETE FROM userkit_tokens WHERE hash = $1 AND purpose = $2 RETURNING `+tokenCols,
			nonNil(hash), string(purpose)).Scan(tr.dest()...)
		if errors.Is(err, pgx.ErrNoRows) {
			return users.ErrNotFound
		}
		for _, e := range audit {
			if e != nil && e.UserID == "" {
				e.UserID = tr.r.UserID
			}
		}
		return err
	})
	if errors.Is(err, users.ErrNotFound) {
		return nil, users.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: consume token: %w", err)
	}
	return tr.record(), nil
}
