package users_test

import (
	"context"
	"errors"
	"sync"
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

// afterConsume runs then, once, right after a token is consumed: a change that
// lands between a token's consumption and the change it was redeemed for.
type afterConsume struct {
	users.Store
	once sync.Once
	then func()
}

func (s *afterConsume) ConsumeToken(ctx context.Context, hash []byte, p users.Purpose, audit ...*users.AuditEntry) (*users.TokenRecord, error) {
	t, err := s.Store.ConsumeToken(ctx, hash, p, audit...)
	if err == nil && s.then != nil {
		s.once.Do(s.then)
	}
	return t, err
}

// A token used up by a redemption whose change is then refused, because the
// user changed in between, is in the audit log: token.redeemed with its
// Purpose and a Reason. An email change or a removal gives ErrInvalidToken and
// "user_changed"; a suspension gives what each method documents for a user who
// is not active.
func TestManager_RedemptionLosingARaceIsAudited(t *testing.T) {
	type tokenFlow struct {
		request func(ctx context.Context, m *users.Manager, u *users.User) (*users.Delivery, error)
		redeem  func(ctx context.Context, m *users.Manager, token string) error
		purpose users.Purpose
		// suspended is the error a suspension in between gives, with its
		// Reason; nil for VerifyEmail, which a suspended user may still do.
		suspended error
		reason    string
	}
	flows := map[string]tokenFlow{
		"ResetPassword": {
			func(ctx context.Context, m *users.Manager, u *users.User) (*users.Delivery, error) {
				return m.RequestPasswordReset(ctx, u.Email)
			},
			func(ctx context.Context, m *users.Manager, token string) error {
				return m.ResetPassword(ctx, token, "a brand new secret")
			},
			users.PurposePasswordReset, users.ErrInvalidToken, "user_changed",
		},
		"LoginWithMagicLink": {
			func(ctx context.Context, m *users.Manager, u *users.User) (*users.Delivery, error) {
				return m.RequestMagicLink(ctx, u.Email)
			},
			func(ctx context.Context, m *users.Manager, token string) error {
				_, err := m.LoginWithMagicLink(ctx, token)
				return err
			},
			users.PurposeMagicLink, users.ErrAccountDisabled, "account_disabled",
		},
		"VerifyEmail": {
			func(ctx context.Context, m *users.Manager, u *users.User) (*users.Delivery, error) {
				return m.RequestEmailVerification(ctx, u.ID)
			},
			func(ctx context.Context, m *users.Manager, token string) error {
				_, err := m.VerifyEmail(ctx, token)
				return err
			},
			users.PurposeVerifyEmail, nil, "",
		},
	}
	type change struct {
		name string
		do   func(ctx context.Context, m *users.Manager, id string) error
	}
	emailChanged := change{"EmailChanged", func(ctx context.Context, m *users.Manager, id string) error {
		email := "elsewhere@example.com"
		_, err := m.Update(ctx, id, users.UserUpdate{Email: &email})
		return err
	}}
	removed := change{"Removed", func(ctx context.Context, m *users.Manager, id string) error {
		return m.Remove(ctx, id)
	}}
	suspended := change{"Suspended", func(ctx context.Context, m *users.Manager, id string) error {
		status := users.StatusSuspended
		_, err := m.Update(ctx, id, users.UserUpdate{Status: &status})
		return err
	}}
	for fname, flow := range flows {
		run := func(c change, wantErr error, wantReason string) {
			t.Run(fname+"/"+c.name, func(t *testing.T) {
				ctx := t.Context()
				store := &afterConsume{Store: users.NewMemoryStore()}
				f := storetest.NewFixture(t, store, nil)
				u := f.MustCreate(t, users.NewUser{Email: "r@example.com"})
				d, err := flow.request(ctx, f.M, u)
				if err != nil {
					t.Fatal(err)
				}
				store.then = func() {
					if err := c.do(ctx, f.M, u.ID); err != nil {
						t.Errorf("the change after the token was consumed: %v", err)
					}
				}
				if err := flow.redeem(ctx, f.M, d.Token); !errors.Is(err, wantErr) {
					t.Fatalf("redemption that lost the race: %v, want %v", err, wantErr)
				}
				page, err := f.M.Audit(ctx, users.AuditFilter{UserID: u.ID, Types: []users.EventType{users.EventTokenRedeemed}})
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Entries) != 1 || page.Entries[0].Purpose != flow.purpose || page.Entries[0].Reason != wantReason {
					for _, e := range page.Entries {
						t.Logf("entry %s %q %q", e.Type, e.Purpose, e.Reason)
					}
					t.Fatalf("%d token.redeemed entries; want one, for %s, %s", len(page.Entries), flow.purpose, wantReason)
				}
			})
		}
		run(emailChanged, users.ErrInvalidToken, "user_changed")
		run(removed, users.ErrInvalidToken, "user_changed")
		if flow.suspended != nil {
			run(suspended, flow.suspended, flow.reason)
		}
	}
}

