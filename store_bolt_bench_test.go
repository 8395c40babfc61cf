package users_test

import (
	"flag"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/userkit/users"
)

var boltTmpfs = flag.Bool("bolt.tmpfs", true,
	"put the files of TestBoltStore_Scale and the bolt benchmarks on /dev/shm when it exists, so that building 100k users does not wait for 100k disk syncs")

// boltFastDir returns a directory for a large test file, removed when tb ends:
// on /dev/shm if -bolt.tmpfs (the default) and it exists, else tb.TempDir().
func boltFastDir(tb testing.TB) string {
	tb.Helper()
	if *boltTmpfs {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			if dir, err := os.MkdirTemp("/dev/shm", "userkit-bolt-"); err == nil {
				tb.Cleanup(func() { os.RemoveAll(dir) })
				return dir
			}
		}
	}
	return tb.TempDir()
}

var boltScale = flag.Int("bolt.scale", 0,
	"users TestBoltStore_Scale and BenchmarkBoltStore_GetByEmail create; 0 means 100k, or 10k with -short or -race")

// boltScaleN is how many users TestBoltStore_Scale and the benchmarks create.
func boltScaleN() int {
	switch {
	case *boltScale > 0:
		return *boltScale
	case testing.Short() || boltRace:
		return 10_000
	}
	return 100_000
}

// TestBoltStore_Scale creates 100k users (10k with -short or -race; see
// -bolt.scale), in random ID order,
// and walks ListUsers through all of them with After cursors and back with
// Before cursors, checking that each ID comes exactly once and in order.
func TestBoltStore_Scale(t *testing.T) {
	n := boltScaleN()
	path := filepath.Join(boltFastDir(t), "users.db")
	s, err := users.OpenBoltStore(path, nil)
	must(t, err)
	defer func() {
		must(t, s.Close())
		boltCheckFile(t, path)
	}()
	ctx := t.Context()

	start := time.Now()
	for _, i := range mathrand.Perm(n) {
		must(t, s.CreateUser(ctx, boltUser(i)))
	}
	t.Logf("created %d users in %v (%s)", n, time.Since(start).Round(time.Millisecond), filepath.Dir(path))

	start = time.Now()
	seen := 0
	for after := ""; ; {
		page, err := s.ListUsers(ctx, users.ListQuery{After: after, Limit: 100})
		must(t, err)
		for _, u := range page {
			if want := boltUser(seen).ID; u.ID != want {
				t.Fatalf("user %d walking forward is %s, want %s", seen, u.ID, want)
			}
			seen++
		}
		if len(page) < 100 {
			break
		}
		after = page[len(page)-1].ID
	}
	if seen != n {
		t.Fatalf("walked through %d users forward, want %d", seen, n)
	}
	for before := "\xff"; ; {
		page, err := s.ListUsers(ctx, users.ListQuery{Before: before, Limit: 100})
		must(t, err)
		for i := len(page) - 1; i >= 0; i-- {
			seen--
			if want := boltUser(seen).ID; page[i].ID != want {
				t.Fatalf("user %d walking back is %s, want %s", seen, page[i].ID, want)
			}
		}
		if len(page) < 100 {
			break
		}
		before = page[0].ID
	}
	if seen != 0 {
		t.Fatalf("walked back through %d users, want %d", n-seen, n)
	}
	t.Logf("walked through %d users both ways, 100 a page, in %v", n, time.Since(start).Round(time.Millisecond))

	if got, err := s.CountUsers(ctx, users.Match{}); got != n || err != nil {
		t.Fatalf("CountUsers = %d, %v; want %d", got, err, n)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		u, err := s.GetUserByEmail(ctx, boltUser(i).Email)
		if err != nil || u.ID != boltUser(i).ID {
			t.Fatalf("GetUserByEmail(user %d) = %v, %v", i, u, err)
		}
	}
}

// boltBenchStore returns a store over a raw bbolt database holding n users made
// by boltUser, created in ID order.
func boltBenchStore(b *testing.B, n int) (*users.BoltStore, *bbolt.DB) {
	b.Helper()
	db, err := bbolt.Open(filepath.Join(boltFastDir(b), "users.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s, err := users.NewBoltStore(db)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := b.Context()
	start := time.Now()
	for i := range n {
		if err := s.CreateUser(ctx, boltUser(i)); err != nil {
			b.Fatal(err)
		}
	}
	if n > 1 {
		b.Logf("created %d users in %v", n, time.Since(start).Round(time.Millisecond))
	}
	return s, db
}

// BenchmarkBoltStore_GetByEmail looks up the first and the last of 100k users by
// email (see -bolt.scale): equal times show an index, not a scan. rawbolt is the
// baseline: one bbolt read transaction getting one record by key and copying it.
func BenchmarkBoltStore_GetByEmail(b *testing.B) {
	n := boltScaleN()
	s, db := boltBenchStore(b, n)
	ctx := b.Context()
	for _, c := range []struct {
		name string
		i    int
	}{{"first", 0}, {"last", n - 1}} {
		email := boltUser(c.i).Email
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.GetUserByEmail(ctx, email); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	id := []byte(boltUser(n - 1).ID)
	b.Run("rawbolt", func(b *testing.B) {
		for b.Loop() {
			var v []byte
			err := db.View(func(tx *bbolt.Tx) error {
				v = append([]byte(nil), boltBucket(tx, "users").Get(id)...)
				return nil
			})
			if err != nil || v == nil {
				b.Fatal(err, v)
			}
		}
	})
}

// BenchmarkBoltStore_DeleteExpired purges 10 expired sessions from among 1k and
// 100k unexpired ones: equal times show that the cost follows what is deleted,
// not what is stored.
func BenchmarkBoltStore_DeleteExpired(b *testing.B) {
	for _, stored := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("stored=%d", stored), func(b *testing.B) {
			s, _ := boltBenchStore(b, 1)
			ctx := b.Context()
			u := boltUser(0)
			for i := range stored {
				must(b, s.CreateSession(ctx, boltSession(u.ID, fmt.Sprintf("live%06d", i), 0, boltT0.Add(time.Hour))))
			}
			n := 0
			for b.Loop() {
				b.StopTimer()
				for range 10 {
					n++
					must(b, s.CreateSession(ctx, boltSession(u.ID, fmt.Sprintf("old%09d", n), 0, boltT0)))
				}
				b.StartTimer()
				if got, err := s.DeleteExpired(ctx, boltT0); got != 10 || err != nil {
					b.Fatalf("DeleteExpired = %d, %v; want 10", got, err)
				}
			}
		})
	}
}
