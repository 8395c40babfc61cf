package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/userkit/users"
)

// ---- Credentials ----
//
// A credential is a row of userkit_credentials (see migration version 6), keyed
// by (kind, identifier). What makes an identifier unique under concurrency,
// across processes, is the primary key: of concurrent inserts of one key the
// first to commit wins and the others find it taken. UpdateCredential holds the
// credential's row lock (FOR UPDATE) from its read to its write.
// DeleteCredential and RemovePassword first take the user's row lock (FOR NO
// KEY UPDATE, as UpdateUser does), so the user and the set of credentials that
// a guard reads stay as they are until the write commits: a credential created
// meanwhile only makes the guard's view one credential short.

const credentialCols = `kind, identifier, user_id, name, created_at, last_used_at, counter, data`

// credentialRow receives one row of credentialCols.
type credentialRow struct {
	kind, userID, name             string
	identifier, data               []byte
	createdAt, lastUsedAt, counter int64
}

func (c *credentialRow) dest() []any {
	return []any{&c.kind, &c.identifier, &c.userID, &c.name, &c.createdAt, &c.lastUsedAt, &c.counter, &c.data}
}

func (c *credentialRow) record() *users.CredentialRecord {
	return &users.CredentialRecord{
		Kind: users.CredentialKind(c.kind), ID: string(c.identifier), UserID: c.userID, Name: c.name,
		CreatedAt: decodeTime(c.createdAt), LastUsedAt: decodeTime(c.lastUsedAt), Counter: c.counter,
		Data: slices.Clone(c.data),
	}
}

// credentialArgs returns the values of credentialCols for c.
func credentialArgs(c *users.CredentialRecord) ([]any, error) {
	var err error
	args := []any{string(c.Kind), nonNil([]byte(c.ID)), c.UserID, c.Name,
		encodeTime(c.CreatedAt, &err), encodeTime(c.LastUsedAt, &err), c.Counter, nonNil(c.Data)}
	return args, err
}

var sqlInsertCredential = `INSERT INTO userkit_credentials (` + credentialCols + `) VALUES (` + placeholders(1, 8) + `)
	ON CONFLICT (kind, identifier) DO NOTHING`

// CreateCredential inserts the credential if its (Kind, ID) is free, in one
// statement: of concurrent calls for one key, from any process, exactly one
// inserts it. It returns ErrNotFound if the user does not exist (the foreign
// key), ErrConflict if the key is taken, and an error wrapping ErrTimeRange for
// a time it cannot keep; it writes nothing then. It is safe for concurrent use,
// also across processes.
func (s *Store) CreateCredential(ctx context.Context, c *users.CredentialRecord, audit ...*users.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	args, err := credentialArgs(c)
	if err != nil {
		return fmt.Errorf("postgres: create credential: %w", err)
	}
	err = s.write(ctx, audit, func(q querier) error {
		tag, err := q.Exec(ctx, sqlInsertCredential, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return users.ErrConflict
		}
		return nil
	})
	switch code, _ := pgCode(err); {
	case err == nil:
		return nil
	case code == codeForeignKeyViolation:
		return users.ErrNotFound
	case errors.Is(err, users.ErrConflict):
		return users.ErrConflict
	default:
		return fmt.Errorf("postgres: create credential: %w", err)
	}
}

// GetCredential returns the credential (kind, id), or ErrNotFound. It is safe
// for concurrent use, also across processes.
func (s *Store) GetCredential(ctx context.Context, kind users.CredentialKind, id string) (*users.CredentialRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := queryCredential(ctx, s.pool, ``, kind, id)
	if errors.Is(err, users.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get credential: %w", err)
	}
	return c, nil
}

