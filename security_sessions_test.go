package users_test

// Sessions: absolute and idle timeouts hold at their edges, and an ended session
// never comes back.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users"
	"github.com/userkit/users/internal/soak"
	"github.com/userkit/users/storetest"
)

// Item 9: absolute and idle timeouts, at their edges.
func TestSecurity_SessionTimeouts(t *testing.T) {
	bg := t.Context()
	const ttl, idle = time.Hour, 10 * time.Minute
	valid := func(t *testing.T, f *Fixture, tok, when string, want bool) {
		t.Helper()
		_, err := f.M.ValidateToken(bg, tok)
		switch {
		case want && err != nil:
			t.Fatalf("%s: %v, want valid", when, err)
		case !want && !errors.Is(err, users.ErrInvalidToken):
			t.Fatalf("%s: %v, want ErrInvalidToken", when, err)
		}
	}
	setup := func(t *testing.T, idleTimeout time.Duration) (*Fixture, *users.Session) {
		f := newFixture(t, func(o *users.Options) { o.SessionTTL = ttl; o.SessionIdleTimeout = idleTimeout })
		f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		return f, f.MustLogin(t, "alice@example.com", storetest.Password)
	}
	t.Run("Absolute", func(t *testing.T) {
		f, s := setup(t, 0)
		if got := s.ExpiresAt.Sub(s.CreatedAt); got != ttl {
			t.Fatalf("ExpiresAt - CreatedAt = %v, want %v", got, ttl)
		}
		f.Clock.Advance(ttl - time.Nanosecond)
		valid(t, f, s.Token, "TTL-1ns", true)
		f.Clock.Advance(time.Nanosecond)
		valid(t, f, s.Token, "TTL", false)
		f.Clock.Advance(time.Nanosecond)
		valid(t, f, s.Token, "TTL+1ns", false)
	})
	t.Run("Idle", func(t *testing.T) {
		f, s := setup(t, idle)
		f.Clock.Advance(idle - time.Nanosecond)
		valid(t, f, s.Token, "idle-1ns after login", true) // activity: the idle clock restarts
		f.Clock.Advance(idle - time.Nanosecond)
		valid(t, f, s.Token, "idle-1ns after the last activity", true)
		f.Clock.Advance(idle)
		valid(t, f, s.Token, "idle after the last activity", false)
		f.Clock.Advance(time.Nanosecond)
		valid(t, f, s.Token, "idle+1ns after the last activity", false)

		s2 := f.MustLogin(t, "alice@example.com", storetest.Password)
		f.Clock.Advance(idle + time.Nanosecond)
		valid(t, f, s2.Token, "idle+1ns after login", false)
	})
	t.Run("IdleNeverLate", func(t *testing.T) {
		// Activity is recorded at most once a minute; a validation sooner than
		// that after the last recorded one may let the session end up to a
		// minute early, never late.
		f, s := setup(t, idle)
		f.Clock.Advance(30 * time.Second)
		valid(t, f, s.Token, "30s after login", true)
		f.Clock.Advance(idle - 30*time.Second)
		valid(t, f, s.Token, "idle after the last recorded activity", false)
	})
	t.Run("ActivityNeverExtendsPastAbsolute", func(t *testing.T) {
		f, s := setup(t, idle)
		var elapsed time.Duration
		for elapsed+9*time.Minute < ttl {
			f.Clock.Advance(9 * time.Minute)
			elapsed += 9 * time.Minute
			valid(t, f, s.Token, fmt.Sprintf("active at %v", elapsed), true)
		}
		f.Clock.Advance(ttl - elapsed - time.Nanosecond)
		got, err := f.M.ValidateToken(bg, s.Token)
		if err != nil {
			t.Fatalf("active at TTL-1ns: %v", err)
		}
		if !got.ExpiresAt.Equal(s.ExpiresAt) {
			t.Fatalf("activity moved ExpiresAt from %v to %v", s.ExpiresAt, got.ExpiresAt)
		}
		f.Clock.Advance(time.Nanosecond)
		valid(t, f, s.Token, "TTL, active a moment ago", false)
		f.Clock.Advance(time.Nanosecond)
		valid(t, f, s.Token, "TTL+1ns, active a moment ago", false)
		if ss, err := f.M.Sessions(bg, s.UserID); err != nil || len(ss) != 0 {
			t.Fatalf("Sessions after the absolute limit: %d, %v; want none", len(ss), err)
		}
	})
}

// secTouchCounter counts the LastSeenAt writes ValidateToken makes, and those
// that found the session gone. After each GetSession it waits pause, widening
// the window between ValidateToken's read and its write.
type secTouchCounter struct {
	users.Store
	touches, gone atomic.Int64
	pause         atomic.Int64 // nanoseconds
}

func (c *secTouchCounter) GetSession(ctx context.Context, h [sha256.Size]byte, u *users.UserRecord) (users.SessionRecord, error) {
	s, err := c.Store.GetSession(ctx, h, u)
	if d := time.Duration(c.pause.Load()); d > 0 {
		time.Sleep(d)
	}
	return s, err
}

