package postgres_test

import (
	"math"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
)

// TestNew_MigratesVersion10 builds the tables of schema version 10, whose
// count triggers upsert counters, writes, moves and removes users there as
// that version did, and opens them with New: every count must still be
// exact, the changes after the migration must not rewrite counters, also an
// INSERT that a process of the version before prepared before the migration
// and runs after it, and a fold must move them into the counters without
// changing a count.
func TestNew_MigratesVersion10(t *testing.T) {
	db := openTestDB(t)
	pool := db.pool(t, db.schema(t))
	ctx := t.Context()
	tx := beginAtVersion(t, pool, 10)
	writeOldUsers(t, tx, "V10")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// A process of the version before, its INSERT prepared before the
	// migration, as a running one has it.
	old, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Release()
	if _, err := old.Conn().Prepare(ctx, "v10insert", `INSERT INTO userkit_users (id, email, username, email_verified,
		email_verified_at, first_name, last_name, role, status, avatar_url, account_id,
		preferences, created_at, updated_at, last_login_at, password_hash, generation,
		first_name_lower, last_name_lower, last_active_at, external_id)
		VALUES ('01V10OLDPROCESS0000000000', 'v10-old@example.com', '', false, $1, '', '', 'viewer', 'active', '',
		'acct1', NULL, $2, $2, $1, '', 0, '', '', $1, NULL)`); err != nil {
		t.Fatal(err)
	}
	s := mustNew(t, pool)
	postgres.SetCountFoldAt(s, math.MaxInt64)
	checkCounts(t, s, pool, "after the migration")

	deltas := func() int { return countDeltas(t, pool) }
	var counters int
	if err := pool.QueryRow(ctx, `SELECT sum(n) FROM userkit_user_counts`).Scan(&counters); err != nil {
		t.Fatal(err)
	}
	createAndMove(t, s, "v11@example.com")
	if err := s.DeleteUser(ctx, "01V10USER0000000000000000C"); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(ctx, "v10insert", int64(math.MinInt64), oldBase.UnixNano()); err != nil {
		t.Fatal(err)
	}
	var after int
	if err := pool.QueryRow(ctx, `SELECT sum(n) FROM userkit_user_counts`).Scan(&after); err != nil || after != counters {
		t.Errorf("counters sum to %d, %v after two creates, a move and a removal; want %d as before: they must append deltas", after, err, counters)
	}
	// Since version 12 a create appends no delta, nor does a move of a user
	// created since the last fold (the index counts it as it is): only the
	// removal of a user the counters hold does.
	if got := deltas(); got != 1 {
		t.Errorf("%d deltas after two creates, a move and a removal; want 1", got)
	}
	checkCounts(t, s, pool, "with deltas")

	postgres.SetCountFoldAt(s, 0)
	if _, err := s.CountUsers(ctx, users.Match{}); err != nil {
		t.Fatal(err)
	}
	if got := deltas(); got != 0 {
		t.Errorf("%d deltas after a count that folds; want 0", got)
	}
	postgres.SetCountFoldAt(s, math.MaxInt64)
	checkCounts(t, s, pool, "after a fold")
}

// sqlOldInsertUser inserts a user as versions 10 and 11 did, with the ID
// $1, the email $2, the role $4, the status $5, the account $6, created at
// $7, and the zero time $3 for the rest.
const sqlOldInsertUser = `INSERT INTO userkit_users (id, email, username, email_verified,
	email_verified_at, first_name, last_name, role, status, avatar_url, account_id,
	preferences, created_at, updated_at, last_login_at, password_hash, generation,
	first_name_lower, last_name_lower, last_active_at, external_id)
	VALUES ($1, $2, '', false, $3, '', '', $4, $5, '', $6, NULL, $7, $7, $3, '', 0, '', '', $3, NULL)`

// writeOldUsers writes in tx, at an older schema version, four users, whose
// IDs are "01", tag, "USER0000000000000000" and A to D: a user, an admin of
// acct0, a suspended user of acct0 and an admin of acct1; it then moves A
// to admin of acct1 and removes B.
func writeOldUsers(t *testing.T, tx pgx.Tx, tag string) {
	t.Helper()
	ctx := t.Context()
	id := "01" + tag + "USER0000000000000000"
	for i, u := range []struct{ role, status, account string }{
		{"user", "active", ""}, {"admin", "active", "acct0"}, {"user", "suspended", "acct0"}, {"admin", "active", "acct1"},
	} {
		if _, err := tx.Exec(ctx, sqlOldInsertUser, id+string(rune('A'+i)), strings.ToLower(tag)+"-"+string(rune('a'+i))+"@example.com",
			int64(math.MinInt64), u.role, u.status, u.account, oldBase.UnixNano()); err != nil {
			t.Fatalf("insert user: %v", err)
		}
	}
	for _, stmt := range []string{
		`UPDATE userkit_users SET role = 'admin', account_id = 'acct1' WHERE id = '` + id + `A'`,
		`DELETE FROM userkit_users WHERE id = '` + id + `B'`,
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
}
