package users_test

// Account enumeration: no answer, and no difference in work, tells whether an
// account exists or is locked.

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// Item 6: every failure costs exactly one bcrypt comparison; a lock costs none.
func TestSecurity_NoEnumeration(t *testing.T) {
	bg := t.Context()
	long := strings.Repeat("k", 64) + "@" + strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 61)
	if len(long) != 254 {
		t.Fatalf("bad test: email of %d bytes", len(long))
	}
	f := newFixture(t, func(o *users.Options) { o.MaxFailedLogins = 100 })
	f.mustCreate(t, users.NewUser{Email: "alice@example.com", Username: "alice"})
	f.mustCreate(t, users.NewUser{Email: "bob@example.com", Status: users.StatusSuspended})
	f.mustCreate(t, users.NewUser{Email: "carol@example.com", Status: users.StatusInactive})
	f.mustCreate(t, users.NewUser{Email: long})
	if _, _, err := f.M.Invite(bg, users.NewUser{Email: "dave@example.com"}); err != nil {
		t.Fatal(err)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(storetest.Password), 5)
	if err != nil {
		t.Fatal(err)
	}
	// Another cost than the Manager's, so a success would upgrade it: every
	// failure below must leave it as it is.
	f.mustCreate(t, users.NewUser{Email: "erin@example.com", PasswordHash: string(h)})

	const wrong = "not the password"
	for _, tc := range []struct {
		name, id, pw string
		want         error
	}{
		{"UnknownEmail", "nobody@example.com", storetest.Password, users.ErrInvalidCredentials},
		{"UnknownUsername", "nobody", storetest.Password, users.ErrInvalidCredentials},
		{"MalformedIdentifier", "not an@email@", storetest.Password, users.ErrInvalidCredentials},
		{"EmptyIdentifier", "", storetest.Password, users.ErrInvalidCredentials},
		{"HugeIdentifier", strings.Repeat("a@", 5000), storetest.Password, users.ErrInvalidCredentials},
		{"LongIdentifierWhosePrefixIsAUser", long + "x", storetest.Password, users.ErrInvalidCredentials},
		{"WrongPassword", "alice@example.com", wrong, users.ErrInvalidCredentials},
		{"WrongPasswordByUsername", "ALICE", wrong, users.ErrInvalidCredentials},
		{"EmptyPassword", "alice@example.com", "", users.ErrInvalidCredentials},
		{"EmptyPasswordUnknownUser", "nobody@example.com", "", users.ErrInvalidCredentials},
		{"ShortPassword", "alice@example.com", "abc", users.ErrInvalidCredentials},
		{"200CharacterPassword", "alice@example.com", strings.Repeat("p", 200), users.ErrInvalidCredentials},
		{"200CharacterPasswordUnknownUser", "nobody@example.com", strings.Repeat("p", 200), users.ErrInvalidCredentials},
		{"1MiBPassword", "alice@example.com", strings.Repeat("p", 1<<20), users.ErrInvalidCredentials},
		{"PasswordWithNUL", "alice@example.com", storetest.Password + "\x00", users.ErrInvalidCredentials},
		{"InvalidUTF8Password", "alice@example.com", storetest.Password + "\xff", users.ErrInvalidCredentials},
		{"SuspendedWrongPassword", "bob@example.com", wrong, users.ErrInvalidCredentials},
		{"SuspendedRightPassword", "bob@example.com", storetest.Password, users.ErrAccountDisabled},
		{"InactiveWrongPassword", "carol@example.com", wrong, users.ErrInvalidCredentials},
		{"InactiveRightPassword", "carol@example.com", storetest.Password, users.ErrAccountDisabled},
		{"InvitedNoPasswordYet", "dave@example.com", storetest.Password, users.ErrInvalidCredentials},
		{"InvitedEmptyPassword", "dave@example.com", "", users.ErrInvalidCredentials},
		{"ImportedWrongPassword", "erin@example.com", wrong, users.ErrInvalidCredentials},
		{"ImportedOver72Bytes", "erin@example.com", storetest.Password + strings.Repeat("!", 72), users.ErrInvalidCredentials},
		{"RightPassword", "alice@example.com", storetest.Password, nil},
		{"RightPassword254ByteEmail", long, storetest.Password, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := f.secLogin(tc.id, tc.pw)
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
			if tc.want != nil && err != nil && err.Error() != tc.want.Error() {
				t.Errorf("error text %q differs from %q: it could tell cases apart", err, tc.want)
			}
			if n != 1 {
				t.Errorf("%d bcrypt comparisons, want exactly 1", n)
			}
		})
	}
	if got := secStoredHash(t, f.Store, "erin@example.com"); got != string(h) {
		t.Errorf("failed logins changed an imported hash")
	}
	t.Run("UpdatePasswordWrongOld", func(t *testing.T) {
		u, err := f.M.GetByEmail(bg, "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		before := f.Compares.Load()
		if err := f.M.UpdatePassword(bg, u.ID, wrong, "a brand new password"); !errors.Is(err, users.ErrInvalidCredentials) {
			t.Fatalf("got %v, want ErrInvalidCredentials", err)
		}
		if n := f.Compares.Load() - before; n != 1 {
			t.Errorf("%d bcrypt comparisons, want exactly 1", n)
		}
	})
	t.Run("Locked", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) { o.MaxFailedLogins = 3 })
		f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		for _, id := range []string{"alice@example.com", "nobody@example.com"} {
			for range 3 {
				f.secLogin(id, wrong)
			}
			for _, pw := range []string{wrong, storetest.Password, "", strings.Repeat("p", 200)} {
				if n, err := f.secLogin(id, pw); !errors.Is(err, users.ErrAccountLocked) || n != 0 {
					t.Errorf("locked %s, password of %d bytes: got %v after %d comparisons, want ErrAccountLocked after 0", id, len(pw), err, n)
				}
			}
		}
	})

	t.Run("WallClock", func(t *testing.T) {
		if testing.Short() {
			t.Skip("timing test skipped in -short mode")
		}
		// A cost at which bcrypt dominates a login, so that the ratios mean
		// something: the lowest from 6 to 10 at which one hash takes 25ms or
		// more (6 under -race, 9 or 10 without), the rest of a login taking
		// about a millisecond. A login that skipped its comparison, or made
		// it at another cost, would measure a fraction of the wrong
		// password's time.
		cost := 6
		start := time.Now()
		if _, err := bcrypt.GenerateFromPassword([]byte(storetest.Password), 6); err != nil {
			t.Fatal(err)
		}
		for per6 := time.Since(start); cost < 10 && per6<<(cost-6) < 25*time.Millisecond; {
			cost++
		}
		t.Logf("bcrypt cost %d", cost)
		f := newFixture(t, func(o *users.Options) { o.BcryptCost = cost; o.MaxFailedLogins = 100 })
		for _, e := range []string{"alice", "carol", "dave"} {
			f.mustCreate(t, users.NewUser{Email: e + "@example.com"})
		}
		f.mustCreate(t, users.NewUser{Email: "bob@example.com", Status: users.StatusSuspended})
		const runs, attempts = 11, 3
		cases := []struct {
			name string
			id   func(i int) string
			pw   string
		}{
			{"wrong password", func(int) string { return "alice@example.com" }, wrong},
			{"unknown email", func(i int) string { return fmt.Sprintf("nobody%d@example.com", i) }, wrong},
			{"empty password", func(int) string { return "carol@example.com" }, ""},
			{"200-character password", func(int) string { return "dave@example.com" }, strings.Repeat("p", 200)},
			{"suspended, right password", func(int) string { return "bob@example.com" }, storetest.Password},
		}
		f.secLogin("nobody@example.com", wrong) // warm up
		// Other processes share the machine: noise comes and goes, a leak does
		// not. An attempt in which every case is within the band passes; all
		// attempts are reported. The median of 11 interleaved samples ignores
		// up to 5 disturbed ones.
		for a := range attempts {
			times := make([][]time.Duration, len(cases))
			for i := range runs {
				for k := range cases { // interleaved and rotated, so drift in load hits all alike
					c := (i + k) % len(cases)
					tc := cases[c]
					start := time.Now()
					_, err := f.secLogin(tc.id(a*runs+i), tc.pw)
					times[c] = append(times[c], time.Since(start))
					if err == nil {
						t.Fatalf("%s: login succeeded", tc.name)
					}
				}
			}
			base := secMedian(times[0])
			var outside []string
			for c, tc := range cases {
				med := secMedian(times[c])
				r := float64(med) / float64(base)
				t.Logf("attempt %d: %-26s median %8v of %d, ratio to wrong password %.3f", a+1, tc.name, med.Round(time.Microsecond), runs, r)
				if r < 0.8 || r > 1.25 {
					outside = append(outside, fmt.Sprintf("%s %.3f", tc.name, r))
				}
			}
			if len(outside) == 0 {
				return
			}
			if a == attempts-1 {
				t.Errorf("ratio of medians to a wrong password's: %s, want within 0.8-1.25 (in any of %d attempts)", strings.Join(outside, ", "), attempts)
			}
		}
	})
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
// identifier over store (storetest.WantLockedTimingEqual).
func secLockedTiming(t *testing.T, store users.Store) {
	m := secManager(t, store, storetest.NewClock(), nil, nil)
	if _, err := m.Create(t.Context(), users.NewUser{Email: "alice@example.com", Password: storetest.Password, FirstName: "Alice", LastName: "Example",
		Preferences: map[string]string{"theme": "dark", "lang": "en"}}); err != nil {
		t.Fatal(err)
	}
	storetest.WantLockedTimingEqual(t, m, "alice@example.com", "nobody@example.com", storetest.Password, 5000)
}
