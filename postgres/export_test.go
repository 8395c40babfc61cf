package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/userkit/users"
)

// SchemaVersion lets the external tests see the version New migrates to.
var SchemaVersion = schemaVersion

// Migration returns the statements that bring the schema from version v-1 to
// v, for tests that build an old schema as an old version of the package did.
func Migration(v int) []string { return migrations[v-1] }

// EnsureTrigram lets tests that build an old schema install pg_trgm and put it
// on the transaction's search_path, as migrate does before version 2.
var EnsureTrigram = ensureTrigram

// SetCacheHooks sets functions the Store's cache listener calls before and
// after it forgets the user a notification names.
func SetCacheHooks(s *Store, before, after func(userID string)) {
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	s.cache.before, s.cache.after = before, after
}

// CacheState returns whether the Store's cache is on, how many sessions it
// holds and the backend PID of its listening connection.
func CacheState(s *Store) (on bool, sessions int, pid uint32) {
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	return s.cache.on, len(s.cache.entries), s.cache.pid
}

// AuditLock returns the two keys of the pg_advisory_xact_lock that orders the
// audit entries of the user userID.
func AuditLock(userID string) (int32, int32) { return auditLockClass, auditLockKey(userID) }

// AppendAuditUnordered is AppendAudit without the per-user order (the
// lock and the check), as CreateUsers writes its new users' entries: the
// baseline of BenchmarkAppendAudit.
func AppendAuditUnordered(ctx context.Context, s *Store, audit ...*users.AuditEntry) error {
	return s.inTx(ctx, func(tx pgx.Tx) error { return insertNewUsersAudit(ctx, tx, audit) })
}

// SetCountFoldAt sets how many count deltas, and how many users created
// since the last fold, CountUsers reads before it folds them (countFoldAt
// and countFoldCreatedAt), so that tests can fold on every count.
func SetCountFoldAt(s *Store, n int64) { s.foldAt, s.foldCreatedAt = n, n }

// CountFoldAt is how many count deltas CountUsers reads without folding them.
const CountFoldAt = countFoldAt

// CountFoldCreatedAt is how many users created since the last fold
// CountUsers reads without folding them.
const CountFoldCreatedAt = countFoldCreatedAt
