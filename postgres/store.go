package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/userkit/users"
)

var _ users.Store = (*Store)(nil)

// ErrTimeRange is returned, wrapped, by a method asked to store a time the store
// cannot keep exactly; it writes nothing then. The store keeps the zero
// time.Time and every time from 1677-09-21T00:12:43.145224193Z to
// 2262-04-11T23:47:16.854775807Z, the range of int64 nanoseconds since 1970.
var ErrTimeRange = errors.New("postgres: time outside the range the store keeps (years 1678 to 2262, or zero)")

// Store is a users.Store kept in PostgreSQL tables, for applications that run
// several processes or machines against one database.
//
// Every rule of the Store contract holds across processes, not only across
// goroutines: uniqueness is enforced by UNIQUE constraints, and every
// read-modify-write holds a row lock for its duration (see each method). A Store
// is safe for concurrent use by any number of goroutines and processes.
//
// A Store from New holds no state of its own besides the pool, and the caller
// closes the pool when done. One from NewWithOptions with a session cache also
// holds the cache and its listening connection, which Close stops.
type Store struct {
	pool          *pgxpool.Pool
	cache         *sessionCache // nil without Options.SessionCache
	foldAt        int64         // countFoldAt, which tests lower
	foldCreatedAt int64         // countFoldCreatedAt, which tests lower
}

// forgetUser drops the user's sessions from the Store's cache, if it has one.
// The methods that end or change a session or its user call it when they
// return, whatever their outcome (a write whose commit failed may still have
// committed), so that their own Store never serves what they changed.
func (s *Store) forgetUser(userID string) {
	if s.cache != nil {
		s.cache.forgetUser(userID)
	}
}

// New returns a Store over pool, first creating its tables or migrating them to
// the version this package writes, in one transaction. The tables (all named
// userkit_*) live in the schema that is first on the connections' search_path;
// every connection of the pool must have the same search_path.
//
// New is safe to call from many processes at once: a transaction-scoped advisory
// lock makes them migrate one after the other, and a migration that fails leaves
// the tables as they were. It returns an error wrapping ErrSchemaTooNew, changing
// nothing, for tables written by a newer version of this package; an error
// for a database whose encoding is not UTF8; and an error naming pg_trgm,
// changing nothing, when migrating needs that extension and the server does
// not have it or the role may not create it (see "Indexes and the pg_trgm
// extension" in the package documentation). Tables that are current need no
// DDL, so an application role allowed only SELECT, INSERT, UPDATE and DELETE on
// them, and SELECT and UPDATE on the sequence userkit_user_count_epoch, can
// open them once a more privileged role has migrated (the migration to schema
// version 12, which adds the sequence, grants it to the roles that may
// already write userkit_users).
func New(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if pool == nil {
		return nil, errors.New("postgres: New: nil pool")
	}
	s := &Store{pool: pool, foldAt: countFoldAt, foldCreatedAt: countFoldCreatedAt}
	if err := s.inTx(ctx, func(tx pgx.Tx) error { return migrate(ctx, tx) }); err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	return s, nil
}

// ---- Running statements ----

// maxAttempts is how many times a transaction is tried when PostgreSQL aborts it
// for a serialization failure or a deadlock.
const maxAttempts = 5

// retryable reports whether err is a failure PostgreSQL asks the client to retry:
// a serialization failure (40001) or a detected deadlock (40P01). Nothing was
// written then.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// retry calls fn until it succeeds, fails for another reason than a retryable
// one, or has been tried maxAttempts times, sleeping a little, at random, between
// tries.
func retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == maxAttempts || !retryable(err) {
			return err
		}
		wait := time.Duration(rand.Int64N(int64(time.Millisecond) << attempt))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// inTx runs fn in a READ COMMITTED transaction and commits it, retrying the
// whole transaction (fn included) on serialization failures and deadlocks.
//
// READ COMMITTED is chosen explicitly, whatever the database's default: the
// methods rely on its rule that every statement sees what was committed before
// it began, so that a statement run after taking a row lock sees every write of
// the transaction that held the lock before.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return retry(ctx, func() error {
		tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			// A failed rollback closes the connection, which ends the
			// transaction as well; fn's error is the one to report.
			_ = tx.Rollback(ctx)
			return err
		}
		return tx.Commit(ctx)
	})
}

// pgCode returns the SQLSTATE and constraint name of err, or empty strings if it
// is not an error from the server.
func pgCode(err error) (code, constraint string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code, pe.ConstraintName
	}
	return "", ""
}

const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeLockNotAvailable    = "55P03"
)

// ---- Encoding ----

// zeroTime is how the zero time.Time is stored: below every other stored time,
// as the zero time.Time is before every other time.
const zeroTime = math.MinInt64

// encodeTime returns t as nanoseconds since 1970-01-01 UTC, and zeroTime for the
// zero time.Time. A time that int64 nanoseconds cannot hold sets *errp to an
// error wrapping ErrTimeRange (if it is not set yet) and returns 0.
func encodeTime(t time.Time, errp *error) int64 {
	if t.IsZero() {
		return zeroTime
	}
	n := t.UnixNano()
	if n == zeroTime || !time.Unix(0, n).Equal(t) {
		if *errp == nil {
			*errp = fmt.Errorf("%w: %s", ErrTimeRange, t.UTC().Format(time.RFC3339Nano))
		}
		return 0
	}
	return n
}

