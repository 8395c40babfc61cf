package users_test

// Online guessing: failed logins are throttled per identifier, locks hold under
// concurrent guesses and escalate, and a locked account costs no bcrypt work.

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// Item 7: throttling per identifier, stored, atomic, and free of bcrypt when locked.
func TestSecurity_Throttle(t *testing.T) {
	t.Parallel()
	bg := t.Context()
	const wrong = "not the password"
	t.Run("DefaultTenLocks", func(t *testing.T) {
		f := newFixture(t, nil)
		f.mustCreate(t, users.NewUser{Email: "alice@example.com", Username: "alice"})
		for i := range 10 {
			if _, err := f.secLogin("alice@example.com", wrong); !errors.Is(err, users.ErrInvalidCredentials) {
				t.Fatalf("failure %d: got %v, want ErrInvalidCredentials", i+1, err)
			}
		}
		for _, tc := range []struct{ id, pw string }{
			{"alice@example.com", storetest.Password}, {"alice@example.com", wrong}, {"alice", storetest.Password}, {" ALICE@example.com ", storetest.Password},
		} {
			if n, err := f.secLogin(tc.id, tc.pw); !errors.Is(err, users.ErrAccountLocked) || n != 0 {
				t.Errorf("Login(%q) after 10 failures: got %v after %d comparisons, want ErrAccountLocked after 0", tc.id, err, n)
			}
		}
	})
	t.Run("NineDoNotLock", func(t *testing.T) {
		f := newFixture(t, nil)
		f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		for range 9 {
			f.secLogin("alice@example.com", wrong)
		}
		f.MustLogin(t, "alice@example.com", storetest.Password)
	})
	t.Run("UnknownIdentifiersLockToo", func(t *testing.T) {
		f := newFixture(t, nil)
		for _, id := range []string{"nobody@example.com", "nobody", "not an email@@"} {
			for range 10 {
				if _, err := f.secLogin(id, wrong); !errors.Is(err, users.ErrInvalidCredentials) {
					t.Fatalf("%q: got %v before the lock", id, err)
				}
			}
			if n, err := f.secLogin(id, wrong); !errors.Is(err, users.ErrAccountLocked) || n != 0 {
				t.Errorf("unknown %q after 10 failures: got %v after %d comparisons, want ErrAccountLocked after 0", id, err, n)
			}
		}
	})
	t.Run("SuccessResets", func(t *testing.T) {
		f := newFixture(t, nil)
		u := f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		for round := range 3 {
			for range 9 {
				f.secLogin("alice@example.com", wrong)
			}
			f.MustLogin(t, "alice@example.com", storetest.Password)
			a, err := f.Store.GetLoginAttempts(bg, users.UserThrottleKey(u.ID))
			if err != nil {
				t.Fatal(err)
			}
			if a.Failures != 0 {
				t.Fatalf("round %d: %d failures counted after a success, want 0", round, a.Failures)
			}
		}
	})
	t.Run("WindowEnds", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) { o.FailedLoginWindow = time.Hour })
		f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		for range 9 {
			f.secLogin("alice@example.com", wrong)
		}
		f.Clock.Advance(time.Hour)
		for range 9 {
			f.secLogin("alice@example.com", wrong)
		}
		f.MustLogin(t, "alice@example.com", storetest.Password)
	})
	t.Run("SurvivesRestart", func(t *testing.T) {
		f := newFixture(t, nil)
		f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		for range 10 {
			f.secLogin("alice@example.com", wrong)
			f.secLogin("nobody@example.com", wrong)
		}
		var compares atomic.Int64
		m2 := secManager(t, f.Store, f.Clock, &compares, nil) // a restarted process
		for _, id := range []string{"alice@example.com", "nobody@example.com"} {
			if _, err := m2.Login(bg, id, storetest.Password); !errors.Is(err, users.ErrAccountLocked) {
				t.Errorf("%s after a restart: got %v, want ErrAccountLocked", id, err)
			}
		}
		if n := compares.Load(); n != 0 {
			t.Errorf("%d comparisons while locked, want 0", n)
		}
	})
	t.Run("LockEndsAfterLockoutDuration", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) { o.LockoutDuration = 15 * time.Minute })
		f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		for range 10 {
			f.secLogin("alice@example.com", wrong)
		}
		f.Clock.Advance(15*time.Minute - time.Nanosecond)
		if _, err := f.secLogin("alice@example.com", storetest.Password); !errors.Is(err, users.ErrAccountLocked) {
			t.Fatalf("1ns before the lock ends: got %v, want ErrAccountLocked", err)
		}
		f.Clock.Advance(time.Nanosecond)
		f.MustLogin(t, "alice@example.com", storetest.Password)
	})
	t.Run("DefaultLockoutIs15Minutes", func(t *testing.T) {
		f := newFixture(t, nil)
		for range 10 {
			f.secLogin("nobody@example.com", wrong)
		}
		f.Clock.Advance(15*time.Minute - time.Nanosecond)
		if _, err := f.secLogin("nobody@example.com", wrong); !errors.Is(err, users.ErrAccountLocked) {
			t.Fatalf("1ns before 15 minutes: got %v, want ErrAccountLocked", err)
		}
		f.Clock.Advance(time.Nanosecond)
		if n, err := f.secLogin("nobody@example.com", wrong); !errors.Is(err, users.ErrInvalidCredentials) || n != 1 {
			t.Fatalf("after 15 minutes: got %v after %d comparisons, want ErrInvalidCredentials after 1", err, n)
		}
	})
	t.Run("ConcurrentFailuresCountExactly", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) { o.MaxFailedLogins = 100 })
		u := f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		var wg sync.WaitGroup
		var locked atomic.Int64
		for range 100 {
			wg.Go(func() {
				_, err := f.M.Login(bg, "alice@example.com", wrong)
				switch {
				case errors.Is(err, users.ErrAccountLocked):
					locked.Add(1)
				case !errors.Is(err, users.ErrInvalidCredentials):
					t.Errorf("concurrent wrong login: %v", err)
				}
			})
		}
		wg.Wait()
		a, err := f.Store.GetLoginAttempts(bg, users.UserThrottleKey(u.ID))
		if err != nil {
			t.Fatal(err)
		}
		if a.Failures != 100 || locked.Load() != 0 {
			t.Fatalf("100 concurrent wrong logins: Failures = %d (%d refused as locked), want exactly 100", a.Failures, locked.Load())
		}
		if n, err := f.secLogin("alice@example.com", storetest.Password); !errors.Is(err, users.ErrAccountLocked) || n != 0 {
			t.Fatalf("after 100 failures with MaxFailedLogins 100: got %v after %d comparisons, want ErrAccountLocked after 0", err, n)
		}
	})
	t.Run("MaxFailedLoginsBound", func(t *testing.T) {
		for _, n := range []int{101, 1000, -1} {
			_, err := users.New(users.NewMemoryStore(), &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true, MaxFailedLogins: n})
			wantField(t, err, "options.MaxFailedLogins")
		}
		if _, err := users.New(users.NewMemoryStore(), &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true, MaxFailedLogins: 100}); err != nil {
			t.Fatalf("MaxFailedLogins 100: %v", err)
		}
	})
}

