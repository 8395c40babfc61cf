package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/userkit/users"
)

// errRaced is returned inside CreateUsers's transaction when the insert hit a
// unique key that a concurrent write took after the batch's keys were looked
// up: the transaction is rolled back and tried again.
var errRaced = errors.New("a concurrent write took a key of the batch")

// sqlKeyHolders selects the users that hold any of the IDs ($1), emails ($2),
// usernames ($3) or external IDs ($4) of a batch.
const sqlKeyHolders = `SELECT id, email, username, coalesce(external_id, '') FROM userkit_users
	WHERE id = ANY ($1) OR email = ANY ($2) OR (username = ANY ($3) AND username <> '') OR external_id = ANY ($4)`

// CreateUsers stores many new users in one transaction and returns one error
// per record, in order: nil for a stored one; ErrDuplicateEmail,
// ErrDuplicateUsername or ErrDuplicateExternalID (in that order) for one whose key another user has,
// stored before or by an earlier record of rs; ErrConflict for one whose ID
// exists. The records are judged in order, as CreateUser would judge them one
// after the other, so a refused record takes no key from a later one.
//
// It reads the holders of the batch's keys in one statement, decides in Go,
// and writes the accepted records with one COPY into userkit_users. If a
// concurrent write took one of their keys in between, the COPY fails on the
// UNIQUE constraint, which still decides, and the whole transaction is rolled
// back and tried again, a few times; the error result says when that kept
// happening. So concurrent CreateUser and CreateUsers calls never give two
// users one email.
//
// The second result is not nil, and nothing is stored, for a failure of the
// database or ctx, or for a record with a time the store cannot keep (an error
// wrapping ErrTimeRange). An empty batch stores nothing. It is safe for
// concurrent use, also across processes.
func (s *Store) CreateUsers(ctx context.Context, rs []*users.UserRecord, audit ...*users.AuditEntry) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	errs := make([]error, len(rs))
	if len(rs) == 0 {
		return errs, nil
	}
	if len(audit) != 0 && len(audit) != len(rs) {
		return nil, fmt.Errorf("postgres: create users: %d audit entries for %d records", len(audit), len(rs))
	}
	if err := checkAudit(audit); err != nil {
		return nil, fmt.Errorf("postgres: create users: %w", err)
	}
	args := make([][]any, len(rs))
	for i, r := range rs {
		a, err := userArgs(r)
		if err != nil {
			return nil, fmt.Errorf("postgres: create users: record %d: %w", i, err)
		}
		args[i] = a
	}
	for attempt := 1; ; attempt++ {
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			if err := createUsers(ctx, tx, rs, args, errs); err != nil {
				return err
			}
			var stored []*users.AuditEntry
			for i, e := range audit {
				if errs[i] == nil {
					stored = append(stored, e)
				}
			}
			return insertNewUsersAudit(ctx, tx, stored)
		})
		switch {
		case err == nil:
			return errs, nil
		case errors.Is(err, errRaced) && attempt < maxAttempts:
			continue
		}
		return nil, fmt.Errorf("postgres: create users: %w", err)
	}
}

// createUsers is one try of CreateUsers, in tx: it sets errs and inserts the
// records it accepts. args are the records' userArgs.
func createUsers(ctx context.Context, tx pgx.Tx, rs []*users.UserRecord, args [][]any, errs []error) error {
	ids := make([]string, len(rs))
	emails := make([]string, len(rs))
	var usernames, externals []string
	for i, r := range rs {
		ids[i], emails[i] = r.ID, r.Email
		if r.Username != "" {
			usernames = append(usernames, r.Username)
		}
		if r.ExternalID != "" {
			externals = append(externals, r.ExternalID)
		}
	}
	takenID, takenEmail, takenUsername, takenExternal := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	rows, err := tx.Query(ctx, sqlKeyHolders, ids, emails, usernames, externals)
	if err != nil {
		return err
	}
	var id, email, username, external string
	_, err = pgx.ForEachRow(rows, []any{&id, &email, &username, &external}, func() error {
		takenID[id], takenEmail[email] = true, true
		if username != "" {
			takenUsername[username] = true
		}
		if external != "" {
			takenExternal[external] = true
		}
		return nil
	})
	if err != nil {
		return err
	}

	var (
		copyRows                  [][]any
		roles, statuses, accounts []string // of the rows copied, for the counts
	)
	for i, r := range rs {
		switch {
		case takenEmail[r.Email]:
			errs[i] = users.ErrDuplicateEmail
		case r.Username != "" && takenUsername[r.Username]:
			errs[i] = users.ErrDuplicateUsername
		case r.ExternalID != "" && takenExternal[r.ExternalID]:
			errs[i] = users.ErrDuplicateExternalID
		case takenID[r.ID]:
			errs[i] = users.ErrConflict
		default:
			errs[i] = nil
			takenID[r.ID], takenEmail[r.Email] = true, true
			if r.Username != "" {
				takenUsername[r.Username] = true
			}
			if r.ExternalID != "" {
				takenExternal[r.ExternalID] = true
			}
			copyRows = append(copyRows, append(args[i][:len(args[i]):len(args[i])], int64(0)))
			roles, statuses, accounts = append(roles, string(r.Role)), append(statuses, string(r.Status)), append(accounts, r.AccountID)
		}
	}
	if len(copyRows) == 0 {
		return nil
	}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"userkit_users"}, copyColumns, pgx.CopyFromRows(copyRows))
	if code, _ := pgCode(err); code == codeUniqueViolation {
		return errRaced
	}
	if err != nil {
		return err
	}
	if n != int64(len(copyRows)) {
		return fmt.Errorf("copied %d users of %d", n, len(copyRows))
	}
	// The rows copied have count_epoch 0, counted as folded (see migration
	// 12): the batch's counts are added in one statement instead, so that a
	// count need not read a large import through the index until a fold.
	if _, err := tx.Exec(ctx, sqlCountCopied, roles, statuses, accounts); err != nil {
		return fmt.Errorf("count the users copied: %w", err)
	}
	return nil
}

