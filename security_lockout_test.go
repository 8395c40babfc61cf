package users_test

// The security properties added after the first landing was attacked as an
// outsider would (SECURITY.md items 13 to 20): each test fails if its property
// breaks.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users"
)

// Item 13: of any number of concurrent guesses, at most MaxFailedLogins are
// compared (storetest's Throttle rules check it on every store; this counts
// bcrypt comparisons directly, at the default limit).
func TestSecurity_ConcurrentGuesses(t *testing.T) {
	bg := context.Background()
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
			if n, err := f.secLogin(u.Email, testPassword); !errors.Is(err, users.ErrAccountLocked) || n != 0 {
				t.Errorf("the right password after the guesses: %v after %d comparisons, want ErrAccountLocked after 0", err, n)
			}
		})
	}
}

// Item 14: no input with a character outside ASCII normalises to an address or
// username, so Unicode folding never turns one into someone else's.
func TestSecurity_ASCIIBeforeFolding(t *testing.T) {
	refused := 0
	for r := rune(utf8.RuneSelf); r <= utf8.MaxRune; r++ {
		c := string(r) // surrogates become U+FFFD: still not ASCII
		for _, e := range []string{c + "victim@icloud.com", "victim@" + c + "cloud.com", "vic" + c + "tim@icloud.com", "victim@icloud.com" + c} {
			if got, err := users.NormalizeEmail(e); err == nil {
				t.Fatalf("NormalizeEmail(%q) (U+%04X) = %q, want a *ValidationError: a non-ASCII address must never become an ASCII one", e, r, got)
			} else if !errors.Is(err, users.ErrInvalidInput) {
				t.Fatalf("NormalizeEmail(%q): %v, want a *ValidationError", e, err)
			}
		}
		for _, u := range []string{c + "alice", "al" + c + "ice", "alice" + c} {
			if got, err := users.NormalizeUsername(u); err == nil {
				t.Fatalf("NormalizeUsername(%q) (U+%04X) = %q, want a *ValidationError", u, r, got)
			}
		}
		refused++
	}
	if refused != utf8.MaxRune+1-utf8.RuneSelf {
		t.Fatalf("walked %d runes", refused)
	}

	t.Run("Login", func(t *testing.T) {
		f := newFixture(t, nil)
		f.mustCreate(t, users.NewUser{Email: "kate@example.com", Username: "kate"})
		// U+212A KELVIN SIGN lower-cases to "k"; U+00A0 is trimmed as space.
		for _, id := range []string{"\u212aate@example.com", "\u212aate", "\u00a0kate@example.com", "kate@example.com\u2003"} {
			if n, err := f.secLogin(id, testPassword); !errors.Is(err, users.ErrInvalidCredentials) || n != 1 {
				t.Errorf("Login(%q) with kate's password: %v after %d comparisons; want ErrInvalidCredentials after 1 (it names nobody)", id, err, n)
			}
		}
		f.mustLogin(t, "  KATE@example.com ", testPassword)
	})
}