// queryCredential reads the credential (kind, id), with lock (a locking
// clause, or empty) appended to the query.
func queryCredential(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, lock string, kind users.CredentialKind, id string) (*users.CredentialRecord, error) {
	var row credentialRow
	err := q.QueryRow(ctx, `SELECT `+credentialCols+` FROM userkit_credentials WHERE kind = $1 AND identifier = $2`+lock,
		string(kind), nonNil([]byte(id))).Scan(row.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, users.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return row.record(), nil
}

// ListCredentials returns the user's credentials in ascending CreatedAt order
// (ties by Kind, then ID, bytewise), read through userkit_credentials_user_idx.
// It is safe for concurrent use, also across processes.
func (s *Store) ListCredentials(ctx context.Context, userID string) ([]*users.CredentialRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*users.CredentialRecord
	err := retry(ctx, func() (err error) {
		out, err = userCredentials(ctx, s.pool, userID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list credentials: %w", err)
	}
	return out, nil
}

// userCredentials reads the user's credentials in ListCredentials order.
func userCredentials(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, userID string) ([]*users.CredentialRecord, error) {
	rows, err := q.Query(ctx, `SELECT `+credentialCols+` FROM userkit_credentials WHERE user_id = $1
		ORDER BY created_at, kind, identifier`, userID)
	if err != nil {
		return nil, err
	}
	out := []*users.CredentialRecord{}
	var row credentialRow
	_, err = pgx.ForEachRow(rows, row.dest(), func() error {
		out = append(out, row.record())
		return nil
	})
	return out, err
}

// UpdateCredential locks the credential's row (SELECT … FOR UPDATE), calls fn
// with it and writes what fn left, in one transaction: concurrent calls for one
// credential, from any process, run one after the other. The transaction is run
// again after a deadlock or serialization failure, so fn may be called more
// than once. It returns the record as written; ErrNotFound if there is no such
// credential; fn's error unchanged; ErrKeyChanged if fn changed Kind, ID or
// UserID; and an error wrapping ErrTimeRange for a time it cannot keep. In each
// of those cases it writes nothing. It is safe for concurrent use, also across
// processes.
func (s *Store) UpdateCredential(ctx context.Context, kind users.CredentialKind, id string, fn func(c *users.CredentialRecord) error, audit ...*users.AuditEntry) (*users.CredentialRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *users.CredentialRecord
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := queryCredential(ctx, tx, ` FOR UPDATE`, kind, id)
		if err != nil {
			return err
		}
		c := old.Clone()
		if err := fn(c); err != nil {
			return &fnError{err}
		}
		if c.Kind != old.Kind || c.ID != old.ID || c.UserID != old.UserID {
			return users.ErrKeyChanged
		}
		c = c.Clone() // fn may have kept c
		args, err := credentialArgs(c)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE userkit_credentials SET name = $4, created_at = $5, last_used_at = $6,
			counter = $7, data = $8 WHERE kind = $1 AND identifier = $2 AND user_id = $3`, args...); err != nil {
			return err
		}
		if err := insertAudit(ctx, tx, audit); err != nil {
			return err
		}
		out = c
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
		return nil, fmt.Errorf("postgres: update credential: %w", err)
	}
}

// DeleteCredential deletes the user's credential (kind, id) in one
// transaction. It first locks the user's row (FOR NO KEY UPDATE, which
// UpdateUser, RemovePassword and every DeleteCredential of the user also
// take), then, with a guard, reads the user's other credentials and calls
// guard with them: no change to the user, and no other delete of its
// credentials, from any process, can commit between guard's read and the
// delete. The
// transaction is run again after a deadlock or serialization failure, so guard
// may be called more than once. It returns ErrNotFound if there is no such
// credential or it is another user's, and guard's error unchanged; it writes
// nothing then. It is safe for concurrent use, also across processes.
func (s *Store) DeleteCredential(ctx context.Context, userID string, kind users.CredentialKind, id string, guard users.CredentialGuard, audit ...*users.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		u, err := queryUser(ctx, tx, sqlSelectUser+` WHERE id = $1 FOR NO KEY UPDATE`, userID)
		if err != nil {
			return err
		}
		if guard != nil {
			creds, err := userCredentials(ctx, tx, userID)
			if err != nil {
				return err
			}
			i := slices.IndexFunc(creds, func(c *users.CredentialRecord) bool { return c.Kind == kind && c.ID == id })
			if i < 0 {
				return users.ErrNotFound
			}
			if err := guard(u, slices.Delete(creds, i, i+1)); err != nil {
				return &fnError{err}
			}
		}
		tag, err := tx.Exec(ctx, `DELETE FROM userkit_credentials WHERE kind = $1 AND identifier = $2 AND user_id = $3`,
			string(kind), nonNil([]byte(id)), userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return users.ErrNotFound
		}
		return insertAudit(ctx, tx, audit)
	})
	var fe *fnError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return fe.err
	case errors.Is(err, users.ErrNotFound):
		return users.ErrNotFound
	default:
		return fmt.Errorf("postgres: delete credential: %w", err)
	}
}

// RemovePassword locks the user's row (FOR NO KEY UPDATE), reads the user and,
// with a guard, the user's credentials, calls guard with them, and clears the
// password and sets UpdatedAt, in one transaction: as in DeleteCredential, no
// guarded delete of the user's credentials, from any process, can commit
// between guard's read and the write. The transaction is run again after a
// deadlock or serialization failure, so guard may be called more than once. It
// returns the user as written, ErrNotFound if there is no such user, guard's
// error unchanged, and an error wrapping ErrTimeRange for a time it cannot
// keep; it writes nothing then. It is safe for concurrent use, also across
// processes.
func (s *Store) RemovePassword(ctx context.Context, userID string, at time.Time, guard users.CredentialGuard, audit ...*users.AuditEntry) (*users.UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var terr error
	atArg := encodeTime(at, &terr)
	if terr != nil {
		return nil, fmt.Errorf("postgres: remove password: %w", terr)
	}
	var out *users.UserRecord
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		u, err := queryUser(ctx, tx, sqlSelectUser+` WHERE id = $1 FOR NO KEY UPDATE`, userID)
		if err != nil {
			return err
		}
		if guard != nil {
			creds, err := userCredentials(ctx, tx, userID)
			if err != nil {
				return err
			}
			if err := guard(u.Clone(), creds); err != nil {
				return &fnError{err}
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE userkit_users SET password_hash = '', updated_at = $2 WHERE id = $1`,
			userID, atArg); err != nil {
			return err
		}
		if err := insertAudit(ctx, tx, audit); err != nil {
			return err
		}
		u.PasswordHash, u.UpdatedAt = "", at
		out = u
		return nil
	})
	var fe *fnError
	switch {
	case err == nil:
		return out, nil
	case errors.As(err, &fe):
		return nil, fe.err
	case errors.Is(err, users.ErrNotFound):
		return nil, users.ErrNotFound
	default:
		return nil, fmt.Errorf("postgres: remove password: %w", err)
	}
}