// copyColumns are the columns CreateUsers copies: userWriteColumns and
// count_epoch, which it sets to 0 (already folded).
var copyColumns = append(slices.Clone(userWriteColumns), "count_epoch")

// sqlCountCopied adds to userkit_user_counts the users of a batch, given as
// arrays of their roles ($1), statuses ($2) and accounts ($3), in one upsert
// in key order.
const sqlCountCopied = `INSERT INTO userkit_user_counts AS c (kind, role, status, account_id, shard, n)
	SELECT k,
		CASE WHEN k & 1 <> 0 THEN d.role ELSE '' END,
		CASE WHEN k & 2 <> 0 THEN d.status ELSE '' END,
		CASE WHEN k & 4 <> 0 THEN d.account_id ELSE '' END,
		pg_backend_pid() % 16, count(*)
	FROM unnest($1::text[], $2::text[], $3::text[]) AS d (role, status, account_id)
		CROSS JOIN (VALUES (3), (4)) AS kinds (k)
	WHERE k = 3 OR d.account_id <> ''
	GROUP BY 1, 2, 3, 4
	ORDER BY 1, 2, 3, 4
	ON CONFLICT (kind, role, status, account_id, shard) DO UPDATE SET n = c.n + EXCLUDED.n`

// GetUsers returns, in one statement, the users with these IDs in the order
// given, nil for an ID that no user has; an ID given twice gives two copies.
// It is safe for concurrent use, also across processes.
func (s *Store) GetUsers(ctx context.Context, ids []string) ([]*users.UserRecord, error) {
	out, err := s.getUsers(ctx, "id", ids, func(r *users.UserRecord) string { return r.ID })
	if err != nil {
		return nil, fmt.Errorf("postgres: get users: %w", err)
	}
	return out, nil
}

// GetUsersByEmail returns, in one statement, the users with exactly these
// emails in the order given, nil for an email that no user has (the empty one
// among them). It is safe for concurrent use, also across processes.
func (s *Store) GetUsersByEmail(ctx context.Context, emails []string) ([]*users.UserRecord, error) {
	out, err := s.getUsers(ctx, "email", emails, func(r *users.UserRecord) string { return r.Email })
	if err != nil {
		return nil, fmt.Errorf("postgres: get users by email: %w", err)
	}
	return out, nil
}

// getUsers reads the users whose column (id or email, both unique) is one of
// keys, with = ANY, and returns them in the order of keys; key gives a
// record's value of the column. Empty keys, and keys with U+0000 or not valid
// UTF-8 (which no stored text equals), name nobody and are not sent.
func (s *Store) getUsers(ctx context.Context, column string, keys []string, key func(*users.UserRecord) string) ([]*users.UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]*users.UserRecord, len(keys))
	var ask []string
	for _, k := range keys {
		if k != "" && strings.IndexByte(k, 0) < 0 && utf8.ValidString(k) {
			ask = append(ask, k)
		}
	}
	if len(ask) == 0 {
		return out, nil
	}
	found := make(map[string]*users.UserRecord, len(ask))
	err := retry(ctx, func() error {
		clear(found)
		rows, err := s.pool.Query(ctx, sqlSelectUser+` WHERE `+column+` = ANY ($1)`, ask)
		if err != nil {
			return err
		}
		var u userRow
		_, err = pgx.ForEachRow(rows, u.dest(), func() error {
			r, err := u.record()
			if err != nil {
				return err
			}
			found[key(r)] = r
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		if r := found[k]; r != nil {
			out[i] = r.Clone()
		}
	}
	return out, nil
}
