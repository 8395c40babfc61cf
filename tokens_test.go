package users_test

import (
	"context"
	"errors"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// raceStore lets a revocation land right after the first token is stored: the
// interleaving in which a password change would otherwise miss the new token.
type raceStore struct {
	users.Store
	hashes [][]byte
}

func (r *raceStore) CreateToken(ctx context.Context, t *users.TokenRecord, replace bool, audit ...*users.AuditEntry) error {
	if err := r.Store.CreateToken(ctx, t, replace, audit...); err != nil {
		return err
	}
	r.hashes = append(r.hashes, t.Hash)
	if len(r.hashes) == 1 {
		return r.Store.DeleteUserSessions(ctx, t.UserID) // Generation moves on
	}
	return nil
}

func TestManager_TokenRacingRevocation(t *testing.T) {
	ctx := t.Context()
	rs := &raceStore{Store: users.NewMemoryStore()}
	clock := storetest.NewClock()
	m, err := users.New(rs, &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, users.NewUser{Email: "race@example.com", Password: storetest.Password}); err != nil {
		t.Fatal(err)
	}
	d, err := m.RequestPasswordReset(ctx, "race@example.com")
	if err != nil {
		t.Fatal(err)
	}
	tok := d.Token
	if len(rs.hashes) != 2 {
		t.Fatalf("%d tokens stored, want 2 (the first voided, then one for the user as it is now)", len(rs.hashes))
	}
	if _, err := rs.GetToken(ctx, rs.hashes[0], users.PurposePasswordReset); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("the token stored before the revocation survived it: %v", err)
	}
	if err := m.ResetPassword(ctx, tok, "a brand new secret"); err != nil {
		t.Fatalf("the token returned does not work: %v", err)
	}
}

// An importer that changes the slice Purposes returns must not weaken the
// revocation the Manager does on a password change.
func TestPurposes_ReturnsACopy(t *testing.T) {
	p := users.Purposes()
	if len(p) != 5 {
		t.Fatalf("Purposes() = %v, want the 5 purposes", p)
	}
	for i := range p {
		p[i] = "tampered"
	}
	if got := users.Purposes(); got[0] != users.PurposePasswordReset {
		t.Fatalf("Purposes() after changing an earlier result = %v", got)
	}

	f := newFixture(t, nil)
	u := f.mustCreate(t, users.NewUser{Email: "copy@example.com"})
	d, err := f.M.RequestPasswordReset(t.Context(), u.Email)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.M.UpdatePassword(t.Context(), u.ID, storetest.Password, "another long secret"); err != nil {
		t.Fatal(err)
	}
	if err := f.M.ResetPassword(t.Context(), d.Token, "a third long secret"); !errors.Is(err, users.ErrInvalidToken) {
		t.Fatalf("reset token after a password change: %v, want ErrInvalidToken", err)
	}
}
