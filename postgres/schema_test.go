package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
)

// TestNew_MigratesVersion1 builds the tables of schema version 1 as the first
// release made them, writes users, a session, a token and a throttle entry as
// that release wrote them, and opens them with New: the data must read back,
// the version-2 indexes must exist, and listing, counting and search must
// select what Match.Matches selects.
func TestNew_MigratesVersion1(t *testing.T) {
	db := openTestDB(t)
	pool := db.pool(t, db.schema(t))
	ctx := t.Context()

	// Version 1, as migrate made it: the version table, then the statements.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	stmts := append([]string{`CREATE TABLE userkit_schema_version (
			singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
			version   integer NOT NULL
		)`}, postgres.Migration(1)...)
	stmts = append(stmts, `INSERT INTO userkit_schema_version (version) VALUES (1)`)
	for _, stmt := range stmts {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			t.Fatalf("version 1: %v", err)
		}
	}

	// Rows as version 1's CreateUser wrote them: times as nanoseconds since 1970
	// (the zero time as the smallest bigint), names lower-cased by Go.
	base := time.Date(2025, 3, 4, 5, 6, 7, 891, time.UTC)
	var recs []*users.UserRecord
	for i := range 40 {
		r := newUser(fmt.Sprintf("user%02d@example.com", i))
		r.FirstName, r.LastName = []string{"Ada", "Grace", "Émile", ""}[i%4], []string{"Lovelace", "Hopper", "Zola"}[i%3]
		r.Role = []users.Role{users.RoleUser, users.RoleAdmin, users.RoleViewer}[i%3]
		r.Status = []users.Status{users.StatusActive, users.StatusSuspended}[i%2]
		r.AccountID = fmt.Sprintf("acct%d", i%5)
		r.CreatedAt, r.UpdatedAt = base.Add(time.Duration(i)), base.Add(time.Duration(i))
		if i%7 == 0 {
			r.Preferences = map[string]string{"theme": "dark"}
		}
		recs = append(recs, r)
		var prefs any
		if r.Preferences != nil {
			prefs = `{"theme":"dark"}`
		}
		_, err := tx.Exec(ctx, `INSERT INTO userkit_users (id, email, username, email_verified,
			email_verified_at, first_name, last_name, role, status, avatar_url, account_id,
			preferences, created_at, updated_at, last_login_at, password_hash, generation,
			first_name_lower, last_name_lower)
			VALUES ($1, $2, $3, false, $4, $5, $6, $7, $8, '', $9, $10, $11, $11, $4, $12, 0, $13, $14)`,
			r.ID, r.Email, r.Username, int64(math.MinInt64), r.FirstName, r.LastName, string(r.Role),
			string(r.Status), r.AccountID, prefs, r.CreatedAt.UnixNano(), r.PasswordHash,
			strings.ToLower(r.FirstName), strings.ToLower(r.LastName))
		if err != nil {
			t.Fatalf("insert user: %v", err)
		}
	}
	hash := []byte("0123456789abcdef0123456789abcdef")
	far := base.Add(1000 * time.Hour).UnixNano()
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO userkit_sessions (token_hash, id, user_id, user_generation, created_at, expires_at, last_seen_at)
			VALUES ($1, 'S1', $2, 0, $3, $4, $3)`, []any{hash, recs[0].ID, base.UnixNano(), far}},
		{`INSERT INTO userkit_tokens (hash, user_id, purpose, email, created_at, expires_at)
			VALUES ($1, $2, 'password_reset', $3, $4, $5)`, []any{hash, recs[1].ID, recs[1].Email, base.UnixNano(), far}},
		{`INSERT INTO userkit_login_attempts (key, failures, window_start, locked_until, expires_at)
			VALUES ('id:someone', 3, $1, $2, $3)`, []any{base.UnixNano(), int64(math.MinInt64), far}},
	} {
		if _, err := tx.Exec(ctx, stmt.sql, stmt.args...); err != nil {
			t.Fatalf("version 1 rows: %v", err)
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
	var indexes []string
	rows, _ := pool.Query(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'userkit_users'`)
	indexes, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"userkit_users_role_idx", "userkit_users_status_idx", "userkit_users_role_status_idx", "userkit_users_search_idx"} {
		if !slices.Contains(indexes, want) {
			t.Errorf("New must create index %s when migrating from version 1; have %v", want, indexes)
		}
	}

	// The data of version 1 reads back.
	for _, r := range recs {
		got, err := s.GetUser(ctx, r.ID)
		if err != nil {
			t.Fatalf("GetUser of a version-1 user: %v", err)
		}
		if got.Email != r.Email || got.FirstName != r.FirstName || got.Role != r.Role || got.Status != r.Status ||
			got.AccountID != r.AccountID || !got.CreatedAt.Equal(r.CreatedAt) || !got.EmailVerifiedAt.IsZero() ||
			got.Preferences["theme"] != r.Preferences["theme"] || got.PasswordHash != r.PasswordHash {
			t.Errorf("version-1 user read back as %+v, want %+v", got, r)
		}
	}
	if sess, u, err := getSession(ctx, s, hash); err != nil || sess.ID != "S1" || u.ID != recs[0].ID || sess.ExpiresAt.UnixNano() != far {
		t.Errorf("GetSession of a version-1 session = %+v, %v, %v", sess, u, err)
	}
	if tok, err := s.ConsumeToken(ctx, hash, users.PurposePasswordReset); err != nil || tok.UserID != recs[1].ID {
		t.Errorf("ConsumeToken of a version-1 token = %+v, %v", tok, err)
	}
	if a, err := s.GetLoginAttempts(ctx, "id:someone"); err != nil || a.Failures != 3 || !a.LockedUntil.IsZero() {
		t.Errorf("GetLoginAttempts of a version-1 entry = %+v, %v", a, err)
	}
	emails := make([]string, len(recs))
	for i, r := range recs {
		emails[i] = r.Email
	}
	if got, err := s.GetUsersByEmail(ctx, emails); err != nil || got[7] == nil || got[7].ID != recs[7].ID {
		t.Errorf("GetUsersByEmail over version-1 users: %v", err)
	}

	// Listing, counting and search select what Match.Matches selects.
	slices.SortFunc(recs, func(a, b *users.UserRecord) int { return strings.Compare(a.ID, b.ID) })
	for _, m := range []users.Match{
		{},
		{Role: users.RoleAdmin},
		{Status: users.StatusSuspended},
		{Role: users.RoleViewer, Status: users.StatusActive},
		{AccountID: "acct3", Role: users.RoleUser},
		{Search: "lovelace"},
		{Search: "grace hop"},
		{Search: "émile"},
		{Search: "user1"},
		{Search: "zo", Role: users.RoleAdmin},
	} {
		var want []string
		for _, r := range recs {
			if m.Matches(&r.User) {
				want = append(want, r.ID)
			}
		}
		var got []string
		after := ""
		for {
			page, err := s.ListUsers(ctx, users.ListQuery{Match: m, After: after, Limit: 3})
			if err != nil {
				t.Fatalf("ListUsers(%+v): %v", m, err)
			}
			for _, r := range page {
				got = append(got, r.ID)
			}
			if len(page) < 3 {
				break
			}
			after = page[len(page)-1].ID
		}
		if !slices.Equal(got, want) {
			t.Errorf("ListUsers(%+v) paged by 3 after migration: got %d users, want %d", m, len(got), len(want))
		}
		if n, err := s.CountUsers(ctx, m); err != nil || n != len(want) {
			t.Errorf("CountUsers(%+v) after migration = %d, %v; want %d", m, n, err, len(want))
		}
	}
}

// TestNew_WithoutDDLPrivileges checks that a role allowed only to read and
// write the tables opens current tables, and that migrating needs more: New
// then fails and leaves the schema as it was.
func TestNew_WithoutDDLPrivileges(t *testing.T) {
	db := openTestDB(t)
	schema := db.schema(t)
	owner := db.pool(t, schema)
	ctx := t.Context()
	app := newAppRole(t, db, schema)
	grant := func() { app.grant(t, owner, true) }

	t.Run("VersionOneNeedsMigrating", func(t *testing.T) {
		tx, err := owner.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		for _, stmt := range append([]string{`CREATE TABLE userkit_schema_version (
				singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
				version   integer NOT NULL
			)`, `INSERT INTO userkit_schema_version (version) VALUES (1)`}, postgres.Migration(1)...) {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		grant()
		if _, err := postgres.New(ctx, app.pool(t)); err == nil {
			t.Error("New as a role without CREATE must fail to migrate version 1")
		}
		var v int
		if err := owner.QueryRow(ctx, `SELECT version FROM userkit_schema_version`).Scan(&v); err != nil || v != 1 {
			t.Errorf("a failed migration must leave version 1: %d, %v", v, err)
		}
	})

	t.Run("CurrentOpens", func(t *testing.T) {
		mustNew(t, owner) // migrates as the owner
		grant()
		s, err := postgres.New(ctx, app.pool(t))
		if err != nil {
			t.Fatalf("New as a role with only SELECT, INSERT, UPDATE and DELETE must open current tables: %v", err)
		}
		if err := s.CreateUser(ctx, newUser("app@example.com")); err != nil {
			t.Errorf("CreateUser as the application role: %v", err)
		}
		if n, err := s.CountUsers(ctx, users.Match{Search: "app@"}); err != nil || n != 1 {
			t.Errorf("CountUsers(search) as the application role = %d, %v", n, err)
		}
	})
}

// appRole is a login role made for a test, dropped when it ends, that may
// use the tables of one schema only as it is granted.
type appRole struct {
	db             *testDB
	schema, quoted string
}

// newAppRole makes an appRole for schema.
func newAppRole(t *testing.T, db *testDB, schema string) *appRole {
	t.Helper()
	quoted := pgx.Identifier{schema + "_app"}.Sanitize()
	if _, err := db.admin.Exec(t.Context(), `CREATE ROLE `+quoted+` LOGIN PASSWORD 'app-password'`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Runs after the role's pools are closed (cleanups run last first).
		if _, err := db.admin.Exec(context.Background(), `DROP OWNED BY `+quoted+`; DROP ROLE `+quoted); err != nil {
			t.Errorf("drop role: %v", err)
		}
	})
	return &appRole{db: db, schema: schema, quoted: quoted}
}

// grant grants the role, through the owner's pool, USAGE on the schema and
// SELECT, INSERT, UPDATE and DELETE on all its tables, and with sequences
// SELECT and UPDATE on all its sequences too.
func (a *appRole) grant(t *testing.T, owner *pgxpool.Pool, sequences bool) {
	t.Helper()
	schema := pgx.Identifier{a.schema}.Sanitize()
	sql := `GRANT USAGE ON SCHEMA ` + schema + ` TO ` + a.quoted + `;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ` + schema + ` TO ` + a.quoted
	if sequences {
		sql += `; GRANT SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ` + schema + ` TO ` + a.quoted
	}
	if _, err := owner.Exec(t.Context(), sql); err != nil {
		t.Fatal(err)
	}
}

// pool returns a pool that connects as the role, closed when t ends.
func (a *appRole) pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(a.db.dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.User, cfg.ConnConfig.Password = strings.Trim(a.quoted, `"`), "app-password"
	cfg.ConnConfig.RuntimeParams["search_path"] = a.schema
	p, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestNew_WithoutTrigramExtension checks what happens when the database has no
// pg_trgm and the role that migrates may not create it (it lacks CREATE on the
// database): New fails with an error that names the extension and creates
// nothing; once an administrator has created the extension, New migrates.
func TestNew_WithoutTrigramExtension(t *testing.T) {
	db := openTestDB(t)
	ctx := t.Context()
	b := make([]byte, 6)
	rand.Read(b)
	name := "userkit_notrgm_" + hex.EncodeToString(b)
	if _, err := db.admin.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatal(err)
	}
	if _, err := db.admin.Exec(ctx, `CREATE ROLE `+name+` LOGIN PASSWORD 'app-password'`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if _, err := db.admin.Exec(ctx, `DROP DATABASE `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop database: %v", err)
		}
		if _, err := db.admin.Exec(ctx, `DROP ROLE `+name); err != nil {
			t.Errorf("drop role: %v", err)
		}
	})
	connect := func(user, password string) *pgxpool.Pool {
		cfg, err := pgxpool.ParseConfig(db.dsn)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ConnConfig.Database = name
		if user != "" {
			cfg.ConnConfig.User, cfg.ConnConfig.Password = user, password
		}
		p, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	owner := connect("", "")
	// The role may create tables in its own schema, not extensions.
	if _, err := owner.Exec(ctx, `CREATE SCHEMA AUTHORIZATION `+name); err != nil {
		t.Fatal(err)
	}
	app := connect(name, "app-password") // search_path "$user", public: its schema first

	_, err := postgres.New(ctx, app)
	if err == nil || !strings.Contains(err.Error(), "pg_trgm") {
		t.Fatalf("New without pg_trgm, by a role that may not create it, must fail naming pg_trgm: %v", err)
	}
	t.Logf("New without pg_trgm: %v", err)
	var tables int
	if err := owner.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename LIKE 'userkit_%'`).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("a failed New must create nothing: %d tables, %v", tables, err)
	}

	if _, err := owner.Exec(ctx, `CREATE EXTENSION pg_trgm`); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.New(ctx, app)
	if err != nil {
		t.Fatalf("New once an administrator created pg_trgm: %v", err)
	}
	r := newUser("trgm@example.com")
	if err := s.CreateUser(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountUsers(ctx, users.Match{Search: "trgm@"}); err != nil || n != 1 {
		t.Errorf("search with pg_trgm from another schema = %d, %v; want 1", n, err)
	}
}
