package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/userkit/users"
)

const sessionCols = `token_hash, id, user_id, user_generation, created_at, expires_at, last_seen_at, ` +
	`ip, user_agent, methods, second_factor_at, authenticated_at, idle_timeout`

// sessionRow receives one row of sessionCols.
type sessionRow struct {
	r                                                users.SessionRecord
	createdAt, expiresAt, lastSeenAt, secondFactorAt int64
	authenticatedAt, idleTimeout                     int64
	ip, userAgent                                    []byte
	methods                                          []string
}

func (s *sessionRow) dest() []any {
	return []any{&s.r.TokenHash, &s.r.ID, &s.r.UserID, &s.r.UserGeneration, &s.createdAt, &s.expiresAt, &s.lastSeenAt,
		&s.ip, &s.userAgent, &s.methods, &s.secondFactorAt, &s.authenticatedAt, &s.idleTimeout}
}

func (s *sessionRow) record() *users.SessionRecord {
	r := s.r
	r.TokenHash = slices.Clone(s.r.TokenHash)
	r.CreatedAt = decodeTime(s.createdAt)
	r.ExpiresAt = decodeTime(s.expiresAt)
	r.LastSeenAt = decodeTime(s.lastSeenAt)
	r.IP, r.UserAgent = string(s.ip), string(s.userAgent)
	r.Methods = nil
	for _, m := range s.methods {
		r.Methods = append(r.Methods, users.AuthMethod(m))
	}
	r.SecondFactorAt = decodeTime(s.secondFactorAt)
	r.AuthenticatedAt = decodeTime(s.authenticatedAt)
	r.IdleTimeout = time.Duration(s.idleTimeout)
	return &r
}

// methodStrings returns ms as the text[] of userkit_sessions.methods.
func methodStrings(ms []users.AuthMethod) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m)
	}
	return out
}

// sqlCreateSession inserts a session only if its user exists with the session's
// generation. FOR SHARE locks the user row against DeleteUser, DeleteUserSessions
// and UpdateUser until the insert commits; if one of them holds the row, the
// statement waits for it and then sees the row as it left it (deleted, or with
// a new generation), and inserts nothing. It returns the user's generation (NULL
// for no user) and how many sessions it inserted.
const sqlCreateSession = `WITH u AS (
		SELECT generation FROM userkit_users WHERE id = $1::text FOR SHARE
	), ins AS (
		INSERT INTO userkit_sessions (` + sessionCols + `)
		SELECT $2::bytea, $3::text, $1::text, $4::bigint, $5::bigint, $6::bigint, $7::bigint,
			$8::bytea, $9::bytea, $10::text[], $11::bigint, $12::bigint, $13::bigint
		FROM u WHERE u.generation = $4::bigint
		RETURNING 1
	)
	SELECT (SELECT generation FROM u), (SELECT count(*) FROM ins)`

// CreateSession stores a new session if its user exists and the user's
// Generation is s.UserGeneration, checked and written in one statement that
// locks the user row (see the package documentation), so no session is ever
// created for a removed user or across a revocation, by any process. It returns
// ErrNotFound if the user does not exist, ErrConflict if the generation differs
// or s.TokenHash or s.ID is taken, and an error wrapping ErrTimeRange for a time
// it cannot keep; it writes nothing then. It is safe for concurrent use, also
// across processes.
func (s *Store) CreateSession(ctx context.Context, sess *users.SessionRecord, audit ...*users.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var terr error
	args := sessionArgs(sess, &terr)
	if terr == nil {
		terr = checkAudit(audit)
	}
	if terr != nil {
		return fmt.Errorf("postgres: create session: %w", terr)
	}
	err := s.write(ctx, audit, func(q querier) error {
		var (
			gen      *int64
			inserted int64
		)
		if err := q.QueryRow(ctx, sqlCreateSession, args...).Scan(&gen, &inserted); err != nil {
			return err
		}
		switch {
		case gen == nil:
			return users.ErrNotFound
		case inserted == 0:
			return users.ErrConflict
		}
		return nil
	})
	switch code, _ := pgCode(err); {
	case code == codeUniqueViolation:
		return users.ErrConflict
	case code == codeForeignKeyViolation:
		return users.ErrNotFound
	case err == nil, errors.Is(err, users.ErrNotFound), errors.Is(err, users.ErrConflict):
		return err
	default:
		return fmt.Errorf("postgres: create session: %w", err)
	}
}

var sqlGetSession = `SELECT s.token_hash, s.id, s.user_id, s.user_generation, s.created_at, s.expires_at, s.last_seen_at, ` +
	`s.ip, s.user_agent, s.methods, s.second_factor_at, s.authenticated_at, s.idle_timeout, ` + userCols("u.") + ` FROM userkit_sessions s JOIN userkit_users u ON u.id = s.user_id WHERE s.token_hash = $1`