// encodeBound returns t in encodeTime's encoding for comparing it with stored
// times. A time out of encodeTime's range compares with every stored time as
// the nearest int64 does, so it is clamped to that.
func encodeBound(t time.Time) int64 {
	if t.IsZero() {
		return zeroTime
	}
	var err error
	if n := encodeTime(t, &err); err == nil {
		return n
	}
	if t.Unix() < 0 {
		return zeroTime // after zero, before every other storable time
	}
	return math.MaxInt64
}

// decodeTime is the inverse of encodeTime. Times come back in UTC.
func decodeTime(n int64) time.Time {
	if n == zeroTime {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// encodePreferences returns p as JSON, or nil (SQL NULL) for a nil map, so that
// a nil map and an empty one each come back as they went in.
func encodePreferences(p map[string]string) ([]byte, error) {
	if p == nil {
		return nil, nil
	}
	return json.Marshal(p)
}

// nonNil returns b, or an empty slice for nil: bytea columns are NOT NULL, and a
// Store keeps what it is given, even a missing hash.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// ---- Users ----

// userColumns are the columns of userkit_users that make a UserRecord, in the
// order userRow.dest and userArgs use.
var userColumns = []string{
	"id", "email", "username", "email_verified", "email_verified_at",
	"first_name", "last_name", "role", "status", "avatar_url", "account_id",
	"preferences", "created_at", "updated_at", "last_login_at",
	"password_hash", "generation", "last_active_at", "external_id",
}

// userWriteColumns are userColumns and the derived search columns, in the order
// of userArgs.
var userWriteColumns = append(slices.Clone(userColumns), "first_name_lower", "last_name_lower")

// userCols returns userColumns for a select list, each prefixed with prefix.
func userCols(prefix string) string {
	cols := make([]string, len(userColumns))
	for i, c := range userColumns {
		cols[i] = prefix + c
	}
	return strings.Join(cols, ", ")
}

// placeholders returns "$from, $from+1, …" for n parameters.
func placeholders(from, n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = "$" + strconv.Itoa(from+i)
	}
	return strings.Join(ps, ", ")
}

var (
	sqlSelectUser = `SELECT ` + userCols("") + ` FROM userkit_users`
	sqlInsertUser = `INSERT INTO userkit_users (` + strings.Join(userWriteColumns, ", ") +
		`) VALUES (` + placeholders(1, len(userWriteColumns)) + `)`
	sqlUpdateUser = func() string {
		// $1 is the ID, which never changes; the rest are userArgs from email on.
		sets := make([]string, 0, len(userWriteColumns)-1)
		for i, c := range userWriteColumns[1:] {
			sets = append(sets, c+" = $"+strconv.Itoa(i+2))
		}
		return `UPDATE userkit_users SET ` + strings.Join(sets, ", ") + ` WHERE id = $1`
	}()
)

// userArgs returns the values of userWriteColumns for r.
func userArgs(r *users.UserRecord) ([]any, error) {
	var err error
	prefs, perr := encodePreferences(r.Preferences)
	if perr != nil {
		return nil, fmt.Errorf("encode preferences: %w", perr)
	}
	args := []any{
		r.ID, r.Email, r.Username, r.EmailVerified, encodeTime(r.EmailVerifiedAt, &err),
		r.FirstName, r.LastName, string(r.Role), string(r.Status), r.AvatarURL, r.AccountID,
		prefs, encodeTime(r.CreatedAt, &err), encodeTime(r.UpdatedAt, &err), encodeTime(r.LastLoginAt, &err),
		r.PasswordHash, r.Generation, encodeTime(r.LastActiveAt, &err), externalID(r.ExternalID),
		strings.ToLower(r.FirstName), strings.ToLower(r.LastName),
	}
	return args, err
}

// userRow receives one row of userColumns.
type userRow struct {
	r                                                           users.UserRecord
	role, status                                                string
	verifiedAt, createdAt, updatedAt, lastLoginAt, lastActiveAt int64
	prefs                                                       []byte
	externalID                                                  *string
}

// externalID is the column value of an external ID: NULL for none.
func externalID(id string) *string {
	if id == "" {
		return nil
	}
	return &id
}

func (u *userRow) dest() []any {
	return []any{
		&u.r.ID, &u.r.Email, &u.r.Username, &u.r.EmailVerified, &u.verifiedAt,
		&u.r.FirstName, &u.r.LastName, &u.role, &u.status, &u.r.AvatarURL, &u.r.AccountID,
		&u.prefs, &u.createdAt, &u.updatedAt, &u.lastLoginAt,
		&u.r.PasswordHash, &u.r.Generation, &u.lastActiveAt, &u.externalID,
	}
}

func (u *userRow) record() (*users.UserRecord, error) {
	r := u.r
	r.Role, r.Status = users.Role(u.role), users.Status(u.status)
	r.EmailVerifiedAt = decodeTime(u.verifiedAt)
	r.CreatedAt = decodeTime(u.createdAt)
	r.UpdatedAt = decodeTime(u.updatedAt)
	r.LastLoginAt = decodeTime(u.lastLoginAt)
	r.LastActiveAt = decodeTime(u.lastActiveAt)
	r.ExternalID = ""
	if u.externalID != nil {
		r.ExternalID = *u.externalID
	}
	if u.prefs != nil {
		if err := json.Unmarshal(u.prefs, &r.Preferences); err != nil {
			return nil, fmt.Errorf("decode preferences of user %s: %w", r.ID, err)
		}
	}
	return &r, nil
}

// queryUser returns the one user the query selects, or ErrNotFound.
func queryUser(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, sql string, args ...any) (*users.UserRecord, error) {
	var u userRow
	if err := q.QueryRow(ctx, sql, args...).Scan(u.dest()...); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, users.ErrNotFound
		}
		return nil, err
	}
	return u.record()
}

