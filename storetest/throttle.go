package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userkit/users"
)

// The throttle rules drive a users.Manager over the store: the login lockout
// holds only if UpdateLoginAttempts lets exactly as many concurrent
// reservations through as the count allows.

// throttleMaxFailures is MaxFailedLogins in the throttle rules.
const throttleMaxFailures = 5

// throttleManager returns a Manager over s with bcrypt cost 4, a fake clock,
// MaxFailedLogins throttleMaxFailures and enough bcrypt slots that every guess
// can be compared at once, and a user to guess at.
func throttleManager(t *testing.T, s users.Store) (*users.Manager, *users.User) {
	t.Helper()
	clock := NewClock()
	m, err := users.New(s, &users.Options{
		BcryptCost: 4, InsecureLowBcryptCostForTests: true, Now: clock.Now,
		MaxFailedLogins: throttleMaxFailures, MaxConcurrentHashes: 64,
	})
	if err != nil {
		t.Fatalf("users.New: %v", err)
	}
	u, err := m.Create(t.Context(), users.NewUser{Email: "guessed@example.com", Password: Password})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return m, u
}

// guessConcurrently runs n wrong guesses at once through guess and returns how
// many were compared and found wrong (ErrInvalidCredentials, which only a
// comparison gives) and how many were refused as locked; any other answer fails
// the test.
func guessConcurrently(t *testing.T, n int, guess func(ctx context.Context) error) (compared, locked int) {
	t.Helper()
	var nLocked, nWrong atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			switch err := guess(t.Context()); {
			case errors.Is(err, users.ErrAccountLocked):
				nLocked.Add(1)
			case errors.Is(err, users.ErrInvalidCredentials):
				nWrong.Add(1)
			default:
				t.Errorf("a concurrent wrong guess: got %v, want ErrInvalidCredentials or ErrAccountLocked", err)
			}
		})
	}
	close(start)
	wg.Wait()
	return int(nWrong.Load()), int(nLocked.Load())
}

func testThrottleConcurrentLogins(t *testing.T, s users.Store, _ string) {
	m, u := throttleManager(t, s)
	const n = 10 * throttleMaxFailures
	got, locked := guessConcurrently(t, n, func(ctx context.Context) error {
		_, err := m.Login(ctx, u.Email, "a wrong password, guessed")
		return err
	})
	if got != throttleMaxFailures || locked != n-throttleMaxFailures {
		t.Errorf("%d concurrent wrong logins with MaxFailedLogins %d: %d passwords compared, %d refused as locked; "+
			"want exactly %d compared and the rest refused (the attempt must be reserved in the store before bcrypt)",
			n, throttleMaxFailures, got, locked, throttleMaxFailures)
	}
	if _, err := m.Login(t.Context(), u.Email, Password); !errors.Is(err, users.ErrAccountLocked) {
		t.Errorf("the right password after the guesses: %v, want ErrAccountLocked", err)
	}
}

func testThrottleConcurrentPasswordChanges(t *testing.T, s users.Store, _ string) {
	m, u := throttleManager(t, s)
	const n = 10 * throttleMaxFailures
	got, locked := guessConcurrently(t, n, func(ctx context.Context) error {
		return m.UpdatePassword(ctx, u.ID, "a wrong password, guessed", NewPassword)
	})
	if got != throttleMaxFailures || locked != n-throttleMaxFailures {
		t.Errorf("%d concurrent UpdatePassword calls with a wrong current password and MaxFailedLogins %d: %d compared, %d refused as locked; want exactly %d compared",
			n, throttleMaxFailures, got, locked, throttleMaxFailures)
	}
	if _, err := m.Login(t.Context(), u.Email, Password); !errors.Is(err, users.ErrAccountLocked) {
		t.Errorf("Login after the guesses: %v, want ErrAccountLocked", err)
	}
}

func testThrottleSuccessReleases(t *testing.T, s users.Store, _ string) {
	m, u := throttleManager(t, s)
	for round := range 3 {
		for range throttleMaxFailures - 1 {
			if _, err := m.Login(t.Context(), u.Email, "a wrong password, guessed"); !errors.Is(err, users.ErrInvalidCredentials) {
				t.Fatalf("round %d: a wrong password: %v, want ErrInvalidCredentials", round, err)
			}
		}
		if _, err := m.Login(t.Context(), u.Email, Password); err != nil {
			t.Fatalf("round %d: the right password after %d failures: %v", round, throttleMaxFailures-1, err)
		}
		if a, err := s.GetLoginAttempts(t.Context(), users.UserThrottleKey(u.ID)); err != nil || !a.IsZero() {
			t.Fatalf("round %d: throttle entry after a success: %+v, %v; want none (a success releases its slot and the failures before it)", round, a, err)
		}
	}
}

func testThrottleEveryFieldKeeps(t *testing.T, s users.Store, _ string) {
	for name, a := range map[users.ThrottleKey]users.LoginAttempts{
		"consecutive":         {Consecutive: 7, ExpiresAt: base.Add(time.Hour)},
		"locks":               {Locks: 2, ExpiresAt: base.Add(time.Hour)},
		"hash-not-upgradable": {HashNotUpgradable: true, ExpiresAt: base.Add(time.Hour)},
		"consecutive-only":    {Consecutive: 100},
	} {
		mustUpdateAttempts(t, s, name, a)
		wantAttempts(t, s, name, a, "UpdateLoginAttempts must keep an entry for which IsZero is false, every field of it")
	}
}
