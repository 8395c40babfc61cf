package users_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"go.etcd.io/bbolt"

	"github.com/userkit/users"
)

// boltFixture is testdata/bolt-v1/fixture.json or testdata/bolt-v2/fixture.json:
// what the schema-version-1 or -2 code wrote into users.db beside it (see
// genv1.go and genv2.go there).
type boltFixture struct {
	Now      time.Time         `json:"now"`
	Password string            `json:"password"`
	Users    []*users.User     `json:"users"`
	Sessions map[string]string `json:"sessions"` // bearer token -> email
	Tokens   map[string]string `json:"tokens"`   // "<purpose> <email>" -> token
	Locked   string            `json:"locked"`
	Counts   map[string]int    `json:"counts"`

	// From version 3 on: each bearer token's AuthenticatedAt after the
	// upgrade, and the user with a TOTP factor.
	Authenticated map[string]time.Time `json:"authenticated"`
	MFAUser       string               `json:"mfa_user"`
}

// boltWantUsers checks that m reads every user of want back as the old code
// returned it.
func boltWantUsers(t *testing.T, m *users.Manager, want []*users.User) {
	t.Helper()
	for _, w := range want {
		got, err := m.Get(t.Context(), w.ID)
		must(t, err)
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(w)
		if string(gj) != string(wj) {
			t.Errorf("user after the upgrade:\n got %s\nwant %s", gj, wj)
		}
	}
}

// copyBoltV1 copies the version 1 fixture into a new file and returns its path
// and the fixture's description.
func copyBoltV1(tb testing.TB) (string, *boltFixture) {
	tb.Helper()
	return copyBoltFixture(tb, 1)
}

// copyBoltFixture copies the fixture of schema version v (testdata/bolt-v<v>)
// into a new file and returns its path and the fixture's description.
func copyBoltFixture(tb testing.TB, v uint64) (string, *boltFixture) {
	tb.Helper()
	dir := fmt.Sprintf("testdata/bolt-v%d", v)
	b, err := os.ReadFile(filepath.Join(dir, "users.db"))
	must(tb, err)
	path := filepath.Join(tb.TempDir(), "users.db")
	must(tb, os.WriteFile(path, b, 0o600))
	j, err := os.ReadFile(filepath.Join(dir, "fixture.json"))
	must(tb, err)
	var f boltFixture
	must(tb, json.Unmarshal(j, &f))
	if got := boltVersion(tb, path); got != v {
		tb.Fatalf("the fixture has schema version %d, want %d", got, v)
	}
	return path, &f
}

// TestBoltStore_UpgradeV1 opens a file written by the version 1 code (commit
// 4459f78, committed as testdata/bolt-v1) and checks that the new code migrates
// it on open: the file is at the current version and passes Check, every user
// reads back as the old code returned it, the counts agree, the old sessions'
// bearer tokens still validate, the users log in with their passwords, the
// locked account is still locked, and the one-time tokens still redeem.
func TestBoltStore_UpgradeV1(t *testing.T) { testBoltUpgrade(t, 1) }

// TestBoltStore_UpgradeV2 is TestBoltStore_UpgradeV1 for a file written by the
// version 2 code (commit 1d59d5b, committed as testdata/bolt-v2), which also
// checks that what version 3 added reads as zero: no user was ever active, the
// sessions know no client or methods, and the audit log is empty.
func TestBoltStore_UpgradeV2(t *testing.T) { testBoltUpgrade(t, 2) }

