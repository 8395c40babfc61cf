package postgres_test

import (
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/userkit/users"
)

// TestNew_MigratesVersion8 builds the tables of schema version 8 as the
// release before sessions kept their own idle timeout made them, writes a
// user and a session as it wrote them, and opens them with New: the session
// must read back with no idle timeout of its own (zero), and a session created
// after the migration must keep the one it is given.
func TestNew_MigratesVersion8(t *testing.T) {
	r := newUser("v8user@example.com")
	old := []byte("01234567890123456789012345678901")
	s, _ := migrateFromWith(t, 8, r, func(tx pgx.Tx) {
		if _, err := tx.Exec(t.Context(), `INSERT INTO userkit_sessions (token_hash, id, user_id, user_generation,
			created_at, expires_at, last_seen_at, ip, user_agent, methods, second_factor_at, authenticated_at)
			VALUES ($1, 'S0', $2, 0, $3, $4, $3, '', '', '{password}', $5, $3)`,
			old, r.ID, oldBase.UnixNano(), oldBase.Add(24*time.Hour).UnixNano(), int64(math.MinInt64)); err != nil {
			t.Fatalf("insert session: %v", err)
		}
	})
	ctx := t.Context()
	sess, _, err := getSession(ctx, s, old)
	if err != nil {
		t.Fatalf("GetSession of a version-8 session: %v", err)
	}
	if sess.IdleTimeout != 0 || !sess.ExpiresAt.Equal(oldBase.Add(24*time.Hour)) {
		t.Errorf("version-8 session read back with IdleTimeout %v, ExpiresAt %v; want 0 and %v", sess.IdleTimeout, sess.ExpiresAt, oldBase.Add(24*time.Hour))
	}
	u, err := s.GetUser(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	fresh := &users.SessionRecord{ID: "S1", TokenHash: []byte("11234567890123456789012345678901"), UserID: r.ID,
		UserGeneration: u.Generation, CreatedAt: oldBase, ExpiresAt: oldBase.Add(30 * 24 * time.Hour), LastSeenAt: oldBase,
		AuthenticatedAt: oldBase, IdleTimeout: 7 * 24 * time.Hour}
	if err := s.CreateSession(ctx, fresh); err != nil {
		t.Fatalf("CreateSession after the migration: %v", err)
	}
	if got, _, err := getSession(ctx, s, fresh.TokenHash); err != nil || got.IdleTimeout != fresh.IdleTimeout {
		t.Errorf("GetSession of a new session: IdleTimeout %v, %v; want %v", got.IdleTimeout, err, fresh.IdleTimeout)
	}
}
