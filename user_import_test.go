package users_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/userkit/users"
)

// TestManager_CreateMovedIn creates a user with everything another system (or
// another store of this package) knew of them, and checks that every field
// reads back exactly and that GetByExternalID finds them.
func TestManager_CreateMovedIn(t *testing.T) {
	f := newFixture(t, nil)
	ctx := t.Context()
	now := f.Clock.Now()
	id := ulid.MustNew(ulid.Timestamp(now.Add(-48*time.Hour)), strings.NewReader(strings.Repeat("x", 16))).String()
	nu := users.NewUser{
		Email: "moved@example.com", Username: "moved", FirstName: "Mo", LastName: "Ved", Role: users.RoleViewer,
		AccountID: "acme", Preferences: map[string]string{"lang": "fr"}, NoPassword: true,
		ID: id, ExternalID: "auth0|5f7c8ec7c33c6c004bbafe82",
		EmailVerified: true, EmailVerifiedAt: now.Add(-47 * time.Hour),
		CreatedAt: now.Add(-48 * time.Hour), UpdatedAt: now.Add(-time.Hour),
		LastLoginAt: now.Add(-2 * time.Hour), LastActiveAt: now.Add(-90 * time.Minute),
	}
	u, err := f.M.Create(ctx, nu)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	got := f.MustGet(t, u.ID)
	for _, c := range []struct {
		field     string
		got, want any
	}{
		{"ID", got.ID, id}, {"ExternalID", got.ExternalID, nu.ExternalID}, {"EmailVerified", got.EmailVerified, true},
		{"EmailVerifiedAt", got.EmailVerifiedAt, nu.EmailVerifiedAt}, {"CreatedAt", got.CreatedAt, nu.CreatedAt},
		{"UpdatedAt", got.UpdatedAt, nu.UpdatedAt}, {"LastLoginAt", got.LastLoginAt, nu.LastLoginAt},
		{"LastActiveAt", got.LastActiveAt, nu.LastActiveAt}, {"Role", got.Role, users.RoleViewer},
	} {
		if g, ok := c.got.(time.Time); ok {
			if !g.Equal(c.want.(time.Time)) {
				t.Errorf("%s = %v, want %v", c.field, g, c.want)
			}
		} else if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
	if byExt, err := f.M.GetByExternalID(ctx, nu.ExternalID); err != nil || byExt.ID != id {
		t.Errorf("GetByExternalID = %+v, %v; want %s", byExt, err, id)
	}
	if _, err := f.M.GetByExternalID(ctx, strings.ToUpper(nu.ExternalID)); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("GetByExternalID compares exactly: another case gave %v, want ErrNotFound", err)
	}

	// A user without a password has none to guess: every password is wrong.
	if _, err := f.M.Login(ctx, "moved@example.com", ""); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Errorf("Login with an empty password of a user without one: %v, want ErrInvalidCredentials", err)
	}

	// The keys are taken: the same ID, or the same external ID, is refused.
	again := nu
	again.Email, again.Username = "other@example.com", ""
	if _, err := f.M.Create(ctx, again); !errors.Is(err, users.ErrDuplicateExternalID) || !errors.Is(err, users.ErrConflict) {
		t.Errorf("Create with a taken external ID: %v, want ErrDuplicateExternalID (an ErrConflict)", err)
	}
	again.ExternalID = ""
	if _, err := f.M.Create(ctx, again); !errors.Is(err, users.ErrConflict) || errors.Is(err, users.ErrDuplicateExternalID) {
		t.Errorf("Create with a taken ID: %v, want ErrConflict", err)
	}
}

