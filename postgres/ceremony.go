package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/userkit/users"
)

// Ceremonies (users.CeremonyStore): the passkey challenges waiting for the
// browser's answer, in userkit_ceremonies (schema version 7).

const ceremonyCols = `hash, kind, user_id, created_at, expires_at`

// CreateCeremony stores a ceremony in one INSERT, with its audit entries in
// the same transaction. It returns ErrConflict if c.Hash is taken, and an
// error wrapping ErrTimeRange for a time it cannot keep; it writes nothing
// then. It is safe for concurrent use, also across processes.
func (s *Store) CreateCeremony(ctx context.Context, c *users.CeremonyRecord, audit ...*users.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var terr error
	args := []any{nonNil(c.Hash), string(c.Kind), c.UserID, encodeTime(c.CreatedAt, &terr), encodeTime(c.ExpiresAt, &terr)}
	if terr == nil {
		terr = checkAudit(audit)
	}
	if terr != nil {
		return fmt.Errorf("postgres: create ceremony: %w", terr)
	}
	err := s.write(ctx, audit, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO userkit_ceremonies (`+ceremonyCols+`) VALUES ($1, $2, $3, $4, $5)`, args...)
		return err
	})
	switch code, _ := pgCode(err); {
	case err == nil:
		return nil
	case code == codeUniqueViolation:
		return users.ErrConflict
	default:
		return fmt.Errorf("postgres: create ceremony: %w", err)
	}
}

// ConsumeCeremony deletes the ceremony with this hash and kind and returns
// it, in one DELETE … RETURNING: of any number of concurrent calls for one
// ceremony, from any process, exactly one gets it, whatever its expiry. It
// returns ErrNotFound, deleting nothing, if there is no such ceremony or its
// kind differs. It is safe for concurrent use, also across processes.
func (s *Store) ConsumeCeremony(ctx context.Context, hash []byte, kind users.CeremonyKind, audit ...*users.AuditEntry) (*users.CeremonyRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkAudit(audit); err != nil {
		return nil, fmt.Errorf("postgres: consume ceremony: %w", err)
	}
	var (
		c                    users.CeremonyRecord
		k                    string
		createdAt, expiresAt int64
	)
	err := s.write(ctx, audit, func(q querier) error {
		err := q.QueryRow(ctx, `DELETE FROM userkit_ceremonies WHERE hash = $1 AND kind = $2 RETURNING `+ceremonyCols,
			nonNil(hash), string(kind)).Scan(&c.Hash, &k, &c.UserID, &createdAt, &expiresAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return users.ErrNotFound
		}
		return err
	})
	if errors.Is(err, users.ErrNotFound) {
		return nil, users.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: consume ceremony: %w", err)
	}
	c.Hash = slices.Clone(c.Hash)
	c.Kind = users.CeremonyKind(k)
	c.CreatedAt, c.ExpiresAt = decodeTime(createdAt), decodeTime(expiresAt)
	return &c, nil
}