// Item 15: at most MaxConsecutiveFailures (100) failures in a row per account,
// however they are spread over time; locks escalate; reset or Unlock end it.
func TestSecurity_ConsecutiveCap(t *testing.T) {
	bg := context.Background()
	// attack guesses at id for 60 days of fake time, waiting out every lock, and
	// returns how many guesses were compared and the lengths of the locks.
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
				if lockedSince.IsZero() {
					lockedSince = f.Clock.Now()
				}
				f.Clock.Advance(time.Minute)
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
	wantLocks := []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 16 * time.Hour, 24 * time.Hour, 24 * time.Hour}

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
	if n, err := f.secLogin("alice@example.com", testPassword); !errors.Is(err, users.ErrAccountLocked) || n != 0 {
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
		f.mustLogin(t, "alice@example.com", "a brand new password")
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
		f.mustLogin(t, "bob@example.com", testPassword)
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
		f.mustLogin(t, "carol@example.com", testPassword)
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

// Item 16: suspending (or deactivating) an account voids its outstanding
// one-time tokens, so none works after a reactivation.
func TestSecurity_SuspensionVoidsTokens(t *testing.T) {
	bg := context.Background()
	for _, status := range []users.Status{users.StatusSuspended, users.StatusInactive} {
		t.Run(string(status), func(t *testing.T) {
			f := newFixture(t, nil)
			u := f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
			reset, err := f.M.RequestPasswordReset(bg, u.Email)
			if err != nil {
				t.Fatal(err)
			}
			magic, err := f.M.RequestMagicLink(bg, u.Email)
			if err != nil {
				t.Fatal(err)
			}
			verify, err := f.M.RequestEmailVerification(bg, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			active := users.StatusActive
			for _, s := range []*users.Status{&status, &active} {
				if _, err := f.M.Update(bg, u.ID, users.UserUpdate{Status: s}); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.M.ResetPassword(bg, reset.Token, "a brand new password"); !errors.Is(err, users.ErrInvalidToken) {
				t.Errorf("reset token issued before %s, after reactivation: %v, want ErrInvalidToken", status, err)
			}
			if _, err := f.M.LoginWithMagicLink(bg, magic.Token); !errors.Is(err, users.ErrInvalidToken) {
				t.Errorf("magic link issued before %s, after reactivation: %v, want ErrInvalidToken", status, err)
			}
			if _, err := f.M.VerifyEmail(bg, verify.Token); !errors.Is(err, users.ErrInvalidToken) {
				t.Errorf("verification token issued before %s, after reactivation: %v, want ErrInvalidToken", status, err)
			}
		})
	}
}

// Item 17: a locked account and a locked unknown identifier cost the same store
// work, so timing does not tell them apart (on bbolt a found user record was
// decoded and a missing one was not: 1.6 times slower).
func TestSecurity_LockedTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test skipped in -short mode")
	}
	stores := map[string]func(t *testing.T) users.Store{
		"MemoryStore": func(t *testing.T) users.Store { return users.NewMemoryStore() },
		"BoltStore": func(t *testing.T) users.Store {
			s, err := users.OpenBoltStore(filepath.Join(t.TempDir(), "users.db"), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) { secLockedTiming(t, open(t)) })
	}
}

// secLockedTiming measures Login for a locked account and a locked unknown
// identifier over store, interleaved, and fails unless the ratio of medians is
// within 0.9-1.1 in one of three attempts.
func secLockedTiming(t *testing.T, store users.Store) {
	m := secManager(t, store, NewClock(), nil, nil)
	bg := context.Background()
	if _, err := m.Create(bg, users.NewUser{Email: "alice@example.com", Password: testPassword, FirstName: "Alice", LastName: "Example",
		Preferences: map[string]string{"theme": "dark", "lang": "en"}}); err != nil {
		t.Fatal(err)
	}
	ids := []string{"alice@example.com", "nobody@example.com"}
	for _, id := range ids {
		for range 10 {
			m.Login(bg, id, "not the password")
		}
		if _, err := m.Login(bg, id, testPassword); !errors.Is(err, users.ErrAccountLocked) {
			t.Fatalf("%s is not locked: %v", id, err)
		}
	}
	const samples, attempts = 5000, 3
	for a := range attempts {
		times := [2][]time.Duration{}
		for i := range samples {
			for k := range ids {
				c := (i + k) % 2 // alternate which goes first
				start := time.Now()
				m.Login(bg, ids[c], "not the password")
				times[c] = append(times[c], time.Since(start))
			}
		}
		known, unknown := secMedian(times[0]), secMedian(times[1])
		ratio := float64(known) / float64(unknown)
		t.Logf("attempt %d: locked account median %v, locked unknown identifier median %v, ratio %.3f (%d samples each)", a+1, known, unknown, ratio, samples)
		if ratio >= 0.9 && ratio <= 1.1 {
			return
		}
		if a == attempts-1 {
			t.Errorf("locked account vs locked unknown identifier: ratio of medians %.3f, want within 0.9-1.1 (in any of %d attempts)", ratio, attempts)
		}
	}
}

// Item 18: an imported hash that verifies a password this package cannot
// re-hash (a tab, bytes that are not UTF-8) is reported, never truncated.
func TestSecurity_ImportedHashNotUpgradable(t *testing.T) {
	bg := context.Background()
	f := newFixture(t, nil)
	for i, pw := range []string{"old\tpass word", "caf\xe9 au lait", "ordinary old password"} {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), 4)
		if err != nil {
			t.Fatal(err)
		}
		u := f.mustCreate(t, users.NewUser{Email: fmt.Sprintf("u%d@example.com", i), PasswordHash: string(h)})
		st, err := f.M.LockState(bg, u.ID)
		if err != nil || !st.ImportedHash || st.ImportedHashNotUpgradable {
			t.Fatalf("%q before any login: LockState %+v, %v; want ImportedHash only", pw, st, err)
		}
		f.mustLogin(t, u.Email, pw)
		st, _ = f.M.LockState(bg, u.ID)
		upgradable := utf8.ValidString(pw) && !strings.ContainsAny(pw, "\t")
		if upgradable {
			if st.ImportedHash || st.ImportedHashNotUpgradable {
				t.Errorf("%q after a login: LockState %+v; want the hash upgraded", pw, st)
			}
			continue
		}
		if !st.ImportedHash || !st.ImportedHashNotUpgradable {
			t.Errorf("%q after a login: LockState %+v; want ImportedHash and ImportedHashNotUpgradable", pw, st)
		}
		if secStoredHash(t, f.Store, u.Email) != string(h) {
			t.Errorf("%q: the imported hash changed", pw)
		}
		f.mustLogin(t, u.Email, pw) // still logs in
		if _, err := f.M.Login(bg, u.Email, pw[:len(pw)-1]); !errors.Is(err, users.ErrInvalidCredentials) {
			t.Errorf("%q without its last byte: %v, want ErrInvalidCredentials", pw, err)
		}
		if err := f.M.UpdatePassword(bg, u.ID, pw, "a brand new password"); err != nil {
			t.Fatalf("UpdatePassword from %q: %v", pw, err)
		}
		if st, _ := f.M.LockState(bg, u.ID); st.ImportedHash || st.ImportedHashNotUpgradable {
			t.Errorf("%q after a password change: LockState %+v; want neither flag", pw, st)
		}
	}
}