func testBoltUpgrade(t *testing.T, from uint64) {
	path, f := copyBoltFixture(t, from)
	s, err := users.OpenBoltStore(path, nil)
	must(t, err)
	defer func() {
		must(t, s.Close())
		if v := boltVersion(t, path); v != boltSchemaVersion {
			t.Errorf("version = %d after the upgrade, want %d", v, boltSchemaVersion)
		}
		boltCheckFile(t, path)
	}()
	ctx := context.Background()
	must(t, s.Check(ctx))
	m, err := users.New(s, &users.Options{
		BcryptCost: 4, InsecureLowBcryptCostForTests: true, MaxFailedLogins: 5,
		Roles:   []users.Role{users.RoleAdmin, users.RoleUser, users.RoleViewer},
		Now:     func() time.Time { return f.Now.Add(time.Minute) },
		MFAKeys: []users.MFAKey{{ID: "k1", Key: bytes.Repeat([]byte{7}, 32)}},
	})
	must(t, err)

	if es, err := s.ListAudit(ctx, users.AuditQuery{Limit: 10}); err != nil || len(es) != 0 {
		t.Errorf("audit log after the upgrade: %v, %v; want it empty", es, err)
	}
	for _, want := range f.Users {
		if r, err := s.GetUser(ctx, want.ID); err != nil || !r.LastActiveAt.IsZero() {
			t.Errorf("user %s after the upgrade: %v, LastActiveAt %v; want it zero", want.ID, err, r.LastActiveAt)
		}
		if r, err := s.GetMFA(ctx, want.ID); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("GetMFA(%s) after the upgrade = %v, %v; want ErrNotFound", want.ID, r, err)
		}
		ss, err := s.ListSessions(ctx, want.ID)
		must(t, err)
		for _, sr := range ss {
			if sr.IP != "" || sr.UserAgent != "" || sr.Methods != nil || !sr.SecondFactorAt.IsZero() {
				t.Errorf("session %s after the upgrade: %+v; want the new fields zero", sr.ID, sr)
			}
		}
	}
	boltWantUsers(t, m, f.Users)
	for name, want := range f.Counts {
		var flt users.Filter
		for _, kv := range strings.Split(name, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "role":
				flt.Role = users.Role(v)
			case "status":
				flt.Status = users.Status(v)
			case "account":
				flt.AccountID = v
			}
		}
		if got, err := m.Count(ctx, flt); got != want || err != nil {
			t.Errorf("Count(%s) = %d, %v; want %d", name, got, err, want)
		}
	}
	for token, email := range f.Sessions {
		sess, err := m.ValidateToken(ctx, token)
		if err != nil || sess.User.Email != email {
			t.Errorf("ValidateToken(session of %s) = %v, %v", email, sess, err)
		}
	}
	for _, email := range []string{"alice@example.com", "bob@example.com", "frank@example.com", "user00@example.org"} {
		if _, err := m.Login(ctx, email, f.Password); err != nil {
			t.Errorf("Login(%s): %v", email, err)
		}
	}
	if _, err := m.Login(ctx, f.Locked, f.Password); !errors.Is(err, users.ErrAccountLocked) {
		t.Errorf("Login(%s), locked before the upgrade: %v, want ErrAccountLocked", f.Locked, err)
	}
	if _, err := m.Login(ctx, "carol@example.com", f.Password); !errors.Is(err, users.ErrAccountDisabled) {
		t.Errorf("Login(carol, inactive): %v, want ErrAccountDisabled", err)
	}
	if _, err := m.LoginWithMagicLink(ctx, f.Tokens["magic_link alice@example.com"]); err != nil {
		t.Errorf("LoginWithMagicLink: %v", err)
	}
	if _, err := m.VerifyEmail(ctx, f.Tokens["verify_email bob@example.com"]); err != nil {
		t.Errorf("VerifyEmail: %v", err)
	}
	const newPassword = "a new and longer passphrase"
	must(t, m.ResetPassword(ctx, f.Tokens["password_reset bob@example.com"], newPassword))
	if _, err := m.Login(ctx, "bob@example.com", newPassword); err != nil {
		t.Errorf("Login(bob) after the reset: %v", err)
	}
	if _, err := m.AcceptInvitation(ctx, f.Tokens["invitation erin@example.com"], newPassword); err != nil {
		t.Errorf("AcceptInvitation: %v", err)
	}

	// A user of the old file enrols a second factor, which the upgraded
	// file keeps: the login then waits for it.
	alice, err := s.GetUserByEmail(ctx, "alice@example.com")
	must(t, err)
	enr, err := m.BeginTOTP(ctx, alice.ID)
	must(t, err)
	code, err := totp.GenerateCode(enr.Secret, f.Now.Add(time.Minute))
	must(t, err)
	recovery, err := m.ConfirmTOTP(ctx, alice.ID, code)
	must(t, err)
	_, err = m.Login(ctx, "alice@example.com", f.Password)
	var ch *users.Challenge
	if !errors.As(err, &ch) {
		t.Fatalf("Login(alice) with TOTP enrolled after the upgrade: %v, want a *Challenge", err)
	}
	if _, err := m.CompleteLogin(ctx, ch.Token, recovery[0]); err != nil {
		t.Errorf("CompleteLogin with a recovery code: %v", err)
	}
	must(t, s.Check(ctx))
}

