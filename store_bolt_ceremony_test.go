package users_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/userkit/users"
)

// TestBoltStore_UpgradeV8 opens a file written by the schema version 8 code
// (testdata/bolt-v8, written by genv8.go there) and checks that the new code
// migrates it on open to the version that keeps ceremonies: the file is at the
// current version and passes Check (openUpgradedBolt); every user reads back
// as the old code returned it; the old sessions validate, and the remembered
// one keeps its own idle timeout; the credentials read back exactly; and the
// ceremony buckets work: a ceremony is stored, refused a second time,
// consumed once, and reclaimed by DeleteExpired.
func TestBoltStore_UpgradeV8(t *testing.T) {
	var extra struct {
		Credentials []*users.CredentialRecord `json:"credentials"`
		Remembered  string                    `json:"remembered"`
	}
	s, f := openUpgradedBolt(t, 8, &extra)
	if len(extra.Credentials) != 2 || f.Sessions[extra.Remembered] == "" {
		t.Fatalf("the fixture has %d credentials, want 2, and a remembered session among its sessions", len(extra.Credentials))
	}
	ctx := t.Context()
	m, err := users.New(s, &users.Options{
		BcryptCost: 4, InsecureLowBcryptCostForTests: true, MaxFailedLogins: 5,
		Roles: []users.Role{users.RoleAdmin, users.RoleUser, users.RoleViewer},
		Now:   func() time.Time { return f.Now.Add(time.Minute) },
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
	for token, email := range f.Sessions {
		if sess, err := m.ValidateToken(ctx, token); err != nil || sess.User.Email != email {
			t.Errorf("ValidateToken(session of %s) = %v, %v", email, sess, err)
		}
	}
	// Two idle hours on, with an ordinary idle timeout of one hour: only the
	// remembered session, whose own idle timeout is days, is still live.
	later, err := users.New(s, &users.Options{
		BcryptCost: 4, InsecureLowBcryptCostForTests: true, SessionIdleTimeout: time.Hour,
		Now: func() time.Time { return f.Now.Add(2 * time.Hour) },
	})
	must(t, err)
	for token, email := range f.Sessions {
		_, err := later.ValidateToken(ctx, token)
		if token == extra.Remembered && err != nil {
			t.Errorf("ValidateToken(remembered session of %s) two idle hours on = %v: its own idle timeout was lost", email, err)
		} else if token != extra.Remembered && !errors.Is(err, users.ErrInvalidToken) {
			t.Errorf("ValidateToken(session of %s) two idle hours on = %v, want ErrInvalidToken", email, err)
		}
	}
	for _, want := range extra.Credentials {
		got, err := s.GetCredential(ctx, want.Kind, want.ID)
		if err != nil || !reflect.DeepEqual(normCreds([]*users.CredentialRecord{got}), normCreds([]*users.CredentialRecord{want})) {
			t.Errorf("credential after the upgrade = %+v, %v; want %+v", got, err, want)
		}
	}

	// The old file had no ceremonies; the upgraded one keeps them.
	c := &users.CeremonyRecord{Hash: make([]byte, 32), Kind: users.CeremonyPasskeyLogin,
		CreatedAt: f.Now, ExpiresAt: f.Now.Add(5 * time.Minute)}
	must(t, s.CreateCeremony(ctx, c))
	if err := s.CreateCeremony(ctx, c); !errors.Is(err, users.ErrConflict) {
		t.Errorf("CreateCeremony of a taken hash after the upgrade: %v, want ErrConflict", err)
	}
	must(t, s.Check(ctx))
	if got, err := s.ConsumeCeremony(ctx, c.Hash, c.Kind); err != nil || got.Kind != c.Kind || !got.ExpiresAt.Equal(c.ExpiresAt) {
		t.Errorf("ConsumeCeremony after the upgrade = %+v, %v", got, err)
	}
	c.Hash[0] = 1
	must(t, s.CreateCeremony(ctx, c))
	if n, err := s.DeleteExpired(ctx, c.ExpiresAt); err != nil || n < 1 {
		t.Errorf("DeleteExpired at the ceremony's expiry = %d, %v; want it deleted", n, err)
	}
	if _, err := s.ConsumeCeremony(ctx, c.Hash, c.Kind); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("ConsumeCeremony after DeleteExpired: %v, want ErrNotFound", err)
	}
	must(t, s.Check(ctx))
}

// normCreds returns the credentials with their times in UTC, for comparing
// records that went through JSON.
func normCreds(cs []*users.CredentialRecord) []users.CredentialRecord {
	out := make([]users.CredentialRecord, len(cs))
	for i, c := range cs {
		out[i] = *c.Clone()
		out[i].CreatedAt, out[i].LastUsedAt = c.CreatedAt.UTC(), c.LastUsedAt.UTC()
		if len(out[i].Data) == 0 {
			out[i].Data = nil
		}
	}
	return out
}

// TestBoltStore_CeremonyRebuild checks that a schema rebuild carries the
// ceremonies: they are kept, indexed again for DeleteExpired, and Check
// passes.
func TestBoltStore_CeremonyRebuild(t *testing.T) {
	s, path := mustOpenBolt(t, nil)
	ctx := t.Context()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var cs []*users.CeremonyRecord
	for i := range 3 {
		c := &users.CeremonyRecord{Hash: []byte{byte(i), 1, 2}, Kind: users.CeremonyPasskeyRegistration,
			UserID: "u" + string(rune('a'+i)), CreatedAt: base, ExpiresAt: base.Add(time.Duration(i) * time.Minute)}
		must(t, s.CreateCeremony(ctx, c))
		cs = append(cs, c)
	}
	must(t, s.Close())

	// Mark the file one version older: the next open rebuilds it, in batches
	// of one record so that every phase spans transactions.
	db := boltRaw(t, path)
	must(t, db.Update(func(tx *bbolt.Tx) error {
		return boltBucket(tx, "meta").Put([]byte("version"), binary.BigEndian.AppendUint64(nil, boltSchemaVersion-1))
	}))
	must(t, db.Close())
	defer users.SetBoltRebuildBatch(1)()
	s, err := users.OpenBoltStore(path, nil)
	must(t, err)
	defer func() { must(t, s.Close()) }()
	must(t, s.Check(ctx))
	if n, err := s.DeleteExpired(ctx, base); err != nil || n != 1 {
		t.Errorf("DeleteExpired after the rebuild = %d, %v; want 1 (the rebuilt expiry index)", n, err)
	}
	for _, c := range cs[1:] {
		if got, err := s.ConsumeCeremony(ctx, c.Hash, c.Kind); err != nil || got.UserID != c.UserID || !got.ExpiresAt.Equal(c.ExpiresAt) {
			t.Errorf("ConsumeCeremony after the rebuild = %+v, %v; want %+v", got, err, c)
		}
	}
	must(t, s.Check(ctx))
}
