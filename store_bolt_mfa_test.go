package users_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// boltMFAFixture writes to s two users' MFA records and challenges covering
// every field (nil and empty lists included), and returns what it wrote.
func boltMFAFixture(t *testing.T, s users.Store) (mfa []*users.MFARecord, chals []*users.ChallengeRecord) {
	t.Helper()
	ctx := t.Context()
	u1, u2 := boltUser(1), boltUser(2)
	must(t, s.CreateUser(ctx, u1))
	must(t, s.CreateUser(ctx, u2))
	mfa = []*users.MFARecord{
		{
			UserID: u1.ID,
			TOTP: &users.TOTPFactor{
				Secret: []byte("\x00sealed\xffsecret bytes"), KeyID: "key-2026",
				Confirmed: true, CreatedAt: boltT0, ConfirmedAt: boltT0.Add(time.Minute + 7), LastStep: 59_000_123,
			},
			RecoveryCodes:   [][]byte{boltHash("rc1"), boltHash("rc2"), {}},
			RecoveryCodesAt: boltT0.Add(time.Hour),
		},
		{
			UserID:          u2.ID,
			TOTP:            &users.TOTPFactor{Secret: []byte{1, 2, 3}, KeyID: "k"}, // unconfirmed
			RecoveryCodes:   [][]byte{},                                             // all used
			RecoveryCodesAt: boltT0,
		},
	}
	for _, r := range mfa {
		_, err := s.UpdateMFA(ctx, r.UserID, func(w *users.MFARecord) (bool, error) {
			*w = *r.Clone()
			return false, nil
		})
		must(t, err)
	}
	chals = []*users.ChallengeRecord{
		{Hash: boltHash("c1"), UserID: u1.ID, Methods: []users.AuthMethod{users.MethodPassword},
			Attempts: 2, CreatedAt: boltT0, ExpiresAt: boltT0.Add(5 * time.Minute)},
		{Hash: boltHash("c2"), UserID: u1.ID, Methods: []users.AuthMethod{},
			CreatedAt: boltT0, ExpiresAt: boltT0.Add(4 * time.Minute)},
		{Hash: boltHash("c3"), UserID: u2.ID, CreatedAt: boltT0, ExpiresAt: boltT0.Add(time.Hour)},
	}
	for _, c := range chals {
		must(t, s.CreateChallenge(ctx, c))
	}
	return mfa, chals
}

// checkBoltMFA fails t unless s holds exactly the records given.
func checkBoltMFA(t *testing.T, s users.Store, mfa []*users.MFARecord, chals []*users.ChallengeRecord) {
	t.Helper()
	for _, want := range mfa {
		got, err := s.GetMFA(t.Context(), want.UserID)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("GetMFA(%s) =\n%+v, %v\nwant\n%+v", want.UserID, got, err, want)
		}
	}
	for _, want := range chals {
		got, err := s.GetChallenge(t.Context(), want.Hash)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("GetChallenge(%q) =\n%+v, %v\nwant\n%+v", want.Hash, got, err, want)
		}
	}
}

// TestBoltStore_MFAReopen checks that MFA records and challenges come back from
// the file exactly as written, every field, nil and empty lists told apart.
func TestBoltStore_MFAReopen(t *testing.T) {
	s, path := mustOpenBolt(t, nil)
	mfa, chals := boltMFAFixture(t, s)
	checkBoltMFA(t, s, mfa, chals)
	must(t, s.Close())
	s, err := users.OpenBoltStore(path, nil)
	must(t, err)
	defer s.Close()
	checkBoltMFA(t, s, mfa, chals)
	must(t, s.Check(t.Context()))
}

// TestBoltStore_MFARebuild checks that a schema rebuild, which empties every
// index and builds it again from the records, carries the MFA records and
// challenges: they read back the same, Check passes, and the rebuilt indexes
// work (revoking the user's sessions voids its challenges, DeleteExpired finds
// the expired one).
func TestBoltStore_MFARebuild(t *testing.T) {
	s, path := mustOpenBolt(t, nil)
	mfa, chals := boltMFAFixture(t, s)
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
	ctx := t.Context()
	must(t, s.Check(ctx))
	checkBoltMFA(t, s, mfa, chals)

	must(t, s.DeleteUserSessions(ctx, mfa[0].UserID))
	for _, c := range chals[:2] {
		if _, err := s.GetChallenge(ctx, c.Hash); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("challenge %q after DeleteUserSessions: %v, want ErrNotFound", c.Hash, err)
		}
	}
	if n, err := s.DeleteExpired(ctx, boltT0.Add(2*time.Hour)); n != 1 || err != nil {
		t.Errorf("DeleteExpired = %d, %v; want the one challenge left", n, err)
	}
	must(t, s.Check(ctx))
}

