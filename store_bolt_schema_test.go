package users_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
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

// TestBoltStore_UpgradeResumes stops a migration of the version 1 fixture, and
// of the version 9 one (whose buckets move out of userkit.users), half-way, as
// a crash would (a few of its batches committed), and checks that the
// half-migrated file already says the current version, so that the old code
// refuses it, and that the next open finishes the job: the result equals a
// migration done in one go, through the Store API and in every bucket of the
// file but the search index, which is built in other chunks (Check holds it to
// the records).
func TestBoltStore_UpgradeResumes(t *testing.T) {
	for _, from := range []uint64{1, 9} {
		t.Run(fmt.Sprintf("v%d", from), func(t *testing.T) { testBoltUpgradeResumes(t, from) })
	}
}

func testBoltUpgradeResumes(t *testing.T, from uint64) {
	ctx := context.Background()
	whole, _ := copyBoltFixture(t, from)
	s, err := users.OpenBoltStore(whole, nil)
	must(t, err)
	want := takeBoltSnapshot(t, s, nil)
	must(t, s.Close())

	path, _ := copyBoltFixture(t, from)
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
	if n := len(boltNestedDump(t, path)); n < 2 {
		t.Errorf("%d buckets under userkit.users half-way, want meta and records still to move", n)
	}

	s, err = users.OpenBoltStore(path, nil)
	must(t, err)
	must(t, s.Check(ctx))
	got := takeBoltSnapshot(t, s, nil)
	must(t, s.Close())
	if !reflect.DeepEqual(got, want) {
		t.Error("a resumed migration differs from one done in one go")
	}
	gotFile, wantFile := boltDumpFile(t, path), boltDumpFile(t, whole)
	delete(gotFile, "userkit.users.search")
	delete(wantFile, "userkit.users.search")
	if !reflect.DeepEqual(gotFile, wantFile) {
		for name := range wantFile {
			if !reflect.DeepEqual(gotFile[name], wantFile[name]) {
				t.Errorf("bucket %s after a resumed migration differs from one done in one go", name)
			}
		}
		t.Errorf("top-level buckets after a resumed migration: %d, want %d", len(gotFile), len(wantFile))
	}
	boltCheckFile(t, path)
}

// boltDump adds every key and value of b to into, under prefix: the keys of a
// nested bucket under its name and "/", and the nested bucket itself as its
// name and "/", with an empty value.
func boltDump(b *bbolt.Bucket, prefix string, into map[string]string) {
	_ = b.ForEachBucket(func(k []byte) error {
		into[prefix+string(k)+"/"] = ""
		boltDump(b.Bucket(k), prefix+string(k)+"/", into)
		return nil
	})
	_ = b.ForEach(func(k, v []byte) error {
		if v != nil {
			into[prefix+string(k)] = string(v)
		}
		return nil
	})
}

// boltDumpFile returns, by top-level bucket, boltDump of each bucket of the
// file at path.
func boltDumpFile(tb testing.TB, path string) map[string]map[string]string {
	tb.Helper()
	db := boltRaw(tb, path)
	defer db.Close()
	dump := map[string]map[string]string{}
	must(tb, db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			dump[string(name)] = map[string]string{}
			boltDump(b, "", dump[string(name)])
			return nil
		})
	}))
	return dump
}

// boltNestedDump returns, by name, boltDump of each bucket nested under
// userkit.users in the file at path: the layout of schema version 9 and older.
func boltNestedDump(tb testing.TB, path string) map[string]map[string]string {
	tb.Helper()
	root := boltDumpFile(tb, path)["userkit.users"]
	dump := map[string]map[string]string{}
	for k, v := range root {
		name, rest, _ := strings.Cut(k, "/")
		if dump[name] == nil {
			dump[name] = map[string]string{}
		}
		if rest != "" {
			dump[name][rest] = v
		}
	}
	return dump
}

// boltTopName is the top-level name of the bucket that schema version 9 named
// name under userkit.users.
func boltTopName(name string) string {
	if name == "users" {
		return "userkit.users.records"
	}
	return "userkit." + name
}

