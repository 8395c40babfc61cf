package users_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// TestBoltStore_UpgradeV7 opens a file written by the schema version 7 code
// (testdata/bolt-v7, written by genv7.go there) and checks that the new code
// migrates it on open to the version whose sessions keep their own idle
// timeout: the file is at the current version and passes Check; every user
// reads back as the old code returned it (one with its external ID); each
// old session validates with its ExpiresAt and has no idle timeout of its
// own, so Options.SessionIdleTimeout still ends it; the second factor and the
// credential are kept; and a remembered session made after the upgrade keeps
// its own idle timeout across a reopen.
func TestBoltStore_UpgradeV7(t *testing.T) {
	path, f := copyBoltFixture(t, 7)
	var extra struct {
		Expires     map[string]time.Time `json:"expires"`
		MFA         string               `json:"mfa"`
		Credentials int                  `json:"credentials"`
	}
	j, err := os.ReadFile("testdata/bolt-v7/fixture.json")
	must(t, err)
	must(t, json.Unmarshal(j, &extra))
	if len(extra.Expires) != len(f.Sessions) || len(f.Sessions) == 0 || extra.MFA == "" || extra.Credentials == 0 {
		t.Fatalf("the fixture lacks sessions, their expiry, an MFA user or a credential: %s", j)
	}
	s, err := users.OpenBoltStore(path, nil)
	must(t, err)
	ctx := t.Context()
	must(t, s.Check(ctx))
	clock := storetest.NewClock()
	clock.Advance(f.Now.Sub(clock.Now()) + time.Minute)
	opts := &users.Options{
		BcryptCost: 4, InsecureLowBcryptCostForTests: true, Now: clock.Now,
		MFAKeys:            []users.MFAKey{{ID: "k1", Key: bytes.Repeat([]byte{7}, 32)}},
		SessionIdleTimeout: time.Hour,
	}
	m, err := users.New(s, opts)
	must(t, err)
	boltWantUsers(t, m, f.Users)
	if u, err := m.GetByExternalID(ctx, "legacy|7"); err != nil || u.Email != "gina@example.com" {
		t.Errorf("GetByExternalID(legacy|7) after the upgrade = %+v, %v; want gina", u, err)
	}
	for token, email := range f.Sessions {
		sess, err := m.ValidateToken(ctx, token)
		if err != nil || sess.User.Email != email || !sess.ExpiresAt.Equal(extra.Expires[token]) {
			t.Errorf("ValidateToken(session of %s) = %+v, %v; want ExpiresAt %v", email, sess, err, extra.Expires[token])
		}
	}
	if _, err := m.Login(ctx, extra.MFA, f.Password); !errors.Is(err, users.ErrSecondFactorRequired) {
		t.Errorf("Login(%s) after the upgrade = %v, want ErrSecondFactorRequired", extra.MFA, err)
	}
	if cs, err := s.ListCredentials(ctx, f.Users[0].ID); err != nil || len(cs) != extra.Credentials {
		t.Errorf("ListCredentials after the upgrade = %d, %v; want %d", len(cs), err, extra.Credentials)
	}
	remembered, err := m.Login(users.WithSessionOptions(ctx, users.SessionOptions{Remember: true}), "alice", f.Password)
	must(t, err)
	must(t, s.Check(ctx))
	must(t, s.Close())
	if v := boltVersion(t, path); v != boltSchemaVersion {
		t.Errorf("version = %d after the upgrade, want %d", v, boltSchemaVersion)
	}
	boltCheckFile(t, path)

	s, err = users.OpenBoltStore(path, nil)
	must(t, err)
	t.Cleanup(func() { must(t, s.Close()) })
	m, err = users.New(s, opts)
	must(t, err)
	clock.Advance(time.Hour) // past the ordinary idle timeout, within the remembered one
	for token, email := range f.Sessions {
		if _, err := m.ValidateToken(ctx, token); !errors.Is(err, users.ErrInvalidToken) {
			t.Errorf("ValidateToken(old session of %s) an idle hour on = %v, want ErrInvalidToken", email, err)
		}
	}
	if _, err := m.ValidateToken(ctx, remembered.Token); err != nil {
		t.Errorf("ValidateToken(remembered session) an idle hour on = %v, want it live: its own idle timeout was lost", err)
	}
}
