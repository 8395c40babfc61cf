package users_test

// Imported password hashes: bounded costs (SECURITY.md, "Imported hashes").

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users"
)

// withCost returns the bcrypt hash h with its cost field replaced: a hash no
// one can check quickly, made without computing it.
func withCost(tb testing.TB, h, cost string) string {
	tb.Helper()
	i := strings.Index(h, "$2a$")
	if i < 0 || len(cost) != 2 {
		tb.Fatalf("withCost(%.20q, %q)", h, cost)
	}
	return h[:i+4] + cost + h[i+6:]
}

// wantFieldRefused fails unless err is a *ValidationError on field.
func wantFieldRefused(tb testing.TB, err error, field, what string) {
	tb.Helper()
	var ve *users.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, users.ErrInvalidInput) || ve.Field != field || ve.Reason == "" {
		tb.Fatalf("%s: got %v, want a *ValidationError on %q", what, err, field)
	}
}

// Imported hashes can carry any bcrypt cost: one check of cost 31 takes about
// a day. Create and Import refuse costs above Options.MaxBcryptCost (default
// 14) in imported bcrypt hashes and in this package's own format, and a stored
// hash above it is never computed at a login.
func TestSecurity_BcryptCostBound(t *testing.T) {
	bg := t.Context()
	h4, err := bcrypt.GenerateFromPassword([]byte("old system p4ss"), 4)
	if err != nil {
		t.Fatal(err)
	}
	imported := string(h4)
	f := newFixture(t, nil)
	ours := secStoredHash(t, f.Store, f.mustCreate(t, users.NewUser{Email: "ours@example.com"}).Email)

	t.Run("Refused", func(t *testing.T) {
		for _, h := range []string{
			withCost(t, imported, "31"),
			withCost(t, imported, "15"),
			withCost(t, ours, "31"),
			withCost(t, ours, "15"),
			"$2y$" + withCost(t, imported, "31")[4:],
		} {
			before := f.Compares.Load()
			_, err := f.M.Create(bg, users.NewUser{Email: "big@example.com", PasswordHash: h})
			wantFieldRefused(t, err, "password_hash.cost", "Create with "+h[:min(len(h), 26)])
			res, err := f.M.Import(bg, []users.NewUser{{Email: "big@example.com", PasswordHash: h}})
			if err != nil || len(res) != 1 || res[0].User != nil {
				t.Fatalf("Import: %+v, %v", res, err)
			}
			wantFieldRefused(t, res[0].Err, "password_hash.cost", "Import with "+h[:min(len(h), 26)])
			if _, err := f.M.GetByEmail(bg, "big@example.com"); !errors.Is(err, users.ErrNotFound) {
				t.Fatalf("a refused row was stored: %v", err)
			}
			if n := f.Compares.Load() - before; n != 0 {
				t.Fatalf("refusing the hash ran %d comparisons", n)
			}
		}
	})
	t.Run("AcceptedUpToTheBound", func(t *testing.T) {
		// Migrations from systems that used 12 or 13 keep working.
		for i, cost := range []string{"10", "12", "13", "14"} {
			for j, h := range []string{withCost(t, imported, cost), withCost(t, ours, cost)} {
				email := "ok" + cost + string(rune('a'+i+j*4)) + "@example.com"
				if _, err := f.M.Create(bg, users.NewUser{Email: email, PasswordHash: h}); err != nil {
					t.Errorf("Create with cost %s: %v", cost, err)
				}
			}
		}
	})
	t.Run("Configurable", func(t *testing.T) {
		g := newFixture(t, func(o *users.Options) { o.MaxBcryptCost = 10 })
		_, err := g.M.Create(bg, users.NewUser{Email: "a@example.com", PasswordHash: withCost(t, imported, "11")})
		wantFieldRefused(t, err, "password_hash.cost", "Create with cost 11 over MaxBcryptCost 10")
		if _, err := g.M.Create(bg, users.NewUser{Email: "a@example.com", PasswordHash: withCost(t, imported, "10")}); err != nil {
			t.Errorf("Create with cost 10 under MaxBcryptCost 10: %v", err)
		}
		for _, o := range []users.Options{
			{BcryptCost: 12, MaxBcryptCost: 11},
			{BcryptCost: 12, MaxBcryptCost: 32},
		} {
			_, err := users.New(users.NewMemoryStore(), &o)
			wantFieldRefused(t, err, "options.MaxBcryptCost", "New with BcryptCost 12, MaxBcryptCost "+string(rune('0'+o.MaxBcryptCost/10))+string(rune('0'+o.MaxBcryptCost%10)))
		}
	})
	t.Run("StoredBeforeTheBound", func(t *testing.T) {
		// A hash over the bound that reached the store some other way (before
		// the bound existed) is never computed: the decoy is compared instead.
		g := newFixture(t, func(o *users.Options) { o.MaxBcryptCost = 5 })
		h6, err := bcrypt.GenerateFromPassword([]byte("old system p4ss"), 6)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		r := &users.UserRecord{User: users.User{ID: "01JB0000000000000000000000", Email: "old@example.com", Role: users.RoleUser, Status: users.StatusActive, CreatedAt: now, UpdatedAt: now}, PasswordHash: string(h6)}
		if err := g.Store.CreateUser(bg, r); err != nil {
			t.Fatal(err)
		}
		if n, err := g.secLogin("old@example.com", "old system p4ss"); !errors.Is(err, users.ErrInvalidCredentials) || n != 1 {
			t.Fatalf("Login against a stored cost-6 hash over MaxBcryptCost 5: %v after %d comparisons, want ErrInvalidCredentials after 1", err, n)
		}
	})
}
