package users_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

func ptr[T any](v T) *T { return &v }

func sha256Sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// wantField fails unless err is a *ValidationError on field.
func wantField(tb testing.TB, err error, field string) {
	tb.Helper()
	var ve *users.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, users.ErrInvalidInput) {
		tb.Fatalf("got %v, want a *ValidationError on %q matching ErrInvalidInput", err, field)
	}
	if ve.Field != field {
		tb.Fatalf("ValidationError.Field = %q, want %q (%v)", ve.Field, field, err)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	t.Run("Defaults", func(t *testing.T) {
		// Cost 10 keeps the test quick; the zero value (12) is checked below.
		if _, err := users.New(users.NewMemoryStore(), &users.Options{BcryptCost: 10}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ZeroCostIsNotWeak", func(t *testing.T) {
		// The zero value must mean the default cost, 12, which needs no test option.
		if _, err := users.New(users.NewMemoryStore(), &users.Options{BcryptCost: 0, InsecureLowBcryptCostForTests: false, MinPasswordLength: 0}); err != nil {
			t.Fatalf("New with zero options: %v", err)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		for name, o := range map[string]users.Options{
			"options.BcryptCost":          {BcryptCost: 9},
			"options.MinPasswordLength":   {BcryptCost: 10, MinPasswordLength: 7},
			"options.MaxFailedLogins":     {BcryptCost: 10, MaxFailedLogins: 101},
			"options.SessionTTL":          {BcryptCost: 10, SessionTTL: -time.Second},
			"options.Roles":               {BcryptCost: 10, Roles: []users.Role{users.RoleAdmin}},
			"options.MaxConcurrentHashes": {BcryptCost: 10, MaxConcurrentHashes: -1},
		} {
			_, err := users.New(users.NewMemoryStore(), &o)
			wantField(t, err, name)
		}
		if _, err := users.New(nil, nil); err == nil {
			t.Fatal("New(nil store) succeeded")
		}
	})
}

func TestManager_Create(t *testing.T) {
	ctx := t.Context()
	t.Run("OK", func(t *testing.T) {
		f := newFixture(t, nil)
		u := f.mustCreate(t, users.NewUser{
			Email: "  Alice@Example.COM ", Username: "Alice_1", FirstName: "Alice", LastName: "Liddell",
			AvatarURL: "https://example.com/a.png", AccountID: "acct-1", Preferences: map[string]string{"theme": "dark"},
		})
		if got, want := u.Email, "alice@example.com"; got != want {
			t.Errorf("Email = %q, want %q", got, want)
		}
		if got, want := u.Username, "alice_1"; got != want {
			t.Errorf("Username = %q, want %q", got, want)
		}
		if u.Role != users.RoleUser || u.Status != users.StatusActive {
			t.Errorf("defaults: role %q status %q, want user/active", u.Role, u.Status)
		}
		if u.ID == "" || u.CreatedAt.IsZero() || !u.UpdatedAt.Equal(u.CreatedAt) || !u.LastLoginAt.IsZero() {
			t.Errorf("ID/times not set right: %+v", u)
		}
		got, err := f.M.Get(ctx, u.ID)
		if err != nil || got.Email != u.Email || got.Preferences["theme"] != "dark" {
			t.Fatalf("Get after Create: %+v, %v", got, err)
		}
	})

	t.Run("IDsAreTimeOrdered", func(t *testing.T) {
		f := newFixture(t, nil)
		var ids []string
		for i := range 5 {
			ids = append(ids, f.mustCreate(t, users.NewUser{Email: fmt.Sprintf("u%d@example.com", i)}).ID)
		}
		if !slices.IsSorted(ids) {
			t.Fatalf("IDs not in creation order: %v", ids)
		}
	})

	t.Run("JSONHasNoHash", func(t *testing.T) {
		f := newFixture(t, nil)
		u := f.mustCreate(t, users.NewUser{Email: "a@example.com", FirstName: "A"})
		b, _ := json.Marshal(u)
		s := string(b)
		for _, k := range []string{`"id"`, `"email"`, `"first_name"`, `"created_at"`, `"updated_at"`, `"role"`, `"status"`} {
			if !strings.Contains(s, k) {
				t.Errorf("JSON lacks %s: %s", k, s)
			}
		}
		if strings.Contains(s, "$2") || strings.Contains(strings.ToLower(s), "hash") || strings.Contains(s, storetest.Password) {
			t.Errorf("JSON carries a secret: %s", s)
		}
		r, _ := f.Store.GetUser(ctx, u.ID)
		if strings.Contains(fmt.Sprint(r), r.PasswordHash) || strings.Contains(fmt.Sprintf("%v", r), "$2a$") {
			t.Errorf("printing a UserRecord shows its hash: %v", r)
		}
	})

	t.Run("DuplicateEmailAnyCase", func(t *testing.T) {
		f := newFixture(t, nil)
		f.mustCreate(t, users.NewUser{Email: "Alice@Example.com"})
		_, err := f.M.Create(ctx, users.NewUser{Email: " alice@example.com", Password: storetest.Password})
		if !errors.Is(err, users.ErrDuplicateEmail) {
			t.Fatalf("got %v, want ErrDuplicateEmail", err)
		}
	})

	t.Run("DuplicateUsernameAnyCase", func(t *testing.T) {
		f := newFixture(t, nil)
		f.mustCreate(t, users.NewUser{Email: "a@example.com", Username: "bob"})
		_, err := f.M.Create(ctx, users.NewUser{Email: "b@example.com", Username: "BOB", Password: storetest.Password})
		if !errors.Is(err, users.ErrDuplicateUsername) {
			t.Fatalf("got %v, want ErrDuplicateUsername", err)
		}
	})

	t.Run("ConcurrentSameEmail", func(t *testing.T) {
		f := newFixture(t, nil)
		const n = 32
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				// Different cases and padding: one account all the same.
				email := strings.ToUpper("race@example.com"[:i%8]) + "race@example.com"[i%8:]
				if i%2 == 1 {
					email = " " + email + " "
				}
				_, errs[i] = f.M.Create(ctx, users.NewUser{Email: email, Password: storetest.Password})
			})
		}
		wg.Wait()
		if !storetest.ExactlyOne(t, errs, users.ErrDuplicateEmail, "of concurrent Creates of one email in different cases exactly one must succeed, the others with ErrDuplicateEmail") {
			t.FailNow()
		}
		if n, _ := f.M.Count(ctx, users.Filter{}); n != 1 {
			t.Fatalf("Count = %d, want 1", n)
		}
	})

	t.Run("InvalidFields", func(t *testing.T) {
		f := newFixture(t, nil)
		long := strings.Repeat("x", 300)
		for _, c := range []struct {
			field string
			nu    users.NewUser
		}{
			{"email", users.NewUser{Email: ""}},
			{"email", users.NewUser{Email: "no-at-sign"}},
			{"email", users.NewUser{Email: "Bob <bob@example.com>"}},
			{"email", users.NewUser{Email: "a@b@example.com"}},
			{"email", users.NewUser{Email: "a@example.com, b@example.com"}},
			{"email", users.NewUser{Email: strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63) + ".com"}},
			{"username", users.NewUser{Email: "a@example.com", Username: "ab"}},
			{"username", users.NewUser{Email: "a@example.com", Username: strings.Repeat("a", 33)}},
			{"username", users.NewUser{Email: "a@example.com", Username: "bad name"}},
			{"username", users.NewUser{Email: "a@example.com", Username: "a@b"}},
			{"first_name", users.NewUser{Email: "a@example.com", FirstName: long}},
			{"last_name", users.NewUser{Email: "a@example.com", LastName: "a\x00b"}},
			{"role", users.NewUser{Email: "a@example.com", Role: "root"}},
			{"status", users.NewUser{Email: "a@example.com", Status: "deleted"}},
			{"status", users.NewUser{Email: "a@example.com", Status: users.StatusInvited}},
			{"avatar_url", users.NewUser{Email: "a@example.com", AvatarURL: "javascript:alert(1)"}},
			{"account_id", users.NewUser{Email: "a@example.com", AccountID: long}},
			{"preferences", users.NewUser{Email: "a@example.com", Preferences: map[string]string{"": "x"}}},
			{"preferences", users.NewUser{Email: "a@example.com", Preferences: map[string]string{"k": "a\x00b"}}},
			{"password", users.NewUser{Email: "a@example.com", Password: "short"}},
			{"password", users.NewUser{Email: "a@example.com", Password: strings.Repeat("p", 129)}},
			{"password_hash", users.NewUser{Email: "a@example.com", PasswordHash: "plaintext"}},
		} {
			if c.nu.Password == "" && c.nu.PasswordHash == "" && c.field != "password" {
				c.nu.Password = storetest.Password
			}
			_, err := f.M.Create(ctx, c.nu)
			wantField(t, err, c.field)
		}
		if n, _ := f.M.Count(ctx, users.Filter{}); n != 0 {
			t.Fatalf("refused creates stored %d users", n)
		}
	})

	t.Run("LongPasswordNotTruncated", func(t *testing.T) {
		f := newFixture(t, nil)
		pw := strings.Repeat("a", 72)
		f.mustCreate(t, users.NewUser{Email: "long@example.com", Password: pw + "X"})
		if _, err := f.M.Login(ctx, "long@example.com", pw); !errors.Is(err, users.ErrInvalidCredentials) {
			t.Fatalf("72-byte prefix logged in (truncation): %v", err)
		}
		f.MustLogin(t, "long@example.com", pw+"X")
	})
}

