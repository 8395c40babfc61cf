package users_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/userkit/users"
)

// Examples of the Manager's method groups: reading, updating and removing
// users, sessions, passwords, roles, import, the audit log and lock state.
// They use exampleManager's memory store, fixed clock and cheap bcrypt cost.

const examplePassword = "analytical engine 1843"

// exampleUser creates ada@example.com (username ada) on m.
func exampleUser(m *users.Manager) *users.User {
	u, err := m.Create(context.Background(), users.NewUser{Email: "ada@example.com", Username: "ada", Password: examplePassword, FirstName: "Ada"})
	if err != nil {
		panic(err)
	}
	return u
}

func ExampleManager_GetByEmail() {
	ctx := context.Background()
	m := exampleManager()
	u := exampleUser(m)

	byEmail, _ := m.GetByEmail(ctx, " ADA@example.com") // normalised first
	byName, _ := m.GetByUsername(ctx, "Ada")
	byID, _ := m.Get(ctx, u.ID)
	fmt.Println(byEmail.ID == u.ID, byName.ID == u.ID, byID.Email)

	_, err := m.GetByEmail(ctx, "bob@example.com")
	fmt.Println(errors.Is(err, users.ErrNotFound))
	// Output:
	// true true ada@example.com
	// true
}

func ExampleManager_Update() {
	ctx := context.Background()
	m := exampleManager()
	u := exampleUser(m)

	last, username := "Lovelace", "countess"
	u, err := m.Update(ctx, u.ID, users.UserUpdate{LastName: &last, Username: &username}) // nil fields stay
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(u.FirstName, u.LastName, u.Username)

	bad := "not an email"
	_, err = m.Update(ctx, u.ID, users.UserUpdate{Email: &bad})
	var ve *users.ValidationError
	if errors.As(err, &ve) {
		fmt.Println(ve.Field, ve.Code) // nothing was changed
	}
	// Output:
	// Ada Lovelace countess
	// email malformed
}

func ExampleManager_Remove() {
	ctx := context.Background()
	m := exampleManager()
	u := exampleUser(m)
	s, _ := m.Login(ctx, "ada", examplePassword)

	fmt.Println(m.Remove(ctx, u.ID))
	_, err := m.ValidateToken(ctx, s.Token) // her sessions went with her
	fmt.Println(errors.Is(err, users.ErrInvalidToken))
	fmt.Println(errors.Is(m.Remove(ctx, u.ID), users.ErrNotFound))
	_, err = m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: examplePassword}) // the email is free again
	fmt.Println(err)
	// Output:
	// <nil>
	// true
	// true
	// <nil>
}

func ExampleManager_Count() {
	ctx := context.Background()
	m := exampleManager()
	for _, name := range []string{"ada", "bob", "cy"} {
		m.Create(ctx, users.NewUser{Email: name + "@example.com", Password: examplePassword})
	}
	bob, _ := m.GetByEmail(ctx, "bob@example.com")
	m.UpdateRole(ctx, bob.ID, users.RoleAdmin)

	all, _ := m.Count(ctx, users.Filter{})
	admins, _ := m.Count(ctx, users.Filter{Role: users.RoleAdmin})
	fmt.Println(all, admins)
	// Output:
	// 3 1
}

func ExampleManager_GetMany() {
	ctx := context.Background()
	m := exampleManager()
	ada := exampleUser(m)
	bob, _ := m.Create(ctx, users.NewUser{Email: "bob@example.com", Password: examplePassword})

	us, _ := m.GetMany(ctx, []string{bob.ID, "no-such-id", ada.ID}) // one store read, in order
	for _, u := range us {
		if u == nil {
			fmt.Println("(none)") // a missing user is not an error
			continue
		}
		fmt.Println(u.Email)
	}
	// Output:
	// bob@example.com
	// (none)
	// ada@example.com
}

func ExampleManager_UpdateRole() {
	ctx := context.Background()
	m := exampleManager()
	u := exampleUser(m)

	u, _ = m.UpdateRole(ctx, u.ID, users.RoleAdmin)
	fmt.Println(u.Role)

	_, err := m.UpdateRole(ctx, u.ID, "root")
	var ve *users.ValidationError
	if errors.As(err, &ve) {
		fmt.Println(ve.Field, ve.Code+":", ve.Reason)
	}
	// Output:
	// admin
	// role not_one_of: must be one of admin, user, viewer
}

