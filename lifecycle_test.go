package users_test

import (
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// TestRunManager_MemoryStore runs the account-lifecycle scenarios over the
// memory store until storetest.Run runs them for every store.
func TestRunManager_MemoryStore(t *testing.T) {
	storetest.RunManager(t, func(t *testing.T) users.Store { return users.NewMemoryStore() })
}