func TestManager_GetByEmailUsername(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, nil)
	u := f.mustCreate(t, users.NewUser{Email: "carol@example.com", Username: "carol"})
	for _, get := range []func() (*users.User, error){
		func() (*users.User, error) { return f.M.GetByEmail(ctx, " CAROL@example.com") },
		func() (*users.User, error) { return f.M.GetByUsername(ctx, "Carol") },
	} {
		got, err := get()
		if err != nil || got.ID != u.ID {
			t.Fatalf("got %v, %v; want user %s", got, err, u.ID)
		}
	}
	if _, err := f.M.GetByEmail(ctx, "nobody@example.com"); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("unknown email: %v, want ErrNotFound", err)
	}
	if _, err := f.M.Get(ctx, "nope"); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("unknown id: %v, want ErrNotFound", err)
	}
}

func TestManager_Update(t *testing.T) {
	ctx := t.Context()
	t.Run("Partial", func(t *testing.T) {
		f := newFixture(t, nil)
		u := f.mustCreate(t, users.NewUser{Email: "d@example.com", Username: "dee", FirstName: "Dee", LastName: "Dee", Preferences: map[string]string{"a": "1"}})
		f.Clock.Advance(time.Hour)
		got, err := f.M.Update(ctx, u.ID, users.UserUpdate{FirstName: ptr("Diana")})
		if err != nil {
			t.Fatal(err)
		}
		if got.FirstName != "Diana" || got.LastName != "Dee" || got.Username != "dee" || got.Email != u.Email || got.Preferences["a"] != "1" {
			t.Fatalf("untouched fields changed: %+v", got)
		}
		if !got.CreatedAt.Equal(u.CreatedAt) {
			t.Fatalf("CreatedAt changed: %v -> %v", u.CreatedAt, got.CreatedAt)
		}
		if !got.UpdatedAt.After(u.UpdatedAt) {
			t.Fatalf("UpdatedAt did not advance: %v -> %v", u.UpdatedAt, got.UpdatedAt)
		}
		got, _ = f.M.Update(ctx, u.ID, users.UserUpdate{Preferences: map[string]string{"b": "2"}})
		if _, ok := got.Preferences["a"]; ok || got.Preferences["b"] != "2" {
			t.Fatalf("Preferences not replaced: %v", got.Preferences)
		}
	})

	t.Run("ConcurrentDifferentFields", func(t *testing.T) {
		f := newFixture(t, nil)
		u := f.mustCreate(t, users.NewUser{Email: "e@example.com"})
		for range 20 {
			var wg sync.WaitGroup
			wg.Go(func() { f.M.Update(ctx, u.ID, users.UserUpdate{FirstName: ptr("First")}) })
			wg.Go(func() { f.M.Update(ctx, u.ID, users.UserUpdate{LastName: ptr("Last")}) })
			wg.Go(func() { f.M.Update(ctx, u.ID, users.UserUpdate{AvatarURL: ptr("https://example.com/x.png")}) })
			wg.Wait()
			got, _ := f.M.Get(ctx, u.ID)
			if got.FirstName != "First" || got.LastName != "Last" || got.AvatarURL == "" {
				t.Fatalf("lost update: %+v", got)
			}
			f.M.Update(ctx, u.ID, users.UserUpdate{FirstName: ptr(""), LastName: ptr(""), AvatarURL: ptr("")})
		}
	})

	t.Run("Duplicates", func(t *testing.T) {
		f := newFixture(t, nil)
		a := f.mustCreate(t, users.NewUser{Email: "a@example.com", Username: "aaa"})
		b := f.mustCreate(t, users.NewUser{Email: "b@example.com", Username: "bbb"})
		if _, err := f.M.Update(ctx, b.ID, users.UserUpdate{Email: ptr("A@example.com")}); !errors.Is(err, users.ErrDuplicateEmail) {
			t.Fatalf("taken email: %v", err)
		}
		if _, err := f.M.Update(ctx, b.ID, users.UserUpdate{Username: ptr("AAA")}); !errors.Is(err, users.ErrDuplicateUsername) {
			t.Fatalf("taken username: %v", err)
		}
		if _, err := f.M.Update(ctx, a.ID, users.UserUpdate{Email: ptr("a@example.com"), Username: ptr("aaa")}); err != nil {
			t.Fatalf("own email and username: %v", err)
		}
		got, _ := f.M.Get(ctx, b.ID)
		if got.Email != "b@example.com" || got.Username != "bbb" {
			t.Fatalf("refused update changed the user: %+v", got)
		}
		// A freed email can be taken.
		if _, err := f.M.Update(ctx, a.ID, users.UserUpdate{Email: ptr("a2@example.com")}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.M.Update(ctx, b.ID, users.UserUpdate{Email: ptr("a@example.com")}); err != nil {
			t.Fatalf("freed email: %v", err)
		}
	})

	t.Run("ConcurrentToTakenEmail", func(t *testing.T) {
		f := newFixture(t, nil)
		var ids []string
		for i := range 32 {
			ids = append(ids, f.mustCreate(t, users.NewUser{Email: fmt.Sprintf("u%d@example.com", i)}).ID)
		}
		errs := make([]error, len(ids))
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Go(func() { _, errs[i] = f.M.Update(ctx, id, users.UserUpdate{Email: ptr("Wanted@example.com")}) })
		}
		wg.Wait()
		storetest.ExactlyOne(t, errs, users.ErrDuplicateEmail, "of concurrent Updates to one email exactly one must succeed, the others with ErrDuplicateEmail")
	})

	t.Run("Invalid", func(t *testing.T) {
		f := newFixture(t, nil)
		u := f.mustCreate(t, users.NewUser{Email: "v@example.com"})
		_, err := f.M.Update(ctx, u.ID, users.UserUpdate{FirstName: ptr("ok"), Email: ptr("bad")})
		wantField(t, err, "email")
		_, err = f.M.UpdateRole(ctx, u.ID, "superuser")
		wantField(t, err, "role")
		got, _ := f.M.Get(ctx, u.ID)
		if got.FirstName != "" || got.Role != users.RoleUser {
			t.Fatalf("refused update changed the user: %+v", got)
		}
		if _, err := f.M.Update(ctx, "missing", users.UserUpdate{FirstName: ptr("x")}); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("missing user: %v", err)
		}
	})
}