// userConflict turns a unique violation on constraint, raised while writing a
// user with this email and username, into the contract's error. self is the ID
// of the user being updated, or nil for one being created. PostgreSQL reports
// only the first constraint it happened to check, so the keys are looked up
// again to answer in the contract's order: email, then username, then
// external ID, then ID.
func (s *Store) userConflict(ctx context.Context, constraint, email, username, external string, self *string) error {
	var emailTaken, usernameTaken, externalTaken bool
	err := s.pool.QueryRow(ctx, `SELECT
			EXISTS (SELECT 1 FROM userkit_users WHERE email = $1 AND id IS DISTINCT FROM $3),
			EXISTS (SELECT 1 FROM userkit_users WHERE username = $2 AND username <> '' AND id IS DISTINCT FROM $3),
			EXISTS (SELECT 1 FROM userkit_users WHERE external_id = $4 AND id IS DISTINCT FROM $3)`,
		email, username, self, externalID(external)).Scan(&emailTaken, &usernameTaken, &externalTaken)
	switch {
	case err == nil && emailTaken:
		return users.ErrDuplicateEmail
	case err == nil && usernameTaken:
		return users.ErrDuplicateUsername
	case err == nil && externalTaken:
		return users.ErrDuplicateExternalID
	}
	// The key's holder is gone already, or the lookup failed: go by the name.
	switch constraint {
	case "userkit_users_email_key":
		return users.ErrDuplicateEmail
	case "userkit_users_username_key":
		return users.ErrDuplicateUsername
	case "userkit_users_external_id_key":
		return users.ErrDuplicateExternalID
	}
	return users.ErrConflict
}

// CreateUser stores a new user. The UNIQUE constraints on email, on non-empty
// username and on ID make the check and the write one atomic step, across
// processes too: of any number of concurrent calls with one email exactly one
// succeeds. It returns ErrDuplicateEmail or ErrDuplicateUsername if the key is
// taken (email first), then ErrDuplicateExternalID if another user has
// r.ExternalID, ErrConflict if r.ID exists, and an error wrapping
// ErrTimeRange for a time it cannot keep; it writes nothing then. It is safe for
// concurrent use, also across processes.
func (s *Store) CreateUser(ctx context.Context, r *users.UserRecord, audit ...*users.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	args, err := userArgs(r)
	if err == nil {
		err = checkAudit(audit)
	}
	if err != nil {
		return fmt.Errorf("postgres: create user: %w", err)
	}
	err = s.write(ctx, audit, func(q querier) error {
		_, err := q.Exec(ctx, sqlInsertUser, args...)
		return err
	})
	if code, constraint := pgCode(err); code == codeUniqueViolation {
		return s.userConflict(ctx, constraint, r.Email, r.Username, r.ExternalID, nil)
	}
	if err != nil {
		return fmt.Errorf("postgres: create user: %w", err)
	}
	return nil
}

// GetUser returns the user with the ID, or ErrNotFound. It is safe for
// concurrent use, also across processes.
func (s *Store) GetUser(ctx context.Context, id string) (*users.UserRecord, error) {
	return s.getUser(ctx, "get user", `WHERE id = $1`, id)
}

// GetUserByEmail returns the user with exactly this email, or ErrNotFound. It is
// safe for concurrent use, also across processes.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (*users.UserRecord, error) {
	return s.lookupUser(ctx, "get user by email", `WHERE email = $1`, email)
}

// GetUserByUsername returns the user with exactly this username, or
// ErrNotFound. An empty username never matches. It is safe for concurrent use,
// also across processes.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (*users.UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if username == "" {
		return nil, users.ErrNotFound
	}
	// username <> '' lets the planner use the partial unique index.
	return s.lookupUser(ctx, "get user by username", `WHERE username = $1 AND username <> ''`, username)
}

// GetUserByExternalID returns the user whose ExternalID is exactly id, or
// ErrNotFound. An empty id never matches. It is safe for concurrent use, also
// across processes.
func (s *Store) GetUserByExternalID(ctx context.Context, id string) (*users.UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, users.ErrNotFound
	}
	return s.getUser(ctx, "get user by external id", `WHERE external_id = $1`, id)
}

// lookupUser is getUser for the lookups a login makes by email or username,
// made to cost the same whether they find someone or not: the one statement
// reads the user the condition selects and a decoy, the first user by ID,
// decodes the row that ranks first and answers ErrNotFound if that was the
// decoy. So the store work of a login does not tell whether its identifier
// names an account (SECURITY.md, equal work).
func (s *Store) lookupUser(ctx context.Context, op, where string, arg string) (*users.UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sql := `SELECT * FROM ((SELECT ` + userCols("") + `, 0 AS rank FROM userkit_users ` + where + `)` +
		` UNION ALL (SELECT ` + userCols("") + `, 1 AS rank FROM userkit_users ORDER BY id LIMIT 1)) AS found` +
		` ORDER BY rank LIMIT 1`
	var r *users.UserRecord
	err := retry(ctx, func() error {
		var u userRow
		var rank int32
		if err := s.pool.QueryRow(ctx, sql, arg).Scan(append(u.dest(), &rank)...); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return users.ErrNotFound // no users at all
			}
			return err
		}
		rec, err := u.record()
		if err != nil {
			return err
		}
		if rank != 0 {
			return users.ErrNotFound // the decoy
		}
		r = rec
		return nil
	})
	if err != nil && !errors.Is(err, users.ErrNotFound) {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	return r, err
}

