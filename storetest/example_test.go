package storetest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// sessionsElsewhere stands for a store author's store that keeps sessions
// itself and takes the other domains from the memory store; here it only
// embeds the memory store.
type sessionsElsewhere struct {
	*users.MemoryStore
}

// A store author runs the whole suite from a test of their store (Run: every
// domain's rules and the Manager's account flows over the store), or one
// domain's rules while that domain is all they wrote. Each rule gets a new,
// empty store; close it with t.Cleanup. Run the test with -race: some rules
// race many goroutines.
func Example() {
	// In mystore_test.go:
	_ = func(t *testing.T) {
		newStore := func(t *testing.T) users.Store {
			s := sessionsElsewhere{users.NewMemoryStore()} // mystore.Open(t.TempDir()), say
			// t.Cleanup(func() { s.Close() }) for a store that needs closing.
			return s
		}
		t.Run("Sessions", func(t *testing.T) { storetest.RunSessions(t, newStore) })
		t.Run("All", func(t *testing.T) { storetest.Run(t, newStore) })
	}
}

// The fake clock stands still until a test moves it, so that expiry and
// lockout rules are tested without sleeping. (NewFixture builds a Manager
// over such a clock: Fixture.Clock.)
func ExampleClock() {
	ctx := context.Background()
	c := storetest.NewClock()
	m, err := users.New(users.NewMemoryStore(), &users.Options{
		Now: c.Now, BcryptCost: 4, InsecureLowBcryptCostForTests: true, // tests only
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: storetest.Password})
	s, _ := m.Login(ctx, "ada@example.com", storetest.Password)
	fmt.Println(s.CreatedAt.Format(time.DateTime), s.ExpiresAt.Format(time.DateTime))

	c.Advance(24 * time.Hour) // Options.SessionTTL, the default
	_, err = m.ValidateToken(ctx, s.Token)
	fmt.Println(err)
	// Output:
	// 2026-01-02 03:04:05 2026-01-03 03:04:05
	// users: invalid or expired token
}