// Item 13: of any number of concurrent guesses, at most MaxFailedLogins are
// compared (storetest's Throttle rules check it on every store; this counts
// bcrypt comparisons directly, at the default limit).
func TestSecurity_ConcurrentGuesses(t *testing.T) {
	bg := t.Context()
	for _, tc := range []struct {
		name  string
		guess func(f *Fixture, u *users.User) error
	}{
		{"Login", func(f *Fixture, u *users.User) error {
			_, err := f.M.Login(bg, u.Email, "not the password")
			return err
		}},
		{"UpdatePassword", func(f *Fixture, u *users.User) error {
			return f.M.UpdatePassword(bg, u.ID, "not the password", "a brand new password")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(o *users.Options) { o.MaxConcurrentHashes = 64 })
			u := f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
			before := f.Compares.Load()
			var wg sync.WaitGroup
			var locked atomic.Int64
			start := make(chan struct{})
			for range 200 {
				wg.Go(func() {
					<-start
					switch err := tc.guess(f, u); {
					case errors.Is(err, users.ErrAccountLocked):
						locked.Add(1)
					case !errors.Is(err, users.ErrInvalidCredentials):
						t.Errorf("a concurrent guess: %v", err)
					}
				})
			}
			close(start)
			wg.Wait()
			if n := f.Compares.Load() - before; n != 10 || locked.Load() != 190 {
				t.Errorf("200 concurrent wrong guesses: %d compared, %d refused as locked; want 10 and 190", n, locked.Load())
			}
			if n, err := f.secLogin(u.Email, storetest.Password); !errors.Is(err, users.ErrAccountLocked) || n != 0 {
				t.Errorf("the right password after the guesses: %v after %d comparisons, want ErrAccountLocked after 0", err, n)
			}
		})
	}
}