// GetSession returns the session with this token hash and reads its user
// into u, in one statement and so from one snapshot, or returns ErrNotFound.
// It returns sessions whatever their expiry. With Options.SessionCache it
// returns what it read in the last SessionCacheTTL when the cache still
// holds it (see Options for the bound on how stale that can be). What it
// returns and what it fills u with are copies that share nothing with the
// cache. It is safe for concurrent use, also across processes.
func (s *Store) GetSession(ctx context.Context, hash [sha256.Size]byte, u *users.UserRecord) (users.SessionRecord, error) {
	if err := ctx.Err(); err != nil {
		return users.SessionRecord{}, err
	}
	tokenHash := hash[:]
	var t ticket
	if s.cache != nil {
		if cs, cu, ok := s.cache.get(tokenHash); ok {
			*u = *cu
			return *cs, nil
		}
		t = s.cache.begin()
	}
	var (
		sr sessionRow
		ur userRow
	)
	err := retry(ctx, func() error {
		return s.pool.QueryRow(ctx, sqlGetSession, nonNil(tokenHash)).Scan(append(sr.dest(), ur.dest()...)...)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return users.SessionRecord{}, users.ErrNotFound
	}
	if err != nil {
		return users.SessionRecord{}, fmt.Errorf("postgres: get session: %w", err)
	}
	user, err := ur.record()
	if err != nil {
		return users.SessionRecord{}, fmt.Errorf("postgres: get session: %w", err)
	}
	rec := sr.record()
	if s.cache != nil {
		s.cache.put(t, rec, user)
	}
	*u = *user
	return *rec, nil
}

// TouchSession sets the session's LastSeenAt, and its user's LastActiveAt, to
// seen where seen is later, in one statement (UPDATE … SET last_seen_at =
// GREATEST(last_seen_at, seen), and the user's row only if seen is later),
// which never creates a row. It returns ErrNotFound if there is no such
// session, and an error wrapping ErrTimeRange for a time it cannot keep. It is
// safe for concurrent use, also across processes.
func (s *Store) TouchSession(ctx context.Context, tokenHash []byte, seen time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var terr error
	at := encodeTime(seen, &terr)
	if terr != nil {
		return fmt.Errorf("postgres: touch session: %w", terr)
	}
	var n int64
	err := retry(ctx, func() error {
		return s.pool.QueryRow(ctx, `WITH s AS (
				UPDATE userkit_sessions SET last_seen_at = GREATEST(last_seen_at, $2) WHERE token_hash = $1
				RETURNING user_id
			), u AS (
				UPDATE userkit_users SET last_active_at = $2
				WHERE id = (SELECT user_id FROM s) AND last_active_at < $2
				RETURNING 1
			)
			SELECT count(*) FROM s`,
			nonNil(tokenHash), at).Scan(&n)
	})
	if err != nil {
		return fmt.Errorf("postgres: touch session: %w", err)
	}
	if n == 0 {
		return users.ErrNotFound
	}
	if s.cache != nil {
		s.cache.touched(tokenHash, seen)
	}
	return nil
}

// DeleteSession deletes the session with this token hash, or returns
// ErrNotFound. It is safe for concurrent use, also across processes.
func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte, audit ...*users.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkAudit(audit); err != nil {
		return fmt.Errorf("postgres: delete session: %w", err)
	}
	if s.cache != nil {
		defer s.cache.forgetToken(tokenHash)
	}
	err := s.write(ctx, audit, func(q querier) error {
		var userID, id string
		err := q.QueryRow(ctx, `DELETE FROM userkit_sessions WHERE token_hash = $1 RETURNING user_id, id`,
			nonNil(tokenHash)).Scan(&userID, &id)
		if errors.Is(err, pgx.ErrNoRows) {
			return users.ErrNotFound
		}
		for _, e := range audit {
			if e != nil && e.UserID == "" {
				e.UserID = userID
			}
			if e != nil && e.SessionID == "" {
				e.SessionID = id
			}
		}
		return err
	})
	if err != nil && !errors.Is(err, users.ErrNotFound) {
		return fmt.Errorf("postgres: delete session: %w", err)
	}
	return err
}

// DeleteSessionByID deletes the session with this public ID if it belongs to
// userID, or returns ErrNotFound. It is safe for concurrent use, also across
// processes.
func (s *Store) DeleteSessionByID(ctx context.Context, userID, id string, audit ...*users.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkAudit(audit); err != nil {
		return fmt.Errorf("postgres: delete session by ID: %w", err)
	}
	defer s.forgetUser(userID)
	err := s.write(ctx, audit, func(q querier) error {
		tag, err := q.Exec(ctx, `DELETE FROM userkit_sessions WHERE id = $1 AND user_id = $2`, id, userID)
		if err == nil && tag.RowsAffected() == 0 {
			return users.ErrNotFound
		}
		return err
	})
	if err != nil && !errors.Is(err, users.ErrNotFound) {
		return fmt.Errorf("postgres: delete session by ID: %w", err)
	}
	return err
}

