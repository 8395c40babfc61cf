package users_test

import (
	"testing"

	"github.com/userkit/users"
)

// TestMemoryStore checks that the memory store keeps the Store contract.
// storetest.Run, every rule, runs over it in TestMyStore, the README's example
// (readme_test.go), behind the README's type that forwards every method (so
// the Manager sees only the interface); storetest's own tests run the rules
// over it again with a Check method. A third run here would run the same code
// a third time, so this test makes sure TestMyStore's store stays the memory
// store, which would otherwise go unchecked.
func TestMemoryStore(t *testing.T) {
	t.Parallel()
	s := newMyStore(t)
	if w, ok := s.(myStore); !ok {
		t.Fatalf("TestMyStore runs storetest.Run over a %T, want a myStore over the memory store", s)
	} else if _, ok := w.Store.(*users.MemoryStore); !ok {
		t.Fatalf("TestMyStore runs storetest.Run over a myStore over a %T, want the memory store", w.Store)
	}
}
