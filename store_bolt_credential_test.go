package users_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/userkit/users"
)

// TestBoltStore_UpgradeV4 opens a file written by the schema version 4 code
// (testdata/bolt-v4, written by genv4.go there) and checks that the new code
// migrates it on open to the version that keeps credentials: the file is at
// the current version and passes Check; every user reads back as the old code
// returned it; the old sessions validate; the audit log keeps every entry; the
// second factor is kept, so its user's login still waits for it; and the
// credential buckets work: a credential is created, found, listed, refused a
// second time, and deleted with its user.
func TestBoltStore_UpgradeV4(t *testing.T) {
	var extra struct {
		MFA   string `json:"mfa"`
		Audit int    `json:"audit"`
	}
	s, f := openUpgradedBolt(t, 4, &extra)
	if extra.MFA == "" || extra.Audit == 0 {
		t.Fatalf("the fixture names no MFA user or no audit entries: %+v", extra)
	}
	ctx := t.Context()
	m, err := users.New(s, &users.Options{
		BcryptCost: 4, InsecureLowBcryptCostForTests: true, MaxFailedLogins: 5,
		Roles:   []users.Role{users.RoleAdmin, users.RoleUser, users.RoleViewer},
		Now:     func() time.Time { return f.Now.Add(time.Minute) },
		MFAKeys: []users.MFAKey{{ID: "k1", Key: bytes.Repeat([]byte{7}, 32)}},
	})
	must(t, err)

	boltWantUsers(t, m, f.Users)
	for token, email := range f.Sessions {
		sess, err := m.ValidateToken(ctx, token)
		if err != nil || sess.User.Email != email {
			t.Errorf("ValidateToken(session of %s) = %v, %v", email, sess, err)
		}
	}
	if es, err := s.ListAudit(ctx, users.AuditQuery{Limit: 1 << 20}); err != nil || len(es) != extra.Audit {
		t.Errorf("audit log after the upgrade: %d entries, %v; want %d", len(es), err, extra.Audit)
	}
	mfaUser, err := s.GetUserByEmail(ctx, extra.MFA)
	must(t, err)
	if r, err := s.GetMFA(ctx, mfaUser.ID); err != nil || r.TOTP == nil || !r.TOTP.Confirmed {
		t.Errorf("GetMFA(%s) after the upgrade = %+v, %v; want a confirmed TOTP factor", extra.MFA, r, err)
	}
	var ch *users.Challenge
	if _, err := m.Login(ctx, extra.MFA, f.Password); !errors.As(err, &ch) {
		t.Errorf("Login(%s) after the upgrade: %v, want a *Challenge", extra.MFA, err)
	}

	// The old file had no credentials; the upgraded one keeps them.
	if cs, err := s.ListCredentials(ctx, mfaUser.ID); err != nil || len(cs) != 0 {
		t.Errorf("ListCredentials after the upgrade = %v, %v; want none", cs, err)
	}
	c := &users.CredentialRecord{Kind: users.CredentialPasskey, ID: "\x00credential", UserID: mfaUser.ID,
		Name: "key", CreatedAt: f.Now, Counter: 1, Data: []byte{1, 2, 3}}
	must(t, s.CreateCredential(ctx, c))
	if err := s.CreateCredential(ctx, c); !errors.Is(err, users.ErrConflict) {
		t.Errorf("CreateCredential of a taken (Kind, ID) after the upgrade: %v, want ErrConflict", err)
	}
	if got, err := s.GetCredential(ctx, c.Kind, c.ID); err != nil || got.UserID != c.UserID || !bytes.Equal(got.Data, c.Data) {
		t.Errorf("GetCredential after the upgrade = %+v, %v", got, err)
	}
	must(t, s.Check(ctx))
	if st, err := s.Stats(ctx, f.Now); err != nil || st.Credentials != 1 {
		t.Errorf("Stats after CreateCredential: %+v, %v; want 1 credential", st, err)
	}
	must(t, s.DeleteUser(ctx, mfaUser.ID))
	if _, err := s.GetCredential(ctx, c.Kind, c.ID); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("GetCredential after DeleteUser: %v, want ErrNotFound", err)
	}
	must(t, s.Check(ctx))
}

