package users_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// fieldCode is a refused field and its code, for comparing whole lists.
type fieldCode struct {
	Field string
	Code  users.ValidationCode
}

// wantFields fails unless err names exactly want, in order: a plain
// *ValidationError for one, ValidationErrors for more, each way matching
// ErrInvalidInput, errors.As giving the first, and Error naming every field.
func wantFields(tb testing.TB, err error, want ...fieldCode) {
	tb.Helper()
	var got []fieldCode
	for _, ve := range users.FieldErrors(err) {
		got = append(got, fieldCode{ve.Field, ve.Code})
	}
	if !slices.Equal(got, want) {
		tb.Fatalf("refused fields %v, want %v (%v)", got, want, err)
	}
	if !errors.Is(err, users.ErrInvalidInput) {
		tb.Errorf("errors.Is(%v, ErrInvalidInput) = false", err)
	}
	var ve *users.ValidationError
	if !errors.As(err, &ve) || ve.Field != want[0].Field || ve.Code != want[0].Code {
		tb.Errorf("errors.As gives %v, want the first field %v", ve, want[0])
	}
	var ves users.ValidationErrors
	switch many := errors.As(err, &ves); {
	case len(want) == 1 && (many || err != error(ve)):
		tb.Errorf("one refused field gave %T, want a plain *ValidationError", err)
	case len(want) > 1 && !many:
		tb.Errorf("%d refused fields gave %T, want ValidationErrors", len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), "invalid "+w.Field+": ") {
			tb.Errorf("the error's text %q does not name %s", err, w.Field)
		}
	}
}

