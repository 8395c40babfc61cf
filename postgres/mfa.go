package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/userkit/users"
)

// ---- Second factors ----
//
// An MFA record is a row of userkit_mfa and a challenge a row of
// userkit_mfa_challenges (see migration version 3). What makes a TOTP step or a
// recovery code single use, across processes, is that UpdateMFA holds the
// user's row lock (FOR NO KEY UPDATE) from its read to its write; what bounds a
// challenge's attempts is that each attempt is one UPDATE of the challenge's
// row, which PostgreSQL applies one after the other.

const mfaCols = `user_id, totp, totp_secret, totp_key_id, totp_confirmed, totp_created_at, totp_confirmed_at,
	totp_last_step, recovery_codes, recovery_codes_at`

// mfaRow receives one row of mfaCols.
type mfaRow struct {
	userID, keyID                                    string
	totp, confirmed                                  bool
	secret                                           []byte
	createdAt, confirmedAt, lastStep, recoveryCodeAt int64
	recoveryCodes                                    [][]byte
}

func (m *mfaRow) dest() []any {
	return []any{&m.userID, &m.totp, &m.secret, &m.keyID, &m.confirmed, &m.createdAt, &m.confirmedAt,
		&m.lastStep, &m.recoveryCodes, &m.recoveryCodeAt}
}

func (m *mfaRow) record() *users.MFARecord {
	r := &users.MFARecord{UserID: m.userID, RecoveryCodesAt: decodeTime(m.recoveryCodeAt)}
	if m.totp {
		r.TOTP = &users.TOTPFactor{
			Secret: slices.Clone(m.secret), KeyID: m.keyID, Confirmed: m.confirmed,
			CreatedAt: decodeTime(m.createdAt), ConfirmedAt: decodeTime(m.confirmedAt), LastStep: m.lastStep,
		}
	}
	if m.recoveryCodes != nil {
		r.RecoveryCodes = make([][]byte, len(m.recoveryCodes))
		for i, h := range m.recoveryCodes {
			r.RecoveryCodes[i] = nonNil(slices.Clone(h))
		}
	}
	return r
}

// mfaArgs returns the values of mfaCols for r.
func mfaArgs(r *users.MFARecord) ([]any, error) {
	var err error
	t := r.TOTP
	if t == nil {
		t = &users.TOTPFactor{}
	}
	var codes [][]byte // nil stays NULL
	if r.RecoveryCodes != nil {
		codes = make([][]byte, len(r.RecoveryCodes))
		for i, h := range r.RecoveryCodes {
			codes[i] = nonNil(h)
		}
	}
	args := []any{
		r.UserID, r.TOTP != nil, nonNil(t.Secret), t.KeyID, t.Confirmed,
		encodeTime(t.CreatedAt, &err), encodeTime(t.ConfirmedAt, &err), t.LastStep,
		codes, encodeTime(r.RecoveryCodesAt, &err),
	}
	return args, err
}

var sqlUpsertMFA = `INSERT INTO userkit_mfa (` + mfaCols + `) VALUES (` + placeholders(1, 10) + `)
	ON CONFLICT (user_id) DO UPDATE SET totp = $2, totp_secret = $3, totp_key_id = $4, totp_confirmed = $5,
		totp_created_at = $6, totp_confirmed_at = $7, totp_last_step = $8, recovery_codes = $9, recovery_codes_at = $10`