func TestManager_UpdatePassword(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, nil)
	u := f.mustCreate(t, users.NewUser{Email: "p@example.com"})
	s1 := f.MustLogin(t, "p@example.com", storetest.Password)
	s2 := f.MustLogin(t, "p@example.com", storetest.Password)
	before, _ := f.Store.GetUser(ctx, u.ID)

	t.Run("ErrInvalidCredentials", func(t *testing.T) {
		err := f.M.UpdatePassword(ctx, u.ID, "wrong password", "a brand new secret")
		if !errors.Is(err, users.ErrInvalidCredentials) {
			t.Fatalf("got %v", err)
		}
		after, _ := f.Store.GetUser(ctx, u.ID)
		if after.PasswordHash != before.PasswordHash {
			t.Fatal("hash changed after a wrong current password")
		}
		if _, err := f.M.ValidateToken(ctx, s1.Token); err != nil {
			t.Fatalf("a refused change revoked a session: %v", err)
		}
	})
	t.Run("ErrInvalidInput", func(t *testing.T) {
		wantField(t, f.M.UpdatePassword(ctx, u.ID, storetest.Password, "short"), "password")
	})
	t.Run("OK", func(t *testing.T) {
		if err := f.M.UpdatePassword(ctx, u.ID, storetest.Password, "a brand new secret"); err != nil {
			t.Fatal(err)
		}
		for _, s := range []*users.Session{s1, s2} {
			if _, err := f.M.ValidateToken(ctx, s.Token); !errors.Is(err, users.ErrInvalidToken) {
				t.Fatalf("session survived a password change: %v", err)
			}
		}
		if _, err := f.M.Login(ctx, "p@example.com", storetest.Password); !errors.Is(err, users.ErrInvalidCredentials) {
			t.Fatalf("old password still works: %v", err)
		}
		f.MustLogin(t, "p@example.com", "a brand new secret")
	})
}

