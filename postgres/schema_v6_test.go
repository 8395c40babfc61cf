package postgres_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/userkit/users"
)

// TestNew_MigratesVersion5 builds the tables of schema version 5 as the
// release before credentials made them, writes a user as it wrote one, and
// opens them with New: the user must read back, the credentials table and its
// indexes must exist, and credentials must work on the migrated user: created
// with an identifier of any bytes, unique per kind, listed, and deleted with
// the user.
func TestNew_MigratesVersion5(t *testing.T) {
	r := newUser("v5user@example.com")
	s, indexes := migrateFrom(t, 5, r)
	ctx := t.Context()
	base := oldBase
	for _, want := range []string{"userkit_credentials_pkey", "userkit_credentials_user_idx"} {
		if !slices.Contains(indexes, want) {
			t.Errorf("New must create index %s when migrating from version 5; have %v", want, indexes)
		}
	}
	if got, err := s.GetUser(ctx, r.ID); err != nil || got.Email != r.Email || !got.CreatedAt.Equal(base) {
		t.Errorf("version-5 user read back as %+v, %v", got, err)
	}

	c := &users.CredentialRecord{Kind: users.CredentialPasskey, ID: "\x00\xff\x80id", UserID: r.ID, Name: "key",
		CreatedAt: base, Counter: 3, Data: []byte{0, 1}}
	if err := s.CreateCredential(ctx, c); err != nil {
		t.Fatalf("CreateCredential for a version-5 user: %v", err)
	}
	if err := s.CreateCredential(ctx, c); !errors.Is(err, users.ErrConflict) {
		t.Errorf("CreateCredential of a taken (Kind, ID): %v, want ErrConflict", err)
	}
	oidc := &users.CredentialRecord{Kind: users.CredentialOIDC, ID: c.ID, UserID: r.ID, CreatedAt: base}
	if err := s.CreateCredential(ctx, oidc); err != nil {
		t.Errorf("CreateCredential of the same ID under another kind: %v", err)
	}
	if cs, err := s.ListCredentials(ctx, r.ID); err != nil || len(cs) != 2 || cs[0].Kind != users.CredentialOIDC || cs[1].ID != c.ID {
		t.Errorf("ListCredentials = %+v, %v; want the oidc and the passkey credential", cs, err)
	}
	if err := s.DeleteUser(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	for _, k := range []users.CredentialKind{c.Kind, oidc.Kind} {
		if _, err := s.GetCredential(ctx, k, c.ID); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("GetCredential(%s) after DeleteUser: %v, want ErrNotFound", k, err)
		}
	}
}
