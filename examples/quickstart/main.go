// Command quickstart is the library's embedded default in one command: it opens
// (or creates) a bbolt file, creates an admin if there is none, logs in,
// validates the token, lists the users and logs out, printing each step.
//
//	go run ./examples/quickstart                 # users.db in the current folder
//	go run ./examples/quickstart -db /tmp/x.db   # another file
//
// Run it again and it finds the admin it created the first time. The admin's
// password is $USERS_ADMIN_PASSWORD, or else a fixed demo password that it
// prints: do not keep a store made with it. There is no flag for it, since
// every user of the machine can read a process's flags (ps).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/userkit/users"
)

// demoPassword is the admin's password when none is given. It passes the
// default password rules and is printed, so it protects nothing.
const demoPassword = "quickstart demo only 2026"

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // -h printed the usage: asking for help is no failure
		}
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	dbPath := fl.String("db", "users.db", "path of the bbolt file, created if missing")
	email := fl.String("email", "admin@example.com", "email of the admin to create or log in as")
	if err := fl.Parse(args); err != nil {
		return err
	}
	password := os.Getenv("USERS_ADMIN_PASSWORD")
	if password == "" {
		password = demoPassword
		fmt.Printf("note: no $USERS_ADMIN_PASSWORD; using the demo password %q\n", demoPassword)
	}

	_, statErr := os.Stat(*dbPath)
	store, err := users.OpenBoltStore(*dbPath, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	if errors.Is(statErr, fs.ErrNotExist) {
		fmt.Printf("1. created the store %s\n", *dbPath)
	} else {
		fmt.Printf("1. opened the store %s\n", *dbPath)
	}

	m, err := users.New(store, nil) // nil: the documented defaults (bcrypt cost 12, 24h sessions, ...)
	if err != nil {
		return err
	}

	admins, err := m.Count(ctx, users.Filter{Role: users.RoleAdmin})
	if err != nil {
		return err
	}
	if admins == 0 {
		u, err := m.Create(ctx, users.NewUser{
			Email:     *email,
			Password:  password,
			FirstName: "Admin",
			Role:      users.RoleAdmin,
		})
		if err != nil {
			return fmt.Errorf("creating the admin: %w", err)
		}
		fmt.Printf("2. created the admin %s (id %s)\n", u.Email, u.ID)
	} else {
		fmt.Printf("2. found %d admin(s); not creating one\n", admins)
	}

	s, err := m.Login(ctx, *email, password)
	if errors.Is(err, users.ErrInvalidCredentials) {
		return fmt.Errorf("logging in as %s: %w (was %s made with another $USERS_ADMIN_PASSWORD?)", *email, err, *dbPath)
	}
	if err != nil {
		return fmt.Errorf("logging in as %s: %w", *email, err)
	}
	// Never print or log a session token: it is the user's password for 24 hours.
	fmt.Printf("3. logged in as %s: session %s, token of %d characters (not shown), expires %s\n",
		s.User.Email, s.ID, len(s.Token), s.ExpiresAt.Format(time.RFC3339))

	v, err := m.ValidateToken(ctx, s.Token)
	if err != nil {
		return fmt.Errorf("validating the token: %w", err)
	}
	fmt.Printf("4. the token is valid: user %s, role %s\n", v.User.Email, v.User.Role)

	total, err := m.Count(ctx, users.Filter{})
	if err != nil {
		return err
	}
	fmt.Printf("5. %d user(s):\n", total)
	f := users.Filter{Limit: 100}
	for {
		p, err := m.Find(ctx, f)
		if err != nil {
			return err
		}
		for _, u := range p.Users {
			name := strings.TrimSpace(u.FirstName + " " + u.LastName)
			fmt.Printf("   %s  %-24s %-7s %-9s %s\n", u.ID, u.Email, u.Role, u.Status, name)
		}
		if p.Next == "" {
			break
		}
		f.After = p.Next
	}

	if err := m.Logout(ctx, s.Token); err != nil {
		return fmt.Errorf("logging out: %w", err)
	}
	if _, err := m.ValidateToken(ctx, s.Token); !errors.Is(err, users.ErrInvalidToken) {
		return fmt.Errorf("the token still validates after logout: %v", err)
	}
	fmt.Println("6. logged out; the token no longer validates")
	return nil
}