// TestBoltStore_CheckMFA damages the MFA buckets in each way Check must notice
// and checks that it does.
func TestBoltStore_CheckMFA(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(tx *bbolt.Tx) error
	}{
		{"ChallengeWithoutUserIndex", func(tx *bbolt.Tx) error {
			c := boltBucket(tx, "challenges.user").Cursor()
			k, _ := c.First()
			return boltBucket(tx, "challenges.user").Delete(k)
		}},
		{"ChallengeWithoutExpiryIndex", func(tx *bbolt.Tx) error {
			k, _ := boltBucket(tx, "challenges.expiry").Cursor().First()
			return boltBucket(tx, "challenges.expiry").Delete(k)
		}},
		{"IndexWithoutChallenge", func(tx *bbolt.Tx) error {
			return boltBucket(tx, "challenges").Delete(boltHash("c3"))
		}},
		{"UndecodableMFA", func(tx *bbolt.Tx) error {
			return boltBucket(tx, "mfa").Put([]byte(boltUser(1).ID), []byte{1, 9})
		}},
		{"MFAOfMissingUser", func(tx *bbolt.Tx) error {
			b := boltBucket(tx, "mfa")
			return b.Put([]byte("nobody"), b.Get([]byte(boltUser(1).ID)))
		}},
		{"ChallengeOfOldGeneration", func(tx *bbolt.Tx) error {
			// As if the user's sessions were revoked without its challenges.
			b := boltBucket(tx, "challenges")
			c, err := users.DecodeBoltChallenge(boltHash("c3"), b.Get(boltHash("c3")))
			if err != nil {
				return err
			}
			c.UserGeneration--
			return b.Put(c.Hash, users.EncodeBoltChallenge(c))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "users.db")
			s, err := users.OpenBoltStore(path, nil)
			must(t, err)
			boltMFAFixture(t, s)
			must(t, s.Check(t.Context()))
			must(t, s.Close())
			db := boltRaw(t, path)
			must(t, db.Update(tc.damage))
			must(t, db.Close())
			s, err = users.OpenBoltStore(path, nil)
			must(t, err)
			defer s.Close()
			if err := s.Check(t.Context()); !errors.Is(err, users.ErrCorrupt) {
				t.Errorf("Check after the damage = %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestBoltStore_NoTOTPSecretInFile enrols TOTP through the Manager, logs in with
// a code, and scans the bytes of the bbolt file for the secret, in base32 and
// raw, and for the recovery codes: none may be there. The scan is shown to see
// the records by finding the sealed secret and a recovery code's hash.
func TestBoltStore_NoTOTPSecretInFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	s, err := users.OpenBoltStore(path, nil)
	must(t, err)
	secrets, stored := storetest.NewFixture(t, s, storetest.WithMFAKey).MFASecrets(t)
	must(t, s.Close())
	file, err := os.ReadFile(path)
	must(t, err)
	for _, b := range stored {
		if !bytes.Contains(file, b) {
			t.Fatal("the file lacks the sealed secret or a recovery code's hash: the scan proves nothing")
		}
	}
	for name, b := range secrets {
		if bytes.Contains(file, b) {
			t.Errorf("the bbolt file (%d bytes) contains the %s", len(file), name)
		}
	}
}

// BenchmarkBoltStore_SecondFactor measures the store's share of a login's
// second step from 32 goroutines at once, on a real disk: CreateChallenge,
// CountChallengeAttempt, UpdateMFA (accepting a TOTP step) and
// ConsumeChallenge, four write transactions, with group commit (mfa/grouped)
// and with one transaction and fsync per write (mfa/solo). session/grouped,
// one CreateSession per op, is the baseline: the write a login makes in any
// case. Group commit shares the fsyncs of the four writes with the other
// goroutines' writes, so an op of mfa/grouped should cost far less than four of
// session/grouped, and far less than mfa/solo.
//
//	go test -run '^$' -bench BoltStore_SecondFactor -benchtime 1000x .
func BenchmarkBoltStore_SecondFactor(b *testing.B) {
	const writers = 32
	for _, c := range []struct {
		name string
		mfa  bool
		solo bool
	}{{"session/grouped", false, false}, {"mfa/grouped", true, false}, {"mfa/solo", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			db, err := bbolt.Open(filepath.Join(b.TempDir(), "users.db"), 0o600, &bbolt.Options{Timeout: time.Second})
			must(b, err)
			defer db.Close()
			s, err := users.NewBoltStore(db)
			must(b, err)
			defer s.Close()
			users.SetBoltSoloWrites(s, c.solo)
			ctx := context.Background()
			us := make([]*users.UserRecord, writers)
			for w := range us {
				us[w] = boltUser(w)
				must(b, s.CreateUser(ctx, us[w]))
				_, err := s.UpdateMFA(ctx, us[w].ID, func(r *users.MFARecord) (bool, error) {
					r.TOTP = &users.TOTPFactor{Secret: bytes.Repeat([]byte{1}, 48), KeyID: "k", Confirmed: true}
					return false, nil
				})
				must(b, err)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range writers {
				u := us[w]
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if err := secondFactorOp(ctx, s, u, i, c.mfa); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// secondFactorOp is one op of BenchmarkBoltStore_SecondFactor.
func secondFactorOp(ctx context.Context, s users.Store, u *users.UserRecord, i int64, mfa bool) error {
	if !mfa {
		return s.CreateSession(ctx, boltSession(u.ID, fmt.Sprintf("S%09d", i), 0, boltT0.Add(time.Hour)))
	}
	hash := boltHash(fmt.Sprintf("c%09d", i))
	c := &users.ChallengeRecord{Hash: hash, UserID: u.ID, Methods: []users.AuthMethod{users.MethodPassword},
		CreatedAt: boltT0, ExpiresAt: boltT0.Add(5 * time.Minute)}
	if err := s.CreateChallenge(ctx, c); err != nil {
		return err
	}
	if _, err := s.CountChallengeAttempt(ctx, hash, 5); err != nil {
		return err
	}
	if _, err := s.UpdateMFA(ctx, u.ID, func(r *users.MFARecord) (bool, error) {
		r.TOTP.LastStep++
		return false, nil
	}); err != nil {
		return err
	}
	_, err := s.ConsumeChallenge(ctx, hash)
	return err
}
