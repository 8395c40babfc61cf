package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/oklog/ulid/v2"
	"github.com/userkit/users"
)

// ---- Audit log ----

// querier is what a statement runs on: the pool, or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// write runs fn, a method's one statement, and writes the audit entries after
// it in the same transaction. Without entries to write it runs fn alone on the
// pool, which a single statement keeps atomic. fn's error (ErrNotFound, say)
// rolls the transaction back, so no entry is written without its change. Like
// inTx it retries on serialization failures and deadlocks, fn included.
func (s *Store) write(ctx context.Context, audit []*users.AuditEntry, fn func(q querier) error) error {
	if !hasAudit(audit) {
		return retry(ctx, func() error { return fn(s.pool) })
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit)
	})
}

// hasAudit reports whether audit has an entry to write: one with a Type.
func hasAudit(audit []*users.AuditEntry) bool {
	for _, e := range audit {
		if e != nil && e.Type != "" {
			return true
		}
	}
	return false
}

// auditCols are the columns of userkit_audit, in the order of auditArgs and
// auditRow.dest.
const auditCols = `id, time, type, user_id, actor_id, session_id, ip, user_agent, reason, purpose, fields, data`

var sqlInsertAudit = `INSERT INTO userkit_audit (` + auditCols + `) VALUES (` + placeholders(1, 12) + `)
	ON CONFLICT (id) DO UPDATE SET time = EXCLUDED.time, type = EXCLUDED.type, user_id = EXCLUDED.user_id,
		actor_id = EXCLUDED.actor_id, session_id = EXCLUDED.session_id, ip = EXCLUDED.ip,
		user_agent = EXCLUDED.user_agent, reason = EXCLUDED.reason, purpose = EXCLUDED.purpose,
		fields = EXCLUDED.fields, data = EXCLUDED.data`

// auditArgs returns the values of auditCols for e, or an error wrapping
// ErrTimeRange for a Time the store cannot keep.
func auditArgs(e *users.AuditEntry) ([]any, error) {
	var err error
	at := encodeTime(e.Time, &err)
	if err != nil {
		return nil, err
	}
	var data []byte // NULL for a nil map
	if e.Data != nil {
		if data, err = json.Marshal(e.Data); err != nil {
			return nil, fmt.Errorf("encode audit data: %w", err)
		}
	}
	return []any{e.ID, at, string(e.Type), e.UserID, e.ActorID, e.SessionID, []byte(e.IP), []byte(e.UserAgent),
		e.Reason, string(e.Purpose), e.Fields, data}, nil
}

// checkAudit returns the error auditArgs gives for an entry of audit, if any,
// so that a method can refuse before it writes.
func checkAudit(audit []*users.AuditEntry) error {
	for _, e := range audit {
		if e == nil || e.Type == "" {
			continue
		}
		if _, err := auditArgs(e); err != nil {
			return err
		}
	}
	return nil
}

// insertAudit writes the entries of audit that have a Type, in tx, each
// user's after the entries of that user already stored (see orderedAudit).
// An entry with the ID of a stored one replaces it. Several entries go in one
// round trip, as a pipelined batch of statements.
func insertAudit(ctx context.Context, tx querier, audit []*users.AuditEntry) error {
	return writeAudit(ctx, tx, audit, true)
}

// insertNewUsersAudit is insertAudit for the entries of users that tx
// creates (CreateUsers): such a user has no stored entries to come after, and
// nobody else can write one before tx commits, so the entries go in as
// stamped, without the per-user locks, which a large import would pay for
// once per user.
func insertNewUsersAudit(ctx context.Context, tx querier, audit []*users.AuditEntry) error {
	return writeAudit(ctx, tx, audit, false)
}

// auditLockClass is the first key of the pg_advisory_xact_lock(int, int)
// locks that order each user's audit entries (the second is auditLockKey of
// the user ID): an arbitrary number that no other program is likely to use.
const auditLockClass int32 = 0x55_4b_41_4c

// auditLockKey returns the second key of a user's audit lock (FNV-1a of the
// ID). Two users may share a key; they then wait for each other, which costs
// time, never order.
func auditLockKey(userID string) int32 {
	h := uint32(2166136261)
	for i := 0; i < len(userID); i++ {
		h ^= uint32(userID[i])
		h *= 16777619
	}
	return int32(h)
}

