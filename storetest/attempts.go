package storetest

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/userkit/users"
)

// ---- Login attempts ----

func testGetLoginAttemptsMissing(t *testing.T, s users.Store, _ string) {
	mustUpdateAttempts(t, s, "id:someone", users.LoginAttempts{Failures: 1, ExpiresAt: base.Add(time.Hour)})
	wantAttempts(t, s, "id:nobody", users.LoginAttempts{}, "GetLoginAttempts must return the zero LoginAttempts for a key without an entry")
}

func testUpdateLoginAttempts(t *testing.T, s users.Store, _ string) {
	key := users.IdentifierThrottleKey("ada@example.com")
	want := users.LoginAttempts{Failures: 1, WindowStart: base, ExpiresAt: base.Add(time.Hour)}
	var seen users.LoginAttempts
	got, err := s.UpdateLoginAttempts(t.Context(), key, func(a *users.LoginAttempts) error {
		seen = *a
		*a = want
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateLoginAttempts: %v", err)
	}
	if !sameAttempts(seen, users.LoginAttempts{}) {
		t.Errorf("UpdateLoginAttempts must call fn with the zero value for a key without an entry: got %+v", seen)
	}
	if !sameAttempts(got, want) {
		t.Errorf("UpdateLoginAttempts must return what fn left: got %+v, want %+v", got, want)
	}
	wantAttempts(t, s, key, want, "UpdateLoginAttempts must write what fn left")

	want2 := users.LoginAttempts{Failures: 2, WindowStart: base, LockedUntil: base.Add(time.Minute), ExpiresAt: base.Add(2 * time.Hour),
		Consecutive: 12, Locks: 1, HashNotUpgradable: true}
	got, err = s.UpdateLoginAttempts(t.Context(), key, func(a *users.LoginAttempts) error {
		seen = *a
		*a = want2
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateLoginAttempts: %v", err)
	}
	if !sameAttempts(seen, want) {
		t.Errorf("UpdateLoginAttempts must call fn with the stored entry: got %+v, want %+v", seen, want)
	}
	if !sameAttempts(got, want2) {
		t.Errorf("UpdateLoginAttempts must return what fn left: got %+v, want %+v", got, want2)
	}
	wantAttempts(t, s, key, want2, "UpdateLoginAttempts must write what fn left")
}

func testUpdateLoginAttemptsFnError(t *testing.T, s users.Store, _ string) {
	stored := users.LoginAttempts{Failures: 3, WindowStart: base, ExpiresAt: base.Add(time.Hour)}
	mustUpdateAttempts(t, s, "k1", stored)
	fn := func(a *users.LoginAttempts) error {
		a.Failures = 99
		a.ExpiresAt = base.Add(9 * time.Hour)
		return errSentinel
	}
	_, err := s.UpdateLoginAttempts(t.Context(), "k1", fn)
	if !errors.Is(err, errSentinel) {
		t.Errorf("UpdateLoginAttempts must return fn's error unchanged: got %v, want %v", err, errSentinel)
	}
	wantAttempts(t, s, "k1", stored, "UpdateLoginAttempts must write nothing when fn fails")
	_, err = s.UpdateLoginAttempts(t.Context(), "k2", fn)
	if !errors.Is(err, errSentinel) {
		t.Errorf("UpdateLoginAttempts must return fn's error unchanged: got %v, want %v", err, errSentinel)
	}
	wantAttempts(t, s, "k2", users.LoginAttempts{}, "UpdateLoginAttempts must create no entry when fn fails")
}

func testUpdateLoginAttemptsZeroDeletes(t *testing.T, s users.Store, _ string) {
	mustUpdateAttempts(t, s, "k", users.LoginAttempts{Failures: 3, WindowStart: base, ExpiresAt: base.Add(time.Hour)})
	got, err := s.UpdateLoginAttempts(t.Context(), "k", func(a *users.LoginAttempts) error {
		*a = users.LoginAttempts{}
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateLoginAttempts: %v", err)
	}
	if !sameAttempts(got, users.LoginAttempts{}) {
		t.Errorf("UpdateLoginAttempts must return the zero value fn left: got %+v", got)
	}
	wantAttempts(t, s, "k", users.LoginAttempts{}, "UpdateLoginAttempts leaving the zero value must delete the entry")
	// A zero entry still stored would have ExpiresAt (zero) before any now.
	if n, err := s.DeleteExpired(t.Context(), base.Add(24*time.Hour)); err != nil || n != 0 {
		t.Errorf("UpdateLoginAttempts leaving the zero value must delete the entry, not store a zero one: DeleteExpired then deleted %d, %v; want 0", n, err)
	}
}

func testUpdateLoginAttemptsKeys(t *testing.T, s users.Store, _ string) {
	a := users.LoginAttempts{Failures: 1, WindowStart: base, ExpiresAt: base.Add(time.Hour)}
	b := users.LoginAttempts{Failures: 5, WindowStart: base, LockedUntil: base.Add(time.Minute), ExpiresAt: base.Add(time.Hour)}
	mustUpdateAttempts(t, s, "user:a", a)
	mustUpdateAttempts(t, s, "user:b", b)
	wantAttempts(t, s, "user:a", a, "UpdateLoginAttempts must keep one entry per key")
	wantAttempts(t, s, "user:b", b, "UpdateLoginAttempts must keep one entry per key")
}

func testUpdateLoginAttemptsConcurrent(t *testing.T, s users.Store, _ string) {
	const n = 100
	start(n, func(int) {
		_, err := s.UpdateLoginAttempts(t.Context(), "id:hot", func(a *users.LoginAttempts) error {
			a.Failures++
			a.ExpiresAt = base.Add(time.Hour)
			runtime.Gosched() // widen the window a non-atomic store would have
			return nil
		})
		if err != nil {
			t.Errorf("UpdateLoginAttempts racing others for one key must succeed: %v", err)
		}
	})
	got, err := s.GetLoginAttempts(t.Context(), "id:hot")
	if err != nil || got.Failures != n {
		t.Errorf("UpdateLoginAttempts must serialise calls for one key: %d concurrent increments gave Failures = %d, %v", n, got.Failures, err)
	}
}