func TestManager_SetPassword(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, func(o *users.Options) { o.MaxFailedLogins = 3 })
	u := f.mustCreate(t, users.NewUser{Email: "set@example.com", Username: "adalovelace"})
	s1 := f.MustLogin(t, "set@example.com", storetest.Password)
	s2 := f.MustLogin(t, "adalovelace", storetest.Password)
	reset, err := f.M.RequestPasswordReset(ctx, u.Email)
	if err != nil {
		t.Fatal(err)
	}
	magic, err := f.M.RequestMagicLink(ctx, u.Email)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := f.Store.GetUser(ctx, u.ID)

	t.Run("ErrInvalidInput", func(t *testing.T) {
		for _, pw := range []string{"short", "password", "set@example.com", "AdaLovelace", strings.Repeat("x", 129)} {
			wantField(t, f.M.SetPassword(ctx, u.ID, pw), "password")
		}
		after, _ := f.Store.GetUser(ctx, u.ID)
		if after.PasswordHash != before.PasswordHash {
			t.Fatal("a refused password changed the hash")
		}
		if _, err := f.M.ValidateToken(ctx, s1.Token); err != nil {
			t.Fatalf("a refused password ended a session: %v", err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		if err := f.M.SetPassword(ctx, "01NOSUCHUSER0000000000000", "a brand new secret"); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})
	t.Run("OK", func(t *testing.T) {
		for range 3 {
			f.M.Login(ctx, "set@example.com", "not the password")
		}
		if _, err := f.M.Login(ctx, "set@example.com", storetest.Password); !errors.Is(err, users.ErrAccountLocked) {
			t.Fatalf("setup: login after 3 failures: %v, want ErrAccountLocked", err)
		}
		if err := f.M.SetPassword(ctx, u.ID, "a brand new secret"); err != nil {
			t.Fatal(err)
		}
		for _, s := range []*users.Session{s1, s2} {
			if _, err := f.M.ValidateToken(ctx, s.Token); !errors.Is(err, users.ErrInvalidToken) {
				t.Fatalf("session survived SetPassword: %v", err)
			}
		}
		if err := f.M.ResetPassword(ctx, reset.Token, "a third long secret"); !errors.Is(err, users.ErrInvalidToken) {
			t.Fatalf("reset token survived SetPassword: %v", err)
		}
		if _, err := f.M.LoginWithMagicLink(ctx, magic.Token); !errors.Is(err, users.ErrInvalidToken) {
			t.Fatalf("magic link survived SetPassword: %v", err)
		}
		if _, err := f.M.Login(ctx, "set@example.com", storetest.Password); !errors.Is(err, users.ErrInvalidCredentials) {
			t.Fatalf("old password after SetPassword: %v, want ErrInvalidCredentials", err)
		}
		f.MustLogin(t, "set@example.com", "a brand new secret") // and the lock is gone
	})
}

// emailMover changes the user's email just before the first UpdateUser goes
// through: the interleaving in which SetPassword's checker saw an old email.
type emailMover struct {
	users.Store
	moved bool
}

func (s *emailMover) UpdateUser(ctx context.Context, id string, fn func(r *users.UserRecord) (users.Revoke, error), audit ...*users.AuditEntry) (*users.UserRecord, error) {
	if !s.moved {
		s.moved = true
		if _, err := s.Store.UpdateUser(ctx, id, func(r *users.UserRecord) (users.Revoke, error) {
			r.Email = "moved@example.com"
			return users.Revoke{}, nil
		}); err != nil {
			return nil, err
		}
	}
	return s.Store.UpdateUser(ctx, id, fn, audit...)
}

func TestManager_SetPasswordEmailChangedMeanwhile(t *testing.T) {
	ctx := t.Context()
	st := &emailMover{Store: users.NewMemoryStore()}
	m, err := users.New(st, &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true})
	if err != nil {
		t.Fatal(err)
	}
	u, err := m.Create(ctx, users.NewUser{Email: "old@example.com", Password: storetest.Password})
	if err != nil {
		t.Fatal(err)
	}
	// Allowed for old@example.com, but it is the new email's local part.
	if err := m.SetPassword(ctx, u.ID, "moved@example.com"); !errors.Is(err, users.ErrConflict) {
		t.Fatalf("got %v, want ErrConflict: the password was checked against an email the user no longer has", err)
	}
	if _, err := m.Login(ctx, "moved@example.com", storetest.Password); err != nil {
		t.Fatalf("the password changed after all: %v", err)
	}
}

func TestManager_Remove(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, nil)
	u := f.mustCreate(t, users.NewUser{Email: "r@example.com", Username: "rem"})
	s := f.MustLogin(t, "rem", storetest.Password)
	if err := f.M.Remove(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.Get(ctx, u.ID); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("Get after Remove: %v", err)
	}
	if _, err := f.M.ValidateToken(ctx, s.Token); !errors.Is(err, users.ErrInvalidToken) {
		t.Fatalf("session of removed user: %v", err)
	}
	if ss, _ := f.Store.ListSessions(ctx, u.ID); len(ss) != 0 {
		t.Fatalf("%d sessions left behind", len(ss))
	}
	if err := f.M.Remove(ctx, u.ID); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("second Remove: %v", err)
	}
	f.mustCreate(t, users.NewUser{Email: "r@example.com", Username: "rem"}) // freed
}

func TestManager_Login(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, nil)
	u := f.mustCreate(t, users.NewUser{Email: "l@example.com", Username: "lou"})

	t.Run("OK", func(t *testing.T) {
		for _, id := range []string{"l@example.com", " L@Example.com", "lou", "LOU"} {
			s := f.MustLogin(t, id, storetest.Password)
			raw, err := base64.RawURLEncoding.DecodeString(s.Token)
			if err != nil || len(raw) != 32 {
				t.Fatalf("token %q is not 32 bytes of base64url: %v", s.Token, err)
			}
			if s.User == nil || s.User.ID != u.ID || s.UserID != u.ID || s.ID == "" {
				t.Fatalf("session: %+v", s)
			}
		}
		got, _ := f.M.Get(ctx, u.ID)
		if !got.LastLoginAt.Equal(f.Clock.Now()) {
			t.Fatalf("LastLoginAt = %v, want %v", got.LastLoginAt, f.Clock.Now())
		}
	})
	t.Run("NewTokenEachTime", func(t *testing.T) {
		a, b := f.MustLogin(t, "lou", storetest.Password), f.MustLogin(t, "lou", storetest.Password)
		if a.Token == b.Token || a.ID == b.ID {
			t.Fatal("two logins share a token or ID")
		}
	})
	t.Run("ErrInvalidCredentials", func(t *testing.T) {
		_, unknown := f.M.Login(ctx, "nobody@example.com", storetest.Password)
		_, wrong := f.M.Login(ctx, "l@example.com", "not the password")
		if !errors.Is(unknown, users.ErrInvalidCredentials) || !errors.Is(wrong, users.ErrInvalidCredentials) {
			t.Fatalf("unknown: %v; wrong: %v", unknown, wrong)
		}
		if unknown.Error() != wrong.Error() {
			t.Fatalf("errors differ: %q vs %q", unknown, wrong)
		}
	})
	t.Run("ErrAccountDisabled", func(t *testing.T) {
		d := f.mustCreate(t, users.NewUser{Email: "off@example.com", Status: users.StatusSuspended})
		if _, err := f.M.Login(ctx, "off@example.com", storetest.Password); !errors.Is(err, users.ErrAccountDisabled) {
			t.Fatalf("right password, suspended: %v", err)
		}
		if _, err := f.M.Login(ctx, "off@example.com", "wrong password!"); !errors.Is(err, users.ErrInvalidCredentials) {
			t.Fatalf("wrong password, suspended: %v", err)
		}
		if ss, _ := f.M.Sessions(ctx, d.ID); len(ss) != 0 {
			t.Fatal("disabled login left a session")
		}
	})
}