// GetMFA returns the user's MFA record, or ErrNotFound if the user has none (or
// there is no such user). It is safe for concurrent use, also across processes.
func (s *Store) GetMFA(ctx context.Context, userID string) (*users.MFARecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var row mfaRow
	err := retry(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT `+mfaCols+` FROM userkit_mfa WHERE user_id = $1`, userID).Scan(row.dest()...)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, users.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get MFA: %w", err)
	}
	return row.record(), nil
}

// UpdateMFA locks the user's row (SELECT … FOR NO KEY UPDATE), reads the user's
// MFA record (a new one if there is none), calls fn with it and writes what fn
// left, in one transaction: concurrent calls for one user, from any process, run
// one after the other, so of those whose fn refuses a TOTP step or recovery code
// already used exactly one succeeds. A record fn leaves empty is deleted; when
// fn asks, the user's challenges are deleted in the same transaction. The
// transaction is run again after a deadlock or serialization failure, so fn may
// be called more than once.
//
// It returns the record as written; ErrNotFound if there is no such user; fn's
// error unchanged; ErrKeyChanged if fn changed UserID; and an error wrapping
// ErrTimeRange for a time it cannot keep. In each of those cases it writes
// nothing. It is safe for concurrent use, also across processes.
func (s *Store) UpdateMFA(ctx context.Context, userID string, fn func(r *users.MFARecord) (bool, error), audit ...*users.AuditEntry) (*users.MFARecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer s.forgetUser(userID)
	var out *users.MFARecord
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM userkit_users WHERE id = $1 FOR NO KEY UPDATE`, userID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return users.ErrNotFound
		}
		if err != nil {
			return err
		}
		r := &users.MFARecord{UserID: userID}
		var row mfaRow
		err = tx.QueryRow(ctx, `SELECT `+mfaCols+` FROM userkit_mfa WHERE user_id = $1`, userID).Scan(row.dest()...)
		switch {
		case err == nil:
			r = row.record()
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		deleteChallenges, err := fn(r)
		if err != nil {
			return &fnError{err}
		}
		if r.UserID != userID {
			return users.ErrKeyChanged
		}
		r = r.Clone() // fn may have kept r
		if r.IsEmpty() {
			_, err = tx.Exec(ctx, `DELETE FROM userkit_mfa WHERE user_id = $1`, userID)
		} else {
			args, aerr := mfaArgs(r)
			if aerr != nil {
				return aerr
			}
			_, err = tx.Exec(ctx, sqlUpsertMFA, args...)
		}
		if err != nil {
			return err
		}
		if deleteChallenges {
			if err := deleteUserChallenges(ctx, tx, userID); err != nil {
				return err
			}
		}
		if err := insertAudit(ctx, tx, audit); err != nil {
			return err
		}
		out = r
		return nil
	})
	var fe *fnError
	switch {
	case err == nil:
		return out.Clone(), nil
	case errors.As(err, &fe):
		return nil, fe.err
	case errors.Is(err, users.ErrNotFound):
		return nil, users.ErrNotFound
	case errors.Is(err, users.ErrKeyChanged):
		return nil, users.ErrKeyChanged
	default:
		return nil, fmt.Errorf("postgres: update MFA: %w", err)
	}
}

// deleteUserChallenges deletes every challenge of the user in tx.
func deleteUserChallenges(ctx context.Context, tx pgx.Tx, userID string) error {
	_, err := tx.Exec(ctx, `DELETE FROM userkit_mfa_challenges WHERE user_id = $1`, userID)
	return err
}

const challengeCols = `hash, user_id, user_generation, methods, attempts, created_at, expires_at`

// challengeRow receives one row of challengeCols.
type challengeRow struct {
	r                    users.ChallengeRecord
	methods              []string
	attempts             int64
	createdAt, expiresAt int64
}

func (c *challengeRow) dest() []any {
	return []any{&c.r.Hash, &c.r.UserID, &c.r.UserGeneration, &c.methods, &c.attempts, &c.createdAt, &c.expiresAt}
}

func (c *challengeRow) record() *users.ChallengeRecord {
	r := c.r
	r.Hash = slices.Clone(c.r.Hash)
	if c.methods != nil {
		r.Methods = make([]users.AuthMethod, len(c.methods))
		for i, m := range c.methods {
			r.Methods[i] = users.AuthMethod(m)
		}
	}
	r.Attempts = int(c.attempts)
	r.CreatedAt = decodeTime(c.createdAt)
	r.ExpiresAt = decodeTime(c.expiresAt)
	return &r
}

// challengeMethods returns ms as the text[] of userkit_mfa_challenges.methods,
// nil (NULL) for nil.
func challengeMethods(ms []users.AuthMethod) []string {
	if ms == nil {
		return nil
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m)
	}
	return out
}

// sqlCreateChallenge inserts a challenge only if its user exists with the
// challenge's generation, as sqlCreateSession does for sessions: FOR SHARE
// holds the user row against a concurrent revocation until the insert commits.
// It returns the user's generation (NULL for no user) and how many challenges
// it inserted.
const sqlCreateChallenge = `WITH u AS (
		SELECT generation FROM userkit_users WHERE id = $1::text FOR SHARE
	), ins AS (
		INSERT INTO userkit_mfa_challenges (` + challengeCols + `)
		SELECT $2::bytea, $1::text, $3::bigint, $4::text[], $5::bigint, $6::bigint, $7::bigint
		FROM u WHERE u.generation = $3::bigint
		RETURNING 1
	)
	SELECT (SELECT generation FROM u), (SELECT count(*) FROM ins)`

