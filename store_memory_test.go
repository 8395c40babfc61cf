package users_test

import (
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

func TestMemoryStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) users.Store { return users.NewMemoryStore() })
}