func TestManager_TokensStoredHashed(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, nil)
	u := f.mustCreate(t, users.NewUser{Email: "h@example.com"})
	s := f.MustLogin(t, "h@example.com", storetest.Password)
	ss, err := f.Store.ListSessions(ctx, u.ID)
	if err != nil || len(ss) != 1 {
		t.Fatalf("ListSessions: %v, %v", ss, err)
	}
	sum := sha256Sum(s.Token)
	if string(ss[0].TokenHash) != string(sum) {
		t.Fatal("the store does not hold the SHA-256 of the token")
	}
	if strings.Contains(fmt.Sprintf("%+v", ss[0]), s.Token) {
		t.Fatal("the store holds the token itself")
	}
}

func TestManager_ValidateToken(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, func(o *users.Options) { o.SessionTTL = time.Hour })
	u := f.mustCreate(t, users.NewUser{Email: "t@example.com"})

	t.Run("OK", func(t *testing.T) {
		s := f.MustLogin(t, "t@example.com", storetest.Password)
		got, err := f.M.ValidateToken(ctx, s.Token)
		if err != nil || got.ID != s.ID || got.User.Email != "t@example.com" || got.Token != "" {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
	t.Run("CurrentUser", func(t *testing.T) {
		s := f.MustLogin(t, "t@example.com", storetest.Password)
		if _, err := f.M.UpdateRole(ctx, u.ID, users.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		got, err := f.M.ValidateToken(ctx, s.Token)
		if err != nil || got.User.Role != users.RoleAdmin {
			t.Fatalf("role change not visible: %+v, %v", got, err)
		}
	})
	t.Run("ErrInvalidToken", func(t *testing.T) {
		s := f.MustLogin(t, "t@example.com", storetest.Password)
		bad := []string{"", "x", strings.Repeat("A", 43), s.Token + "A", s.Token[:42] + "!", " " + s.Token}
		for _, tok := range bad {
			if _, err := f.M.ValidateToken(ctx, tok); !errors.Is(err, users.ErrInvalidToken) {
				t.Errorf("ValidateToken(%q) = %v, want ErrInvalidToken", tok, err)
			}
		}
		if err := f.M.Logout(ctx, s.Token); err != nil {
			t.Fatal(err)
		}
		if _, err := f.M.ValidateToken(ctx, s.Token); !errors.Is(err, users.ErrInvalidToken) {
			t.Fatalf("logged-out token: %v", err)
		}
		if err := f.M.Logout(ctx, s.Token); !errors.Is(err, users.ErrInvalidToken) {
			t.Fatalf("second Logout: %v", err)
		}
	})
	t.Run("Expired", func(t *testing.T) {
		s := f.MustLogin(t, "t@example.com", storetest.Password)
		f.Clock.Advance(time.Hour)
		if _, err := f.M.ValidateToken(ctx, s.Token); !errors.Is(err, users.ErrInvalidToken) {
			t.Fatalf("expired token: %v", err)
		}
	})
	t.Run("NonActiveDeletesSessions", func(t *testing.T) {
		s := f.MustLogin(t, "t@example.com", storetest.Password)
		if _, err := f.M.Update(ctx, u.ID, users.UserUpdate{Status: ptr(users.StatusInactive)}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.M.ValidateToken(ctx, s.Token); !errors.Is(err, users.ErrInvalidToken) {
			t.Fatalf("session of inactive user: %v", err)
		}
		if ss, _ := f.Store.ListSessions(ctx, u.ID); len(ss) != 0 {
			t.Fatalf("%d sessions kept after deactivation", len(ss))
		}
		// Reactivating does not bring them back.
		f.M.Update(ctx, u.ID, users.UserUpdate{Status: ptr(users.StatusActive)})
		if _, err := f.M.ValidateToken(ctx, s.Token); !errors.Is(err, users.ErrInvalidToken) {
			t.Fatalf("session back after reactivation: %v", err)
		}
	})
	t.Run("LogoutAll", func(t *testing.T) {
		a, b := f.MustLogin(t, "t@example.com", storetest.Password), f.MustLogin(t, "t@example.com", storetest.Password)
		if err := f.M.LogoutAll(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		for _, s := range []*users.Session{a, b} {
			if _, err := f.M.ValidateToken(ctx, s.Token); !errors.Is(err, users.ErrInvalidToken) {
				t.Fatalf("LogoutAll left %v", err)
			}
		}
	})
}

// countingStore counts TouchSession calls, to show ValidateToken stays a read.
type countingStore struct {
	users.Store
	mu      sync.Mutex
	touches int
}

func (c *countingStore) TouchSession(ctx context.Context, h []byte, seen time.Time) error {
	c.mu.Lock()
	c.touches++
	c.mu.Unlock()
	return c.Store.TouchSession(ctx, h, seen)
}

func TestManager_IdleTimeout(t *testing.T) {
	ctx := t.Context()
	clock := storetest.NewClock()
	cs := &countingStore{Store: users.NewMemoryStore()}
	m, err := users.New(cs, &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true, Now: clock.Now, SessionIdleTimeout: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, users.NewUser{Email: "i@example.com", Password: storetest.Password}); err != nil {
		t.Fatal(err)
	}
	s, err := m.Login(ctx, "i@example.com", storetest.Password)
	if err != nil {
		t.Fatal(err)
	}
	// 100 validations within one second: no writes.
	for range 100 {
		clock.Advance(10 * time.Millisecond)
		if _, err := m.ValidateToken(ctx, s.Token); err != nil {
			t.Fatal(err)
		}
	}
	if cs.touches != 0 {
		t.Fatalf("%d writes within a second; the hot path must stay a read", cs.touches)
	}
	// Activity every 5 minutes keeps it alive past the idle timeout.
	for range 6 {
		clock.Advance(5 * time.Minute)
		if _, err := m.ValidateToken(ctx, s.Token); err != nil {
			t.Fatalf("active session expired: %v", err)
		}
	}
	if cs.touches == 0 || cs.touches > 6 {
		t.Fatalf("%d writes for 6 spaced validations", cs.touches)
	}
	clock.Advance(10 * time.Minute)
	if _, err := m.ValidateToken(ctx, s.Token); !errors.Is(err, users.ErrInvalidToken) {
		t.Fatalf("idle session still valid: %v", err)
	}
}

func TestManager_Sessions(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, nil)
	u := f.mustCreate(t, users.NewUser{Email: "s@example.com"})
	a := f.MustLogin(t, "s@example.com", storetest.Password)
	f.Clock.Advance(time.Second)
	b := f.MustLogin(t, "s@example.com", storetest.Password)
	ss, err := f.M.Sessions(ctx, u.ID)
	if err != nil || len(ss) != 2 || ss[0].ID != a.ID || ss[1].ID != b.ID {
		t.Fatalf("Sessions: %v, %v", ss, err)
	}
	for _, s := range ss {
		if s.Token != "" {
			t.Fatal("Sessions returned a token")
		}
	}
	if err := f.M.RevokeSession(ctx, u.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.ValidateToken(ctx, a.Token); !errors.Is(err, users.ErrInvalidToken) {
		t.Fatalf("revoked session: %v", err)
	}
	if _, err := f.M.ValidateToken(ctx, b.Token); err != nil {
		t.Fatalf("other session: %v", err)
	}
	if _, err := f.M.Sessions(ctx, "missing"); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("Sessions(missing): %v", err)
	}
}

func TestManager_Find(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t, nil)
	var all []*users.User
	for i := range 45 {
		role := users.RoleUser
		if i%3 == 0 {
			role = users.RoleAdmin
		}
		all = append(all, f.mustCreate(t, users.NewUser{
			Email: fmt.Sprintf("user%02d@example.com", i), FirstName: []string{"Ann", "Ben", "Cat"}[i%3],
			Role: role, AccountID: fmt.Sprintf("acct%d", i%2),
		}))
	}
	ids := func(us []*users.User) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.ID)
		}
		return out
	}

	t.Run("DefaultLimitAndOrder", func(t *testing.T) {
		p, err := f.M.Find(ctx, users.Filter{})
		if err != nil || len(p.Users) != 20 || p.Prev != "" || p.Next == "" {
			t.Fatalf("first page: %d users prev %q next %q err %v", len(p.Users), p.Prev, p.Next, err)
		}
		if !slices.Equal(ids(p.Users), ids(all[:20])) {
			t.Fatal("first page is not the first 20 in ID order")
		}
		p, _ = f.M.Find(ctx, users.Filter{Limit: 1000})
		if len(p.Users) != 45 {
			t.Fatalf("Limit 1000 gave %d, want all 45 (clamped to 100)", len(p.Users))
		}
	})

	t.Run("WalkForwardAndBack", func(t *testing.T) {
		var got []string
		var pages []*users.Page
		fl := users.Filter{Limit: 7}
		for {
			p, err := f.M.Find(ctx, fl)
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, p)
			got = append(got, ids(p.Users)...)
			if p.Next == "" {
				break
			}
			fl.After = p.Next
		}
		if !slices.Equal(got, ids(all)) {
			t.Fatalf("walk gave %d users, want all 45 once in order", len(got))
		}
		// Walk back from the last page.
		last := pages[len(pages)-1]
		var back []string
		fl = users.Filter{Limit: 7, Before: last.Prev}
		for fl.Before != "" {
			p, err := f.M.Find(ctx, fl)
			if err != nil {
				t.Fatal(err)
			}
			back = append(ids(p.Users), back...)
			if p.Next == "" {
				t.Fatal("a page walked back to has no Next")
			}
			fl.Before = p.Prev
		}
		if !slices.Equal(back, ids(all[:len(all)-len(last.Users)])) {
			t.Fatalf("walk back gave %d users, want %d", len(back), len(all)-len(last.Users))
		}
	})

	t.Run("StableUnderChange", func(t *testing.T) {
		f := newFixture(t, nil)
		var keep []string
		for i := range 60 {
			u := f.mustCreate(t, users.NewUser{Email: fmt.Sprintf("k%02d@example.com", i)})
			if i%4 != 0 {
				keep = append(keep, u.ID)
			}
		}
		doomed := map[string]bool{}
		p0, _ := f.M.Find(ctx, users.Filter{Limit: 100})
		for i, u := range p0.Users {
			if i%4 == 0 {
				doomed[u.ID] = true
			}
		}
		var got []string
		fl := users.Filter{Limit: 5}
		n := 0
		for {
			p, err := f.M.Find(ctx, fl)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range p.Users {
				if !doomed[u.ID] {
					got = append(got, u.ID)
				}
			}
			// Meanwhile: remove some users ahead and behind, add new ones.
			for id := range doomed {
				f.M.Remove(ctx, id)
				delete(doomed, id)
				break
			}
			f.mustCreate(t, users.NewUser{Email: fmt.Sprintf("new%02d@example.com", n)})
			n++
			if p.Next == "" {
				break
			}
			fl.After = p.Next
		}
		seen := map[string]int{}
		for _, id := range got {
			seen[id]++
		}
		for _, id := range keep {
			if seen[id] != 1 {
				t.Fatalf("user %s seen %d times, want exactly once", id, seen[id])
			}
		}
	})

	t.Run("Filters", func(t *testing.T) {
		count := func(fl users.Filter, want int) {
			t.Helper()
			p, err := f.M.Find(ctx, users.Filter{Role: fl.Role, Status: fl.Status, AccountID: fl.AccountID, Search: fl.Search, Email: fl.Email, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			n, err := f.M.Count(ctx, fl)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Users) != want || n != want {
				t.Fatalf("%+v: Find %d, Count %d, want %d", fl, len(p.Users), n, want)
			}
		}
		count(users.Filter{Role: users.RoleAdmin}, 15)
		count(users.Filter{AccountID: "acct0"}, 23)
		count(users.Filter{Role: users.RoleAdmin, AccountID: "acct0"}, 8)
		count(users.Filter{Search: "BEN"}, 15)
		count(users.Filter{Search: "user0"}, 10)
		count(users.Filter{Search: "cat", Role: users.RoleUser}, 15)
		count(users.Filter{Email: "USER07@example.com"}, 1)
		count(users.Filter{Status: users.StatusSuspended}, 0)
	})

	t.Run("Offset", func(t *testing.T) {
		p, err := f.M.Find(ctx, users.Filter{Limit: 10, Offset: 40})
		if err != nil || !slices.Equal(ids(p.Users), ids(all[40:])) || p.Next != "" {
			t.Fatalf("offset 40: %d users, next %q, %v", len(p.Users), p.Next, err)
		}
		p, _ = f.M.Find(ctx, users.Filter{Limit: 10, Offset: 10})
		if !slices.Equal(ids(p.Users), ids(all[10:20])) || p.Prev == "" || p.Next == "" {
			t.Fatal("offset 10: wrong page")
		}
	})

	t.Run("ErrInvalidInput", func(t *testing.T) {
		p, _ := f.M.Find(ctx, users.Filter{Limit: 5})
		for field, fl := range map[string]users.Filter{
			"after":  {After: "garbage!"},
			"before": {Before: base64.RawURLEncoding.EncodeToString([]byte("c1.not-a-ulid"))},
			"limit":  {Limit: -1},
			"offset": {Offset: -1},
			"role":   {Role: "nope"},
		} {
			_, err := f.M.Find(ctx, fl)
			wantField(t, err, field)
		}
		_, err := f.M.Find(ctx, users.Filter{After: p.Next, Before: p.Next})
		wantField(t, err, "before")
	})
}

