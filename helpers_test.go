package users_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userkit/users"
)

// Clock is a fake clock for tests: it stands still until Advance is called.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testPassword passes every default rule.
const testPassword = "correct horse battery staple"

// Fixture is a Manager over a fresh memory store with a fake clock and a cheap
// bcrypt cost, and a counter of bcrypt comparisons.
type Fixture struct {
	M        *users.Manager
	Store    *users.MemoryStore
	Clock    *Clock
	Compares atomic.Int64
}

// newFixture builds a Fixture. edit, if not nil, may change the options first.
func newFixture(tb testing.TB, edit func(o *users.Options)) *Fixture {
	tb.Helper()
	f := &Fixture{Store: users.NewMemoryStore(), Clock: NewClock()}
	o := &users.Options{
		BcryptCost:                    4,
		InsecureLowBcryptCostForTests: true,
		Now:                           f.Clock.Now,
	}
	if edit != nil {
		edit(o)
	}
	m, err := users.New(f.Store, o)
	if err != nil {
		tb.Fatalf("users.New: %v", err)
	}
	users.SetCompareHook(m, func() { f.Compares.Add(1) })
	f.M = m
	return f
}

// mustCreate creates a user with testPassword (unless nu sets one) or fails the test.
func (f *Fixture) mustCreate(tb testing.TB, nu users.NewUser) *users.User {
	tb.Helper()
	if nu.Password == "" && nu.PasswordHash == "" {
		nu.Password = testPassword
	}
	u, err := f.M.Create(context.Background(), nu)
	if err != nil {
		tb.Fatalf("Create(%q): %v", nu.Email, err)
	}
	f.Clock.Advance(time.Millisecond)
	return u
}

// mustLogin logs in or fails the test.
func (f *Fixture) mustLogin(tb testing.TB, identifier, password string) *users.Session {
	tb.Helper()
	s, err := f.M.Login(context.Background(), identifier, password)
	if err != nil {
		tb.Fatalf("Login(%q): %v", identifier, err)
	}
	return s
}