// TestManager_CreateMovedInValidation checks each field that brings a user
// in: a bad value is a *ValidationError naming the field, and nothing is
// stored.
func TestManager_CreateMovedInValidation(t *testing.T) {
	f := newFixture(t, nil)
	now := f.Clock.Now()
	future := now.Add(time.Second)
	for _, c := range []struct {
		name  string
		edit  func(nu *users.NewUser)
		field string
		code  users.ValidationCode
	}{
		{"external ID too long", func(nu *users.NewUser) { nu.ExternalID = strings.Repeat("x", 256) }, "external_id", users.ValidationTooLong},
		{"external ID with a space", func(nu *users.NewUser) { nu.ExternalID = "a b" }, "external_id", users.ValidationMalformed},
		{"external ID with a control byte", func(nu *users.NewUser) { nu.ExternalID = "a\x00b" }, "external_id", users.ValidationMalformed},
		{"external ID not ASCII", func(nu *users.NewUser) { nu.ExternalID = "é" }, "external_id", users.ValidationMalformed},
		{"external ID with DEL", func(nu *users.NewUser) { nu.ExternalID = "a\x7f" }, "external_id", users.ValidationMalformed},
		{"ID not a ULID", func(nu *users.NewUser) { nu.ID = "user-1" }, "id", users.ValidationMalformed},
		{"ID in lower case", func(nu *users.NewUser) { nu.ID = strings.ToLower(ulid.Make().String()) }, "id", users.ValidationMalformed},
		{"verified at without verified", func(nu *users.NewUser) { nu.EmailVerifiedAt = now }, "email_verified_at", users.ValidationWrongState},
		{"verified in the future", func(nu *users.NewUser) { nu.EmailVerified, nu.EmailVerifiedAt = true, future }, "email_verified_at", users.ValidationOutOfRange},
		{"created in the future", func(nu *users.NewUser) { nu.CreatedAt = future }, "created_at", users.ValidationOutOfRange},
		{"updated in the future", func(nu *users.NewUser) { nu.UpdatedAt = future }, "updated_at", users.ValidationOutOfRange},
		{"logged in in the future", func(nu *users.NewUser) { nu.LastLoginAt = future }, "last_login_at", users.ValidationOutOfRange},
		{"active in the future", func(nu *users.NewUser) { nu.LastActiveAt = future }, "last_active_at", users.ValidationOutOfRange},
		{"no password and a password", func(nu *users.NewUser) { nu.NoPassword, nu.Password = true, "a long password here" }, "password", users.ValidationMustBeEmpty},
		{"no password and a hash", func(nu *users.NewUser) { nu.NoPassword, nu.PasswordHash = true, "$2a$04$abc" }, "password", users.ValidationMustBeEmpty},
		{"invited with a password", func(nu *users.NewUser) { nu.Status, nu.Password = users.StatusInvited, "a long password here" }, "status", users.ValidationWrongState},
		{"invited with a hash", func(nu *users.NewUser) { nu.Status, nu.PasswordHash = users.StatusInvited, "$2a$04$abc" }, "status", users.ValidationWrongState},
		{"neither password nor NoPassword", func(nu *users.NewUser) { nu.Password = "" }, "password", users.ValidationRequired},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A good password, so that the field of the case is the only one refused.
			nu := users.NewUser{Email: f.Email(), Password: "a long password here"}
			c.edit(&nu)
			_, err := f.M.Create(t.Context(), nu)
			var ve *users.ValidationError
			if !errors.As(err, &ve) || ve.Field != c.field || ve.Code != c.code || len(users.FieldErrors(err)) != 1 {
				t.Fatalf("Create: %v, want only a *ValidationError on %q with code %q", err, c.field, c.code)
			}
			if _, err := f.M.GetByEmail(t.Context(), nu.Email); !errors.Is(err, users.ErrNotFound) {
				t.Errorf("a refused Create stored the user: %v", err)
			}
		})
	}
	for _, bad := range []string{"", "a b", strings.Repeat("x", 256)} {
		var ve *users.ValidationError
		if _, err := f.M.GetByExternalID(t.Context(), bad); !errors.As(err, &ve) || ve.Field != "external_id" {
			t.Errorf("GetByExternalID(%q): %v, want a *ValidationError on external_id", bad, err)
		}
	}
}

// TestManager_ImportInvited imports a user in StatusInvited, without a
// password, and re-sends their invitation: they accept it and log in.
func TestManager_ImportInvited(t *testing.T) {
	f := newFixture(t, nil)
	ctx := t.Context()
	res, err := f.M.Import(ctx, []users.NewUser{{Email: "invited@example.com", Status: users.StatusInvited, ExternalID: "old-7"}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("Import of an invited user: %v, %+v", err, res)
	}
	u := res[0].User
	if u.Status != users.StatusInvited || u.ExternalID != "old-7" {
		t.Fatalf("imported user = %+v, want invited with external ID old-7", u)
	}
	d, err := f.M.Reinvite(ctx, u.ID)
	if err != nil {
		t.Fatalf("Reinvite of an imported invited user: %v", err)
	}
	if _, err := f.M.AcceptInvitation(ctx, d.Token, "a long new password 1"); err != nil {
		t.Fatalf("AcceptInvitation: %v", err)
	}
	f.MustLogin(t, "invited@example.com", "a long new password 1")
}

// TestManager_ImportExternalIDDuplicates checks that Import refuses, row by
// row, an external ID another user has or an earlier row of the same call
// has, and stores the others.
func TestManager_ImportExternalIDDuplicates(t *testing.T) {
	f := newFixture(t, nil)
	ctx := t.Context()
	f.mustCreate(t, users.NewUser{Email: f.Email(), ExternalID: "taken"})
	rows := []users.NewUser{
		{Email: f.Email(), NoPassword: true, ExternalID: "taken"},
		{Email: f.Email(), NoPassword: true, ExternalID: "new"},
		{Email: f.Email(), NoPassword: true, ExternalID: "new"},
		{Email: f.Email(), NoPassword: true},
	}
	res, err := f.M.Import(ctx, rows)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{users.ErrDuplicateExternalID, nil, users.ErrDuplicateExternalID, nil} {
		if !errors.Is(res[i].Err, want) || (want == nil) != (res[i].User != nil) {
			t.Errorf("row %d: %+v, want %v", i, res[i], want)
		}
	}
	if n, err := f.M.Count(ctx, users.Filter{}); err != nil || n != 3 {
		t.Errorf("Count = %d, %v; want 3", n, err)
	}
}
