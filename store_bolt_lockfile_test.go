package users_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// TestBoltStore_LockFromMain opens a file written by the code before issue 9
// (commit 4459f78, made by testdata/bolt/README), in which alice@example.com and
// the unknown nobody@example.com are locked after 10 failures at
// 2026-01-02T03:04:05Z for 15 minutes. The new LoginAttempts fields were not
// there; the locks must hold, count as consecutive failures, and end as before.
func TestBoltStore_LockFromMain(t *testing.T) {
	gz, err := os.ReadFile(filepath.Join("testdata", "bolt", "main-4459f78-locked.db.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "users.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := users.OpenBoltStore(path, nil)
	if err != nil {
		t.Fatalf("OpenBoltStore(file from main): %v", err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	clock := storetest.NewClock() // 2026-01-02T03:04:05Z, when the file was written
	clock.Advance(time.Minute)
	m := secManager(t, s, clock, nil, nil)
	u, err := m.GetByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"alice@example.com", "alice", "nobody@example.com"} {
		if _, err := m.Login(ctx, id, storetest.Password); !errors.Is(err, users.ErrAccountLocked) {
			t.Errorf("Login(%s) a minute into the lock: %v, want ErrAccountLocked", id, err)
		}
	}
	want := users.LockState{Locked: true, LockedUntil: time.Date(2026, 1, 2, 3, 19, 5, 0, time.UTC), ConsecutiveFailures: 10}
	if st, err := m.LockState(ctx, u.ID); err != nil || !st.LockedUntil.Equal(want.LockedUntil) || st.Locked != want.Locked ||
		st.ConsecutiveFailures != want.ConsecutiveFailures || st.Permanent {
		t.Errorf("LockState = %+v, %v; want %+v", st, err, want)
	}
	clock.Advance(14 * time.Minute)
	if _, err := m.Login(ctx, "nobody@example.com", "not the password"); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Errorf("unknown identifier after the old lock ended: %v, want ErrInvalidCredentials", err)
	}
	if _, err := m.Login(ctx, "alice@example.com", "not the password"); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Fatalf("alice after the old lock ended: %v, want ErrInvalidCredentials", err)
	}
	if st, _ := m.LockState(ctx, u.ID); st.Locked || st.ConsecutiveFailures != 11 {
		t.Errorf("LockState after one more failure = %+v; want unlocked, 11 consecutive failures", st)
	}
	if _, err := m.Login(ctx, "alice", storetest.Password); err != nil {
		t.Fatalf("alice with the right password: %v", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check after use: %v", err)
	}
}