// TestBoltStore_CredentialRebuild checks that a schema rebuild, which empties
// every index and builds it again from the records, carries the credentials:
// they read back the same, listed by user from the rebuilt index, Check
// passes, and DeleteUser still finds and deletes them.
func TestBoltStore_CredentialRebuild(t *testing.T) {
	s, path := mustOpenBolt(t, nil)
	ctx := t.Context()
	var want [][]*users.CredentialRecord
	for i := range 3 {
		u := boltUser(i)
		must(t, s.CreateUser(ctx, u))
		var cs []*users.CredentialRecord
		for j := range i + 1 {
			c := &users.CredentialRecord{Kind: users.CredentialPasskey, ID: string([]byte{0, byte(i), byte(j)}), UserID: u.ID,
				Name: "key", CreatedAt: time.Unix(int64(j), 0).UTC(), Counter: int64(j), Data: []byte{byte(i), byte(j)}}
			must(t, s.CreateCredential(ctx, c))
			cs = append(cs, c)
		}
		want = append(want, cs)
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
	defer s.Close()
	must(t, s.Check(ctx))
	for i, cs := range want {
		got, err := s.ListCredentials(ctx, boltUser(i).ID)
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(cs)
		if err != nil || string(g) != string(w) {
			t.Errorf("ListCredentials(user %d) after the rebuild = %s, %v; want %s", i, g, err, w)
		}
	}
	must(t, s.DeleteUser(ctx, boltUser(2).ID))
	for _, c := range want[2] {
		if _, err := s.GetCredential(ctx, c.Kind, c.ID); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("GetCredential after DeleteUser: %v, want ErrNotFound", err)
		}
	}
	must(t, s.Check(ctx))
}

// TestBoltStore_CheckCredentials damages the credential buckets each way
// Check must notice: a credential missing from the by-user index, an index
// entry pointing at no credential, one naming another user, and a credential
// of a missing user.
func TestBoltStore_CheckCredentials(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(creds, byUser *bbolt.Bucket, key []byte, userID string) error
		want   string
	}{
		{"NotIndexed", func(creds, byUser *bbolt.Bucket, key []byte, userID string) error {
			return byUser.Delete(credUserKey(userID, key))
		}, "not in the by-user index"},
		{"IndexPointsAtNothing", func(creds, byUser *bbolt.Bucket, key []byte, userID string) error {
			return byUser.Put(credUserKey(userID, append(slices.Clone(key), 'x')), []byte{1})
		}, "points at a missing credential"},
		{"IndexNamesAnotherUser", func(creds, byUser *bbolt.Bucket, key []byte, userID string) error {
			return byUser.Put(credUserKey("someone-else", key), []byte{1})
		}, "points at credential"},
		{"UserMissing", func(creds, byUser *bbolt.Bucket, key []byte, userID string) error {
			// The record starts with its format byte and then the user ID
			// (a length byte for IDs this short, and the bytes).
			v := creds.Get(key)
			ghost := append([]byte{v[0], 5}, "ghost"...)
			if err := creds.Put(key, append(ghost, v[2+len(userID):]...)); err != nil {
				return err
			}
			if err := byUser.Delete(credUserKey(userID, key)); err != nil {
				return err
			}
			return byUser.Put(credUserKey("ghost", key), []byte{1})
		}, `user "ghost" is missing`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, path := mustOpenBolt(t, nil)
			u := boltUser(1)
			must(t, s.CreateUser(t.Context(), u))
			c := &users.CredentialRecord{Kind: users.CredentialPasskey, ID: "id", UserID: u.ID, CreatedAt: time.Unix(1, 0)}
			must(t, s.CreateCredential(t.Context(), c))
			must(t, s.Check(t.Context()))
			must(t, s.Close())

			db := boltRaw(t, path)
			key := append([]byte{0, byte(len(c.Kind))}, append([]byte(c.Kind), c.ID...)...)
			must(t, db.Update(func(tx *bbolt.Tx) error {
				return tc.damage(boltBucket(tx, "credentials"), boltBucket(tx, "credentials.user"), key, u.ID)
			}))
			must(t, db.Close())

			s, err := users.OpenBoltStore(path, nil)
			must(t, err)
			err = s.Check(t.Context())
			if !errors.Is(err, users.ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Errorf("Check after the damage = %v, want ErrCorrupt saying %q", err, tc.want)
			}
			// Undo it, so that the cleanup's check of the file passes.
			must(t, s.DeleteUser(t.Context(), u.ID))
			must(t, s.Close())
			db = boltRaw(t, path)
			must(t, db.Update(func(tx *bbolt.Tx) error {
				for _, name := range []string{"credentials", "credentials.user"} {
					b := boltBucket(tx, name)
					keys := [][]byte{}
					_ = b.ForEach(func(k, _ []byte) error { keys = append(keys, slices.Clone(k)); return nil })
					for _, k := range keys {
						if err := b.Delete(k); err != nil {
							return err
						}
					}
				}
				return nil
			}))
			must(t, db.Close())
		})
	}
}

// credUserKey is the by-user index key of the credential under key.
func credUserKey(userID string, key []byte) []byte {
	return append(append([]byte{byte(len(userID) >> 8), byte(len(userID))}, userID...), key...)
}