func ExampleManager_Sessions() {
	ctx := context.Background()
	m := exampleManager()
	exampleUser(m)
	laptop, _ := m.Login(users.WithClient(ctx, users.Client{IP: "192.0.2.1", UserAgent: "Firefox"}), "ada", examplePassword)
	phone, _ := m.Login(users.WithClient(ctx, users.Client{IP: "192.0.2.2", UserAgent: "Safari"}), "ada", examplePassword)

	list, _ := m.Sessions(ctx, laptop.UserID) // for a "where you're signed in" page
	for _, s := range list {
		fmt.Println(s.IP, s.UserAgent, s.Token == "", s.ID == phone.ID)
	}
	// Output:
	// 192.0.2.1 Firefox true false
	// 192.0.2.2 Safari true true
}

func ExampleManager_RevokeSession() {
	ctx := context.Background()
	m := exampleManager()
	exampleUser(m)
	laptop, _ := m.Login(ctx, "ada", examplePassword)
	phone, _ := m.Login(ctx, "ada", examplePassword)

	// "Sign out that device", by the session's public ID.
	fmt.Println(m.RevokeSession(ctx, laptop.UserID, phone.ID))
	_, err := m.ValidateToken(ctx, phone.Token)
	fmt.Println(errors.Is(err, users.ErrInvalidToken))
	_, err = m.ValidateToken(ctx, laptop.Token)
	fmt.Println(err)
	// Output:
	// <nil>
	// true
	// <nil>
}

func ExampleManager_LogoutAll() {
	ctx := context.Background()
	m := exampleManager()
	u := exampleUser(m)
	laptop, _ := m.Login(ctx, "ada", examplePassword)
	phone, _ := m.Login(ctx, "ada", examplePassword)

	m.Logout(ctx, laptop.Token) // this device
	_, err := m.ValidateToken(ctx, phone.Token)
	fmt.Println(err)

	m.LogoutAll(ctx, u.ID) // every device
	_, err = m.ValidateToken(ctx, phone.Token)
	fmt.Println(errors.Is(err, users.ErrInvalidToken))
	// Output:
	// <nil>
	// true
}

func ExampleManager_UpdatePassword() {
	ctx := context.Background()
	m := exampleManager()
	u := exampleUser(m)
	s, _ := m.Login(ctx, "ada", examplePassword)

	err := m.UpdatePassword(ctx, u.ID, "a wrong guess", "difference engine 1822")
	fmt.Println(errors.Is(err, users.ErrInvalidCredentials))

	err = m.UpdatePassword(ctx, u.ID, examplePassword, "difference engine 1822")
	fmt.Println(err)
	_, err = m.ValidateToken(ctx, s.Token) // every session ends: log in again
	fmt.Println(errors.Is(err, users.ErrInvalidToken))
	_, err = m.Login(ctx, "ada", "difference engine 1822")
	fmt.Println(err)
	// Output:
	// true
	// <nil>
	// true
	// <nil>
}

func ExampleManager_SetPassword() {
	ctx := context.Background()
	m := exampleManager()
	u := exampleUser(m)

	// An administrator sets it, without the old one; the checks still apply.
	err := m.SetPassword(ctx, u.ID, "ada@example.com")
	var ve *users.ValidationError
	if errors.As(err, &ve) {
		fmt.Println(ve.Code)
	}
	fmt.Println(m.SetPassword(ctx, u.ID, "difference engine 1822"))
	_, err = m.Login(ctx, "ada", "difference engine 1822")
	fmt.Println(err)
	// Output:
	// personal_password
	// <nil>
	// <nil>
}

func ExampleManager_Import() {
	ctx := context.Background()
	m := exampleManager()
	rows := []users.NewUser{
		{Email: "ada@example.com", Password: examplePassword},
		{Email: "bob@example.com", PasswordHash: "$2a$04$2J6QpwIw4ys2NUTJPHf5zuZVGBXOlF6brPDyQv5v6w9TdVvdxTJaW"}, // from another system
		{Email: "ADA@example.com", Password: examplePassword},                                                    // the same address as the first row
		{Email: "not an email", Password: examplePassword},
	}
	results, err := m.Import(ctx, rows)
	if err != nil {
		fmt.Println(err) // the context or the store: not a row's fault
		return
	}
	for i, r := range results {
		if r.Err != nil {
			fmt.Println(i, "refused:", r.Err)
			continue
		}
		fmt.Println(i, "created", r.User.Email)
	}
	// Output:
	// 0 created ada@example.com
	// 1 created bob@example.com
	// 2 refused: users: email already in use
	// 3 refused: users: invalid email: must contain exactly one @
}