// sqlInsertAuditAfter is sqlInsertAudit for an entry with a UserID, writing
// it only if no stored entry of its user has a greater ID: its RowsAffected
// is 0 for an entry that must be given a later ID first (restampAudit). The
// casts name the types that INSERT … SELECT cannot infer.
var sqlInsertAuditAfter = `INSERT INTO userkit_audit (` + auditCols + `)
	SELECT $1::text, $2::bigint, $3::text, $4::text, $5::text, $6::text, $7::bytea, $8::bytea,
		$9::text, $10::text, $11::text[], $12::json
	WHERE NOT EXISTS (SELECT 1 FROM userkit_audit WHERE user_id = $4 AND id > $1)
	ON CONFLICT (id) DO UPDATE SET time = EXCLUDED.time, type = EXCLUDED.type, user_id = EXCLUDED.user_id,
		actor_id = EXCLUDED.actor_id, session_id = EXCLUDED.session_id, ip = EXCLUDED.ip,
		user_agent = EXCLUDED.user_agent, reason = EXCLUDED.reason, purpose = EXCLUDED.purpose,
		fields = EXCLUDED.fields, data = EXCLUDED.data`

// writeAudit writes the entries of audit that have a Type, in tx. With
// ordered, it keeps each user's entries in the order their transactions
// commit, also when several Managers (processes) stamp them, each with its own
// clock and its own ULIDs:
//
//   - it takes a transaction-scoped advisory lock per user with entries (in
//     the order of their keys, so two transactions never wait for each other
//     in a circle), held until tx ends, so the entries of one user are
//     written by one transaction at a time;
//   - each entry goes in only if no stored entry of its user has a greater ID.
//     Under READ COMMITTED the insert, which begins after the lock was taken,
//     sees every entry of a transaction that held the lock before. An entry
//     that would sort before one of them gets a new ID (restampAudit).
//
// The locks and the inserts go in one pipelined batch: one round trip, as
// before there was an order to keep, and a second one only for an entry that
// must be given a later ID. The entries of one call keep their order among
// themselves unless another Manager's entry falls between two of them, which
// needs two IDs of one millisecond around it.
func writeAudit(ctx context.Context, tx querier, audit []*users.AuditEntry, ordered bool) error {
	var batch pgx.Batch
	if ordered {
		var keys []int32
		for _, e := range audit {
			if e != nil && e.Type != "" && e.UserID != "" {
				keys = append(keys, auditLockKey(e.UserID))
			}
		}
		slices.Sort(keys)
		for _, k := range slices.Compact(keys) {
			batch.Queue(`SELECT pg_advisory_xact_lock($1::int, $2::int)`, auditLockClass, k)
		}
	}
	locks := batch.Len()
	var queued []*users.AuditEntry
	for _, e := range audit {
		if e == nil || e.Type == "" {
			continue
		}
		args, err := auditArgs(e)
		if err != nil {
			return err
		}
		sql := sqlInsertAudit
		if ordered && e.UserID != "" {
			sql = sqlInsertAuditAfter
		}
		batch.Queue(sql, args...)
		queued = append(queued, e)
	}
	switch {
	case len(queued) == 0:
		return nil
	case batch.Len() == 1: // one entry without a lock (nobody's, or a new user's): one statement
		if _, err := tx.Exec(ctx, sqlInsertAudit, batch.QueuedQueries[0].Arguments...); err != nil {
			return fmt.Errorf("write audit entry %s: %w", queued[0].ID, err)
		}
		return nil
	}
	res := tx.SendBatch(ctx, &batch)
	for range locks {
		if _, err := res.Exec(); err != nil {
			res.Close()
			return fmt.Errorf("lock audit log of user: %w", err)
		}
	}
	var late []*users.AuditEntry
	for i, e := range queued {
		tag, err := res.Exec()
		if err != nil {
			res.Close()
			return fmt.Errorf("write audit entry %s: %w", e.ID, err)
		}
		if tag.RowsAffected() == 0 && batch.QueuedQueries[locks+i].SQL == sqlInsertAuditAfter {
			late = append(late, e)
		}
	}
	if err := res.Close(); err != nil {
		return err
	}
	for _, e := range late {
		if err := restampAudit(ctx, tx, e); err != nil {
			return err
		}
	}
	return nil
}