func TestManager_ContextCanceled(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, nil)
	u := f.mustCreate(t, users.NewUser{Email: "c@example.com"})
	s := f.MustLogin(t, "c@example.com", storetest.Password)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	calls := map[string]error{}
	_, calls["Create"] = f.M.Create(cctx, users.NewUser{Email: "new@example.com", Password: storetest.Password})
	_, calls["Get"] = f.M.Get(cctx, u.ID)
	_, calls["GetByEmail"] = f.M.GetByEmail(cctx, u.Email)
	_, calls["Find"] = f.M.Find(cctx, users.Filter{})
	_, calls["Count"] = f.M.Count(cctx, users.Filter{})
	_, calls["Update"] = f.M.Update(cctx, u.ID, users.UserUpdate{FirstName: ptr("x")})
	calls["UpdatePassword"] = f.M.UpdatePassword(cctx, u.ID, storetest.Password, "another good secret")
	calls["Remove"] = f.M.Remove(cctx, u.ID)
	_, calls["Login"] = f.M.Login(cctx, u.Email, storetest.Password)
	calls["Logout"] = f.M.Logout(cctx, s.Token)
	calls["LogoutAll"] = f.M.LogoutAll(cctx, u.ID)
	_, calls["ValidateToken"] = f.M.ValidateToken(cctx, s.Token)
	_, calls["Sessions"] = f.M.Sessions(cctx, u.ID)
	for name, err := range calls {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v", name, err)
		}
	}
	if _, err := f.M.ValidateToken(ctx, s.Token); err != nil {
		t.Fatalf("canceled calls changed something: %v", err)
	}
	if got, _ := f.M.Get(ctx, u.ID); got.FirstName != "" {
		t.Fatal("canceled Update wrote")
	}
}

