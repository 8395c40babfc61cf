package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userkit/users"
)

// This file is the test kit shared by storetest's rules and by the tests of
// the users package and its stores: a fake clock, a Manager fixture and a
// check for races that exactly one call must win.

// Password and NewPassword pass every default password rule. Fixture users get
// Password unless the test sets another.
const (
	Password    = "correct horse battery staple"
	NewPassword = "a brand new horse battery staple"
)

// Clock is a fake clock that stands still until Advance moves it. Its Now
// method fits users.Options.Now. A Clock is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock set to a fixed instant: 03:04:05 UTC on the second
// of January 2026, the same in every run.
func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d, which may be negative.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Fixture is a Manager over a Store, with the Store and the fake Clock its
// Options.Now reads. The Manager uses bcrypt cost 4. A Fixture is safe for
// concurrent use; its Must methods must be called from the test's goroutine,
// since they stop the test on failure.
type Fixture struct {
	M     *users.Manager
	Store users.Store
	Clock *Clock
	n     atomic.Int64 // for fresh emails

	// passwordHash is Password's hash for MustCreate to give, when the
	// Manager would make one like it: "" otherwise.
	passwordHash string
}

// NewFixture returns a Fixture over store with a NewClock. edit, if not nil,
// may change the Options before the Manager is built. It stops the test if
// users.New fails.
func NewFixture(tb testing.TB, store users.Store, edit func(o *users.Options)) *Fixture {
	tb.Helper()
	f := &Fixture{Store: store, Clock: NewClock()}
	o := &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true, Now: f.Clock.Now}
	if edit != nil {
		edit(o)
	}
	m, err := users.New(store, o)
	if err != nil {
		tb.Fatalf("users.New: %v", err)
	}
	f.M = m
	if o.BcryptCost == 4 && o.MinPasswordLength == 0 && o.PasswordChecker == nil && o.BreachChecker == nil {
		if f.passwordHash, err = passwordHash(); err != nil {
			tb.Fatalf("hashing Password: %v", err)
		}
	}
	return f
}

// passwordHash is Password's hash in the users package's format at bcrypt
// cost 4, made once per process by a Manager of that cost (hashing is costly
// under -race, where a test binary would otherwise make hundreds).
var passwordHash = sync.OnceValues(func() (string, error) {
	s := users.NewMemoryStore()
	m, err := users.New(s, &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true})
	if err != nil {
		return "", err
	}
	ctx := context.Background()
	if _, err := m.Create(ctx, users.NewUser{Email: "hash@example.com", Password: Password}); err != nil {
		return "", err
	}
	r, err := s.GetUserByEmail(ctx, "hash@example.com")
	if err != nil {
		return "", err
	}
	return r.PasswordHash, nil
})

// Email returns an address no earlier call returned: user1@example.com,
// user2@example.com, …
func (f *Fixture) Email() string {
	return fmt.Sprintf("user%d@example.com", f.n.Add(1))
}

// MustCreate creates nu, with Password unless nu has a password or a hash, and
// stops the test if Create fails. When the Fixture's Options keep cost 4 and
// the default password rules, the user gets Password as a hash made once for
// every Fixture (NewUser.PasswordHash): the hash Create would have made but for
// its salt, without Create hashing. Create's own hashing is tested where it is
// the subject, not in every user a test needs.
func (f *Fixture) MustCreate(tb testing.TB, nu users.NewUser) *users.User {
	tb.Helper()
	if nu.Password == "" && nu.PasswordHash == "" {
		if f.passwordHash != "" {
			nu.PasswordHash = f.passwordHash
		} else {
			nu.Password = Password
		}
	}
	u, err := f.M.Create(tb.Context(), nu)
	if err != nil {
		tb.Fatalf("Create(%q): %v", nu.Email, err)
	}
	return u
}

// MustLogin logs in and stops the test if Login fails.
func (f *Fixture) MustLogin(tb testing.TB, identifier, password string) *users.Session {
	tb.Helper()
	s, err := f.M.Login(tb.Context(), identifier, password)
	if err != nil {
		tb.Fatalf("Login(%q): %v", identifier, err)
	}
	return s
}

// MustGet returns the user with the id and stops the test if Get fails.
func (f *Fixture) MustGet(tb testing.TB, id string) *users.User {
	tb.Helper()
	u, err := f.M.Get(tb.Context(), id)
	if err != nil {
		tb.Fatalf("Get(%q): %v", id, err)
	}
	return u
}

