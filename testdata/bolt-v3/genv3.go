//go:build ignore

// genv3 writes testdata/bolt-v3/users.db with the bbolt store of commit abf1ec3
// (schema version 3: records of format 2, the audit log, second factors) and,
// beside it, fixture.json: the clock, password, users, bearer tokens and
// one-time tokens the upgrade test checks, and for each bearer token the
// AuthenticatedAt its session must have after the upgrade (the later of its
// CreatedAt and its SecondFactorAt). It is genv2.go of testdata/bolt-v2 with
// what version 3 added: a user with a TOTP factor, a session that completed
// a second factor at login and one that stepped up after it.
//
// Run it from a checkout of that commit:
//
//	git archive abf1ec3 | tar -x -C /tmp/old
//	mkdir -p /tmp/old/cmd/genv3 && cp testdata/bolt-v3/genv3.go /tmp/old/cmd/genv3/main.go
//	cd /tmp/old && go run ./cmd/genv3/main.go /path/to/repo/testdata/bolt-v3
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users"
)

const password = "correct horse battery staple"

type fixture struct {
	Now      time.Time         `json:"now"` // the clock when the file was written
	Password string            `json:"password"`
	Users    []*users.User     `json:"users"`    // every user as the old code returns it
	Sessions map[string]string `json:"sessions"` // bearer token -> user email
	Tokens   map[string]string `json:"tokens"`   // one-time tokens by what they are for
	Locked   string            `json:"locked"`   // email of a user whose account is locked
	Counts   map[string]int    `json:"counts"`   // what Count said, by filter
	// Authenticated is, by bearer token, the AuthenticatedAt the session must
	// have after the upgrade: the later of its CreatedAt and SecondFactorAt.
	Authenticated map[string]time.Time `json:"authenticated"`
	MFAUser       string               `json:"mfa_user"` // email of the user with a TOTP factor
}