// Item 15: at most MaxConsecutiveFailures (100) failures in a row per account,
// however they are spread over time; locks escalate; reset or Unlock end it.
func TestSecurity_ConsecutiveCap(t *testing.T) {
	t.Parallel()
	bg := t.Context()
	wantLocks := []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 16 * time.Hour, 24 * time.Hour, 24 * time.Hour}
	// attack guesses at id for 60 days of fake time, waiting out every lock, and
	// returns how many guesses were compared and the lengths of the locks, to
	// the minute. It waits out a lock the way a patient attacker would, but
	// in few logins: on the first refusal the clock jumps to a minute before
	// the lock should end, then walks by the minute, so a lock that ends
	// sooner than it should measures the jump, one that ends later its own
	// length, and both differ from wantLocks. Once every lock of wantLocks is
	// over, the account should stay locked: the clock walks by the hour, and a
	// lock that ended would let a guess be compared.
	attack := func(t *testing.T, f *Fixture, id string) (int64, []time.Duration) {
		t.Helper()
		before := f.Compares.Load()
		var locks []time.Duration
		end := f.Clock.Now().Add(60 * 24 * time.Hour)
		lockedSince := time.Time{}
		for f.Clock.Now().Before(end) {
			_, err := f.M.Login(bg, id, "not the password")
			switch {
			case errors.Is(err, users.ErrAccountLocked):
				step := time.Minute
				if len(locks) >= len(wantLocks) {
					step = time.Hour
				}
				if lockedSince.IsZero() {
					lockedSince = f.Clock.Now()
					if len(locks) < len(wantLocks) {
						step = wantLocks[len(locks)] - time.Minute
					}
				}
				f.Clock.Advance(step)
			case errors.Is(err, users.ErrInvalidCredentials):
				if !lockedSince.IsZero() {
					locks = append(locks, f.Clock.Now().Sub(lockedSince).Round(time.Minute))
					lockedSince = time.Time{}
				}
				f.Clock.Advance(time.Second)
			default:
				t.Fatalf("Login: %v", err)
			}
		}
		return f.Compares.Load() - before, locks
	}
	f := newFixture(t, nil)
	u := f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
	for _, id := range []string{"alice@example.com", "nobody@example.com"} {
		n, locks := attack(t, f, id)
		if n != users.MaxConsecutiveFailures {
			t.Errorf("%s: %d guesses compared in 60 days, want %d (NIST SP 800-63B 5.2.2)", id, n, users.MaxConsecutiveFailures)
		}
		if fmt.Sprint(locks) != fmt.Sprint(wantLocks) {
			t.Errorf("%s: locks lasted %v, want %v (doubling, at most 24h)", id, locks, wantLocks)
		}
	}
	st, err := f.M.LockState(bg, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Locked || !st.Permanent || st.ConsecutiveFailures != 100 || !st.LockedUntil.IsZero() || st.Locks != 9 {
		t.Errorf("LockState after 100 failures = %+v; want locked, permanent, 100 failures, 9 locks", st)
	}
	f.Clock.Advance(365 * 24 * time.Hour)
	if n, err := f.secLogin("alice@example.com", storetest.Password); !errors.Is(err, users.ErrAccountLocked) || n != 0 {
		t.Fatalf("a year after 100 failures, the right password: %v after %d comparisons; want ErrAccountLocked after 0", err, n)
	}

	t.Run("ResetEndsIt", func(t *testing.T) {
		d, err := f.M.RequestPasswordReset(bg, "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.M.ResetPassword(bg, d.Token, "a brand new password"); err != nil {
			t.Fatal(err)
		}
		f.MustLogin(t, "alice@example.com", "a brand new password")
		if st, _ := f.M.LockState(bg, u.ID); *st != (users.LockState{}) {
			t.Errorf("LockState after a reset = %+v, want the zero state", st)
		}
	})

	t.Run("UnlockEndsIt", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) { o.MaxFailedLogins = 100 })
		u := f.mustCreate(t, users.NewUser{Email: "bob@example.com"})
		for range 100 {
			f.secLogin("bob@example.com", "not the password")
		}
		if st, _ := f.M.LockState(bg, u.ID); !st.Permanent {
			t.Fatalf("LockState after 100 failures = %+v, want permanent", st)
		}
		if err := f.M.Unlock(bg, u.ID); err != nil {
			t.Fatal(err)
		}
		if st, _ := f.M.LockState(bg, u.ID); *st != (users.LockState{}) {
			t.Errorf("LockState after Unlock = %+v, want the zero state", st)
		}
		f.MustLogin(t, "bob@example.com", storetest.Password)
		if err := f.M.Unlock(bg, "01ARZ3NDEKTSV4RRFFQ69G5FAV"); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("Unlock(no such user): %v, want ErrNotFound", err)
		}
		if _, err := f.M.LockState(bg, "01ARZ3NDEKTSV4RRFFQ69G5FAV"); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("LockState(no such user): %v, want ErrNotFound", err)
		}
	})

	t.Run("CountSurvivesWindowsAndLocks", func(t *testing.T) {
		f := newFixture(t, nil)
		u := f.mustCreate(t, users.NewUser{Email: "carol@example.com"})
		for range 9 {
			f.secLogin("carol@example.com", "not the password")
		}
		f.Clock.Advance(time.Hour) // the window ends: no lock yet
		for range 9 {
			f.secLogin("carol@example.com", "not the password")
		}
		st, _ := f.M.LockState(bg, u.ID)
		if st.Locked || st.ConsecutiveFailures != 18 {
			t.Errorf("LockState after 9 + 9 failures in two windows = %+v; want unlocked with 18 consecutive failures", st)
		}
		f.MustLogin(t, "carol@example.com", storetest.Password)
		if st, _ := f.M.LockState(bg, u.ID); st.ConsecutiveFailures != 0 {
			t.Errorf("ConsecutiveFailures after a success = %d, want 0", st.ConsecutiveFailures)
		}
	})

	t.Run("LockStateWhileLocked", func(t *testing.T) {
		f := newFixture(t, nil)
		u := f.mustCreate(t, users.NewUser{Email: "dave@example.com"})
		for range 10 {
			f.secLogin("dave@example.com", "not the password")
		}
		want := users.LockState{Locked: true, LockedUntil: f.Clock.Now().Add(15 * time.Minute), ConsecutiveFailures: 10, Locks: 1}
		if st, err := f.M.LockState(bg, u.ID); err != nil || *st != want {
			t.Errorf("LockState = %+v, %v; want %+v", st, err, want)
		}
	})
}
