package postgres_test

import (
	"fmt"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
)

// TestNew_MigratesVersion4 builds the tables of schema version 4 as the
// release before kept counts made them, writes users as it wrote them, and
// opens them with New: the counts of version 5 must start from the users
// already there, and stay exact through the changes that follow.
func TestNew_MigratesVersion4(t *testing.T) {
	db := openTestDB(t)
	pool := db.pool(t, db.schema(t))
	ctx := t.Context()

	tx := beginAtVersion(t, pool, 4)
	var recs []*users.UserRecord
	for i := range 30 {
		r := newUser(fmt.Sprintf("v4user%02d@example.com", i))
		r.Role = []users.Role{users.RoleUser, users.RoleAdmin, users.RoleViewer}[i%3]
		r.Status = []users.Status{users.StatusActive, users.StatusSuspended}[i%2]
		r.AccountID = fmt.Sprintf("acct%d", i%4)
		recs = append(recs, r)
		_, err := tx.Exec(ctx, `INSERT INTO userkit_users (id, email, username, email_verified,
			email_verified_at, first_name, last_name, role, status, avatar_url, account_id,
			preferences, created_at, updated_at, last_login_at, password_hash, generation,
			first_name_lower, last_name_lower, last_active_at)
			VALUES ($1, $2, $3, false, 0, '', '', $4, $5, '', $6, NULL, 0, 0, 0, 'h', 0, '', '', 0)`,
			r.ID, r.Email, r.Username, string(r.Role), string(r.Status), r.AccountID)
		if err != nil {
			t.Fatalf("insert user: %v", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	s := mustNew(t, pool)
	var version int
	if err := pool.QueryRow(ctx, `SELECT version FROM userkit_schema_version`).Scan(&version); err != nil || version != postgres.SchemaVersion() {
		t.Errorf("schema version after New = %d, %v; want %d", version, err, postgres.SchemaVersion())
	}
	checkCounts(t, s, pool, "after migrating from version 4")
	if n, err := s.CountUsers(ctx, users.Match{Role: users.RoleViewer, AccountID: "acct1"}); err != nil || n == 0 {
		t.Errorf("CountUsers of migrated viewers in acct1 = %d, %v; the test wants some", n, err)
	}

	if err := s.DeleteUser(ctx, recs[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateUser(ctx, recs[1].ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.Role = users.RoleUser
		return users.Revoke{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	r := newUser("v5user@example.com")
	r.AccountID = "acct1"
	if err := s.CreateUser(ctx, r); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, s, pool, "after changes to migrated users")
}