func (s *Store) getUser(ctx context.Context, op, where string, arg string) (*users.UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var r *users.UserRecord
	err := retry(ctx, func() (err error) {
		r, err = queryUser(ctx, s.pool, sqlSelectUser+" "+where, arg)
		return err
	})
	if err != nil && !errors.Is(err, users.ErrNotFound) {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	return r, err
}

// fnError carries an error returned by a caller's fn out of inTx, so that it is
// returned unchanged and never retried.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }

// UpdateUser reads the user with SELECT … FOR NO KEY UPDATE in a transaction,
// calls fn with the decoded copy, and writes back what fn left together with
// fn's Revoke, before committing: no other write to the user, from any process,
// can come between the read and the write. If PostgreSQL aborts the transaction
// for a deadlock or serialization failure, the whole transaction, fn included,
// is run again, so fn may be called more than once.
//
// It returns the record as written; ErrNotFound if there is no such user; fn's
// error unchanged if fn fails; ErrDuplicateEmail or ErrDuplicateUsername (email
// first) if fn took another user's email or username; ErrKeyChanged if fn
// changed the ID, ExternalID or Generation; and an error wrapping ErrTimeRange for a time it cannot
// keep. In every one of those cases it writes nothing. It is safe for concurrent
// use, also across processes.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(r *users.UserRecord) (users.Revoke, error), audit ...*users.AuditEntry) (*users.UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer s.forgetUser(id)
	var (
		written             *users.UserRecord
		triedEmail, triedUN string // what the last try wrote, to explain a unique violation
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		written = nil
		old, err := queryUser(ctx, tx, sqlSelectUser+` WHERE id = $1 FOR NO KEY UPDATE`, id)
		if err != nil {
			return err
		}
		work := old.Clone()
		rv, err := fn(work)
		if err != nil {
			return &fnError{err}
		}
		if work.ID != old.ID || work.Generation != old.Generation || work.ExternalID != old.ExternalID {
			return users.ErrKeyChanged
		}
		r := work.Clone() // fn may have kept work
		if rv.Sessions {
			r.Generation++
		}
		args, err := userArgs(r)
		if err != nil {
			return err
		}
		triedEmail, triedUN = r.Email, r.Username
		if _, err := tx.Exec(ctx, sqlUpdateUser, args...); err != nil {
			return err
		}
		// These statements begin after the row lock was taken, so they see every
		// session or token created by a transaction that held it before.
		if rv.Sessions {
			if _, err := tx.Exec(ctx, `DELETE FROM userkit_sessions WHERE user_id = $1`, id); err != nil {
				return err
			}
			if err := deleteUserChallenges(ctx, tx, id); err != nil {
				return err
			}
		}
		if len(rv.Tokens) > 0 {
			purposes := make([]string, len(rv.Tokens))
			for i, p := range rv.Tokens {
				purposes[i] = string(p)
			}
			if _, err := tx.Exec(ctx, `DELETE FROM userkit_tokens WHERE user_id = $1 AND purpose = ANY ($2)`,
				id, purposes); err != nil {
				return err
			}
		}
		if err := insertAudit(ctx, tx, audit); err != nil {
			return err
		}
		written = r
		return nil
	})
	var fe *fnError
	switch code, constraint := pgCode(err); {
	case err == nil:
		return written.Clone(), nil
	case errors.As(err, &fe):
		return nil, fe.err
	case errors.Is(err, users.ErrNotFound):
		return nil, users.ErrNotFound
	case code == codeUniqueViolation:
		return nil, s.userConflict(ctx, constraint, triedEmail, triedUN, "", &id)
	default:
		return nil, fmt.Errorf("postgres: update user: %w", err)
	}
}

// DeleteUser deletes the user and, in the same transaction, its login-throttle
// entry (users.UserThrottleKey(id)); the user's sessions, one-time tokens, MFA
// record and challenges and credentials go with it through ON DELETE CASCADE foreign keys,
// which also mean none of them can ever outlive its user, whatever races it. The email and username are free again
// once it returns. It returns ErrNotFound if there is no such user. It is safe
// for concurrent use, also across processes.
func (s *Store) DeleteUser(ctx context.Context, id string, audit ...*users.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer s.forgetUser(id)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM userkit_users WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return users.ErrNotFound
		}
		_, err = tx.Exec(ctx, `DELETE FROM userkit_login_attempts WHERE key = $1`, string(users.UserThrottleKey(id)))
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit)
	})
	if err != nil && !errors.Is(err, users.ErrNotFound) {
		return fmt.Errorf("postgres: delete user: %w", err)
	}
	return err
}

// params collects the conditions and parameters of a query's WHERE clause.
type params struct {
	conds []string
	args  []any
}

// arg adds a parameter and returns its placeholder.
func (p *params) arg(v any) string {
	p.args = append(p.args, v)
	return "$" + strconv.Itoa(len(p.args))
}

