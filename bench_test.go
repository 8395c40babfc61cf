package users_test

// Benchmarks of the Manager, each beside the baseline it is compared with, so one
// run gives the ratio the README reports:
//
//	go test -run '^$' -bench 'Login|BcryptCompare|ValidateToken|RawBoltGet' -benchtime 2s .

import (
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// benchCost is the bcrypt cost of the login pair: the library's minimum real cost,
// so a run stays short; the ratio does not depend on it.
const benchCost = 10

func benchManager(b *testing.B, s users.Store) *users.Manager {
	b.Helper()
	m, err := users.New(s, &users.Options{BcryptCost: benchCost})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Create(b.Context(), users.NewUser{Email: "bench@example.com", Password: storetest.Password}); err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkLogin is a whole successful login: lookup, one bcrypt comparison at
// cost 10, the throttle check, LastLoginAt and a new session. Compare with
// BenchmarkBcryptCompare.
func BenchmarkLogin(b *testing.B) {
	for _, st := range benchStores(b) {
		b.Run(st.name, func(b *testing.B) {
			m := benchManager(b, st.store)
			ctx := b.Context()
			b.ResetTimer()
			for b.Loop() {
				if _, err := m.Login(ctx, "bench@example.com", storetest.Password); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBcryptCompare is the baseline of BenchmarkLogin: one raw bcrypt
// comparison at the same cost.
func BenchmarkBcryptCompare(b *testing.B) {
	h, err := bcrypt.GenerateFromPassword([]byte(storetest.Password), benchCost)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := bcrypt.CompareHashAndPassword(h, []byte(storetest.Password)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateToken is the hot path of every authenticated request. On the
// bbolt store compare it with BenchmarkRawBoltGet.
func BenchmarkValidateToken(b *testing.B) {
	for _, st := range benchStores(b) {
		b.Run(st.name, func(b *testing.B) {
			m := benchManager(b, st.store)
			ctx := b.Context()
			s, err := m.Login(ctx, "bench@example.com", storetest.Password)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := m.ValidateToken(ctx, s.Token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRawBoltGet is the baseline of BenchmarkValidateToken/bolt: two reads
// (a session and its user, about the size of ours) in one bbolt read transaction.
func BenchmarkRawBoltGet(b *testing.B) {
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	val := make([]byte, 300)
	err = db.Update(func(tx *bbolt.Tx) error {
		bk, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		if err := bk.Put([]byte("session-key-0123456789abcdef0123"), val); err != nil {
			return err
		}
		return bk.Put([]byte("user-key-01ARZ3NDEKTSV4RRFFQ69G5FAV"), val)
	})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		err := db.View(func(tx *bbolt.Tx) error {
			bk := tx.Bucket([]byte("b"))
			s := append([]byte(nil), bk.Get([]byte("session-key-0123456789abcdef0123"))...)
			u := append([]byte(nil), bk.Get([]byte("user-key-01ARZ3NDEKTSV4RRFFQ69G5FAV"))...)
			_, _ = s, u
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

type benchStore struct {
	name  string
	store users.Store
}

func benchStores(b *testing.B) []benchStore {
	b.Helper()
	bs, err := users.OpenBoltStore(filepath.Join(b.TempDir(), "users.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bs.Close() })
	return []benchStore{{"memory", users.NewMemoryStore()}, {"bolt", bs}}
}
