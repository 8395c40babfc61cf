package postgres_test

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
)

// TestNew_MigratesVersion6 builds the tables of schema version 6 as the
// release before external IDs made them, writes a user as it wrote one, and
// opens them with New: the user must read back without an external ID, the
// unique index must exist, and external IDs must work on the migrated tables:
// stored, found, refused a second time (also in a batch), and freed with their
// user.
func TestNew_MigratesVersion6(t *testing.T) {
	old := newUser("v6user@example.com")
	s, indexes := migrateFrom(t, 6, old)
	ctx := t.Context()
	if !slices.Contains(indexes, "userkit_users_external_id_key") {
		t.Errorf("New must create index userkit_users_external_id_key when migrating from version 6; have %v", indexes)
	}
	if got, err := s.GetUser(ctx, old.ID); err != nil || got.Email != old.Email || got.ExternalID != "" || !got.CreatedAt.Equal(oldBase) {
		t.Errorf("version-6 user read back as %+v, %v", got, err)
	}
	if _, err := s.GetUserByExternalID(ctx, ""); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("GetUserByExternalID(\"\") on migrated tables: %v, want ErrNotFound", err)
	}

	a := newUser("a@example.com")
	a.ExternalID = "legacy|1"
	if err := s.CreateUser(ctx, a); err != nil {
		t.Fatalf("CreateUser with an external ID after the migration: %v", err)
	}
	if got, err := s.GetUserByExternalID(ctx, a.ExternalID); err != nil || got.ID != a.ID {
		t.Errorf("GetUserByExternalID = %+v, %v; want %s", got, err, a.ID)
	}
	b := newUser("b@example.com")
	b.ExternalID = a.ExternalID
	if err := s.CreateUser(ctx, b); !errors.Is(err, users.ErrDuplicateExternalID) {
		t.Errorf("CreateUser with a taken external ID: %v, want ErrDuplicateExternalID", err)
	}
	if errs, err := s.CreateUsers(ctx, []*users.UserRecord{b}); err != nil || !errors.Is(errs[0], users.ErrDuplicateExternalID) {
		t.Errorf("CreateUsers with a taken external ID: %v, %v; want ErrDuplicateExternalID", errs, err)
	}
	if err := s.DeleteUser(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, b); err != nil {
		t.Errorf("CreateUser with the external ID of a deleted user: %v", err)
	}
}

// oldBase is the time of the user migrateFrom writes.
var oldBase = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

// migrateFrom builds the tables of schema version v (5 or later: the users'
// columns of version 5), writes r as that release wrote a user, created at
// oldBase, and opens the tables with New. It checks that New brought them to
// the current version, and returns the store and the names of the
// schema's indexes after the migration.
func migrateFrom(t *testing.T, v int, r *users.UserRecord) (*postgres.Store, []string) {
	t.Helper()
	return migrateFromWith(t, v, r, nil)
}

// migrateFromWith is migrateFrom with more, if not nil, writing more rows as
// that release wrote them, in the same transaction, after the user.
func migrateFromWith(t *testing.T, v int, r *users.UserRecord, more func(tx pgx.Tx)) (*postgres.Store, []string) {
	t.Helper()
	db := openTestDB(t)
	pool := db.pool(t, db.schema(t))
	ctx := t.Context()
	tx := beginAtVersion(t, pool, v)
	if _, err := tx.Exec(ctx, `INSERT INTO userkit_users (id, email, username, email_verified,
		email_verified_at, first_name, last_name, role, status, avatar_url, account_id,
		preferences, created_at, updated_at, last_login_at, password_hash, generation,
		first_name_lower, last_name_lower, last_active_at)
		VALUES ($1, $2, $3, false, $4, 'Ada', 'Lovelace', 'user', 'active', '', '', NULL, $5, $5, $4, $6, 0, 'ada', 'lovelace', $4)`,
		r.ID, r.Email, r.Username, int64(math.MinInt64), oldBase.UnixNano(), r.PasswordHash); err != nil {
		t.Fatalf("insert user: %v", err)
	}
	if more != nil {
		more(tx)
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
	return s, indexes
}
