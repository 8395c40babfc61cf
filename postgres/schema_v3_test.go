package postgres_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"
	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
)

// TestNew_MigratesVersion2 builds the tables of schema version 2 as the
// release before the audit log made them, writes users, sessions, a token and
// a throttle entry as it wrote them, and opens them with New: the data must
// read back with the fields of version 3 zero (no activity, sessions without a
// client or methods), the version 3 tables and indexes must exist, and the
// audit log, TouchSession's LastActiveAt and the activity filters must work on
// the migrated rows.
func TestNew_MigratesVersion2(t *testing.T) {
	db := openTestDB(t)
	pool := db.pool(t, db.schema(t))
	ctx := t.Context()

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := postgres.EnsureTrigram(ctx, tx); err != nil {
		t.Fatal(err)
	}
	stmts := append([]string{`CREATE TABLE userkit_schema_version (
			singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
			version   integer NOT NULL
		)`}, postgres.Migration(1)...)
	stmts = append(stmts, postgres.Migration(2)...)
	stmts = append(stmts, `INSERT INTO userkit_schema_version (version) VALUES (2)`)
	for _, stmt := range stmts {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			t.Fatalf("version 2: %v", err)
		}
	}

	// Rows as version 2 wrote them (its columns only).
	base := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	far := base.Add(1000 * time.Hour).UnixNano()
	var recs []*users.UserRecord
	for i := range 6 {
		r := newUser(fmt.Sprintf("v2user%d@example.com", i))
		r.Role = []users.Role{users.RoleUser, users.RoleAdmin}[i%2]
		r.CreatedAt, r.UpdatedAt = base, base
		recs = append(recs, r)
		_, err := tx.Exec(ctx, `INSERT INTO userkit_users (id, email, username, email_verified,
			email_verified_at, first_name, last_name, role, status, avatar_url, account_id,
			preferences, created_at, updated_at, last_login_at, password_hash, generation,
			first_name_lower, last_name_lower)
			VALUES ($1, $2, $3, false, $4, 'Ada', 'Lovelace', $5, 'active', '', '', NULL, $6, $6, $4, $7, 0, 'ada', 'lovelace')`,
			r.ID, r.Email, r.Username, int64(math.MinInt64), string(r.Role), base.UnixNano(), r.PasswordHash)
		if err != nil {
			t.Fatalf("insert user: %v", err)
		}
		hash := []byte(fmt.Sprintf("%032d", i))
		if _, err := tx.Exec(ctx, `INSERT INTO userkit_sessions (token_hash, id, user_id, user_generation, created_at, expires_at, last_seen_at)
			VALUES ($1, $2, $3, 0, $4, $5, $4)`, hash, fmt.Sprintf("S%d", i), r.ID, base.UnixNano(), far); err != nil {
			t.Fatalf("insert session: %v", err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO userkit_tokens (hash, user_id, purpose, email, created_at, expires_at)
		VALUES ('tok', $1, 'verify_email', $2, $3, $4)`, recs[1].ID, recs[1].Email, base.UnixNano(), far); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO userkit_login_attempts (key, failures, window_start, locked_until, expires_at, consecutive, locks)
		VALUES ('id:someone', 3, $1, $2, $3, 7, 1)`, base.UnixNano(), int64(math.MinInt64), far); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
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
	for _, want := range []string{"userkit_audit_pkey", "userkit_audit_user_idx", "userkit_audit_actor_idx",
		"userkit_audit_type_idx", "userkit_audit_time_idx", "userkit_users_last_active_idx",
		"userkit_mfa_pkey", "userkit_mfa_challenges_pkey", "userkit_mfa_challenges_user_idx",
		"userkit_mfa_challenges_expires_at_idx"} {
		if !slices.Contains(indexes, want) {
			t.Errorf("New must create index %s when migrating from version 2; have %v", want, indexes)
		}
	}

	// The rows of version 2 read back, with the new fields zero.
	for i, r := range recs {
		got, err := s.GetUser(ctx, r.ID)
		if err != nil || got.Email != r.Email || !got.CreatedAt.Equal(base) || !got.LastActiveAt.IsZero() {
			t.Errorf("version-2 user read back as %+v, %v", got, err)
		}
		sess, _, err := getSession(ctx, s, []byte(fmt.Sprintf("%032d", i)))
		if err != nil || sess.ID != fmt.Sprintf("S%d", i) || sess.ExpiresAt.UnixNano() != far ||
			sess.IP != "" || sess.UserAgent != "" || sess.Methods != nil || !sess.SecondFactorAt.IsZero() {
			t.Errorf("version-2 session read back as %+v, %v", sess, err)
		}
	}
	if a, err := s.GetLoginAttempts(ctx, "id:someone"); err != nil || a.Failures != 3 || a.Consecutive != 7 || a.Locks != 1 {
		t.Errorf("GetLoginAttempts of a version-2 entry = %+v, %v", a, err)
	}
	if es, err := s.ListAudit(ctx, users.AuditQuery{Limit: 10}); err != nil || len(es) != 0 {
		t.Errorf("audit log after the migration: %v, %v; want it empty", es, err)
	}

	// What version 3 added works on the migrated rows.
	at := base.Add(time.Hour)
	id := ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String()
	redeemed := &users.AuditEntry{ID: id, Time: at, Type: users.EventTokenRedeemed, Purpose: users.PurposeVerifyEmail}
	if _, err := s.ConsumeToken(ctx, []byte("tok"), users.PurposeVerifyEmail, redeemed); err != nil {
		t.Fatalf("ConsumeToken of a version-2 token: %v", err)
	}
	if es, err := s.ListAudit(ctx, users.AuditQuery{UserID: recs[1].ID, Limit: 10}); err != nil || len(es) != 1 || es[0].ID != id {
		t.Errorf("ListAudit after ConsumeToken = %v, %v; want the one entry", es, err)
	}
	for i := range 3 {
		if err := s.TouchSession(ctx, []byte(fmt.Sprintf("%032d", i)), at.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatalf("TouchSession of a version-2 session: %v", err)
		}
	}
	for _, c := range []struct {
		m    users.Match
		want int
	}{
		{users.Match{ActiveSince: at}, 3},
		{users.Match{ActiveSince: at.Add(time.Minute)}, 2},
		{users.Match{InactiveSince: at}, 3},
		{users.Match{InactiveSince: at.Add(time.Minute), Role: users.RoleUser}, 2},
	} {
		if n, err := s.CountUsers(ctx, c.m); err != nil || n != c.want {
			t.Errorf("CountUsers(%+v) = %d, %v; want %d", c.m, n, err, c.want)
		}
		page, err := s.ListUsers(ctx, users.ListQuery{Match: c.m, Limit: 10})
		if err != nil || len(page) != c.want {
			t.Errorf("ListUsers(%+v) = %d users, %v; want %d", c.m, len(page), err, c.want)
		}
	}
	// No migrated user has a second factor; one can enrol, be challenged, and
	// lose both with the user.
	for _, r := range recs {
		if got, err := s.GetMFA(ctx, r.ID); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("GetMFA of a version-2 user = %+v, %v; want ErrNotFound", got, err)
		}
	}
	u := recs[2]
	if _, err := s.UpdateMFA(ctx, u.ID, func(r *users.MFARecord) (bool, error) {
		r.TOTP = &users.TOTPFactor{Secret: []byte("sealed"), KeyID: "k", Confirmed: true}
		return false, nil
	}); err != nil {
		t.Fatalf("UpdateMFA of a version-2 user: %v", err)
	}
	chal := &users.ChallengeRecord{Hash: []byte("chal"), UserID: u.ID, CreatedAt: at, ExpiresAt: at.Add(time.Minute)}
	if err := s.CreateChallenge(ctx, chal); err != nil {
		t.Fatalf("CreateChallenge for a version-2 user: %v", err)
	}
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetMFA(ctx, u.ID); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("GetMFA after DeleteUser: %v, want ErrNotFound", err)
	}
	if _, err := s.GetChallenge(ctx, chal.Hash); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("GetChallenge after DeleteUser: %v, want ErrNotFound", err)
	}
}