// DeleteUserSessions increments the user's Generation and then deletes all its
// sessions and MFA challenges, in one transaction. The UPDATE locks the user row first, so the
// DELETE sees every session a concurrent CreateSession inserted under the old
// generation, and none can be inserted after it. It returns ErrNotFound if there
// is no such user. It is safe for concurrent use, also across processes.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string, audit ...*users.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer s.forgetUser(userID)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE userkit_users SET generation = generation + 1 WHERE id = $1`, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return users.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM userkit_sessions WHERE user_id = $1`, userID); err != nil {
			return err
		}
		if err := deleteUserChallenges(ctx, tx, userID); err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit)
	})
	if err != nil && !errors.Is(err, users.ErrNotFound) {
		return fmt.Errorf("postgres: delete user sessions: %w", err)
	}
	return err
}

// ListSessions returns the user's sessions, whatever their expiry, in ascending
// CreatedAt order, ties by ID (bytewise). A user without sessions, or no such
// user, gives an empty slice. It is safe for concurrent use, also across
// processes.
func (s *Store) ListSessions(ctx context.Context, userID string) ([]*users.SessionRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*users.SessionRecord
	err := retry(ctx, func() error {
		out = []*users.SessionRecord{}
		rows, err := s.pool.Query(ctx, `SELECT `+sessionCols+` FROM userkit_sessions
			WHERE user_id = $1 ORDER BY created_at, id`, userID)
		if err != nil {
			return err
		}
		var sr sessionRow
		_, err = pgx.ForEachRow(rows, sr.dest(), func() error {
			out = append(out, sr.record())
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list sessions: %w", err)
	}
	return out, nil
}

// DeleteOtherSessions deletes every session of the user but the one with the
// public ID keepID, and writes the audit entries, in one transaction that
// first locks the user row against deletion (FOR KEY SHARE). It returns how
// many sessions it deleted, or ErrNotFound if there is no such user. It is
// safe for concurrent use, also across processes.
func (s *Store) DeleteOtherSessions(ctx context.Context, userID, keepID string, audit ...*users.AuditEntry) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := checkAudit(audit); err != nil {
		return 0, fmt.Errorf("postgres: delete other sessions: %w", err)
	}
	var n int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM userkit_users WHERE id = $1 FOR KEY SHARE`, userID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return users.ErrNotFound
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM userkit_sessions WHERE user_id = $1 AND id <> $2`, userID, keepID)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		return insertAudit(ctx, tx, audit)
	})
	if errors.Is(err, users.ErrNotFound) {
		return 0, users.ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: delete other sessions: %w", err)
	}
	return int(n), nil
}

// StepUpSession sets the AuthenticatedAt of the user's session with the public
// ID sessionID and, for a method that is not empty, its SecondFactorAt, and
// appends method to its Methods unless it is there, in one UPDATE … RETURNING, and returns the session as written. It returns
// ErrNotFound, writing nothing, if the session does not exist or belongs to
// another user, and an error wrapping ErrTimeRange for a time it cannot keep.
// It is safe for concurrent use, also across processes.
func (s *Store) StepUpSession(ctx context.Context, userID, sessionID string, method users.AuthMethod, at time.Time, audit ...*users.AuditEntry) (*users.SessionRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer s.forgetUser(userID)
	var terr error
	when := encodeTime(at, &terr)
	if terr != nil {
		return nil, fmt.Errorf("postgres: step up session: %w", terr)
	}
	var out *users.SessionRecord
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var sr sessionRow
		err := tx.QueryRow(ctx, `UPDATE userkit_sessions SET authenticated_at = $3,
				second_factor_at = CASE WHEN $4::text = '' THEN second_factor_at ELSE $3 END,
				methods = CASE WHEN $4::text = '' OR $4::text = ANY (coalesce(methods, '{}')) THEN methods
					ELSE array_append(coalesce(methods, '{}'), $4::text) END
			WHERE id = $1 AND user_id = $2
			RETURNING `+sessionCols, sessionID, userID, when, string(method)).Scan(sr.dest()...)
		if errors.Is(err, pgx.ErrNoRows) {
			return users.ErrNotFound
		}
		if err != nil {
			return err
		}
		out = sr.record()
		return insertAudit(ctx, tx, audit)
	})
	if errors.Is(err, users.ErrNotFound) {
		return nil, users.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: step up session: %w", err)
	}
	return out, nil
}
