package storetest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// A store author runs both suites from one test in the store's package:
// Run checks each Store method's contract, RunManager every account flow
// over the store. Each gets a new, empty store per subtest; close it with
// t.Cleanup. Run the test with -race: some rules race many goroutines.
//
// Here the memory store, the reference implementation, stands in for the
// author's own. The function below is what goes in mystore_test.go as
// func TestStore(t *testing.T).
func Example() {
	testStore := func(t *testing.T) {
		newStore := func(t *testing.T) users.Store {
			s := users.NewMemoryStore() // mystore.Open(t.TempDir()), say
			t.Cleanup(func() { /* s.Close() */ })
			return s
		}
		storetest.Run(t, newStore)        // TestStore/CreateUser/DuplicateEmail, …
		storetest.RunManager(t, newStore) // TestStore/PasswordReset/…, …
	}
	_ = testStore
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
