package storetest_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// checkedStore is a memory store with a Check method that counts its calls.
type checkedStore struct {
	*users.MemoryStore
	checks *atomic.Int64
}

func (s checkedStore) Check(ctx context.Context) error {
	s.checks.Add(1)
	return ctx.Err()
}

// TestRun_ProbesCheck checks that Run finds a store's optional Check method and
// calls it after each rule on every store it makes.
func TestRun_ProbesCheck(t *testing.T) {
	var made, checks atomic.Int64
	storetest.Run(t, func(t *testing.T) users.Store {
		made.Add(1)
		return checkedStore{users.NewMemoryStore(), &checks}
	})
	// The Manager rules build stores too but are not followed by Check.
	if got := checks.Load(); got == 0 || got > made.Load() {
		t.Errorf("Check called %d times for %d stores, want once after each contract rule", got, made.Load())
	}
}
