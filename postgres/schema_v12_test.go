package postgres_test

import (
	"context"
	"math"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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
	insert := `INSERT INTO userkit_users (id, email, username, email_verified,
		email_verified_at, first_name, last_name, role, status, avatar_url, account_id,
		preferences, created_at, updated_at, last_login_at, password_hash, generation,
		first_name_lower, last_name_lower, last_active_at, external_id)
		VALUES ($1, $2, '', false, $3, '', '', $4, $5, '', $6, NULL, $7, $7, $3, '', 0, '', '', $3, NULL)`
	for i, u := range []struct{ role, status, account string }{
		{"user", "active", ""}, {"admin", "active", "acct0"}, {"user", "suspended", "acct0"}, {"admin", "active", "acct1"},
	} {
		if _, err := tx.Exec(ctx, insert, "01V11USER0000000000000000"+string(rune('A'+i)),
			"v11-"+string(rune('a'+i))+"@example.com", int64(math.MinInt64), u.role, u.status, u.account,
			oldBase.UnixNano()); err != nil {
			t.Fatalf("insert user: %v", err)
		}
	}
	for _, stmt := range []string{
		`UPDATE userkit_users SET role = 'admin', account_id = 'acct1' WHERE id = '01V11USER0000000000000000A'`,
		`DELETE FROM userkit_users WHERE id = '01V11USER0000000000000000B'`,
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	app := appRole(t, db, schema, pool)

	// A process of version 11, its INSERT prepared before the migration.
	old, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Release()
	if _, err := old.Conn().Prepare(ctx, "v11insert", insert); err != nil {
		t.Fatal(err)
	}
	s := mustNew(t, pool)
	postgres.SetCountFoldAt(s, math.MaxInt64)
	checkCounts(t, s, pool, "after the migration")

	deltas := func() (n int) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM userkit_user_count_deltas`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := deltas()
	if before != 7 { // four creates, a move, a removal
		t.Fatalf("%d deltas from version 11; want 7", before)
	}
	if _, err := old.Exec(ctx, "v11insert", "01V11OLDPROCESS0000000000", "v11-old@example.com",
		int64(math.MinInt64), "viewer", "active", "acct1", oldBase.UnixNano()); err != nil {
		t.Fatal(err)
	}
	r := newUser("v12@example.com")
	r.AccountID = "acct0"
	if err := s.CreateUser(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateUser(ctx, r.ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.Role, r.AccountID = users.RoleAdmin, "acct1"
		return users.Revoke{}, nil
	}); err != nil {
		t.Fatal(err)
	}
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
	as := mustNew(t, app)
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

// appRole makes a role that may only use the tables of schema as version
// 11's users were told to grant (USAGE on the schema; SELECT, INSERT,
// UPDATE and DELETE on all its tables, granted by the owner's pool), and
// returns a pool that connects as it.
func appRole(t *testing.T, db *testDB, schema string, owner *pgxpool.Pool) *pgxpool.Pool {
	t.Helper()
	ctx := t.Context()
	role := schema + "_app"
	quoted := pgx.Identifier{role}.Sanitize()
	if _, err := db.admin.Exec(ctx, `CREATE ROLE `+quoted+` LOGIN PASSWORD 'app-password'`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.admin.Exec(context.Background(), `DROP OWNED BY `+quoted+`; DROP ROLE `+quoted); err != nil {
			t.Errorf("drop role: %v", err)
		}
	})
	if _, err := owner.Exec(ctx, `GRANT USAGE ON SCHEMA `+pgx.Identifier{schema}.Sanitize()+` TO `+quoted+`;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA `+pgx.Identifier{schema}.Sanitize()+` TO `+quoted); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(db.dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.User, cfg.ConnConfig.Password = role, "app-password"
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}
