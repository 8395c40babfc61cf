package postgres_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/userkit/users"
)

// TestNew_MigratesVersion9 builds the tables of schema version 9 as the
// release before ceremonies made them, with a credential as it wrote one, and
// opens them with New: the credential must read back, the ceremonies table
// and its expiry index must exist, and ceremonies must work: stored with and
// without a user, refused a second time, consumed once, and reclaimed by
// DeleteExpired.
func TestNew_MigratesVersion9(t *testing.T) {
	r := newUser("v9passkey@example.com")
	s, indexes := migrateFromWith(t, 9, r, func(tx pgx.Tx) {
		if _, err := tx.Exec(t.Context(), `INSERT INTO userkit_credentials (kind, identifier, user_id, name, created_at,
			last_used_at, counter, data) VALUES ('passkey', '\x00ff'::bytea, $1, 'key', $2, $2, 9, '\x01'::bytea)`,
			r.ID, oldBase.UnixNano()); err != nil {
			t.Fatalf("insert credential: %v", err)
		}
	})
	ctx := t.Context()
	for _, want := range []string{"userkit_ceremonies_pkey", "userkit_ceremonies_expires_at_idx"} {
		if !slices.Contains(indexes, want) {
			t.Errorf("New must create index %s when migrating from version 9; have %v", want, indexes)
		}
	}
	if c, err := s.GetCredential(ctx, users.CredentialPasskey, "\x00\xff"); err != nil || c.UserID != r.ID || c.Counter != 9 {
		t.Errorf("version-9 credential read back as %+v, %v", c, err)
	}

	for i, userID := range []string{r.ID, ""} {
		c := &users.CeremonyRecord{Hash: []byte{byte(i), 1}, Kind: users.CeremonyPasskeyLogin, UserID: userID,
			CreatedAt: oldBase, ExpiresAt: oldBase.Add(time.Minute)}
		if err := s.CreateCeremony(ctx, c); err != nil {
			t.Fatalf("CreateCeremony after the migration: %v", err)
		}
		if err := s.CreateCeremony(ctx, c); !errors.Is(err, users.ErrConflict) {
			t.Errorf("CreateCeremony of a taken hash: %v, want ErrConflict", err)
		}
		if i == 0 {
			if got, err := s.ConsumeCeremony(ctx, c.Hash, c.Kind); err != nil || got.UserID != userID || !got.ExpiresAt.Equal(c.ExpiresAt) {
				t.Errorf("ConsumeCeremony = %+v, %v; want %+v", got, err, c)
			}
			if _, err := s.ConsumeCeremony(ctx, c.Hash, c.Kind); !errors.Is(err, users.ErrNotFound) {
				t.Errorf("ConsumeCeremony a second time: %v, want ErrNotFound", err)
			}
			continue
		}
		if n, err := s.DeleteExpired(ctx, c.ExpiresAt); err != nil || n != 1 {
			t.Errorf("DeleteExpired at the ceremony's expiry = %d, %v; want 1", n, err)
		}
	}
}
