package users_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// restoreBolt writes a snapshot to a new file and opens it as a store, closed
// when tb ends.
func restoreBolt(tb testing.TB, snapshot []byte) *users.BoltStore {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "restored.db")
	if err := os.WriteFile(path, snapshot, 0o600); err != nil {
		tb.Fatal(err)
	}
	s, err := users.OpenBoltStore(path, nil)
	if err != nil {
		tb.Fatalf("opening the restored snapshot: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func boltManager(tb testing.TB, s users.Store) *users.Manager {
	tb.Helper()
	m, err := users.New(s, &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestBoltStore_Backup(t *testing.T) {
	ctx := t.Context()

	// Every write acknowledged before Backup is called is in the snapshot, while
	// writers keep going during it; the snapshot passes Check and the users in
	// it log in with their passwords and keep their sessions.
	t.Run("UnderWrites", func(t *testing.T) {
		store, _ := mustOpenBolt(t, nil)
		m := boltManager(t, store)
		hash, err := bcrypt.GenerateFromPassword([]byte("old system password"), 4)
		if err != nil {
			t.Fatal(err)
		}
		const loginUsers = 3
		sessions := map[string]string{} // email → session token made before the backup
		for i := range loginUsers {
			email := fmt.Sprintf("login%d@example.com", i)
			if _, err := m.Create(ctx, users.NewUser{Email: email, Password: storetest.Password}); err != nil {
				t.Fatal(err)
			}
			s, err := m.Login(ctx, email, storetest.Password)
			if err != nil {
				t.Fatal(err)
			}
			sessions[email] = s.Token
		}

		var (
			mu    sync.Mutex
			acked []string // emails whose Create returned
			stop  = make(chan struct{})
			wg    sync.WaitGroup
		)
		for w := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					email := fmt.Sprintf("w%d-%d@example.com", w, i)
					if _, err := m.Create(ctx, users.NewUser{Email: email, PasswordHash: string(hash)}); err != nil {
						t.Errorf("Create(%s): %v", email, err)
						return
					}
					mu.Lock()
					acked = append(acked, email)
					mu.Unlock()
				}
			})
		}
		waitFor := func(n int) {
			for {
				mu.Lock()
				got := len(acked)
				mu.Unlock()
				if got >= n || t.Failed() {
					return
				}
				time.Sleep(time.Millisecond)
			}
		}
		waitFor(100)
		mu.Lock()
		before := append([]string(nil), acked...)
		mu.Unlock()
		var snap bytes.Buffer
		n, err := store.Backup(ctx, &snap)
		if err != nil {
			t.Fatalf("Backup: %v", err)
		}
		waitFor(len(before) + 50) // the writers went on during and after it
		close(stop)
		wg.Wait()
		if n != int64(snap.Len()) {
			t.Errorf("Backup returned %d, wrote %d bytes", n, snap.Len())
		}

		restored := restoreBolt(t, snap.Bytes())
		if err := restored.Check(ctx); err != nil {
			t.Fatalf("Check of the restored snapshot: %v", err)
		}
		rm := boltManager(t, restored)
		for _, email := range before {
			if _, err := rm.GetByEmail(ctx, email); err != nil {
				t.Errorf("%s was acknowledged before the backup began; in the snapshot: %v", email, err)
			}
		}
		st, err := restored.Stats(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if st.Users < loginUsers+len(before) {
			t.Errorf("snapshot has %d users, want at least %d", st.Users, loginUsers+len(before))
		}
		for email, token := range sessions {
			if _, err := rm.Login(ctx, email, storetest.Password); err != nil {
				t.Errorf("Login(%s) on the restored snapshot: %v", email, err)
			}
			if _, err := rm.ValidateToken(ctx, token); err != nil {
				t.Errorf("session of %s from before the backup, on the restored snapshot: %v", email, err)
			}
		}
		if _, err := rm.Login(ctx, before[0], "old system password"); err != nil {
			t.Errorf("Login of imported user %s on the restored snapshot: %v", before[0], err)
		}
	})

	t.Run("Cancelled", func(t *testing.T) {
		store, _ := mustOpenBolt(t, nil)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		var buf bytes.Buffer
		if _, err := store.Backup(cctx, &buf); !errors.Is(err, context.Canceled) {
			t.Errorf("Backup with a cancelled context: %v, want context.Canceled", err)
		}
		if buf.Len() != 0 {
			t.Errorf("a cancelled Backup wrote %d bytes", buf.Len())
		}
	})

	t.Run("WriteFails", func(t *testing.T) {
		store, _ := mustOpenBolt(t, nil)
		boom := errors.New("disk full")
		if _, err := store.Backup(ctx, failingWriter{boom}); !errors.Is(err, boom) {
			t.Errorf("Backup to a failing writer: %v, want it to wrap %v", err, boom)
		}
	})

	t.Run("Closed", func(t *testing.T) {
		store, _ := mustOpenBolt(t, nil)
		store.Close()
		if _, err := store.Backup(ctx, &bytes.Buffer{}); err == nil {
			t.Error("Backup of a closed store succeeded")
		}
	})
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

func TestBoltStore_Stats(t *testing.T) {
	ctx := t.Context()
	store, path := mustOpenBolt(t, nil)
	clock := storetest.NewClock()
	m, err := users.New(store, &users.Options{
		BcryptCost: 4, InsecureLowBcryptCostForTests: true, Now: clock.Now,
		SessionTTL: time.Hour, PasswordResetTTL: 2 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if _, err := m.Create(ctx, users.NewUser{Email: email, Password: storetest.Password}); err != nil {
			t.Fatal(err)
		}
	}
	m.Login(ctx, "a@example.com", storetest.Password)
	clock.Advance(30 * time.Minute)
	m.Login(ctx, "b@example.com", storetest.Password)
	if _, err := m.RequestPasswordReset(ctx, "c@example.com"); err != nil {
		t.Fatal(err)
	}
	m.Login(ctx, "c@example.com", "wrong password")
	clock.Advance(45 * time.Minute) // a's session expired, b's not, the reset token not

	got, err := store.Stats(ctx, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	entries, err := store.ListAudit(ctx, users.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Error("no audit entries after creates, logins and a reset")
	}
	want := users.BoltStats{Users: 3, Sessions: 2, ExpiredSessions: 1, Tokens: 1, ExpiredTokens: 0, LoginThrottles: 1,
		AuditEntries: len(entries), FileSize: got.FileSize}
	if got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.FileSize <= 0 || got.FileSize > fi.Size() {
		t.Errorf("FileSize = %d, the file has %d bytes", got.FileSize, fi.Size())
	}
}