// TestBoltStore_UpgradeV3 opens a file written by the version 3 code (commit
// abf1ec3, committed as testdata/bolt-v3 by its genv3.go) and checks that the
// new code migrates it on open: the file is at the current version and passes
// Check, every user reads back as the old code returned it, the counts agree,
// every old session still validates and has as AuthenticatedAt the last proof
// it is known to have had (its login, or a later step-up), the second factor
// still guards its user's login, and the audit log is kept.
func TestBoltStore_UpgradeV3(t *testing.T) {
	path, f := copyBoltFixture(t, 3)
	s, err := users.OpenBoltStore(path, nil)
	must(t, err)
	defer func() {
		must(t, s.Close())
		if v := boltVersion(t, path); v != boltSchemaVersion {
			t.Errorf("version = %d after the upgrade, want %d", v, boltSchemaVersion)
		}
		boltCheckFile(t, path)
	}()
	ctx := t.Context()
	must(t, s.Check(ctx))
	m, err := users.New(s, &users.Options{
		BcryptCost: 4, InsecureLowBcryptCostForTests: true, MaxFailedLogins: 5,
		Roles:   []users.Role{users.RoleAdmin, users.RoleUser, users.RoleViewer},
		Now:     func() time.Time { return f.Now.Add(time.Minute) },
		MFAKeys: []users.MFAKey{{ID: "k1", Key: bytes.Repeat([]byte{7}, 32)}},
	})
	must(t, err)
	boltWantUsers(t, m, f.Users)
	if n, err := m.Count(ctx, users.Filter{}); err != nil || n != f.Counts["all"] {
		t.Errorf("Count() = %d, %v; want %d", n, err, f.Counts["all"])
	}
	if es, err := s.ListAudit(ctx, users.AuditQuery{Limit: 1000}); err != nil || len(es) == 0 {
		t.Errorf("audit log after the upgrade: %d entries, %v; want the old entries", len(es), err)
	}
	if len(f.Authenticated) != len(f.Sessions) {
		t.Fatalf("the fixture has %d sessions and %d AuthenticatedAt", len(f.Sessions), len(f.Authenticated))
	}
	steppedUp := 0
	for token, email := range f.Sessions {
		sess, err := m.ValidateToken(ctx, token)
		if err != nil || sess.User.Email != email {
			t.Errorf("ValidateToken(session of %s) = %v, %v", email, sess, err)
			continue
		}
		want := f.Authenticated[token]
		if !sess.AuthenticatedAt.Equal(want) {
			t.Errorf("session %s of %s: AuthenticatedAt %v, want %v (CreatedAt %v, SecondFactorAt %v)",
				sess.ID, email, sess.AuthenticatedAt, want, sess.CreatedAt, sess.SecondFactorAt)
		}
		if sess.SecondFactorAt.After(sess.CreatedAt) {
			steppedUp++
		}
	}
	if steppedUp != 1 {
		t.Errorf("%d sessions stepped up after login, want the fixture's 1", steppedUp)
	}
	if _, err := m.Login(ctx, f.MFAUser, f.Password); !errors.Is(err, users.ErrSecondFactorRequired) {
		t.Errorf("Login(%s) of the user with TOTP after the upgrade: %v, want ErrSecondFactorRequired", f.MFAUser, err)
	}
	sess, err := m.Login(ctx, "alice@example.com", f.Password)
	must(t, err)
	if !sess.AuthenticatedAt.Equal(f.Now.Add(time.Minute)) {
		t.Errorf("a new session's AuthenticatedAt = %v, want now", sess.AuthenticatedAt)
	}
	must(t, s.Check(ctx))
}

// TestBoltStore_UpgradeResumes stops a migration of the version 1 fixture half-
// way, as a crash would (a few of its batches committed), and checks that the
// half-migrated file already says version 2, so that the old code refuses it,
// and that the next open finishes the job: the result equals a migration done
// in one go.
func TestBoltStore_UpgradeResumes(t *testing.T) {
	ctx := context.Background()
	whole, _ := copyBoltV1(t)
	s, err := users.OpenBoltStore(whole, nil)
	must(t, err)
	want := takeBoltSnapshot(t, s, nil)
	must(t, s.Close())

	path, _ := copyBoltV1(t)
	defer users.SetBoltRebuildBatch(4)()
	db := boltRaw(t, path)
	steps, err := users.BoltRebuildSteps(db, 3)
	must(t, err)
	if steps != 3 {
		t.Fatalf("the rebuild took %d steps, want more than 3 (it should have been stopped)", steps)
	}
	must(t, db.Close())
	if v := boltVersion(t, path); v != boltSchemaVersion {
		t.Fatalf("a half-migrated file has version %d, want %d", v, boltSchemaVersion)
	}
	db = boltRaw(t, path)
	must(t, db.View(func(tx *bbolt.Tx) error {
		if boltBucket(tx, "meta").Get([]byte("rebuild")) == nil {
			t.Error("no rebuild marker in a half-migrated file")
		}
		return nil
	}))
	must(t, db.Close())

	s, err = users.OpenBoltStore(path, nil)
	must(t, err)
	must(t, s.Check(ctx))
	got := takeBoltSnapshot(t, s, nil)
	must(t, s.Close())
	if !reflect.DeepEqual(got, want) {
		t.Error("a resumed migration differs from one done in one go")
	}
	boltCheckFile(t, path)
}