// ExactlyOne checks the outcome of a race: exactly one of errs is nil and every
// other matches loser (errors.Is). rule says what must hold, for the failure
// messages. It marks tb failed, without stopping it, for every call that broke
// the rule, and reports whether the rule held; call tb.FailNow when the rest of
// the test depends on it.
func ExactlyOne(tb testing.TB, errs []error, loser error, rule string) bool {
	tb.Helper()
	ok := 0
	held := true
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, loser):
			tb.Errorf("%s: call %d lost with %v, want %v", rule, i, err, loser)
			held = false
		}
	}
	if ok != 1 {
		tb.Errorf("%s: %d of %d concurrent calls succeeded, want exactly 1", rule, ok, len(errs))
		held = false
	}
	return held
}

// WantLockedTimingEqual drives known (an identifier that names a user of m
// whose password is password) and unknown (one that names nobody) into a lock
// with failed logins, then times failed logins for both, interleaved and
// alternating which goes first, samples each per attempt. It fails tb unless the
// ratio of the medians known/unknown is within 0.9-1.1 in one of three
// attempts: a locked account must cost what a locked stranger costs, or timing
// tells who has an account (SECURITY.md, equal work).
func WantLockedTimingEqual(tb testing.TB, m *users.Manager, known, unknown, password string, samples int) {
	tb.Helper()
	ctx := tb.Context()
	ids := []string{known, unknown}
	for _, id := range ids {
		for range 100 {
			if _, err := m.Login(ctx, id, "not the password"); errors.Is(err, users.ErrAccountLocked) {
				break
			}
		}
		if _, err := m.Login(ctx, id, password); !errors.Is(err, users.ErrAccountLocked) {
			tb.Fatalf("%s is not locked: %v", id, err)
		}
	}
	median := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	const attempts = 3
	for a := range attempts {
		var times [2][]time.Duration
		for i := range samples {
			for k := range ids {
				c := (i + k) % 2 // alternate which goes first
				start := time.Now()
				m.Login(ctx, ids[c], "not the password")
				times[c] = append(times[c], time.Since(start))
			}
		}
		k, u := median(times[0]), median(times[1])
		ratio := float64(k) / float64(u)
		tb.Logf("attempt %d: locked account median %v, locked unknown identifier median %v, ratio %.3f (%d samples each)", a+1, k, u, ratio, samples)
		if ratio >= 0.9 && ratio <= 1.1 {
			return
		}
		if a == attempts-1 {
			tb.Errorf("locked account vs locked unknown identifier: ratio of medians %.3f, want within 0.9-1.1 (in any of %d attempts)", ratio, attempts)
		}
	}
}

// WantRoleLogInCommitOrder reads the role changes of the user id from m's
// audit log (Manager.Audit, every page), oldest first, and fails tb unless
// they form one chain from first, the role the user had before them: each
// entry's role_from is the role_to of the entry before, and the last one's is
// the user's role now. A log whose IDs do not follow the order in which the
// changes committed breaks the chain (SECURITY.md, issue 20 item 7). Call it
// after the changes, from the test's goroutine: it stops the test when the log
// cannot be read or holds no role change.
func WantRoleLogInCommitOrder(tb testing.TB, m *users.Manager, id string, first users.Role) {
	tb.Helper()
	var changes []*users.AuditEntry // newest first
	filter := users.AuditFilter{UserID: id, Types: []users.EventType{users.EventRoleChanged}, Limit: 500}
	for {
		p, err := m.Audit(tb.Context(), filter)
		if err != nil {
			tb.Fatalf("Audit: %v", err)
		}
		changes = append(changes, p.Entries...)
		if p.Next == "" {
			break
		}
		filter.Before = p.Next
	}
	slices.Reverse(changes)
	if len(changes) == 0 {
		tb.Fatal("the log holds no role change")
	}
	prev := string(first)
	for i, e := range changes {
		if e.Data["role_from"] != prev {
			tb.Fatalf("entry %d of %d, oldest first, changes the role from %q, but the entry before set %q: the log is out of commit order", i+1, len(changes), e.Data["role_from"], prev)
		}
		prev = e.Data["role_to"]
	}
	u, err := m.Get(tb.Context(), id)
	if err != nil {
		tb.Fatalf("Get(%q): %v", id, err)
	}
	if string(u.Role) != prev {
		tb.Errorf("the last role change in the log sets %q, the user has %q", prev, u.Role)
	}
}