func (c *secTouchCounter) TouchSession(ctx context.Context, h []byte, seen time.Time) error {
	err := c.Store.TouchSession(ctx, h, seen)
	c.touches.Add(1)
	if errors.Is(err, users.ErrNotFound) {
		c.gone.Add(1)
	}
	return err
}

// Item 10: a LastSeenAt write racing with an ending never brings a session back.
func TestSecurity_NoResurrection(t *testing.T) {
	t.Parallel()
	bg := t.Context()
	// Each round is one race of a touch with an ending; 200 give the
	// scheduler many interleavings, the soak's 1000 more.
	rounds := 200
	if soak.On {
		rounds = 1000
	}
	clock := storetest.NewClock()
	store := &secTouchCounter{Store: users.NewMemoryStore()}
	m := secManager(t, store, clock, nil, func(o *users.Options) {
		o.SessionIdleTimeout = 10 * time.Minute
		o.MaxFailedLogins = 100
	})
	passwords := [2]string{storetest.Password, "another good password"}
	alice, err := m.Create(bg, users.NewUser{Email: "alice@example.com", Password: passwords[0]})
	if err != nil {
		t.Fatal(err)
	}
	// Sessions come from magic links and users to remove are imported, so
	// that bcrypt (slow under -race) runs only where the ending needs it.
	imported, err := bcrypt.GenerateFromPassword([]byte(storetest.Password), 4)
	if err != nil {
		t.Fatal(err)
	}
	current, updateTook := 0, time.Duration(0)
	kinds := []string{"Logout", "LogoutAll", "UpdatePassword", "Remove"}
	validWon := make(map[string]int)
	for i := range rounds {
		kind := kinds[i%len(kinds)]
		userID, email := alice.ID, alice.Email
		if kind == "Remove" {
			email = fmt.Sprintf("r%d@example.com", i)
			u, err := m.Create(bg, users.NewUser{Email: email, PasswordHash: string(imported)})
			if err != nil {
				t.Fatal(err)
			}
			userID = u.ID
		}
		link, err := m.RequestMagicLink(bg, email)
		if err != nil {
			t.Fatalf("round %d: RequestMagicLink: %v", i, err)
		}
		s, err := m.LoginWithMagicLink(bg, link.Token)
		if err != nil {
			t.Fatalf("round %d: LoginWithMagicLink: %v", i, err)
		}
		clock.Advance(2 * time.Minute) // the next ValidateToken writes LastSeenAt
		// Vary the interleaving: no pause, or one as long as a part of the
		// ending (UpdatePassword runs two bcrypts at cost 4 first).
		store.pause.Store(int64([]time.Duration{0, 0, 20 * time.Microsecond, 300 * time.Microsecond, 3 * time.Millisecond}[i/len(kinds)%5]))

		var op func() error
		switch kind {
		case "Logout":
			op = func() error { return m.Logout(bg, s.Token) }
		case "LogoutAll":
			op = func() error { return m.LogoutAll(bg, userID) }
		case "UpdatePassword":
			next := 1 - current
			op = func() error { return m.UpdatePassword(bg, userID, passwords[current], passwords[next]) }
		case "Remove":
			op = func() error { return m.Remove(bg, userID) }
		}
		// UpdatePassword writes only after its two bcrypts: start ValidateToken
		// near that write, at a fraction of how long the last one took.
		var lead time.Duration
		if kind == "UpdatePassword" {
			lead = updateTook * time.Duration(80+5*(i/len(kinds)%6)) / 100
		}
		start := make(chan struct{})
		var vErr, opErr error
		var opTook time.Duration
		var wg sync.WaitGroup
		wg.Go(func() { <-start; time.Sleep(lead); _, vErr = m.ValidateToken(bg, s.Token) })
		wg.Go(func() { <-start; t0 := time.Now(); opErr = op(); opTook = time.Since(t0) })
		close(start)
		wg.Wait()
		if opErr != nil {
			t.Fatalf("round %d: %s: %v", i, kind, opErr)
		}
		if kind == "UpdatePassword" {
			current = 1 - current
			updateTook = opTook
		}
		switch {
		case vErr == nil:
			validWon[kind]++
		case !errors.Is(vErr, users.ErrInvalidToken):
			t.Fatalf("round %d: racing ValidateToken: %v", i, vErr)
		}
		store.pause.Store(0)
		if _, err := m.ValidateToken(bg, s.Token); !errors.Is(err, users.ErrInvalidToken) {
			t.Fatalf("round %d: the session is usable after %s raced with ValidateToken: %v", i, kind, err)
		}
		clock.Advance(2 * time.Minute)
		if _, err := m.ValidateToken(bg, s.Token); !errors.Is(err, users.ErrInvalidToken) {
			t.Fatalf("round %d: the session is usable later after %s: %v", i, kind, err)
		}
		if _, _, err := getSession(bg, store, sha256Sum(s.Token)); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("round %d: the store still holds the session after %s: %v", i, kind, err)
		}
	}
	if store.touches.Load() == 0 {
		t.Fatal("ValidateToken never wrote LastSeenAt: the race under test never happened")
	}
	t.Logf("%d rounds: ValidateToken answered valid before the ending in %v; %d LastSeenAt writes, %d found the session already gone",
		rounds, validWon, store.touches.Load(), store.gone.Load())
}
