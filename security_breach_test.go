package users_test

// Breached passwords: Options.BreachChecker is asked wherever a password is
// set; a breached password is refused on "password" and nothing is stored.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// fakeBreach is a BreachChecker over a fixed set, with an error to return
// instead when err is set, and a record of what it was asked.
type fakeBreach struct {
	mu     sync.Mutex
	listed map[string]bool
	err    error
	asked  []string
}

func (b *fakeBreach) Breached(_ context.Context, pw string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.asked = append(b.asked, pw)
	return b.listed[pw], b.err
}

func (b *fakeBreach) wasAsked(pw string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Contains(b.asked, pw)
}

const breachedPassword = "breached but long enough"

func TestSecurity_BreachChecker(t *testing.T) {
	bg := t.Context()
	setup := func(t *testing.T) (*Fixture, *fakeBreach) {
		b := &fakeBreach{listed: map[string]bool{breachedPassword: true}}
		return newFixture(t, func(o *users.Options) { o.BreachChecker = b }), b
	}
	// wantKept checks that the stored hash is still before and that the
	// breached password logs in nowhere.
	wantKept := func(t *testing.T, f *Fixture, email, before string) {
		t.Helper()
		if got := secStoredHash(t, f.Store, email); got != before {
			t.Errorf("a refused password changed the stored hash")
		}
		if _, err := f.M.Login(bg, email, breachedPassword); err == nil {
			t.Errorf("the refused password logs in")
		}
	}

	t.Run("Create", func(t *testing.T) {
		f, b := setup(t)
		_, err := f.M.Create(bg, users.NewUser{Email: "a@example.com", Password: breachedPassword})
		secWantPasswordRefused(t, err, "Create")
		if _, err := f.M.GetByEmail(bg, "a@example.com"); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("a refused Create stored a user: %v", err)
		}
		// The checker gets the NFKC form; a password it does not list passes.
		f.mustCreate(t, users.NewUser{Email: "a@example.com", Password: "\ufb01ne and unbreached"})
		if !b.wasAsked("fine and unbreached") {
			t.Errorf("the checker was asked %q, want the NFKC form %q", b.asked, "fine and unbreached")
		}
	})
	t.Run("Import", func(t *testing.T) {
		f, _ := setup(t)
		res, err := f.M.Import(bg, []users.NewUser{
			{Email: "a@example.com", Password: breachedPassword},
			{Email: "b@example.com", Password: "an unbreached password"},
		})
		if err != nil {
			t.Fatal(err)
		}
		secWantPasswordRefused(t, res[0].Err, "Import")
		if res[1].Err != nil {
			t.Errorf("the good row: %v", res[1].Err)
		}
		if _, err := f.M.GetByEmail(bg, "a@example.com"); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("a refused row was stored: %v", err)
		}
	})
	t.Run("UpdatePassword", func(t *testing.T) {
		f, _ := setup(t)
		u := f.mustCreate(t, users.NewUser{Email: "a@example.com"})
		before := secStoredHash(t, f.Store, u.Email)
		secWantPasswordRefused(t, f.M.UpdatePassword(bg, u.ID, storetest.Password, breachedPassword), "UpdatePassword")
		wantKept(t, f, u.Email, before)
	})
	t.Run("SetPassword", func(t *testing.T) {
		f, _ := setup(t)
		u := f.mustCreate(t, users.NewUser{Email: "a@example.com"})
		before := secStoredHash(t, f.Store, u.Email)
		secWantPasswordRefused(t, f.M.SetPassword(bg, u.ID, breachedPassword), "SetPassword")
		wantKept(t, f, u.Email, before)
	})
	t.Run("ResetPassword", func(t *testing.T) {
		f, _ := setup(t)
		u := f.mustCreate(t, users.NewUser{Email: "a@example.com"})
		before := secStoredHash(t, f.Store, u.Email)
		d, err := f.M.RequestPasswordReset(bg, u.Email)
		if err != nil {
			t.Fatal(err)
		}
		secWantPasswordRefused(t, f.M.ResetPassword(bg, d.Token, breachedPassword), "ResetPassword")
		wantKept(t, f, u.Email, before)
		// The token was not spent on the refusal.
		if err := f.M.ResetPassword(bg, d.Token, "an unbreached password"); err != nil {
			t.Errorf("the token after a refused reset: %v", err)
		}
	})
	t.Run("AcceptInvitation", func(t *testing.T) {
		f, _ := setup(t)
		u, tok, err := f.M.Invite(bg, users.NewUser{Email: "a@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		before := secStoredHash(t, f.Store, u.Email)
		_, err = f.M.AcceptInvitation(bg, tok, breachedPassword)
		secWantPasswordRefused(t, err, "AcceptInvitation")
		wantKept(t, f, u.Email, before)
		if got := f.MustGet(t, u.ID).Status; got == users.StatusActive {
			t.Errorf("a refused invitation made the user %q", got)
		}
		if _, err := f.M.AcceptInvitation(bg, tok, "an unbreached password"); err != nil {
			t.Errorf("the token after a refused acceptance: %v", err)
		}
	})
	t.Run("CheckerError", func(t *testing.T) {
		// An error refuses the password (a fail-closed checker's answer), is
		// not a *ValidationError, is testable with errors.Is, and stores nothing.
		down := errors.New("breach service down")
		b := &fakeBreach{err: down}
		f := newFixture(t, func(o *users.Options) { o.BreachChecker = b })
		_, err := f.M.Create(bg, users.NewUser{Email: "a@example.com", Password: "an unbreached password"})
		if !errors.Is(err, down) || errors.Is(err, users.ErrInvalidInput) {
			t.Errorf("Create: got %v, want the checker's error, not a *ValidationError", err)
		}
		if _, err := f.M.GetByEmail(bg, "a@example.com"); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("Create stored a user its breach checker could not clear: %v", err)
		}
	})
	t.Run("AfterPasswordChecker", func(t *testing.T) {
		// The built-in common-password list stays, and refuses first.
		f, b := setup(t)
		_, err := f.M.Create(bg, users.NewUser{Email: "a@example.com", Password: "password"})
		secWantPasswordRefused(t, err, "a common password")
		if b.wasAsked("password") {
			t.Error("the breach checker was asked about a password the default checker refuses")
		}
	})
}