// CreateChallenge stores a new MFA challenge if its user exists and the user's
// Generation is c.UserGeneration, checked and written in one statement that
// locks the user row, so no challenge outlives a revocation, by any process. It
// returns ErrNotFound if the user does not exist, ErrConflict if the generation
// differs or c.Hash is taken, and an error wrapping ErrTimeRange for a time it
// cannot keep; it writes nothing then. It is safe for concurrent use, also
// across processes.
func (s *Store) CreateChallenge(ctx context.Context, c *users.ChallengeRecord, audit ...*users.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var terr error
	args := []any{c.UserID, nonNil(c.Hash), c.UserGeneration, challengeMethods(c.Methods), int64(c.Attempts),
		encodeTime(c.CreatedAt, &terr), encodeTime(c.ExpiresAt, &terr)}
	if terr != nil {
		return fmt.Errorf("postgres: create challenge: %w", terr)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var (
			gen      *int64
			inserted int64
		)
		if err := tx.QueryRow(ctx, sqlCreateChallenge, args...).Scan(&gen, &inserted); err != nil {
			return err
		}
		switch {
		case gen == nil:
			return users.ErrNotFound
		case inserted == 0:
			return users.ErrConflict
		}
		return insertAudit(ctx, tx, audit)
	})
	switch code, _ := pgCode(err); {
	case err == nil:
		return nil
	case errors.Is(err, users.ErrNotFound), code == codeForeignKeyViolation:
		return users.ErrNotFound
	case errors.Is(err, users.ErrConflict), code == codeUniqueViolation:
		return users.ErrConflict
	default:
		return fmt.Errorf("postgres: create challenge: %w", err)
	}
}

