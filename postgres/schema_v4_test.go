package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/userkit/users/postgres"
)

// TestNew_MigratesVersion3 builds the tables of schema version 3, writes
// sessions as version 3 wrote them (one only logged in, one stepped up after
// its login), and opens them with New: each session's AuthenticatedAt must be
// the last proof it is known to have had, the later of its CreatedAt and its
// SecondFactorAt.
func TestNew_MigratesVersion3(t *testing.T) {
	db := openTestDB(t)
	pool := db.pool(t, db.schema(t))
	ctx := t.Context()

	tx := beginAtVersion(t, pool, 3)
	base := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	r := newUser("v3user@example.com")
	if _, err := tx.Exec(ctx, `INSERT INTO userkit_users (id, email, username, email_verified,
		email_verified_at, first_name, last_name, role, status, avatar_url, account_id,
		preferences, created_at, updated_at, last_login_at, password_hash, generation,
		first_name_lower, last_name_lower)
		VALUES ($1, $2, '', false, $3, '', '', 'user', 'active', '', '', NULL, $4, $4, $4, $5, 0, '', '')`,
		r.ID, r.Email, base.UnixNano(), base.UnixNano(), r.PasswordHash); err != nil {
		t.Fatal(err)
	}
	far := base.Add(24 * time.Hour).UnixNano()
	want := map[string]time.Time{}
	for i, stepUp := range []time.Time{{}, base.Add(time.Hour)} {
		hash := []byte(fmt.Sprintf("%032d", i))
		second := int64(-1 << 63)
		if !stepUp.IsZero() {
			second = stepUp.UnixNano()
		}
		if _, err := tx.Exec(ctx, `INSERT INTO userkit_sessions (token_hash, id, user_id, user_generation,
			created_at, expires_at, last_seen_at, ip, user_agent, methods, second_factor_at)
			VALUES ($1, $2, $3, 0, $4, $5, $4, '', '', '{password}', $6)`,
			hash, fmt.Sprintf("S%d", i), r.ID, base.UnixNano(), far, second); err != nil {
			t.Fatalf("insert session: %v", err)
		}
		want[string(hash)] = base
		if !stepUp.IsZero() {
			want[string(hash)] = stepUp
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	s := mustNew(t, pool)
	for hash, at := range want {
		sess, _, err := getSession(ctx, s, []byte(hash))
		if err != nil {
			t.Fatalf("GetSession of a version-3 session: %v", err)
		}
		if !sess.AuthenticatedAt.Equal(at) {
			t.Errorf("version-3 session %s: AuthenticatedAt %v, want %v", sess.ID, sess.AuthenticatedAt, at)
		}
	}
}

// beginAtVersion begins a transaction on pool and builds in it the tables of
// schema version v as that release made them (migrations 1 to v, and the
// version row), for a test to write rows as that release wrote them and
// commit. The transaction is rolled back at the end of the test if the test
// has not committed it.
func beginAtVersion(t *testing.T, pool *pgxpool.Pool, v int) pgx.Tx {
	t.Helper()
	ctx := t.Context()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	if err := postgres.EnsureTrigram(ctx, tx); err != nil {
		t.Fatal(err)
	}
	stmts := []string{`CREATE TABLE userkit_schema_version (
			singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
			version   integer NOT NULL
		)`}
	for i := 1; i <= v; i++ {
		stmts = append(stmts, postgres.Migration(i)...)
	}
	stmts = append(stmts, fmt.Sprintf(`INSERT INTO userkit_schema_version (version) VALUES (%d)`, v))
	for _, stmt := range stmts {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
	}
	return tx
}