func main() {
	dir := os.Args[1]
	path := filepath.Join(dir, "users.db")
	_ = os.Remove(path)
	now := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	clock := func() time.Time { now = now.Add(time.Second); return now }
	s, err := users.OpenBoltStore(path, nil)
	check(err)
	m, err := users.New(s, &users.Options{
		BcryptCost: 4, InsecureLowBcryptCostForTests: true,
		MaxFailedLogins: 5, Roles: []users.Role{users.RoleAdmin, users.RoleUser, users.RoleViewer},
		Now: clock, Rand: mathrand.NewChaCha8([32]byte{'u', 's', 'e', 'r', 'k', 'i', 't'}),
		MFAKeys: []users.MFAKey{{ID: "k1", Key: bytes.Repeat([]byte{7}, 32)}},
	})
	check(err)
	ctx := context.Background()
	f := fixture{Password: password, Sessions: map[string]string{}, Tokens: map[string]string{}, Counts: map[string]int{},
		Authenticated: map[string]time.Time{}}

	imported, err := bcrypt.GenerateFromPassword([]byte(password), 4)
	check(err)
	for _, nu := range []users.NewUser{
		{Email: "alice@example.com", Username: "alice", FirstName: "Alice", LastName: "Smith", Role: users.RoleAdmin,
			AccountID: "acme", Preferences: map[string]string{"theme": "dark", "lang": "de"}, AvatarURL: "https://example.com/a.png"},
		{Email: "bob@example.com", Username: "bob", FirstName: "Bob", LastName: "Jones", AccountID: "acme"},
		{Email: "carol@example.com", FirstName: "Carol", Role: users.RoleViewer, Status: users.StatusInactive, AccountID: "globex"},
		{Email: "dave@example.com", LastName: "Brown", Status: users.StatusSuspended},
		{Email: "frank@example.com", Username: "frank", FirstName: "Frank", LastName: "Müller", PasswordHash: string(imported)},
		{Email: "gina@example.com", Username: "gina", FirstName: "Gina", AccountID: "globex", Preferences: map[string]string{}},
	} {
		if nu.PasswordHash == "" {
			nu.Password = password
		}
		_, err := m.Create(ctx, nu)
		check(err)
	}
	roles := []users.Role{users.RoleAdmin, users.RoleUser, users.RoleUser, users.RoleViewer}
	statuses := []users.Status{users.StatusActive, users.StatusActive, users.StatusInactive, users.StatusSuspended}
	for i := range 24 {
		_, err := m.Create(ctx, users.NewUser{
			Email: fmt.Sprintf("user%02d@example.org", i), FirstName: "User", LastName: fmt.Sprintf("Number%02d", i),
			Password: password, Role: roles[i%4], Status: statuses[i/2%4], AccountID: []string{"", "acme", "globex"}[i%3],
		})
		check(err)
	}
	_, invite, err := m.Invite(ctx, users.NewUser{Email: "erin@example.com", FirstName: "Erin", AccountID: "acme"})
	check(err)
	f.Tokens["invitation erin@example.com"] = invite

	for _, email := range []string{"alice@example.com", "alice@example.com", "bob", "frank@example.com", "user00@example.org"} {
		sess, err := m.Login(ctx, email, password)
		check(err)
		f.Sessions[sess.Token] = sess.User.Email
		f.Authenticated[sess.Token] = sess.CreatedAt
	}

	// Bob enrols TOTP; a login completed with a recovery code has a second
	// factor at its creation, and a later step-up moves SecondFactorAt past it.
	bobRec, err := m.GetByEmail(ctx, "bob@example.com")
	check(err)
	enr, err := m.BeginTOTP(ctx, bobRec.ID)
	check(err)
	code, err := totp.GenerateCode(enr.Secret, now)
	check(err)
	recovery, err := m.ConfirmTOTP(ctx, bobRec.ID, code)
	check(err)
	f.MFAUser = "bob@example.com"
	for i := range 2 {
		_, err := m.Login(ctx, "bob@example.com", password)
		var ch *users.Challenge
		if !errors.As(err, &ch) {
			log.Fatalf("bob: %v, want a challenge", err)
		}
		sess, err := m.CompleteLogin(ctx, ch.Token, recovery[i])
		check(err)
		f.Sessions[sess.Token] = "bob@example.com"
		f.Authenticated[sess.Token] = sess.SecondFactorAt
		if i == 1 {
			for range 5 {
				clock()
			}
			up, err := m.StepUp(ctx, sess.Token, recovery[2])
			check(err)
			if !up.SecondFactorAt.After(up.CreatedAt) {
				log.Fatal("the step-up did not move SecondFactorAt")
			}
			f.Authenticated[sess.Token] = up.SecondFactorAt
		}
	}
	reset, err := m.RequestPasswordReset(ctx, "bob@example.com")
	check(err)
	f.Tokens["password_reset bob@example.com"] = reset.Token
	magic, err := m.RequestMagicLink(ctx, "alice@example.com")
	check(err)
	f.Tokens["magic_link alice@example.com"] = magic.Token
	bob, err := m.Find(ctx, users.Filter{Search: "bob@", Limit: 1})
	check(err)
	verify, err := m.RequestEmailVerification(ctx, bob.Users[0].ID)
	check(err)
	f.Tokens["verify_email bob@example.com"] = verify.Token

	for range 5 {
		if _, err := m.Login(ctx, "gina", "wrong password"); err == nil {
			log.Fatal("wrong password accepted")
		}
	}
	if _, err := m.Login(ctx, "gina", password); err != users.ErrAccountLocked {
		log.Fatalf("gina: %v, want ErrAccountLocked", err)
	}
	f.Locked = "gina@example.com"
	_, _ = m.Login(ctx, "nobody@example.com", "wrong password") // an "id:" throttle entry

	for after := ""; ; {
		p, err := m.Find(ctx, users.Filter{After: after, Limit: 10})
		check(err)
		f.Users = append(f.Users, p.Users...)
		if p.Next == "" {
			break
		}
		after = p.Next
	}
	for name, flt := range map[string]users.Filter{
		"all": {}, "role=admin": {Role: users.RoleAdmin}, "status=active": {Status: users.StatusActive},
		"account=acme": {AccountID: "acme"}, "role=user,status=active": {Role: users.RoleUser, Status: users.StatusActive},
		"role=user,status=active,account=acme": {Role: users.RoleUser, Status: users.StatusActive, AccountID: "acme"},
		"status=invited":                       {Status: users.StatusInvited},
	} {
		n, err := m.Count(ctx, flt)
		check(err)
		f.Counts[name] = n
	}
	f.Now = now
	check(s.Check(ctx))
	check(s.Close())
	b, err := json.MarshalIndent(f, "", "\t")
	check(err)
	check(os.WriteFile(filepath.Join(dir, "fixture.json"), append(b, '\n'), 0o644))
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
