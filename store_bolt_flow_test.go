package users_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/userkit/users"
)

// TestBoltStore_UpgradeV6 opens a file written by the schema version 6 code
// (testdata/bolt-v6, written by genv6.go there) and checks that the new code
// migrates it on open to the version that keeps provider flows: the file is
// at the current version and passes Check; every user reads back as the old
// code returned it, the external ID too; the old sessions validate; the
// audit log keeps every entry; the credentials read back exactly; and the
// flow buckets work: a flow is created, consumed once, and swept by
// DeleteExpired.
func TestBoltStore_UpgradeV6(t *testing.T) {
	var extra struct {
		Audit       int                       `json:"audit"`
		External    string                    `json:"external"`
		Credentials []*users.CredentialRecord `json:"credentials"`
	}
	s, f := openUpgradedBolt(t, 6, &extra)
	if extra.Audit == 0 || extra.External == "" || len(extra.Credentials) != 2 {
		t.Fatalf("the fixture has no audit entries, no external ID or not two credentials: %+v", extra)
	}
	ctx := t.Context()
	m, err := users.New(s, &users.Options{
		BcryptCost: 4, InsecureLowBcryptCostForTests: true, MaxFailedLogins: 5,
		Roles:   []users.Role{users.RoleAdmin, users.RoleUser, users.RoleViewer},
		Now:     func() time.Time { return f.Now.Add(time.Minute) },
		MFAKeys: []users.MFAKey{{ID: "k1", Key: bytes.Repeat([]byte{7}, 32)}},
	})
	must(t, err)
	for _, want := range f.Users {
		got, err := m.Get(ctx, want.ID)
		must(t, err)
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("user after the upgrade:\n got %s\nwant %s", g, w)
		}
	}
	if u, err := m.GetByExternalID(ctx, extra.External); err != nil || u.ExternalID != extra.External {
		t.Errorf("GetByExternalID(%q) after the upgrade = %+v, %v", extra.External, u, err)
	}
	for token, email := range f.Sessions {
		if sess, err := m.ValidateToken(ctx, token); err != nil || sess.User.Email != email {
			t.Errorf("ValidateToken(session of %s) = %v, %v", email, sess, err)
		}
	}
	if es, err := s.ListAudit(ctx, users.AuditQuery{Limit: 1 << 20}); err != nil || len(es) != extra.Audit {
		t.Errorf("audit log after the upgrade: %d entries, %v; want %d", len(es), err, extra.Audit)
	}
	for _, want := range extra.Credentials {
		got, err := s.GetCredential(ctx, want.Kind, want.ID)
		if err != nil || got.UserID != want.UserID || got.Name != want.Name || got.Counter != want.Counter ||
			!got.CreatedAt.Equal(want.CreatedAt) || !got.LastUsedAt.Equal(want.LastUsedAt) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("credential %s %q after the upgrade = %+v, %v; want %+v", want.Kind, want.ID, got, err, want)
		}
	}

	// The old file had no flows; the upgraded one keeps them.
	fl := &users.FlowRecord{Hash: bytes.Repeat([]byte{9}, 32), Data: []byte("{}"), CreatedAt: f.Now, ExpiresAt: f.Now.Add(time.Minute)}
	must(t, s.CreateFlow(ctx, fl))
	if got, err := s.ConsumeFlow(ctx, fl.Hash); err != nil || !bytes.Equal(got.Data, fl.Data) || !got.ExpiresAt.Equal(fl.ExpiresAt) {
		t.Errorf("ConsumeFlow after the upgrade = %+v, %v", got, err)
	}
	if _, err := s.ConsumeFlow(ctx, fl.Hash); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("second ConsumeFlow: %v, want ErrNotFound", err)
	}
	must(t, s.CreateFlow(ctx, fl))
	must(t, s.Check(ctx))
	before, err := s.DeleteExpired(ctx, f.Now)
	must(t, err)
	after, err := s.DeleteExpired(ctx, fl.ExpiresAt)
	must(t, err)
	if after != 1 {
		t.Errorf("DeleteExpired at the flow's expiry deleted %d (and %d before), want the flow", after, before)
	}
	must(t, s.Check(ctx))
}