// restampAudit writes e, an entry whose user has a stored entry with a greater
// ID, with the least ID after the newest of them: the same millisecond, the
// random part plus one (and so, once in 2^80, the next millisecond). e gets
// the new ID, so that the caller, and the event hook after the commit, see
// what was stored. Its Time moves forward only as far as the new ID needs:
// to the newest entry's Time if that is later (the clock of the Manager that
// wrote it was ahead), or to the new ID's millisecond, so that an entry's ID
// stays a ULID of its Time and a user's entries listed by ID have
// non-decreasing Times. If the newest ID is not a ULID, which a Store may
// assume never happens, e is written as it is.
func restampAudit(ctx context.Context, tx querier, e *users.AuditEntry) error {
	var newest string
	var at int64
	err := tx.QueryRow(ctx, `SELECT id, time FROM userkit_audit WHERE user_id = $1 ORDER BY id DESC LIMIT 1`,
		e.UserID).Scan(&newest, &at)
	if err != nil {
		return fmt.Errorf("read newest audit entry of %s: %w", e.UserID, err)
	}
	if u, err := ulid.ParseStrict(newest); err == nil {
		i := len(u) - 1
		for ; i >= 0; i-- {
			u[i]++
			if u[i] != 0 {
				break
			}
		}
		if i < 0 {
			return fmt.Errorf("audit entry %s of %s: no ID after %s", e.ID, e.UserID, newest)
		}
		e.ID = u.String()
		if t := decodeTime(at); e.Time.Before(t) {
			e.Time = t
		}
		if ms := int64(u.Time()); e.Time.UnixMilli() < ms {
			e.Time = time.UnixMilli(ms).UTC()
		}
	}
	args, err := auditArgs(e)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sqlInsertAudit, args...); err != nil {
		return fmt.Errorf("write audit entry %s: %w", e.ID, err)
	}
	return nil
}

// auditRow receives one row of auditCols.
type auditRow struct {
	e             users.AuditEntry
	at            int64
	typ, purpose  string
	ip, userAgent []byte
	fields        []string
	data          []byte
}

func (r *auditRow) dest() []any {
	return []any{&r.e.ID, &r.at, &r.typ, &r.e.UserID, &r.e.ActorID, &r.e.SessionID, &r.ip, &r.userAgent,
		&r.e.Reason, &r.purpose, &r.fields, &r.data}
}

func (r *auditRow) entry() (*users.AuditEntry, error) {
	e := r.e
	e.Time = decodeTime(r.at)
	e.Type, e.Purpose = users.EventType(r.typ), users.Purpose(r.purpose)
	e.IP, e.UserAgent = string(r.ip), string(r.userAgent)
	e.Fields = r.fields
	if r.data != nil {
		if err := json.Unmarshal(r.data, &e.Data); err != nil {
			return nil, fmt.Errorf("decode data of audit entry %s: %w", e.ID, err)
		}
	}
	return &e, nil
}

// AppendAudit writes the audit entries in one transaction. It returns an
// error wrapping ErrTimeRange, writing nothing, for a Time it cannot keep. It
// is safe for concurrent use, also across processes.
func (s *Store) AppendAudit(ctx context.Context, audit ...*users.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkAudit(audit); err != nil {
		return fmt.Errorf("postgres: append audit: %w", err)
	}
	if !hasAudit(audit) {
		return nil
	}
	if err := s.inTx(ctx, func(tx pgx.Tx) error { return insertAudit(ctx, tx, audit) }); err != nil {
		return fmt.Errorf("postgres: append audit: %w", err)
	}
	return nil
}

// ulidAt returns the least ULID of millisecond ms, or "" if there is none.
func ulidAt(ms int64) string {
	var u ulid.ULID
	if ms < 0 || u.SetTime(uint64(ms)) != nil {
		return ""
	}
	return u.String()
}