// afterUpdate runs then, once, right after the first UpdateUser that succeeds:
// a change that lands between a link's redemption and the session it logs in.
type afterUpdate struct {
	users.Store
	once sync.Once
	then func()
}

func (s *afterUpdate) UpdateUser(ctx context.Context, id string, fn func(r *users.UserRecord) (users.Revoke, error), audit ...*users.AuditEntry) (*users.UserRecord, error) {
	r, err := s.Store.UpdateUser(ctx, id, fn, audit...)
	if err == nil && s.then != nil {
		s.once.Do(s.then)
	}
	return r, err
}

// A magic link or invitation redeemed just before a change that voids the
// login (a suspension, a removal) gets no session: ErrInvalidToken, as the
// methods document, and login.failed with Reason "changed_meanwhile". The
// change is made on the store directly: it runs inside the redemption's write,
// where the Manager holds the user's event-order lock.
func TestManager_LinkLoginLosingARaceIsAudited(t *testing.T) {
	changes := map[string]func(ctx context.Context, s users.Store, id string) error{
		"Suspended": func(ctx context.Context, s users.Store, id string) error {
			_, err := s.UpdateUser(ctx, id, func(r *users.UserRecord) (users.Revoke, error) {
				r.Status = users.StatusSuspended
				return users.Revoke{Sessions: true}, nil
			})
			return err
		},
		"Removed": func(ctx context.Context, s users.Store, id string) error {
			return s.DeleteUser(ctx, id)
		},
	}
	for _, flow := range []string{"LoginWithMagicLink", "AcceptInvitation"} {
		for cname, change := range changes {
			t.Run(flow+"/"+cname, func(t *testing.T) {
				ctx := t.Context()
				store := &afterUpdate{Store: users.NewMemoryStore()}
				f := storetest.NewFixture(t, store, nil)
				var u *users.User
				var token string
				if flow == "AcceptInvitation" {
					var err error
					u, token, err = f.M.Invite(ctx, users.NewUser{Email: "r@example.com"})
					if err != nil {
						t.Fatal(err)
					}
				} else {
					u = f.MustCreate(t, users.NewUser{Email: "r@example.com"})
					d, err := f.M.RequestMagicLink(ctx, u.Email)
					if err != nil {
						t.Fatal(err)
					}
					token = d.Token
				}
				store.then = func() {
					if err := change(ctx, store.Store, u.ID); err != nil {
						t.Errorf("the change after the redemption: %v", err)
					}
				}
				var s *users.Session
				var err error
				if flow == "AcceptInvitation" {
					s, err = f.M.AcceptInvitation(ctx, token, storetest.Password)
				} else {
					s, err = f.M.LoginWithMagicLink(ctx, token)
				}
				if !errors.Is(err, users.ErrInvalidToken) {
					t.Fatalf("%s that lost the race: %+v, %v; want ErrInvalidToken", flow, s, err)
				}
				wantChangedMeanwhile(t, f.M, u.ID)
			})
		}
	}
}

// TestManager_IssuePasswordReset: the admin-side reset voids the user's
// earlier reset tokens (those of RequestPasswordReset too), and refuses users
// who are missing or not active.
func TestManager_IssuePasswordReset(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, nil)
	u := f.mustCreate(t, users.NewUser{Email: "ada@example.com"})
	self, err := f.M.RequestPasswordReset(ctx, u.Email)
	if err != nil {
		t.Fatal(err)
	}
	first, err := f.M.IssuePasswordReset(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.M.IssuePasswordReset(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if second.To != u.Email || second.UserID != u.ID {
		t.Errorf("Delivery %+v, want it for %s", second, u.Email)
	}
	for _, d := range []*users.Delivery{self, first} {
		if err := f.M.ResetPassword(ctx, d.Token, "analytical engine 1843"); !errors.Is(err, users.ErrInvalidToken) {
			t.Errorf("an earlier reset token after IssuePasswordReset: %v, want ErrInvalidToken", err)
		}
	}
	if err := f.M.ResetPassword(ctx, second.Token, "analytical engine 1843"); err != nil {
		t.Errorf("the newest token: %v", err)
	}
	if _, err := f.M.IssuePasswordReset(ctx, "01JB0000000000000000000000"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("unknown user: %v, want ErrNotFound", err)
	}
	suspended := users.StatusSuspended
	if _, err := f.M.Update(ctx, u.ID, users.UserUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.IssuePasswordReset(ctx, u.ID); !errors.Is(err, users.ErrAccountDisabled) {
		t.Errorf("suspended user: %v, want ErrAccountDisabled", err)
	}
}