// lockWatch makes the store's critical section observable: it fails the test if
// a bcrypt comparison runs while any store call is in progress.
type lockWatch struct {
	users.Store
	mu     sync.Mutex
	inside int
}

func (l *lockWatch) enter() func() {
	l.mu.Lock()
	l.inside++
	l.mu.Unlock()
	return func() { l.mu.Lock(); l.inside--; l.mu.Unlock() }
}

func (l *lockWatch) UpdateUser(ctx context.Context, id string, fn func(*users.UserRecord) (users.Revoke, error), audit ...*users.AuditEntry) (*users.UserRecord, error) {
	defer l.enter()()
	return l.Store.UpdateUser(ctx, id, fn, audit...)
}

func (l *lockWatch) CreateUser(ctx context.Context, r *users.UserRecord, audit ...*users.AuditEntry) error {
	defer l.enter()()
	return l.Store.CreateUser(ctx, r, audit...)
}

func TestManager_NoBcryptInsideStore(t *testing.T) {
	ctx := t.Context()
	lw := &lockWatch{Store: users.NewMemoryStore()}
	m, err := users.New(lw, &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true})
	if err != nil {
		t.Fatal(err)
	}
	var bad sync.Once
	users.SetCompareHook(m, func() {
		lw.mu.Lock()
		defer lw.mu.Unlock()
		if lw.inside > 0 {
			bad.Do(func() { t.Error("bcrypt ran while a store write was in progress") })
		}
	})
	u, err := m.Create(ctx, users.NewUser{Email: "n@example.com", Password: storetest.Password})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Login(ctx, "n@example.com", storetest.Password); err != nil {
		t.Fatal(err)
	}
	if err := m.UpdatePassword(ctx, u.ID, storetest.Password, "another good secret"); err != nil {
		t.Fatal(err)
	}
}