func ExampleManager_Audit() {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	m, err := users.New(users.NewMemoryStore(), &users.Options{
		BcryptCost:                    4, // tests only; the default is 12
		InsecureLowBcryptCostForTests: true,
		Now:                           func() time.Time { return now }, // moved by hand below
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	u := exampleUser(m)
	now = now.Add(time.Minute)
	m.Login(ctx, "ada", "a wrong guess")
	now = now.Add(time.Minute)
	m.Login(ctx, "ada", examplePassword)

	show := func(p *users.AuditPage) {
		for _, e := range p.Entries {
			fmt.Println(strings.TrimSpace(fmt.Sprintln(e.Time.Format(time.TimeOnly), e.Type, e.Reason)))
		}
	}
	p, err := m.Audit(ctx, users.AuditFilter{UserID: u.ID, Limit: 2}) // newest first
	if err != nil {
		fmt.Println(err)
		return
	}
	show(p)
	p, _ = m.Audit(ctx, users.AuditFilter{UserID: u.ID, Limit: 2, Before: p.Next}) // the next, older page
	show(p)
	// Output:
	// 12:02:00 login.succeeded
	// 12:01:00 login.failed wrong_password
	// 12:00:00 user.created
}

func ExampleManager_LockState() {
	ctx := context.Background()
	m, err := users.New(users.NewMemoryStore(), &users.Options{
		BcryptCost:                    4, // tests only; the default is 12
		InsecureLowBcryptCostForTests: true,
		Now:                           func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) },
		MaxFailedLogins:               3,
		LockoutDuration:               15 * time.Minute,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	u := exampleUser(m)
	for range 3 {
		m.Login(ctx, "ada", "a wrong guess")
	}
	_, err = m.Login(ctx, "ada", examplePassword) // right, but locked
	fmt.Println(errors.Is(err, users.ErrAccountLocked))

	st, _ := m.LockState(ctx, u.ID) // for support staff: why is she locked out?
	fmt.Println(st.Locked, st.LockedUntil.Format(time.TimeOnly), st.ConsecutiveFailures)

	m.Unlock(ctx, u.ID) // after checking who is asking
	_, err = m.Login(ctx, "ada", examplePassword)
	fmt.Println(err)
	// Output:
	// true
	// true 12:15:00 3
	// <nil>
}

// Each refused field has a Code for programs (to translate, or to switch on)
// beside the English Reason for people.
func ExampleValidationError() {
	ctx := context.Background()
	m := exampleManager()
	for _, nu := range []users.NewUser{
		{Email: "", Password: examplePassword},
		{Email: "ada@example.com", Password: "short"},
		{Email: "ada@example.com", Password: "password123"},
		{Email: "ada@example.com", Username: "a!", Password: examplePassword},
	} {
		_, err := m.Create(ctx, nu)
		var ve *users.ValidationError
		if errors.As(err, &ve) {
			fmt.Printf("%-8s %-15s %s\n", ve.Field, ve.Code, ve.Reason)
		}
	}
	fmt.Println(strings.Contains(fmt.Sprint(users.ValidationCodes()), "too_short"))
	// Output:
	// email    required        is required
	// password too_short       must be at least 8 characters
	// password common_password is one of the most commonly used passwords
	// username too_short       must be 3 to 32 characters
	// true
}

func ExampleManager_Unlock() {
	ctx := context.Background()
	m, err := users.New(users.NewMemoryStore(), &users.Options{
		BcryptCost:                    4, // tests only; the default is 12
		InsecureLowBcryptCostForTests: true,
		Now:                           func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) },
		MaxFailedLogins:               2,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	u := exampleUser(m)
	m.Login(ctx, "ada", "a wrong guess")
	m.Login(ctx, "ada", "another wrong guess")

	fmt.Println(m.Unlock(ctx, u.ID)) // support staff, after checking who is asking
	st, _ := m.LockState(ctx, u.ID)
	fmt.Println(st.Locked, st.ConsecutiveFailures)
	// Output:
	// <nil>
	// false 0
}

func ExampleManager_Logout() {
	ctx := context.Background()
	m := exampleManager()
	exampleUser(m)
	s, _ := m.Login(ctx, "ada", examplePassword)

	fmt.Println(m.Logout(ctx, s.Token))
	_, err := m.ValidateToken(ctx, s.Token)
	fmt.Println(errors.Is(err, users.ErrInvalidToken))
	// Output:
	// <nil>
	// true
}

func ExampleManager_RevokeOtherSessions() {
	ctx := context.Background()
	m := exampleManager()
	u := exampleUser(m)
	current, _ := m.Login(ctx, "ada", examplePassword)
	m.Login(ctx, "ada", examplePassword) // another device
	m.Login(ctx, "ada", examplePassword) // and another

	n, _ := m.RevokeOtherSessions(ctx, u.ID, current.ID) // "sign out everywhere else"
	list, _ := m.Sessions(ctx, u.ID)
	fmt.Println(n, len(list), list[0].ID == current.ID)
	// Output:
	// 2 1 true
}
