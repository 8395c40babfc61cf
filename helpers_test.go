package users_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// Fixture is storetest's Fixture over a fresh memory store, with a counter of
// bcrypt comparisons.
type Fixture struct {
	*storetest.Fixture
	Compares atomic.Int64
}

// newFixture builds a Fixture. edit, if not nil, may change the options first.
func newFixture(tb testing.TB, edit func(o *users.Options)) *Fixture {
	tb.Helper()
	f := &Fixture{Fixture: storetest.NewFixture(tb, users.NewMemoryStore(), edit)}
	users.SetCompareHook(f.M, func() { f.Compares.Add(1) })
	return f
}

// mustCreate creates a user with storetest.Password (unless nu sets one) or
// fails the test, then advances the clock a millisecond, so that users created
// one after another are ordered by CreatedAt.
func (f *Fixture) mustCreate(tb testing.TB, nu users.NewUser) *users.User {
	tb.Helper()
	u := f.MustCreate(tb, nu)
	f.Clock.Advance(time.Millisecond)
	return u
}

// getSession is Store.GetSession into new records.
func getSession(ctx context.Context, s users.Store, hash []byte) (*users.SessionRecord, *users.UserRecord, error) {
	if len(hash) != sha256.Size {
		return nil, nil, fmt.Errorf("a token hash of %d bytes", len(hash))
	}
	var u users.UserRecord
	sr, err := s.GetSession(ctx, [sha256.Size]byte(hash), &u)
	if err != nil {
		return nil, nil, err
	}
	if sr.TokenHash == nil {
		sr.TokenHash = hash // GetSession may leave it to the caller
	}
	return &sr, &u, nil
}
