package users_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/userkit/users"
)

// TestBoltStore_UpgradeV5 opens a file written by the schema version 5 code
// (testdata/bolt-v5, written by genv5.go there) and checks that the new code
// migrates it on open to the version that keeps external IDs: the file is at
// the current version and passes Check; every user reads back as the old code
// returned it, without an external ID; the old sessions validate and the
// credential is kept; and the new index works: a user created with an external
// ID is found by it, a second one is refused, and deleting the user frees it.
func TestBoltStore_UpgradeV5(t *testing.T) {
	var extra struct {
		Passkey string `json:"passkey"`
		Audit   int    `json:"audit"`
	}
	s, f := openUpgradedBolt(t, 5, &extra)
	if extra.Passkey == "" || extra.Audit == 0 || len(f.Users) == 0 {
		t.Fatalf("the fixture names no passkey user, audit entries or users: %+v", extra)
	}
	ctx := t.Context()
	now := f.Now.Add(time.Minute)
	m, err := users.New(s, &users.Options{
		BcryptCost: 4, InsecureLowBcryptCostForTests: true,
		Now: func() time.Time { return now },
	})
	must(t, err)
	for _, want := range f.Users {
		got, err := m.Get(ctx, want.ID)
		must(t, err)
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) || got.ExternalID != "" {
			t.Errorf("user after the upgrade:\n got %s\nwant %s", g, w)
		}
	}
	for token, email := range f.Sessions {
		if sess, err := m.ValidateToken(ctx, token); err != nil || sess.User.Email != email {
			t.Errorf("ValidateToken(session of %s) = %v, %v", email, sess, err)
		}
	}
	if es, err := s.ListAudit(ctx, users.AuditQuery{Limit: 1 << 20}); err != nil || len(es) != extra.Audit {
		t.Errorf("audit log after the upgrade: %d entries, %v; want %d", len(es), err, extra.Audit)
	}
	owner, err := s.GetUserByEmail(ctx, extra.Passkey)
	must(t, err)
	if cs, err := s.ListCredentials(ctx, owner.ID); err != nil || len(cs) != 1 || cs[0].Name != "laptop" {
		t.Errorf("ListCredentials(%s) after the upgrade = %+v, %v; want the laptop passkey", extra.Passkey, cs, err)
	}
	if _, err := m.GetByExternalID(ctx, "legacy-1"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("GetByExternalID on the upgraded file: %v, want ErrNotFound", err)
	}

	u, err := m.Create(ctx, users.NewUser{Email: "moved@example.com", ExternalID: "legacy-1", NoPassword: true})
	must(t, err)
	if got, err := m.GetByExternalID(ctx, "legacy-1"); err != nil || got.ID != u.ID {
		t.Errorf("GetByExternalID after Create = %+v, %v; want %s", got, err, u.ID)
	}
	if _, err := m.Create(ctx, users.NewUser{Email: "other@example.com", ExternalID: "legacy-1", NoPassword: true}); !errors.Is(err, users.ErrDuplicateExternalID) {
		t.Errorf("Create with a taken external ID on the upgraded file: %v, want ErrDuplicateExternalID", err)
	}
	must(t, s.Check(ctx))
	must(t, m.Remove(ctx, u.ID))
	if _, err := m.GetByExternalID(ctx, "legacy-1"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("GetByExternalID after Remove: %v, want ErrNotFound", err)
	}
	must(t, s.Check(ctx))
}

// openUpgradedBolt opens a copy of the fixture of schema version v
// (testdata/bolt-v<v>), which migrates it, and checks it: the store passes
// Check now, and when the test ends the file is closed, at the current
// version, and passes bbolt's own check. extra, if not nil, receives the
// fixture's own fields, beyond boltFixture's.
func openUpgradedBolt(t *testing.T, v uint64, extra any) (*users.BoltStore, *boltFixture) {
	t.Helper()
	path, f := copyBoltFixture(t, v)
	if extra != nil {
		j, err := os.ReadFile(fmt.Sprintf("testdata/bolt-v%d/fixture.json", v))
		must(t, err)
		must(t, json.Unmarshal(j, extra))
	}
	s, err := users.OpenBoltStore(path, nil)
	must(t, err)
	t.Cleanup(func() {
		must(t, s.Close())
		if got := boltVersion(t, path); got != boltSchemaVersion {
			t.Errorf("version = %d after the upgrade, want %d", got, boltSchemaVersion)
		}
		boltCheckFile(t, path)
	})
	must(t, s.Check(t.Context()))
	return s, f
}