// auditSQL returns ListAudit's statement for q and its arguments (see
// params.queryArgs).
//
// Besides the conditions of AuditQuery.Matches it bounds the ID by the time
// range: an entry's ID is a ULID of its Time's millisecond (users.AuditEntry.ID),
// so an entry before Until has an ID below the least ULID of the millisecond
// after Until's, and one at or after Since an ID at or above the least ULID of
// Since's. With those bounds a page is read backwards from an index ending in
// id ((user_id, id), (actor_id, id), (type, id) or the primary key) starting
// at the range's newest entry, and stops after LIMIT rows.
func auditSQL(q users.AuditQuery) (string, []any) {
	var p params
	if q.UserID != "" {
		p.conds = append(p.conds, "user_id = "+p.arg(q.UserID))
	}
	if q.ActorID != "" {
		p.conds = append(p.conds, "actor_id = "+p.arg(q.ActorID))
	}
	if len(q.Types) > 0 {
		types := make([]string, len(q.Types))
		for i, t := range q.Types {
			types[i] = string(t)
		}
		p.conds = append(p.conds, "type = ANY ("+p.arg(types)+")")
	}
	if !q.Since.IsZero() {
		p.conds = append(p.conds, "time >= "+p.arg(encodeBound(q.Since)))
		if id := ulidAt(q.Since.UnixMilli()); id != "" {
			p.conds = append(p.conds, "id >= "+p.arg(id))
		}
	}
	if !q.Until.IsZero() {
		p.conds = append(p.conds, "time < "+p.arg(encodeBound(q.Until)))
		if ms := q.Until.UnixMilli(); ms >= 0 {
			if id := ulidAt(ms + 1); id != "" {
				p.conds = append(p.conds, "id < "+p.arg(id))
			}
		}
	}
	if q.Before != "" {
		p.conds = append(p.conds, "id < "+p.arg(q.Before))
	}
	sql := `SELECT ` + auditCols + ` FROM userkit_audit` + p.where() + ` ORDER BY id DESC LIMIT ` + p.arg(int64(q.Limit))
	return sql, p.queryArgs()
}

// ListAudit returns at most q.Limit entries q selects, newest (greatest ID)
// first, below q.Before, in one statement (see auditSQL for the indexes it
// uses). A Limit of zero or less gives no entries; the result is never nil. It
// is safe for concurrent use, also across processes.
func (s *Store) ListAudit(ctx context.Context, q users.AuditQuery) ([]*users.AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []*users.AuditEntry{}
	if q.Limit <= 0 {
		return out, nil
	}
	sql, args := auditSQL(q)
	err := retry(ctx, func() error {
		out = out[:0]
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		var r auditRow
		_, err = pgx.ForEachRow(rows, r.dest(), func() error {
			e, err := r.entry()
			if err != nil {
				return err
			}
			out = append(out, e)
			r = auditRow{} // fields and data are not reset by a NULL otherwise
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit: %w", err)
	}
	return out, nil
}

// sqlPurgeAudit deletes up to $2 audit entries whose time is before $1, found
// through the time index, and returns how many it found and how many it
// deleted (see sqlPurge).
const sqlPurgeAudit = `WITH found AS (
		SELECT id FROM userkit_audit WHERE time < $1 ORDER BY time LIMIT $2
	), deleted AS (
		DELETE FROM userkit_audit WHERE id = ANY (ARRAY (SELECT id FROM found)) AND time < $1
		RETURNING 1
	)
	SELECT (SELECT count(*) FROM found), (SELECT count(*) FROM deleted)`

// DeleteAuditBefore deletes every audit entry whose Time is before t and
// returns how many it deleted. It reads the time index, in batches of
// purgeBatch rows, so its cost grows with the number deleted; it is not one
// atomic step, and on an error it returns how many it had deleted with the
// error. It is safe for concurrent use, also across processes.
func (s *Store) DeleteAuditBefore(ctx context.Context, t time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	bound := encodeBound(t)
	total := 0
	for {
		var found, deleted int64
		err := retry(ctx, func() error {
			return s.pool.QueryRow(ctx, sqlPurgeAudit, bound, int64(purgeBatch)).Scan(&found, &deleted)
		})
		if err != nil {
			return total, fmt.Errorf("postgres: delete audit: %w", err)
		}
		total += int(deleted)
		if found < purgeBatch {
			return total, nil
		}
	}
}
