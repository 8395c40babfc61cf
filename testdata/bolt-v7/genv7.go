//go:build ignore

// genv7 writes testdata/bolt-v7/users.db with the bbolt store of schema
// version 7 (commit cf3a665: record format 3, credentials, external IDs, flows)
// and, beside it, fixture.json: the clock, the password, the users (one with
// an external ID), each bearer token with its user's email and its session's
// ExpiresAt, the user with a second factor and the number of credentials.
// The upgrade test reads it.
//
// Run it from a checkout of that commit:
//
//	git worktree add /tmp/old cf3a665
//	mkdir -p /tmp/old/cmd/genv7 && cp testdata/bolt-v7/genv7.go /tmp/old/cmd/genv7/main.go
//	cd /tmp/old && go run ./cmd/genv7/main.go /path/to/repo/testdata/bolt-v7

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/userkit/users"
)

const password = "correct horse battery staple"

type fixture struct {
	Now         time.Time            `json:"now"` // the clock when the file was written
	Password    string               `json:"password"`
	Users       []*users.User        `json:"users"`    // every user as the old code returns it
	Sessions    map[string]string    `json:"sessions"` // bearer token -> user email
	Expires     map[string]time.Time `json:"expires"`  // bearer token -> its session's ExpiresAt
	MFA         string               `json:"mfa"`      // email of a user with a confirmed TOTP factor
	Credentials int                  `json:"credentials"`
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
		Now: clock, Rand: mathrand.NewChaCha8([32]byte{'u', 's', 'e', 'r', 'k', 'i', 't'}),
		MFAKeys:            []users.MFAKey{{ID: "k1", Key: bytes.Repeat([]byte{7}, 32)}},
		SessionIdleTimeout: time.Hour,
	})
	check(err)
	ctx := context.Background()
	f := fixture{Password: password, Sessions: map[string]string{}, Expires: map[string]time.Time{}}
	for _, nu := range []users.NewUser{
		{Email: "alice@example.com", Username: "alice", FirstName: "Alice"},
		{Email: "bob@example.com", Username: "bob", FirstName: "Bob"},
		{Email: "frank@example.com", Username: "frank", FirstName: "Frank"},
		{Email: "gina@example.com", Username: "gina", FirstName: "Gina", ExternalID: "legacy|7"},
	} {
		nu.Password = password
		u, err := m.Create(ctx, nu)
		check(err)
		f.Users = append(f.Users, u)
	}
	for _, email := range []string{"alice@example.com", "alice@example.com", "bob"} {
		sess, err := m.Login(ctx, email, password)
		check(err)
		f.Sessions[sess.Token] = sess.User.Email
		f.Expires[sess.Token] = sess.ExpiresAt
	}

	frank, err := s.GetUserByEmail(ctx, "frank@example.com")
	check(err)
	enr, err := m.BeginTOTP(ctx, frank.ID)
	check(err)
	code, err := totp.GenerateCode(enr.Secret, now)
	check(err)
	_, err = m.ConfirmTOTP(ctx, frank.ID, code)
	check(err)
	f.MFA = frank.Email

	check(s.CreateCredential(ctx, &users.CredentialRecord{Kind: users.CredentialPasskey, ID: "\x01\x02passkey",
		UserID: f.Users[0].ID, Name: "laptop", CreatedAt: clock(), Data: []byte("public key")}))
	f.Credentials = 1

	for i, u := range f.Users {
		f.Users[i], err = m.Get(ctx, u.ID)
		check(err)
	}
	f.Now = clock()
	check(s.Close())
	j, err := json.MarshalIndent(f, "", "\t")
	check(err)
	check(os.WriteFile(filepath.Join(dir, "fixture.json"), append(j, '\n'), 0o644))
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
