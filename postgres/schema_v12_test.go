package postgres_test

import (
	"math"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
)

// TestNew_MigratesVersion11 builds the tables of schema version 11, whose
// rule appends a delta with every create, writes, moves and removes users
// there as that version did, with a role that was granted the tables, and
// opens them with New: every count must still be exact; after the
// migration a create appends no delta, also an INSERT that a process of
// version 11 prepared before the migration and runs after it, a move or a
// removal of a user created before the migration still appends its deltas,
// and the role keeps creating, moving, removing and folding; a fold must
// move the new users and the deltas into the counters without changing a
// count.
func TestNew_MigratesVersion11(t *testing.T) {
	db := openTestDB(t)
	schema := db.schema(t)
	pool := db.pool(t, schema)
	ctx := t.Context()
	tx := beginAtVersion(t, pool, 11)
	writeOldUsers(t, tx, "V11")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	app := newAppRole(t, db, schema)
	app.grant(t, pool, false) // as version 11 needed: no sequence

	// A process of version 11, its INSERT prepared before the migration.
	old, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Release()
	if _, err := old.Conn().Prepare(ctx, "v11insert", sqlOldInsertUser); err != nil {
		t.Fatal(err)
	}
	s := mustNew(t, pool)
	postgres.SetCountFoldAt(s, math.MaxInt64)
	checkCounts(t, s, pool, "after the migration")

	deltas := func() int { return countDeltas(t, pool) }
	before := deltas()
	if before != 7 { // four creates, a move, a removal
		t.Fatalf("%d deltas from version 11; want 7", before)
	}
	if _, err := old.Exec(ctx, "v11insert", "01V11OLDPROCESS0000000000", "v11-old@example.com",
		int64(math.MinInt64), "viewer", "active", "acct1", oldBase.UnixNano()); err != nil {
		t.Fatal(err)
	}
	createAndMove(t, s, "v12@example.com")
	if got := deltas(); got != before {
		t.Errorf("%d deltas after two creates and a move of a new user; want the %d of before", got, before)
	}
	if _, err := s.UpdateUser(ctx, "01V11USER0000000000000000C", func(r *users.UserRecord) (users.Revoke, error) {
		r.Status = users.StatusActive
		return users.Revoke{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "01V11USER0000000000000000D"); err != nil {
		t.Fatal(err)
	}
	if got := deltas(); got != before+3 {
		t.Errorf("%d deltas after a move and a removal of older users; want %d", got, before+3)
	}
	checkCounts(t, s, pool, "with new users and deltas")

	// The role the application connects as, granted the tables at version 11.
	as := mustNew(t, app.pool(t))
	postgres.SetCountFoldAt(as, 0)
	ar := newUser("v12-app@example.com")
	if err := as.CreateUser(ctx, ar); err != nil {
		t.Fatalf("CreateUser as the application role: %v", err)
	}
	if _, err := as.UpdateUser(ctx, "01V11USER0000000000000000A", func(r *users.UserRecord) (users.Revoke, error) {
		r.Role = users.RoleViewer
		return users.Revoke{}, nil
	}); err != nil {
		t.Fatalf("UpdateUser as the application role: %v", err)
	}
	if err := as.DeleteUser(ctx, ar.ID); err != nil {
		t.Fatalf("DeleteUser as the application role: %v", err)
	}
	if _, err := as.CountUsers(ctx, users.Match{}); err != nil {
		t.Fatalf("CountUsers, which folds, as the application role: %v", err)
	}
	var folded int64
	if err := pool.QueryRow(ctx, `SELECT epoch FROM userkit_user_count_folded`).Scan(&folded); err != nil || folded != 1 {
		t.Errorf("folded epoch %d, %v after the first fold; want 1", folded, err)
	}
	if got := deltas(); got != 0 {
		t.Errorf("%d deltas after a count that folds; want 0", got)
	}
	checkCounts(t, s, pool, "after a fold")
	if err := s.CreateUser(ctx, newUser("v12-after-fold@example.com")); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, s, pool, "after a create that follows the fold")
}