// TestBoltStore_UpgradeV9 opens a file written by the schema version 9 code
// (testdata/bolt-v9, written by genv9.go there), whose buckets are all nested
// under userkit.users, and checks that the upgrade moves every one of them to
// the top level of the file, as "userkit." and its old name (the users'
// records as userkit.users.records), with every record and index entry as it
// was; that userkit.users keeps its meta bucket alone, at version 10 with no
// rebuild left; that the file passes Check; and that the old sessions
// validate and the old flow and ceremony are consumed once, read from their
// new buckets.
func TestBoltStore_UpgradeV9(t *testing.T) {
	path, f := copyBoltFixture(t, 9)
	old := boltNestedDump(t, path)
	for _, name := range []string{"meta", "users", "sessions", "tokens", "logins", "audit", "mfa", "challenges", "credentials", "flows", "ceremonies"} {
		if len(old[name]) == 0 {
			t.Fatalf("the fixture's bucket %s is empty or missing: it should hold records to carry over", name)
		}
	}
	s, err := users.OpenBoltStore(path, nil)
	must(t, err)
	ctx := t.Context()
	must(t, s.Check(ctx))
	must(t, s.Close())

	got := boltDumpFile(t, path)
	for name, want := range old {
		if name == "meta" {
			continue
		}
		top := boltTopName(name)
		if name == "users.search" {
			// The search index is built again, in other chunks: Check
			// holds it to the records, and the searches below use it.
			if len(got[top]) == 0 {
				t.Errorf("bucket %s is empty after the upgrade, want the search index", top)
			}
			continue
		}
		if !reflect.DeepEqual(got[top], want) {
			t.Errorf("bucket %s after the upgrade differs from %s under userkit.users before it (%d entries, want %d)",
				top, name, len(got[top]), len(want))
		}
	}
	if len(got) != len(old) {
		t.Errorf("%d top-level buckets after the upgrade, want %d: userkit.users and one for each of its %d but meta", len(got), len(old), len(old)-1)
	}
	if left := slices.Sorted(maps.Keys(boltNestedDump(t, path))); !slices.Equal(left, []string{"meta"}) {
		t.Errorf("buckets under userkit.users after the upgrade: %q, want meta alone", left)
	}
	meta := map[string]string{}
	for k, v := range got["userkit.users"] {
		if k, ok := strings.CutPrefix(k, "meta/"); ok && k != "" {
			meta[k] = v
		}
	}
	if want := map[string]string{"version": string(binary.BigEndian.AppendUint64(nil, boltSchemaVersion))}; !maps.Equal(meta, want) {
		t.Errorf("userkit.users/meta after the upgrade = %q, want %q: the version and no rebuild", meta, want)
	}

	s, err = users.OpenBoltStore(path, nil)
	must(t, err)
	defer func() { must(t, s.Close()) }()
	m, err := users.New(s, &users.Options{
		BcryptCost: 4, InsecureLowBcryptCostForTests: true, MaxFailedLogins: 5,
		Roles: []users.Role{users.RoleAdmin, users.RoleUser, users.RoleViewer},
		Now:   func() time.Time { return f.Now.Add(time.Minute) },
	})
	must(t, err)
	boltWantUsers(t, m, f.Users)
	for token, email := range f.Sessions {
		if sess, err := m.ValidateToken(ctx, token); err != nil || sess.User.Email != email {
			t.Errorf("ValidateToken(session of %s) = %v, %v", email, sess, err)
		}
	}
	if p, err := m.Find(ctx, users.Filter{Search: "müller"}); err != nil || len(p.Users) != 1 || p.Users[0].Email != "frank@example.com" {
		t.Errorf("Find(müller) after the upgrade = %+v, %v; want frank", p, err)
	}
	if n, err := m.Count(ctx, users.Filter{}); err != nil || n != f.Counts["all"] {
		t.Errorf("Count() = %d, %v; want %d", n, err, f.Counts["all"])
	}
	for _, consume := range []func() error{
		func() error { _, err := s.ConsumeFlow(ctx, bytes.Repeat([]byte{0xf1}, 32)); return err },
		func() error {
			_, err := s.ConsumeCeremony(ctx, bytes.Repeat([]byte{0xc3}, 32), users.CeremonyPasskeyLogin)
			return err
		},
	} {
		if err := consume(); err != nil {
			t.Errorf("consuming the fixture's open flow or ceremony after the upgrade: %v", err)
		}
		if err := consume(); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("consuming it again: %v, want ErrNotFound", err)
		}
	}
}

// TestBoltStore_CurrentUnchanged checks that opening a file already at this
// schema version changes nothing in it: not a byte of the file.
func TestBoltStore_CurrentUnchanged(t *testing.T) {
	path, _ := copyBoltFixture(t, 9)
	s, err := users.OpenBoltStore(path, nil)
	must(t, err)
	must(t, s.Close())
	before, err := os.ReadFile(path)
	must(t, err)
	s, err = users.OpenBoltStore(path, nil)
	must(t, err)
	must(t, s.Check(t.Context()))
	must(t, s.Close())
	after, err := os.ReadFile(path)
	must(t, err)
	if !bytes.Equal(before, after) {
		t.Error("opening a file at the current schema version changed it")
	}
}
