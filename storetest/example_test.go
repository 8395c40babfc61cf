package storetest_test

import (
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// sessionsElsewhere stands for a store author's store that keeps sessions
// itself and takes the other domains from the memory store; here it only
// embeds the memory store.
type sessionsElsewhere struct {
	*users.MemoryStore
}

// A store author runs the whole suite from a test of their store, or one
// domain's rules while that domain is all they wrote.
func Example() {
	// In mystore_test.go:
	_ = func(t *testing.T) {
		newStore := func(t *testing.T) users.Store {
			s := sessionsElsewhere{users.NewMemoryStore()}
			// t.Cleanup(func() { s.Close() }) for a store that needs closing.
			return s
		}
		t.Run("Sessions", func(t *testing.T) { storetest.RunSessions(t, newStore) })
		t.Run("All", func(t *testing.T) { storetest.Run(t, newStore) })
	}
}