// TestManager_ValidateTokenResultIsTheCallersCopy: the memory and bbolt stores
// read the user and the methods straight into the Session ValidateToken
// returns; changing them must change nothing for the next call, and the
// once-a-minute touch must still find the session.
func TestManager_ValidateTokenResultIsTheCallersCopy(t *testing.T) {
	for _, store := range []struct {
		name string
		open func(t *testing.T) users.Store
	}{
		{"memory", func(*testing.T) users.Store { return users.NewMemoryStore() }},
		{"bolt", func(t *testing.T) users.Store { s, _ := mustOpenBolt(t, nil); return s }},
	} {
		t.Run(store.name, func(t *testing.T) {
			ctx := t.Context()
			f := storetest.NewFixture(t, store.open(t), func(o *users.Options) { o.SessionTTL = time.Hour })
			u := f.MustCreate(t, users.NewUser{Email: "t@example.com"})
			if _, err := f.M.Update(ctx, u.ID, users.UserUpdate{Preferences: map[string]string{"lang": "en"}}); err != nil {
				t.Fatal(err)
			}
			s := f.MustLogin(t, "t@example.com", storetest.Password)
			got, err := f.M.ValidateToken(ctx, s.Token)
			if err != nil || len(got.Methods) == 0 || got.User.Preferences["lang"] != "en" {
				t.Fatalf("got %+v, %v", got, err)
			}
			method := got.Methods[0]
			got.Methods[0] = "changed"
			got.User.Preferences["lang"] = "changed"
			got.User.Email, got.User.Role = "changed@example.com", users.RoleAdmin
			again, err := f.M.ValidateToken(ctx, s.Token)
			if err != nil || again.Methods[0] != method || again.User.Preferences["lang"] != "en" ||
				again.User.Email != "t@example.com" || again.User.Role == users.RoleAdmin {
				t.Fatalf("after changing the first result, ValidateToken = %+v, %+v, %v", again, again.User, err)
			}
			if got.Methods[0] != "changed" || got.User.Preferences["lang"] != "changed" || got.User.Email != "changed@example.com" {
				t.Fatalf("a later ValidateToken changed an earlier result: %+v, %+v", got, got.User)
			}
			f.Clock.Advance(2 * time.Minute)
			touched, err := f.M.ValidateToken(ctx, s.Token)
			if err != nil || !touched.LastSeenAt.After(again.LastSeenAt) || !touched.User.LastActiveAt.Equal(touched.LastSeenAt) {
				t.Fatalf("touch: %+v, %v (before %v)", touched, err, again.LastSeenAt)
			}
			if again, err := f.M.ValidateToken(ctx, s.Token); err != nil || !again.LastSeenAt.Equal(touched.LastSeenAt) {
				t.Fatalf("after the touch: %+v, %v", again, err)
			}
		})
		// A session with a second factor has more methods than ValidateToken
		// keeps room for beside the Session: they are copied elsewhere, and
		// must be the caller's all the same.
		t.Run(store.name+"/TwoFactors", func(t *testing.T) {
			ctx := t.Context()
			f := storetest.NewFixture(t, store.open(t), storetest.WithMFAKey)
			u := f.MustCreate(t, users.NewUser{Email: "t@example.com"})
			secret, _ := f.MustEnrolTOTP(t, u.ID)
			c := f.MustChallenge(t, u.Email)
			s, err := f.M.CompleteLogin(ctx, c.Token, storetest.TOTPCode(t, secret, f.Clock.Now()))
			if err != nil {
				t.Fatal(err)
			}
			want := []users.AuthMethod{users.MethodPassword, users.MethodTOTP}
			got, err := f.M.ValidateToken(ctx, s.Token)
			if err != nil || !slices.Equal(got.Methods, want) {
				t.Fatalf("ValidateToken = %+v, %v; want Methods %v", got, err, want)
			}
			got.Methods[0], got.Methods[1] = "changed", "changed"
			again, err := f.M.ValidateToken(ctx, s.Token)
			if err != nil || !slices.Equal(again.Methods, want) {
				t.Fatalf("after changing the first result's methods, ValidateToken = %+v, %v; want Methods %v", again, err, want)
			}
			if got.Methods[0] != "changed" || got.Methods[1] != "changed" {
				t.Fatalf("a later ValidateToken changed an earlier result's methods: %v", got.Methods)
			}
		})
	}
}

// A right password that loses the race to a password change, a suspension or a
// removal landing during its comparison gets no session, and its failure is in
// the audit log like any other: login.failed with Reason "changed_meanwhile",
// and no login.succeeded.
func TestManager_LoginLosingARaceIsAudited(t *testing.T) {
	changes := map[string]func(ctx context.Context, m *users.Manager, id string) error{
		"PasswordChanged": func(ctx context.Context, m *users.Manager, id string) error {
			return m.SetPassword(ctx, id, storetest.NewPassword)
		},
		"Suspended": func(ctx context.Context, m *users.Manager, id string) error {
			status := users.StatusSuspended
			_, err := m.Update(ctx, id, users.UserUpdate{Status: &status})
			return err
		},
		"Removed": func(ctx context.Context, m *users.Manager, id string) error {
			return m.Remove(ctx, id)
		},
	}
	for _, store := range []struct {
		name string
		open func(t *testing.T) users.Store
	}{
		{"memory", func(*testing.T) users.Store { return users.NewMemoryStore() }},
		{"bolt", func(t *testing.T) users.Store { s, _ := mustOpenBolt(t, nil); return s }},
	} {
		for name, change := range changes {
			t.Run(store.name+"/"+name, func(t *testing.T) {
				ctx := t.Context()
				// Room for the change's own hash while the login holds a slot.
				f := storetest.NewFixture(t, store.open(t), func(o *users.Options) { o.MaxConcurrentHashes = 2 })
				u := f.MustCreate(t, users.NewUser{Email: "r@example.com"})
				var once sync.Once
				users.SetCompareHook(f.M, func() {
					once.Do(func() {
						if err := change(ctx, f.M, u.ID); err != nil {
							t.Errorf("the change during the comparison: %v", err)
						}
					})
				})
				if s, err := f.M.Login(ctx, "r@example.com", storetest.Password); !errors.Is(err, users.ErrInvalidCredentials) {
					t.Fatalf("Login that lost the race: %+v, %v; want ErrInvalidCredentials", s, err)
				}
				wantChangedMeanwhile(t, f.M, u.ID)
			})
		}
	}
}

// wantChangedMeanwhile fails t unless the only login entry of the user is
// login.failed with Reason "changed_meanwhile".
func wantChangedMeanwhile(t *testing.T, m *users.Manager, userID string) {
	t.Helper()
	page, err := m.Audit(t.Context(), users.AuditFilter{UserID: userID, Types: []users.EventType{users.EventLoginFailed, users.EventLoginSucceeded}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 1 || page.Entries[0].Type != users.EventLoginFailed || page.Entries[0].Reason != "changed_meanwhile" {
		for _, e := range page.Entries {
			t.Logf("entry %s %q", e.Type, e.Reason)
		}
		t.Fatalf("%d login entries; want one login.failed, changed_meanwhile", len(page.Entries))
	}
}