func (p *params) where() string {
	if len(p.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(p.conds, " AND ")
}

// filter adds the conditions that select exactly the users m.Matches selects,
// and returns false if m selects nobody for a reason the database cannot be
// asked about: a field with the character U+0000, or an exact field that is
// not valid UTF-8, which no stored text equals. (A Search that is not valid
// UTF-8 is ListUsers's and CountUsers's to handle, with scanUsers.)
//
// Search is a case-sensitive LIKE substring of the email and username and of
// the names lower-cased by Go (first_name_lower, last_name_lower), with the term
// as given, as Match.Matches compares. The same LIKE on searchText comes first:
// it selects a superset, and is what lets the planner use the trigram index
// userkit_users_search_idx (for terms of three characters or more).
func (p *params) filter(m users.Match) bool {
	for _, c := range []struct{ col, val string }{
		{"email", m.Email},
		{"username", m.Username},
		{"role", string(m.Role)},
		{"status", string(m.Status)},
		{"account_id", m.AccountID},
		{"", m.Search},
	} {
		if strings.IndexByte(c.val, 0) >= 0 || (c.col != "" && !utf8.ValidString(c.val)) {
			return false
		}
		if c.col != "" && c.val != "" {
			p.conds = append(p.conds, c.col+" = "+p.arg(c.val))
		}
	}
	if !m.ActiveSince.IsZero() {
		p.conds = append(p.conds, "last_active_at >= "+p.arg(encodeBound(m.ActiveSince)))
	}
	if !m.InactiveSince.IsZero() {
		p.conds = append(p.conds, "last_active_at < "+p.arg(encodeBound(m.InactiveSince)))
	}
	if m.Search != "" {
		like := p.arg("%" + escapeLike(m.Search) + "%")
		p.conds = append(p.conds, "("+searchText+") LIKE "+like,
			"(email LIKE "+like+" OR username LIKE "+like+
				" OR first_name_lower LIKE "+like+" OR last_name_lower LIKE "+like+
				" OR (first_name_lower <> '' AND last_name_lower <> '' AND first_name_lower || ' ' || last_name_lower LIKE "+like+"))")
	}
	return true
}

// queryArgs returns the parameters for a query planned anew each time, with a
// custom plan for its values: pgx's QueryExecModeCacheDescribe, first, as pgx
// takes it, sends it as an unnamed statement, which PostgreSQL never replaces
// by a cached generic plan. A generic plan cannot know which role, status or
// search term it will be given, so it takes each role and status for half of
// the users and any term for a common one, and reads the whole table to count
// admins, or walks every user in ID order to find a page of them (TestExplain
// shows both). Planning costs a fraction of a millisecond.
func (p *params) queryArgs() []any {
	return append([]any{pgx.QueryExecModeCacheDescribe}, p.args...)
}

// escapeLike escapes the LIKE metacharacters % and _ and the escape character
// (a backslash, LIKE's default) in s, so that the pattern matches s literally.
var escapeLike = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace

// listSQL returns ListUsers's statement for q and its arguments (see
// queryArgs), or ok false if q selects nobody
// without asking.
func listSQL(q users.ListQuery) (sql string, args []any, ok bool) {
	var p params
	if !p.filter(q.Match) {
		return "", nil, false
	}
	if q.After != "" {
		p.conds = append(p.conds, "id > "+p.arg(q.After))
	}
	order := "ASC"
	if q.Before != "" {
		p.conds = append(p.conds, "id < "+p.arg(q.Before))
		order = "DESC"
	}
	page := " ORDER BY id " + order + " LIMIT " + p.arg(int64(q.Limit))
	if q.Offset <= 0 {
		return sqlSelectUser + p.where() + page, p.queryArgs(), true
	}
	// The offset is skipped in a subquery that selects only IDs, so that an
	// index ending in id (the primary key, or a filter's) can skip it with an
	// index-only scan, never reading the skipped users' rows; only the page's
	// rows are read.
	page += " OFFSET " + p.arg(int64(q.Offset))
	sql = sqlSelectUser + ` WHERE id IN (SELECT id FROM userkit_users` + p.where() + page + `) ORDER BY id ` + order
	return sql, p.queryArgs(), true
}

// countSQL is listSQL for CountUsers.
func countSQL(m users.Match) (sql string, args []any, ok bool) {
	var p params
	if !p.filter(m) {
		return "", nil, false
	}
	return `SELECT count(*) FROM userkit_users` + p.where(), p.queryArgs(), true
}

// ListUsers returns at most q.Limit users q.Match selects in ascending ID
// order (bytewise), as the Store contract describes: after q.After, or the last
// ones before q.Before, skipping q.Offset matching users counted from the
// cursor. It reads one page with keyset pagination on the primary key; with
// Before it reads backwards and reverses. If both After and Before are set (the
// contract forbids it) both bounds apply, with Before's meaning of Offset and
// Limit. A Limit of zero or less gives no users; the result is never nil. It is
// safe for concurrent use, also across processes.
func (s *Store) ListUsers(ctx context.Context, q users.ListQuery) ([]*users.UserRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		return []*users.UserRecord{}, nil
	}
	if !utf8.ValidString(q.Match.Search) {
		return s.scanUsers(ctx, q)
	}
	sql, args, ok := listSQL(q)
	if !ok {
		return []*users.UserRecord{}, nil
	}
	var out []*users.UserRecord
	err := retry(ctx, func() error {
		out = []*users.UserRecord{}
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		var u userRow
		_, err = pgx.ForEachRow(rows, u.dest(), func() error {
			r, err := u.record()
			if err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	if q.Before != "" {
		slices.Reverse(out)
	}
	return out, nil
}

// scanUsers answers ListUsers for a Search that is not valid UTF-8, which
// PostgreSQL cannot take as text but which may still be a substring, byte for
// byte, of a stored text (a piece of a multi-byte character): it reads every
// user the other fields select, in ID order, and keeps those q.Match.Matches
// selects. The Manager never sends such a term.
func (s *Store) scanUsers(ctx context.Context, q users.ListQuery) ([]*users.UserRecord, error) {
	rest := q.Match
	rest.Search = ""
	var all []*users.UserRecord
	var p params
	if !p.filter(rest) {
		return []*users.UserRecord{}, nil
	}
	if q.After != "" {
		p.conds = append(p.conds, "id > "+p.arg(q.After))
	}
	if q.Before != "" {
		p.conds = append(p.conds, "id < "+p.arg(q.Before))
	}
	err := retry(ctx, func() error {
		all = nil
		rows, err := s.pool.Query(ctx, sqlSelectUser+p.where()+" ORDER BY id", p.args...)
		if err != nil {
			return err
		}
		var u userRow
		_, err = pgx.ForEachRow(rows, u.dest(), func() error {
			r, err := u.record()
			if err == nil && q.Match.Matches(&r.User) {
				all = append(all, r)
			}
			return err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	if q.Before != "" { // the last Limit before Before, after skipping Offset from the end
		all = all[:max(len(all)-max(q.Offset, 0), 0)]
		return slices.Clone(all[max(len(all)-q.Limit, 0):]), nil
	}
	all = all[min(max(q.Offset, 0), len(all)):]
	return slices.Clone(all[:min(q.Limit, len(all))]), nil
}

// keptCount returns the statement and arguments that read the count of the
// users m selects from the counts that triggers and each user's count_epoch
// keep (see migrations 5, 11 and 12), or ok false if m has a condition, or a
// combination of them, that they do not count by: they count by nothing,
// role, status, role and status, and account alone. The statement returns the count, the sum of
// the rows of userkit_user_counts and of userkit_user_count_deltas that m
// selects and of the users m selects created since the last fold (whose
// count_epoch is above userkit_user_count_folded's), and how many deltas
// and such users there are, for CountUsers to decide whether to fold them.
// The counters summed are at most 16 for an account, and 16 for each role
// and status a user has for the rest, found through the counts' primary key,
// which the conditions' prefix (kind, role) selects; the deltas are the
// changes since the last fold and the users since it are read through
// userkit_users_count_epoch_idx, and CountUsers folds both once either is
// more than countFoldAt. None of these numbers grows with the users.
func keptCount(m users.Match) (sql string, args []any, ok bool) {
	if m.Email != "" || m.Username != "" || m.Search != "" || !m.ActiveSince.IsZero() || !m.InactiveSince.IsZero() ||
		(m.AccountID != "" && (m.Role != "" || m.Status != "")) {
		return "", nil, false
	}
	var p params
	var conds []string
	if m.AccountID != "" {
		conds = append(conds, "account_id = "+p.arg(m.AccountID))
		p.conds = append(p.conds, "kind = 4", conds[0])
	} else {
		p.conds = append(p.conds, "kind = 3")
		if m.Role != "" {
			conds = append(conds, "role = "+p.arg(string(m.Role)))
		}
		if m.Status != "" {
			conds = append(conds, "status = "+p.arg(string(m.Status)))
		}
		p.conds = append(p.conds, conds...)
	}
	if len(conds) == 0 {
		conds = append(conds, "true")
	}
	cond := strings.Join(conds, " AND ")
	return `SELECT c.n + d.n + u.n, d.rows, u.rows
		FROM (SELECT coalesce(sum(n), 0)::bigint AS n FROM userkit_user_counts` + p.where() + `) AS c,
			(SELECT coalesce(sum(n) FILTER (WHERE ` + cond + `), 0)::bigint AS n, count(*) AS rows
				FROM userkit_user_count_deltas) AS d,
			(SELECT count(*) FILTER (WHERE ` + cond + `) AS n, count(*) AS rows
				FROM userkit_users WHERE count_epoch > userkit_user_count_folded()) AS u`, p.args, true
}

// countFoldAt is how many rows of userkit_user_count_deltas a count reads
// before CountUsers folds them into userkit_user_counts.
const countFoldAt = 64

// countFoldCreatedAt is how many users created since the last fold a count
// reads before CountUsers folds them into userkit_user_counts. It is higher
// than countFoldAt because that fold holds off writes while it runs: with a
// count that never pauses beside 32 concurrent creates, folding past 64
// cost the creates 8 to 10 hundredths of their throughput, past 256 none
// against version 11's lockless folds (BenchmarkCreateUserConcurrentPaired),
// while reading 256 such users through the index costs a count little
// (BenchmarkCountUsersDeltas).
const countFoldCreatedAt = 256

// foldLockTimeout bounds how long a fold waits for the lock on
// userkit_users (see migration 12), during which creates, updates and
// removals queue behind it: past it, the fold leaves the users created since
// the last fold to be counted through the index until a later fold, and
// folds only the deltas.
const foldLockTimeout = "50ms"

// foldCounts folds the deltas (sqlFoldCounts) into the counters and, with
// created, the users created since the last fold too (sqlFoldEpoch, under
// the lock on userkit_users that migration 12 describes), in one
// transaction, again after a deadlock. Without created, or if the lock is
// not had within foldLockTimeout, it folds the deltas alone, which needs no
// lock.
func (s *Store) foldCounts(ctx context.Context, created bool) error {
	var err error
	if created {
		err = s.inTx(ctx, func(tx pgx.Tx) error {
			// One round trip, so that the lock is held for the fold and the
			// commit's round trip only.
			var b pgx.Batch
			b.Queue(`SET LOCAL lock_timeout = '` + foldLockTimeout + `'`)
			b.Queue(`LOCK TABLE userkit_users IN SHARE ROW EXCLUSIVE MODE`)
			b.Queue(`SET LOCAL lock_timeout = 0`)
			b.Queue(sqlFoldEpoch)
			b.Queue(sqlFoldCounts)
			return tx.SendBatch(ctx, &b).Close()
		})
	}
	if code, _ := pgCode(err); !created || code == codeLockNotAvailable {
		err = retry(ctx, func() error {
			_, err := s.pool.Exec(ctx, sqlFoldCounts)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("fold counts: %w", err)
	}
	return nil
}

// sqlFoldEpoch, run under the lock of migration 12, starts the next count
// epoch and adds to userkit_user_counts every user created since the last
// fold (count_epoch above userkit_user_count_folded's), all of whom have the
// epoch being ended, and records that epoch as folded: the lock holds off
// every write to userkit_users, so no such user is being created, moved or
// removed while it counts them.
const sqlFoldEpoch = `WITH folded AS (SELECT epoch FROM userkit_user_count_folded),
	moved AS (UPDATE userkit_user_count_folded SET epoch = nextval('userkit_user_count_epoch') - 1),
	d AS (SELECT role, status, account_id, count(*) AS n FROM userkit_users
		WHERE count_epoch > (SELECT epoch FROM folded) GROUP BY 1, 2, 3)
	` + sqlAddToCounters

// sqlFoldCounts moves every row of userkit_user_count_deltas it sees into
// userkit_user_counts, in one statement: it adds exactly the rows it
// deletes, so a delta is counted once, whether a concurrent fold deleted it
// first (then this one skips it) or a change appended it after this
// statement began (then the next fold takes it).
const sqlFoldCounts = `WITH d AS (DELETE FROM userkit_user_count_deltas RETURNING role, status, account_id, n)
	` + sqlAddToCounters

// sqlAddToCounters ends a statement whose CTE d has rows of role, status,
// account_id and n: it adds them to userkit_user_counts (shard 0), to the
// counts of both kinds. The upsert takes its rows in key order, as the
// triggers of version 5 did, so that two folds never lock two counters in
// opposite orders.
const sqlAddToCounters = `INSERT INTO userkit_user_counts AS c (kind, role, status, account_id, shard, n)
	SELECT k,
		CASE WHEN k & 1 <> 0 THEN d.role ELSE '' END,
		CASE WHEN k & 2 <> 0 THEN d.status ELSE '' END,
		CASE WHEN k & 4 <> 0 THEN d.account_id ELSE '' END,
		0, sum(d.n)
	FROM d CROSS JOIN (VALUES (3), (4)) AS kinds (k)
	WHERE k = 3 OR d.account_id <> ''
	GROUP BY 1, 2, 3, 4
	HAVING sum(d.n) <> 0
	ORDER BY 1, 2, 3, 4
	ON CONFLICT (kind, role, status, account_id, shard) DO UPDATE SET n = c.n + EXCLUDED.n`

// CountUsers returns how many users f selects. With no condition, or only
// Role, Status or both, or only AccountID, it sums the few rows of counts and
// of deltas that every write to the users keeps exact in its own transaction,
// and the users created since the last fold, read through an index (see
// migrations 5, 11 and 12 in schema.go), whatever the number of users;
// otherwise it counts the users in one statement. Either way the count is of
// one moment. When it read more than 64 deltas or more than 256 users created
// since the last fold it then folds them into the counts, in a transaction of
// its own;
// folding the users holds off writes to the users while it runs and waits at
// most 50ms for them (past that it folds the deltas alone), so the role it
// connects as needs DELETE on userkit_user_count_deltas, INSERT and UPDATE
// on userkit_user_counts and UPDATE on userkit_user_count_folded and on the
// sequence userkit_user_count_epoch, as every other write does; an error of
// the fold is returned, wrapped, as the count's. It is safe for concurrent
// use, also across processes.
func (s *Store) CountUsers(ctx context.Context, f users.Match) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !utf8.ValidString(f.Search) {
		rs, err := s.scanUsers(ctx, users.ListQuery{Match: f, Limit: math.MaxInt})
		return len(rs), err
	}
	sql, args, ok := countSQL(f)
	if !ok {
		return 0, nil
	}
	var n, deltas, unfolded int64
	dest := []any{&n}
	if ksql, kargs, ok := keptCount(f); ok {
		sql, args, dest = ksql, kargs, append(dest, &deltas, &unfolded)
	}
	err := retry(ctx, func() error {
		return s.pool.QueryRow(ctx, sql, args...).Scan(dest...)
	})
	if err == nil && (deltas > s.foldAt || unfolded > s.foldCreatedAt) {
		err = s.foldCounts(ctx, unfolded > s.foldCreatedAt)
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: count users: %w", err)
	}
	return int(n), nil
}

// sessionArgs returns the arguments of sqlCreateSession for sess; a time it
// cannot keep sets *terr (see encodeTime).
func sessionArgs(sess *users.SessionRecord, terr *error) []any {
	return []any{
		sess.UserID, nonNil(sess.TokenHash), sess.ID, sess.UserGeneration,
		encodeTime(sess.CreatedAt, terr), encodeTime(sess.ExpiresAt, terr), encodeTime(sess.LastSeenAt, terr),
		[]byte(sess.IP), []byte(sess.UserAgent), methodStrings(sess.Methods), encodeTime(sess.SecondFactorAt, terr),
		encodeTime(sess.AuthenticatedAt, terr), int64(sess.IdleTimeout),
	}
}

// CreateTokenDecoy runs CreateToken's statements in one transaction (a user
// row locked, the token and the audit entries inserted) and deletes what it
// inserted before the commit, so that the transaction writes and flushes as
// much as CreateToken's and keeps nothing; see users.Store. The token row is
// written for the first user by ID, whatever t.UserID says, since its user_id
// must name a user (in a store without users it is not written). A row already
// stored under t's hash or an entry's ID is left alone. It is safe for
// concurrent use, also across processes.
func (s *Store) CreateTokenDecoy(ctx context.Context, t *users.TokenRecord, audit ...*users.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var terr error
	created, expires := encodeTime(t.CreatedAt, &terr), encodeTime(t.ExpiresAt, &terr)
	var entries [][]any
	for _, e := range audit {
		if e == nil || e.Type == "" || terr != nil {
			continue
		}
		var args []any
		args, terr = auditArgs(e)
		entries = append(entries, args)
	}
	if terr != nil {
		return fmt.Errorf("postgres: create token decoy: %w", terr)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var owner string
		err := tx.QueryRow(ctx, `SELECT id FROM userkit_users ORDER BY id LIMIT 1 FOR KEY SHARE`).Scan(&owner)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		inserted := false
		if owner != "" {
			var h []byte
			err := tx.QueryRow(ctx, `INSERT INTO userkit_tokens (`+tokenCols+`) VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (hash) DO NOTHING RETURNING hash`,
				nonNil(t.Hash), owner, string(t.Purpose), t.Email, created, expires).Scan(&h)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			inserted = err == nil
		}
		var ids []string
		for _, args := range entries {
			var id string
			err := tx.QueryRow(ctx, `INSERT INTO userkit_audit (`+auditCols+`) VALUES (`+placeholders(1, 12)+`)
				ON CONFLICT (id) DO NOTHING RETURNING id`, args...).Scan(&id)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if err == nil {
				ids = append(ids, id)
			}
		}
		_, err = tx.Exec(ctx, `WITH t AS (DELETE FROM userkit_tokens WHERE $1::boolean AND hash = $2)
			DELETE FROM userkit_audit WHERE id = ANY ($3::text[])`, inserted, nonNil(t.Hash), ids)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: create token decoy: %w", err)
	}
	return nil
}

// ---- Expiry ----

// purgeBatch is how many expired rows of one table DeleteExpired deletes per
// statement, so that purging a large backlog holds no lock for long.
const purgeBatch = 1000

// sqlPurge deletes up to $2 rows of one table whose expires_at is at or before
// $1, found through the expires_at index and deleted through the primary key
// (= ANY (ARRAY(…)) keeps the planner from reading the whole expired range
// again), and returns how many it found and how many it deleted. The condition
// is repeated in the DELETE so that a row whose expiry was moved later since the
// search is kept.
func sqlPurge(table, key string) string {
	return `WITH found AS (
			SELECT ` + key + ` FROM ` + table + ` WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2
		), deleted AS (
			DELETE FROM ` + table + ` WHERE ` + key + ` = ANY (ARRAY (SELECT ` + key + ` FROM found)) AND expires_at <= $1
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM found), (SELECT count(*) FROM deleted)`
}

var sqlPurges = []string{
	sqlPurge("userkit_sessions", "token_hash"),
	sqlPurge("userkit_tokens", "hash"),
	sqlPurge("userkit_login_attempts", "key"),
	sqlPurge("userkit_mfa_challenges", "hash"),
	sqlPurge("userkit_provider_flows", "hash"),
	sqlPurge("userkit_ceremonies", "hash"),
}

// DeleteExpired deletes every session, one-time token, MFA challenge,
// provider flow, ceremony and login-throttle entry whose ExpiresAt is at or before now, and returns how
// many it deleted. It reads each table's expires_at index, in batches of purgeBatch rows, so its cost
// grows with the number deleted, not the number stored; it is not one atomic
// step, and on an error it returns how many it had deleted with the error. It is
// safe for concurrent use, also across processes. It also folds the deltas
// and the users created since the last fold into the counters, as
// CountUsers does once it read more than 64 or 256 (not counted in the
// number returned), so that they do not pile up where nothing counts.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	bound := encodeBound(now)
	total := 0
	for _, sql := range sqlPurges {
		for {
			var found, deleted int64
			err := retry(ctx, func() error {
				return s.pool.QueryRow(ctx, sql, bound, int64(purgeBatch)).Scan(&found, &deleted)
			})
			if err != nil {
				return total, fmt.Errorf("postgres: delete expired: %w", err)
			}
			total += int(deleted)
			if found < purgeBatch {
				break
			}
		}
	}
	if err := s.foldCounts(ctx, true); err != nil {
		return total, fmt.Errorf("postgres: delete expired: %w", err)
	}
	return total, nil
}
