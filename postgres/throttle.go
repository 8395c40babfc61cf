package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/userkit/users"
)

// attemptsCols are the columns attemptsRow receives, in order.
const attemptsCols = `failures, window_start, locked_until, expires_at, consecutive, locks, hash_not_upgradable`

// attemptsRow receives attemptsCols.
type attemptsRow struct {
	failures, windowStart, lockedUntil, expiresAt, consecutive, locks int64
	hashNotUpgradable                                                 bool
}

func (a *attemptsRow) dest() []any {
	return []any{&a.failures, &a.windowStart, &a.lockedUntil, &a.expiresAt, &a.consecutive, &a.locks, &a.hashNotUpgradable}
}

func (a *attemptsRow) value() users.LoginAttempts {
	return users.LoginAttempts{
		Failures:          int(a.failures),
		WindowStart:       decodeTime(a.windowStart),
		LockedUntil:       decodeTime(a.lockedUntil),
		ExpiresAt:         decodeTime(a.expiresAt),
		Consecutive:       int(a.consecutive),
		Locks:             int(a.locks),
		HashNotUpgradable: a.hashNotUpgradable,
	}
}

// GetLoginAttempts returns the throttle entry for key, or the zero LoginAttempts
// if there is none. It is safe for concurrent use, also across processes.
func (s *Store) GetLoginAttempts(ctx context.Context, key users.ThrottleKey) (users.LoginAttempts, error) {
	if err := ctx.Err(); err != nil {
		return users.LoginAttempts{}, err
	}
	var a attemptsRow
	err := retry(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT `+attemptsCols+`
			FROM userkit_login_attempts WHERE key = $1`, string(key)).Scan(a.dest()...)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return users.LoginAttempts{}, nil
	}
	if err != nil {
		return users.LoginAttempts{}, fmt.Errorf("postgres: get login attempts: %w", err)
	}
	return a.value(), nil
}

// lockAttempts makes sure the entry for key exists, inserting an empty one
// (INSERT … ON CONFLICT DO NOTHING) if there is none, locks it with SELECT …
// FOR UPDATE, and returns it. The insert can find an entry that a concurrent
// call, holding its lock, then deletes (its fn left it zero): the SELECT waits
// for that call and finds no row. Then it inserts again, as often as that
// happens; each time another call has finished, so it does not go on forever.
func lockAttempts(ctx context.Context, tx pgx.Tx, key string) (attemptsRow, error) {
	for {
		if _, err := tx.Exec(ctx, `INSERT INTO userkit_login_attempts (key, failures, window_start, locked_until, expires_at)
			VALUES ($1, 0, $2, $2, $2) ON CONFLICT (key) DO NOTHING`, key, int64(zeroTime)); err != nil {
			return attemptsRow{}, err
		}
		var row attemptsRow
		err := tx.QueryRow(ctx, `SELECT `+attemptsCols+`
			FROM userkit_login_attempts WHERE key = $1 FOR UPDATE`, key).Scan(row.dest()...)
		if !errors.Is(err, pgx.ErrNoRows) {
			return row, err
		}
		if err := ctx.Err(); err != nil {
			return attemptsRow{}, err
		}
	}
}

// UpdateLoginAttempts reads the entry for key under a row lock, calls fn with it
// (the zero value if there is none), and writes what fn left, in one
// transaction: it first inserts an empty entry if there is none (INSERT … ON
// CONFLICT DO NOTHING), then locks it with SELECT … FOR UPDATE, so concurrent
// calls for one key, from any process, run one after the other. A zero
// LoginAttempts left by fn deletes the entry. If fn fails nothing is written and
// fn's error is returned unchanged. fn may be called more than once (the
// transaction is retried after a deadlock or serialization failure). It returns
// an error wrapping ErrTimeRange for a time it cannot keep. It is safe for
// concurrent use, also across processes.
func (s *Store) UpdateLoginAttempts(ctx context.Context, tk users.ThrottleKey, fn func(a *users.LoginAttempts) error, audit ...*users.AuditEntry) (users.LoginAttempts, error) {
	if err := ctx.Err(); err != nil {
		return users.LoginAttempts{}, err
	}
	key := string(tk)
	var out users.LoginAttempts
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		row, err := lockAttempts(ctx, tx, key)
		if err != nil {
			return err
		}
		a := row.value()
		if err := fn(&a); err != nil {
			return &fnError{err}
		}
		if a.IsZero() {
			out = users.LoginAttempts{}
			if _, err := tx.Exec(ctx, `DELETE FROM userkit_login_attempts WHERE key = $1`, key); err != nil {
				return err
			}
			return insertAudit(ctx, tx, audit)
		}
		var terr error
		args := []any{key, int64(a.Failures), encodeTime(a.WindowStart, &terr), encodeTime(a.LockedUntil, &terr), encodeTime(a.ExpiresAt, &terr),
			int64(a.Consecutive), int64(a.Locks), a.HashNotUpgradable}
		if terr != nil {
			return terr
		}
		out = a
		if _, err := tx.Exec(ctx, `UPDATE userkit_login_attempts
			SET failures = $2, window_start = $3, locked_until = $4, expires_at = $5,
				consecutive = $6, locks = $7, hash_not_upgradable = $8 WHERE key = $1`, args...); err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit)
	})
	var fe *fnError
	if errors.As(err, &fe) {
		return users.LoginAttempts{}, fe.err
	}
	if err != nil {
		return users.LoginAttempts{}, fmt.Errorf("postgres: update login attempts: %w", err)
	}
	return out, nil
}
