package postgres_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
)

// TestNew_MigratesVersion7 builds the tables of schema version 7 as the
// release before provider flows made them, with a user and a credential, and
// opens them with New: both must read back, the flows table and its expiry
// index must exist, and flows must work: created, consumed once, swept by
// DeleteExpired.
func TestNew_MigratesVersion7(t *testing.T) {
	db := openTestDB(t)
	pool := db.pool(t, db.schema(t))
	ctx := t.Context()

	tx := beginAtVersion(t, pool, 7)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	{
		// A user and an identity as version 7 stored them.
		r := newUser("v7user@example.com")
		if _, err := pool.Exec(ctx, `INSERT INTO userkit_users (id, email, username, email_verified,
			email_verified_at, first_name, last_name, role, status, avatar_url, account_id,
			preferences, created_at, updated_at, last_login_at, password_hash, generation,
			first_name_lower, last_name_lower, last_active_at)
			VALUES ($1, $2, $3, false, $4, 'Ada', 'Lovelace', 'user', 'active', '', '', NULL, $5, $5, $4, $6, 0, 'ada', 'lovelace', $4)`,
			r.ID, r.Email, r.Username, int64(-1<<63), base.UnixNano(), r.PasswordHash); err != nil {
			t.Fatalf("insert user: %v", err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO userkit_credentials (kind, identifier, user_id, name, created_at, last_used_at, counter, data)
			VALUES ('oidc', $1, $2, '', $3, $3, 0, '\x00'::bytea)`, []byte("5:https-sub"), r.ID, base.UnixNano()); err != nil {
			t.Fatalf("insert credential: %v", err)
		}
		s := mustNew(t, pool)
		var version int
		if err := pool.QueryRow(ctx, `SELECT version FROM userkit_schema_version`).Scan(&version); err != nil || version != postgres.SchemaVersion() {
			t.Errorf("schema version after New = %d, %v; want %d", version, err, postgres.SchemaVersion())
		}
		rows, _ := pool.Query(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()`)
		indexes, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"userkit_provider_flows_pkey", "userkit_provider_flows_expires_idx"} {
			if !slices.Contains(indexes, want) {
				t.Errorf("New must create index %s when migrating from version 7; have %v", want, indexes)
			}
		}
		if got, err := s.GetUser(ctx, r.ID); err != nil || got.Email != r.Email {
			t.Errorf("version-7 user read back as %+v, %v", got, err)
		}
		if c, err := s.GetCredential(ctx, users.CredentialOIDC, "5:https-sub"); err != nil || c.UserID != r.ID {
			t.Errorf("version-7 credential read back as %+v, %v", c, err)
		}
		f := &users.FlowRecord{Hash: []byte("0123456789abcdef0123456789abcdef"), Data: []byte{0, 1}, CreatedAt: base, ExpiresAt: base.Add(time.Minute)}
		if err := s.CreateFlow(ctx, f); err != nil {
			t.Fatalf("CreateFlow: %v", err)
		}
		if got, err := s.ConsumeFlow(ctx, f.Hash); err != nil || string(got.Data) != string(f.Data) || !got.ExpiresAt.Equal(f.ExpiresAt) {
			t.Errorf("ConsumeFlow = %+v, %v", got, err)
		}
		if _, err := s.ConsumeFlow(ctx, f.Hash); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("second ConsumeFlow: %v, want ErrNotFound", err)
		}
		if err := s.CreateFlow(ctx, f); err != nil {
			t.Fatal(err)
		}
		if n, err := s.DeleteExpired(ctx, f.ExpiresAt); err != nil || n != 1 {
			t.Errorf("DeleteExpired = %d, %v; want the flow", n, err)
		}
	}
}