// TestManager_CreateEveryField checks that Create refuses a NewUser only
// after checking every field: a bad email, a too-short password, a too-long
// name and a bad role are reported together, in NewUser's field order, with
// their codes; nothing is stored, and the costly checks (the breach check,
// the store's look for the email, the hash) are not made while any field is
// refused. One bad field stays a plain *ValidationError.
func TestManager_CreateEveryField(t *testing.T) {
	breach := &fakeBreach{listed: map[string]bool{breachedPassword: true}}
	store := &callLog{Store: users.NewMemoryStore()} // security_audit_test.go
	f := storetest.NewFixture(t, store, func(o *users.Options) { o.BreachChecker = breach })
	ctx := t.Context()
	long := strings.Repeat("n", 101)

	t.Run("Four", func(t *testing.T) {
		_, err := f.M.Create(ctx, users.NewUser{Email: "not an address", Password: "short",
			FirstName: long, Role: "wizard"})
		wantFields(t, err,
			fieldCode{"email", users.ValidationMalformed},
			fieldCode{"password", users.ValidationTooShort},
			fieldCode{"first_name", users.ValidationTooLong},
			fieldCode{"role", users.ValidationNotOneOf})
	})
	t.Run("One", func(t *testing.T) {
		_, err := f.M.Create(ctx, users.NewUser{Email: "one@example.com", Password: storetest.Password, LastName: long})
		wantFields(t, err, fieldCode{"last_name", users.ValidationTooLong})
	})
	t.Run("EveryFieldInOrder", func(t *testing.T) {
		// One bad value in every field that takes one, given in a
		// shuffled order of struct literal: the order is NewUser's.
		_, err := f.M.Create(ctx, users.NewUser{
			ExternalID: "a b", Preferences: map[string]string{"": "x"}, AccountID: "a\x00", AvatarURL: "ftp://x",
			Status: "gone", Role: "wizard", LastName: long, FirstName: long, Password: "short", Username: "x",
			Email: "@", ID: "user-1", EmailVerifiedAt: f.Clock.Now(), CreatedAt: f.Clock.Now().Add(1),
		})
		wantFields(t, err,
			fieldCode{"email", users.ValidationMalformed},
			fieldCode{"username", users.ValidationTooShort},
			fieldCode{"password", users.ValidationTooShort},
			fieldCode{"first_name", users.ValidationTooLong},
			fieldCode{"last_name", users.ValidationTooLong},
			fieldCode{"role", users.ValidationNotOneOf},
			fieldCode{"status", users.ValidationNotOneOf},
			fieldCode{"avatar_url", users.ValidationMalformed},
			fieldCode{"account_id", users.ValidationControlCharacter},
			fieldCode{"preferences", users.ValidationMalformed},
			fieldCode{"id", users.ValidationMalformed},
			fieldCode{"external_id", users.ValidationMalformed},
			fieldCode{"email_verified_at", users.ValidationWrongState},
			fieldCode{"created_at", users.ValidationOutOfRange})
	})
	t.Run("PasswordHash", func(t *testing.T) {
		_, err := f.M.Create(ctx, users.NewUser{Email: "hash@example.com", Username: "!!!", PasswordHash: "$2a$04$short"})
		wantFields(t, err,
			fieldCode{"username", users.ValidationMalformed},
			fieldCode{"password_hash", users.ValidationMalformed})
	})
	t.Run("CheckerKeepsPasswordsPlace", func(t *testing.T) {
		// The default checker refuses the email's local part; it runs
		// after the names but its error is the password's.
		_, err := f.M.Create(ctx, users.NewUser{Email: "ada.lovelace.1815@example.com", Username: "x",
			Password: "ada.lovelace.1815", LastName: long})
		wantFields(t, err,
			fieldCode{"username", users.ValidationTooShort},
			fieldCode{"password", users.ValidationPersonalPassword},
			fieldCode{"last_name", users.ValidationTooLong})
	})
	t.Run("NoCostlyCheckWhileAFieldIsRefused", func(t *testing.T) {
		_, err := f.M.Create(ctx, users.NewUser{Email: "costly@example.com", Password: breachedPassword, FirstName: long})
		wantFields(t, err, fieldCode{"first_name", users.ValidationTooLong})
		if breach.wasAsked(breachedPassword) {
			t.Error("the breach checker was asked while a field was refused")
		}
	})
	t.Run("CostlyCheckOnceFieldsPass", func(t *testing.T) {
		_, err := f.M.Create(ctx, users.NewUser{Email: "costly@example.com", Password: breachedPassword})
		wantFields(t, err, fieldCode{"password", users.ValidationBreachedPassword})
	})
	if got := store.take(); len(got) != 0 {
		t.Errorf("refused Creates read the store: %v", got)
	}
	if n, err := f.M.Count(ctx, users.Filter{}); err != nil || n != 0 {
		t.Errorf("Count after refused Creates = %d, %v; want 0 users stored", n, err)
	}
}

// TestManager_CreateCheckerError checks that an application's password
// checker's error is returned as it gave it when it is the only refusal, and
// takes the password's place among several.
func TestManager_CreateCheckerError(t *testing.T) {
	const own users.ValidationCode = "too_simple" // an application's own code
	f := newFixture(t, func(o *users.Options) {
		o.PasswordChecker = func(context.Context, string, *users.User) error {
			return fmt.Errorf("policy: %w", &users.ValidationError{Field: "password", Code: own, Reason: "is too simple"})
		}
	})
	_, err := f.M.Create(t.Context(), users.NewUser{Email: "ok@example.com", Password: storetest.Password})
	if fe := users.FieldErrors(err); len(fe) != 1 || fe[0].Code != own || !errors.Is(err, users.ErrInvalidInput) || !strings.HasPrefix(err.Error(), "policy: ") {
		t.Errorf("the checker's error alone = %v, want it as the checker gave it", err)
	}
	_, err = f.M.Create(t.Context(), users.NewUser{Email: "bad", Password: storetest.Password, Role: "wizard"})
	wantFields(t, err, fieldCode{"email", users.ValidationMalformed}, fieldCode{"password", own}, fieldCode{"role", users.ValidationNotOneOf})
}

