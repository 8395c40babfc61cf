package users_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/userkit/users"
)

// exampleManager returns a Manager over a memory store with a fixed clock and a
// cheap bcrypt cost, so that examples run fast and print the same every time.
// Programs use users.New(store, nil) for the defaults.
func exampleManager() *users.Manager {
	m, err := users.New(users.NewMemoryStore(), &users.Options{
		BcryptCost:                    4, // tests only; the default is 12
		InsecureLowBcryptCostForTests: true,
		Now:                           func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		panic(err)
	}
	return m
}

func ExampleNew() {
	m, err := users.New(users.NewMemoryStore(), nil) // nil: the documented defaults
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m != nil)

	_, err = users.New(users.NewMemoryStore(), &users.Options{BcryptCost: 8})
	fmt.Println(err)
	// Output:
	// true
	// users: invalid options.BcryptCost: must be between 10 and 31
}

func ExampleManager_Create() {
	ctx := context.Background()
	m := exampleManager()

	u, err := m.Create(ctx, users.NewUser{
		Email:     " Ada@Example.com ",
		Username:  "Ada",
		Password:  "analytical engine 1843",
		FirstName: "Ada",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(u.Email, u.Username, u.Role, u.Status)

	_, err = m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: "another password"})
	fmt.Println(errors.Is(err, users.ErrDuplicateEmail))

	_, err = m.Create(ctx, users.NewUser{Email: "bob@example.com", Password: "short"})
	var ve *users.ValidationError
	if errors.As(err, &ve) {
		fmt.Println(ve.Field+":", ve.Reason)
	}
	// Output:
	// ada@example.com ada user active
	// true
	// password: must be at least 8 characters
}

func ExampleManager_Login() {
	ctx := context.Background()
	m := exampleManager()
	m.Create(ctx, users.NewUser{Email: "ada@example.com", Username: "ada", Password: "analytical engine 1843"})

	s, err := m.Login(ctx, "ada", "analytical engine 1843") // email or username
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.User.Email, len(s.Token), s.ExpiresAt.Sub(s.CreatedAt))

	_, err = m.Login(ctx, "ada@example.com", "wrong")
	fmt.Println(err)
	_, err = m.Login(ctx, "nobody@example.com", "wrong")
	fmt.Println(err)
	// Output:
	// ada@example.com 43 24h0m0s
	// users: invalid credentials
	// users: invalid credentials
}

func ExampleManager_ValidateToken() {
	ctx := context.Background()
	m := exampleManager()
	u, _ := m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: "analytical engine 1843"})
	s, _ := m.Login(ctx, "ada@example.com", "analytical engine 1843")

	m.UpdateRole(ctx, u.ID, users.RoleAdmin)
	v, err := m.ValidateToken(ctx, s.Token)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(v.User.Role) // the user as it is now

	m.Logout(ctx, s.Token)
	_, err = m.ValidateToken(ctx, s.Token)
	fmt.Println(errors.Is(err, users.ErrInvalidToken))
	// Output:
	// admin
	// true
}

func ExampleManager_Find() {
	ctx := context.Background()
	m := exampleManager()
	for _, name := range []string{"ada", "bob", "cy", "dee", "eve"} {
		m.Create(ctx, users.NewUser{Email: name + "@example.com", Password: "analytical engine 1843"})
	}

	f := users.Filter{Limit: 2}
	for {
		p, err := m.Find(ctx, f)
		if err != nil {
			fmt.Println(err)
			return
		}
		var emails []string
		for _, u := range p.Users {
			emails = append(emails, u.Email)
		}
		fmt.Println(strings.Join(emails, " "))
		if p.Next == "" {
			break
		}
		f.After = p.Next
	}
	n, _ := m.Count(ctx, users.Filter{Search: "E"})
	fmt.Println(n, "match e")
	// Output:
	// ada@example.com bob@example.com
	// cy@example.com dee@example.com
	// eve@example.com
	// 5 match e
}
