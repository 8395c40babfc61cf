package postgres_test

import (
	"math"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
)

// TestNew_MigratesVersion8 builds the tables of schema version 8 as the
// release before sessions kept their own idle timeout made them, writes a
// user and a session as it wrote them, and opens them with New: the session
// must read back with no idle timeout of its own (zero), and a session created
// after the migration must keep the one it is given.
func TestNew_MigratesVersion8(t *testing.T) {
	db := openTestDB(t)
	pool := db.pool(t, db.schema(t))
	ctx := t.Context()

	tx := beginAtVersion(t, pool, 8)
	base := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	r := newUser("v8user@example.com")
	if _, err := tx.Exec(ctx, `INSERT INTO userkit_users (id, email, username, email_verified,
		email_verified_at, first_name, last_name, role, status, avatar_url, account_id,
		preferences, created_at, updated_at, last_login_at, password_hash, generation,
		first_name_lower, last_name_lower, last_active_at)
		VALUES ($1, $2, $3, false, $4, 'Ada', 'Lovelace', 'user', 'active', '', '', NULL, $5, $5, $4, $6, 0, 'ada', 'lovelace', $4)`,
		r.ID, r.Email, r.Username, int64(math.MinInt64), base.UnixNano(), r.PasswordHash); err != nil {
		t.Fatalf("insert user: %v", err)
	}
	old := []byte("01234567890123456789012345678901")
	if _, err := tx.Exec(ctx, `INSERT INTO userkit_sessions (token_hash, id, user_id, user_generation,
		created_at, expires_at, last_seen_at, ip, user_agent, methods, second_factor_at, authenticated_at)
		VALUES ($1, 'S0', $2, 0, $3, $4, $3, '', '', '{password}', $5, $3)`,
		old, r.ID, base.UnixNano(), base.Add(24*time.Hour).UnixNano(), int64(math.MinInt64)); err != nil {
		t.Fatalf("insert session: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	s := mustNew(t, pool)
	var version int
	if err := pool.QueryRow(ctx, `SELECT version FROM userkit_schema_version`).Scan(&version); err != nil || version != postgres.SchemaVersion() {
		t.Errorf("schema version after New = %d, %v; want %d", version, err, postgres.SchemaVersion())
	}
	sess, _, err := getSession(ctx, s, old)
	if err != nil {
		t.Fatalf("GetSession of a version-8 session: %v", err)
	}
	if sess.IdleTimeout != 0 || !sess.ExpiresAt.Equal(base.Add(24*time.Hour)) {
		t.Errorf("version-8 session read back with IdleTimeout %v, ExpiresAt %v; want 0 and %v", sess.IdleTimeout, sess.ExpiresAt, base.Add(24*time.Hour))
	}
	u, err := s.GetUser(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	fresh := &users.SessionRecord{ID: "S1", TokenHash: []byte("11234567890123456789012345678901"), UserID: r.ID,
		UserGeneration: u.Generation, CreatedAt: base, ExpiresAt: base.Add(30 * 24 * time.Hour), LastSeenAt: base,
		AuthenticatedAt: base, IdleTimeout: 7 * 24 * time.Hour}
	if err := s.CreateSession(ctx, fresh); err != nil {
		t.Fatalf("CreateSession after the migration: %v", err)
	}
	if got, _, err := getSession(ctx, s, fresh.TokenHash); err != nil || got.IdleTimeout != fresh.IdleTimeout {
		t.Errorf("GetSession of a new session: IdleTimeout %v, %v; want %v", got.IdleTimeout, err, fresh.IdleTimeout)
	}
}