// TestManager_UpdateEveryField checks that Update refuses only after
// checking every field, reports them in UserUpdate's field order, and
// changes nothing.
func TestManager_UpdateEveryField(t *testing.T) {
	f := newFixture(t, nil)
	ctx := t.Context()
	u := f.mustCreate(t, users.NewUser{Email: "up@example.com", Username: "upton", FirstName: "Ada"})
	long := strings.Repeat("n", 101)
	_, err := f.M.Update(ctx, u.ID, users.UserUpdate{
		Email: ptr("no at sign"), Username: ptr("ab"), FirstName: ptr("Grace"), LastName: ptr(long),
		Role: ptr(users.Role("wizard")), Status: ptr(users.StatusInvited), AvatarURL: ptr("https://example.com/a.png"),
		AccountID: ptr("acme"), Preferences: map[string]string{"lang": "a\x00"},
	})
	wantFields(t, err,
		fieldCode{"email", users.ValidationMalformed},
		fieldCode{"username", users.ValidationTooShort},
		fieldCode{"last_name", users.ValidationTooLong},
		fieldCode{"role", users.ValidationNotOneOf},
		fieldCode{"status", users.ValidationNotOneOf},
		fieldCode{"preferences", users.ValidationMalformed})
	got, err := f.M.Get(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != u.Email || got.Username != u.Username || got.FirstName != u.FirstName || got.AvatarURL != "" || !got.UpdatedAt.Equal(u.UpdatedAt) {
		t.Errorf("a refused Update changed the user: %+v, was %+v", got, u)
	}

	_, err = f.M.Update(ctx, u.ID, users.UserUpdate{FirstName: ptr("Grace"), AvatarURL: ptr("javascript:alert(1)")})
	wantFields(t, err, fieldCode{"avatar_url", users.ValidationMalformed})
}

// TestManager_InviteAndImportEveryField checks that Invite and each row of
// Import report every refused field, as Create does, and store nothing.
func TestManager_InviteAndImportEveryField(t *testing.T) {
	f := newFixture(t, nil)
	ctx := t.Context()
	_, _, err := f.M.Invite(ctx, users.NewUser{Email: "invitee", Password: "chosen for them", Role: "wizard"})
	wantFields(t, err,
		fieldCode{"email", users.ValidationMalformed},
		fieldCode{"password", users.ValidationMustBeEmpty},
		fieldCode{"role", users.ValidationNotOneOf})

	res, err := f.M.Import(ctx, []users.NewUser{
		{Email: "ok@example.com", Password: storetest.Password},
		{Email: "bad", Username: "a", Password: "short"},
		{Email: "alone@example.com", NoPassword: true, AvatarURL: "nope"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil {
		t.Fatalf("row 0: %v", res[0].Err)
	}
	wantFields(t, res[1].Err,
		fieldCode{"email", users.ValidationMalformed},
		fieldCode{"username", users.ValidationTooShort},
		fieldCode{"password", users.ValidationTooShort})
	wantFields(t, res[2].Err, fieldCode{"avatar_url", users.ValidationMalformed})
	if n, err := f.M.Count(ctx, users.Filter{}); err != nil || n != 1 {
		t.Errorf("Count = %d, %v; want only the good row stored", n, err)
	}
}

// TestManager_FindEveryField checks that Find and Count report every
// refused match field of a Filter, in its field order.
func TestManager_FindEveryField(t *testing.T) {
	f := newFixture(t, nil)
	bad := users.Filter{Email: "nope", Username: "x", Role: "wizard", Status: "gone", Search: "a\x00"}
	want := []fieldCode{
		{"email", users.ValidationMalformed},
		{"username", users.ValidationTooShort},
		{"role", users.ValidationNotOneOf},
		{"status", users.ValidationNotOneOf},
		{"search", users.ValidationControlCharacter},
	}
	_, err := f.M.Count(t.Context(), bad)
	wantFields(t, err, want...)
	_, err = f.M.Find(t.Context(), bad)
	wantFields(t, err, want...)
	_, err = f.M.Find(t.Context(), users.Filter{Role: "wizard"})
	wantFields(t, err, want[2])
}

// TestFieldErrors checks FieldErrors on the shapes an error comes in.
func TestFieldErrors(t *testing.T) {
	a := &users.ValidationError{Field: "email", Code: users.ValidationRequired, Reason: "is required"}
	b := &users.ValidationError{Field: "password", Code: users.ValidationTooShort, Reason: "must be at least 8 characters"}
	many := users.ValidationErrors{a, b}
	for _, c := range []struct {
		name string
		err  error
		want []*users.ValidationError
	}{
		{"nil", nil, nil},
		{"other", errors.New("users: not found"), nil},
		{"one", a, []*users.ValidationError{a}},
		{"one wrapped", fmt.Errorf("signing up: %w", a), []*users.ValidationError{a}},
		{"many", many, []*users.ValidationError{a, b}},
		{"many wrapped", fmt.Errorf("signing up: %w", many), []*users.ValidationError{a, b}},
		{"joined", errors.Join(a, errors.New("users: not found"), fmt.Errorf("x: %w", many)), []*users.ValidationError{a, a, b}},
	} {
		if got := users.FieldErrors(c.err); !slices.Equal(got, c.want) {
			t.Errorf("%s: FieldErrors = %v, want %v", c.name, got, c.want)
		}
	}
	if got, want := many.Error(), "users: invalid email: is required; invalid password: must be at least 8 characters"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	got := users.FieldErrors(many)
	got[0] = nil
	if many[0] != a {
		t.Error("FieldErrors returned the error's own slice")
	}
}

// newUserOrder is NewUser's field order, by the fields' error names.
var newUserOrder = []string{"email", "username", "password", "first_name", "last_name", "role", "status",
	"avatar_url", "account_id", "password_hash", "preferences", "id", "external_id", "email_verified_at",
	"created_at", "updated_at", "last_login_at", "last_active_at"}

// FuzzCreate_EveryField creates users from arbitrary fields: Create either
// stores the user, or refuses with every refused field once, in NewUser's
// order, each with a code, and stores nothing; it never panics.
func FuzzCreate_EveryField(f *testing.F) {
	f.Add("ada@example.com", "ada", storetest.Password, "Ada", "", "", "", "", "", "", false)
	f.Add("not an address", "x", "short", strings.Repeat("n", 101), "a\x00", "wizard", "gone", "ftp://x", "a\x01", "$2a$04$x", false)
	f.Add("b@example.com", "", "", "", "", "", "invited", "", "", "$2a$99$abc", true)
	fx := newFixture(f, nil)
	f.Fuzz(func(t *testing.T, email, username, password, first, last, role, status, avatar, account, hash string, noPassword bool) {
		ctx := t.Context()
		before, err := fx.M.Count(ctx, users.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = fx.M.Create(ctx, users.NewUser{Email: email, Username: username, Password: password, FirstName: first,
			LastName: last, Role: users.Role(role), Status: users.Status(status), AvatarURL: avatar, AccountID: account,
			PasswordHash: hash, NoPassword: noPassword})
		after, cerr := fx.M.Count(ctx, users.Filter{})
		if cerr != nil {
			t.Fatal(cerr)
		}
		switch {
		case err == nil:
			if after != before+1 {
				t.Fatalf("Create succeeded but %d users became %d", before, after)
			}
			return
		case after != before:
			t.Fatalf("a refused Create (%v) stored a user", err)
		case !errors.Is(err, users.ErrInvalidInput):
			return // taken email or username
		}
		prev := -1
		for _, ve := range users.FieldErrors(err) {
			name, _, _ := strings.Cut(ve.Field, ".")
			at := slices.Index(newUserOrder, name)
			if at <= prev || ve.Code == "" || ve.Reason == "" {
				t.Fatalf("refused fields out of order, repeated, unknown or without a code: %v", err)
			}
			prev = at
		}
		if prev < 0 {
			t.Fatalf("ErrInvalidInput without a field: %v", err)
		}
	})
}