// GetChallenge returns the challenge with this hash, whatever its expiry, or
// ErrNotFound. It is safe for concurrent use, also across processes.
func (s *Store) GetChallenge(ctx context.Context, hash []byte) (*users.ChallengeRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var row challengeRow
	err := retry(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT `+challengeCols+` FROM userkit_mfa_challenges WHERE hash = $1`,
			nonNil(hash)).Scan(row.dest()...)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, users.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get challenge: %w", err)
	}
	return row.record(), nil
}

// CountChallengeAttempt increments the challenge's attempts, while they are
// fewer than max, with one UPDATE … WHERE attempts < max RETURNING, which takes
// the row's lock. Concurrent calls, from any process, wait for the lock and
// then see the row as the one before left it (or gone), so at most max of them
// get the challenge, each with a different Attempts. It returns the challenge
// as written, or ErrNotFound, writing nothing, if there is none or its
// attempts are max already. It is safe for concurrent use, also across
// processes.
func (s *Store) CountChallengeAttempt(ctx context.Context, hash []byte, max int, audit ...*users.AuditEntry) (*users.ChallengeRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *users.ChallengeRecord
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var row challengeRow
		err := tx.QueryRow(ctx, `UPDATE userkit_mfa_challenges SET attempts = attempts + 1
			WHERE hash = $1 AND attempts < $2 RETURNING `+challengeCols, nonNil(hash), int64(max)).Scan(row.dest()...)
		if errors.Is(err, pgx.ErrNoRows) {
			return users.ErrNotFound
		}
		if err != nil {
			return err
		}
		out = row.record()
		return insertAudit(ctx, tx, audit)
	})
	if errors.Is(err, users.ErrNotFound) {
		return nil, users.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: count challenge attempt: %w", err)
	}
	return out, nil
}

// CompleteChallenge redeems the challenge for the session sess in one
// transaction: it reads the challenge, locks its user's row (FOR NO KEY
// UPDATE, as UpdateMFA does, so the MFA record cannot change meanwhile and no
// revocation can come between), checks the generation, calls fn with the MFA
// record, writes what fn left, deletes the challenge (DELETE … RETURNING: of
// concurrent calls, from any process, one finds it) and inserts the session.
// The transaction is run again after a deadlock or serialization failure, so
// fn may be called more than once.
//
// It returns ErrNotFound if there is no such challenge or user, ErrConflict if
// sess.UserID is not the challenge's user, the generation differs or
// sess.TokenHash or sess.ID is taken, fn's error unchanged, ErrKeyChanged if
// fn changed UserID, and an error wrapping ErrTimeRange for a time it cannot
// keep; it writes nothing then. It is safe for concurrent use, also across
// processes.
func (s *Store) CompleteChallenge(ctx context.Context, hash []byte, fn func(r *users.MFARecord) error, sess *users.SessionRecord, audit ...*users.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var terr error
	args := sessionArgs(sess, &terr)
	if terr == nil {
		terr = checkAudit(audit)
	}
	if terr != nil {
		return fmt.Errorf("postgres: complete challenge: %w", terr)
	}
	userID := sess.UserID
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var owner string
		err := tx.QueryRow(ctx, `SELECT user_id FROM userkit_mfa_challenges WHERE hash = $1`, nonNil(hash)).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return users.ErrNotFound
		}
		if err != nil {
			return err
		}
		if owner != userID {
			return users.ErrConflict
		}
		var gen int64
		err = tx.QueryRow(ctx, `SELECT generation FROM userkit_users WHERE id = $1 FOR NO KEY UPDATE`, userID).Scan(&gen)
		if errors.Is(err, pgx.ErrNoRows) {
			return users.ErrNotFound
		}
		if err != nil {
			return err
		}
		if gen != sess.UserGeneration {
			return users.ErrConflict
		}
		var gone int64
		err = tx.QueryRow(ctx, `WITH d AS (DELETE FROM userkit_mfa_challenges WHERE hash = $1 RETURNING 1)
			SELECT count(*) FROM d`, nonNil(hash)).Scan(&gone)
		if err != nil {
			return err
		}
		if gone == 0 {
			return users.ErrNotFound // completed or voided while the user's row was awaited
		}
		r := &users.MFARecord{UserID: userID}
		var row mfaRow
		err = tx.QueryRow(ctx, `SELECT `+mfaCols+` FROM userkit_mfa WHERE user_id = $1`, userID).Scan(row.dest()...)
		switch {
		case err == nil:
			r = row.record()
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if err := fn(r); err != nil {
			return &fnError{err}
		}
		if r.UserID != userID {
			return users.ErrKeyChanged
		}
		if r.IsEmpty() {
			_, err = tx.Exec(ctx, `DELETE FROM userkit_mfa WHERE user_id = $1`, userID)
		} else {
			margs, aerr := mfaArgs(r)
			if aerr != nil {
				return aerr
			}
			_, err = tx.Exec(ctx, sqlUpsertMFA, margs...)
		}
		if err != nil {
			return err
		}
		var (
			sgen     *int64
			inserted int64
		)
		if err := tx.QueryRow(ctx, sqlCreateSession, args...).Scan(&sgen, &inserted); err != nil {
			return err
		}
		if sgen == nil || inserted == 0 {
			return users.ErrConflict
		}
		return insertAudit(ctx, tx, audit)
	})
	var fe *fnError
	switch code, _ := pgCode(err); {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return fe.err
	case errors.Is(err, users.ErrNotFound), errors.Is(err, users.ErrConflict), errors.Is(err, users.ErrKeyChanged):
		return err
	case code == codeUniqueViolation:
		return users.ErrConflict
	default:
		return fmt.Errorf("postgres: complete challenge: %w", err)
	}
}

// ConsumeChallenge deletes the challenge with this hash and returns it, whatever
// its expiry, in one DELETE … RETURNING: of any number of concurrent calls, from
// any process, exactly one gets it. It returns ErrNotFound, deleting nothing, if
// there is none. An audit entry with an empty UserID gets the challenge's. It is
// safe for concurrent use, also across processes.
func (s *Store) ConsumeChallenge(ctx context.Context, hash []byte, audit ...*users.AuditEntry) (*users.ChallengeRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *users.ChallengeRecord
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var row challengeRow
		err := tx.QueryRow(ctx, `DELETE FROM userkit_mfa_challenges WHERE hash = $1 RETURNING `+challengeCols,
			nonNil(hash)).Scan(row.dest()...)
		if errors.Is(err, pgx.ErrNoRows) {
			return users.ErrNotFound
		}
		if err != nil {
			return err
		}
		out = row.record()
		for _, e := range audit {
			if e != nil && e.UserID == "" {
				e.UserID = out.UserID
			}
		}
		return insertAudit(ctx, tx, audit)
	})
	if errors.Is(err, users.ErrNotFound) {
		return nil, users.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: consume challenge: %w", err)
	}
	return out, nil
}
