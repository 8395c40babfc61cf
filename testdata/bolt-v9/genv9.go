//go:build ignore

// genv9 writes testdata/bolt-v9/users.db with the bbolt store of schema
// version 9 (commit 5ae29a4: every bucket nested under "userkit.users") and,
// beside it, fixture.json: what genv8.go recorded, for the upgrade to the
// version that keeps the buckets at the top level of the file. Besides what
// genv8.go wrote, the file holds a provider flow and a passkey ceremony, so
// that every record bucket of version 9 has records to carry over.
//
// Run it from a copy of that commit:
//
//	mkdir /tmp/old && git archive 5ae29a4 | tar -x -C /tmp/old
//	mkdir -p /tmp/old/cmd/genv9 && cp testdata/bolt-v9/genv9.go /tmp/old/cmd/genv9/main.go
//	cd /tmp/old && go run ./cmd/genv9/main.go /path/to/repo/testdata/bolt-v9

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
	MFA      string            `json:"mfa"`      // email of a user with a confirmed TOTP factor
	Audit    int               `json:"audit"`    // how many audit entries the file holds
	Passkey  string            `json:"passkey"`  // email of a user with a passkey credential

	External    string                    `json:"external"`    // the external ID of a user who has one
	Credentials []*users.CredentialRecord `json:"credentials"` // every credential as stored
	Remembered  string                    `json:"remembered"`  // bearer token of a remembered session ("remember me")
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
	f := fixture{Password: password, Sessions: map[string]string{}, Tokens: map[string]string{}, Counts: map[string]int{}}

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
	}
	remembered, err := m.Login(users.WithSessionOptions(ctx, users.SessionOptions{Remember: true}), "bob@example.com", password)
	check(err)
	f.Sessions[remembered.Token] = remembered.User.Email
	f.Remembered = remembered.Token
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
	if _, err := m.Login(ctx, "gina", password); !errors.Is(err, users.ErrAccountLocked) {
		log.Fatalf("gina: %v, want ErrAccountLocked", err)
	}
	f.Locked = "gina@example.com"
	_, _ = m.Login(ctx, "nobody@example.com", "wrong password") // an "id:" throttle entry

	// A confirmed TOTP factor with recovery codes, and a login waiting for it.
	frank, err := s.GetUserByEmail(ctx, "frank@example.com")
	check(err)
	enr, err := m.BeginTOTP(ctx, frank.ID)
	check(err)
	code, err := totp.GenerateCode(enr.Secret, now)
	check(err)
	_, err = m.ConfirmTOTP(ctx, frank.ID, code)
	check(err)
	f.MFA = frank.Email
	if _, err := m.Login(ctx, "frank@example.com", password); err == nil {
		log.Fatal("frank logged in without his second factor")
	}

	// A credential, the record bucket version 5 added.
	bob0, err := s.GetUserByEmail(ctx, "bob@example.com")
	check(err)
	check(s.CreateCredential(ctx, &users.CredentialRecord{Kind: users.CredentialPasskey, ID: "\x00bob-key",
		UserID: bob0.ID, Name: "laptop", CreatedAt: now, Counter: 2, Data: []byte{1, 2, 3}}))
	f.Passkey = bob0.Email
	check(s.CreateCredential(ctx, &users.CredentialRecord{Kind: users.CredentialOIDC, ID: "23:https://id.example.comsub-1",
		UserID: bob0.ID, CreatedAt: now, Data: []byte(`{"provider":"example"}`)}))
	_, err = m.Create(ctx, users.NewUser{Email: "ext@example.com", Password: password, ExternalID: "crm-42"})
	check(err)
	f.External = "crm-42"
	cs, err := s.ListCredentials(ctx, bob0.ID)
	check(err)
	f.Credentials = cs

	// A provider flow and a passkey ceremony, the record buckets of versions
	// 7 and 9, still open when the file was written.
	check(s.CreateFlow(ctx, &users.FlowRecord{Hash: bytes.Repeat([]byte{0xf1}, 32), Data: []byte(`{"provider":"example"}`),
		CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}))
	check(s.CreateCeremony(ctx, &users.CeremonyRecord{Hash: bytes.Repeat([]byte{0xc3}, 32), Kind: users.CeremonyPasskeyLogin,
		CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}))

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
	entries, err := s.ListAudit(ctx, users.AuditQuery{Limit: 1 << 20})
	check(err)
	f.Audit = len(entries)
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
