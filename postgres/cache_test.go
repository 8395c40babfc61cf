package postgres_test

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
	"github.com/userkit/users/storetest"
)

// newCached returns a Store with a session cache over pool, reading clock
// (nil: the real one), closed when the test ends, once its cache is on.
func newCached(t testing.TB, pool *pgxpool.Pool, clock *storetest.Clock) *postgres.Store {
	t.Helper()
	o := &postgres.Options{SessionCache: true}
	if clock != nil {
		o.Now = clock.Now
	}
	s, err := postgres.NewWithOptions(t.Context(), pool, o)
	if err != nil {
		t.Fatalf("NewWithOptions: %v", err)
	}
	t.Cleanup(s.Close)
	waitOn(t, s, 0)
	return s
}

// waitOn waits until the Store's cache listens on a connection other than
// the one with backend PID old (0: any).
func waitOn(t testing.TB, s *postgres.Store, old uint32) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if on, _, pid := postgres.CacheState(s); on && pid != old {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the session cache never started listening")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestStore_Cached runs the conformance suite on Stores with a session cache:
// every rule that reads a session after changing it holds on the Store that
// made the change, at once.
func TestStore_Cached(t *testing.T) {
	db := openTestDB(t)
	storetest.Run(t, func(t *testing.T) users.Store {
		return newCached(t, db.pool(t, db.schema(t)), nil)
	})
}

// sessionChange is a write that ends or changes a session or its user, made
// by store on the session sess of user u.
type sessionChange struct {
	name string
	do   func(t *testing.T, s *postgres.Store, u *users.UserRecord, sess *users.SessionRecord) error
}

func updateUser(fn func(r *users.UserRecord) users.Revoke) func(t *testing.T, s *postgres.Store, u *users.UserRecord, sess *users.SessionRecord) error {
	return func(t *testing.T, s *postgres.Store, u *users.UserRecord, sess *users.SessionRecord) error {
		_, err := s.UpdateUser(t.Context(), u.ID, func(r *users.UserRecord) (users.Revoke, error) { return fn(r), nil })
		return err
	}
}

var sessionChanges = []sessionChange{
	{"Logout", func(t *testing.T, s *postgres.Store, u *users.UserRecord, sess *users.SessionRecord) error {
		return s.DeleteSession(t.Context(), sess.TokenHash)
	}},
	{"Revoke", func(t *testing.T, s *postgres.Store, u *users.UserRecord, sess *users.SessionRecord) error {
		return s.DeleteSessionByID(t.Context(), u.ID, sess.ID)
	}},
	{"LogoutEverywhere", func(t *testing.T, s *postgres.Store, u *users.UserRecord, sess *users.SessionRecord) error {
		return s.DeleteUserSessions(t.Context(), u.ID)
	}},
	{"PasswordChange", updateUser(func(r *users.UserRecord) users.Revoke {
		r.PasswordHash = "$2a$04$another"
		return users.Revoke{Sessions: true}
	})},
	{"Suspension", updateUser(func(r *users.UserRecord) users.Revoke {
		r.Status = users.StatusSuspended
		return users.Revoke{}
	})},
	{"RoleChange", updateUser(func(r *users.UserRecord) users.Revoke {
		r.Role = users.RoleAdmin
		return users.Revoke{}
	})},
	{"Removal", func(t *testing.T, s *postgres.Store, u *users.UserRecord, sess *users.SessionRecord) error {
		return s.DeleteUser(t.Context(), u.ID)
	}},
	{"FactorChange", func(t *testing.T, s *postgres.Store, u *users.UserRecord, sess *users.SessionRecord) error {
		_, err := s.UpdateMFA(t.Context(), u.ID, func(r *users.MFARecord) (bool, error) {
			r.TOTP = &users.TOTPFactor{Secret: []byte("sealed"), KeyID: "k", Confirmed: true}
			return true, nil
		})
		return err
	}},
	{"StepUp", func(t *testing.T, s *postgres.Store, u *users.UserRecord, sess *users.SessionRecord) error {
		_, err := s.StepUpSession(t.Context(), u.ID, sess.ID, users.MethodTOTP, time.Now())
		return err
	}},
	{"Reauthentication", func(t *testing.T, s *postgres.Store, u *users.UserRecord, sess *users.SessionRecord) error {
		_, err := s.StepUpSession(t.Context(), u.ID, sess.ID, "", time.Now())
		return err
	}},
}

// wantCurrent fails the test unless s's GetSession of hash gives what the
// database holds now, as truth (a Store without a cache) reads it.
func wantCurrent(t *testing.T, s, truth *postgres.Store, hash []byte, rule string) {
	t.Helper()
	ws, wu, werr := getSession(t.Context(), truth, hash)
	gs, gu, gerr := getSession(t.Context(), s, hash)
	if !errors.Is(gerr, werr) && (gerr != nil || werr != nil) {
		t.Errorf("%s: GetSession = %v; the database gives %v", rule, gerr, werr)
		return
	}
	if !reflect.DeepEqual(gs, ws) || !reflect.DeepEqual(gu, wu) {
		t.Errorf("%s: GetSession = %+v, %+v; the database holds %+v, %+v", rule, gs, gu, ws, wu)
	}
}

// TestSessionCache_Bound checks the cache's bound for every write that ends
// or changes a session: the Store that made the write serves the new state as
// soon as the write returns, without its notification; another Store serves it once its notification
// has arrived; and, with the notification held back, once SessionCacheTTL has
// passed on its clock since the write returned.
func TestSessionCache_Bound(t *testing.T) {
	db := openTestDB(t)
	for _, c := range sessionChanges {
		t.Run(c.name, func(t *testing.T) {
			schema := db.schema(t)
			clock := storetest.NewClock()
			truth := mustNew(t, db.pool(t, schema))
			a := newCached(t, db.pool(t, schema), clock)
			b := newCached(t, db.pool(t, schema), clock)
			held := newCached(t, db.pool(t, schema), clock)

			forgot := make(chan string, 16)
			postgres.SetCacheHooks(b, nil, func(id string) { forgot <- id })
			release := make(chan struct{})
			var once sync.Once
			unblock := func() { once.Do(func() { close(release) }) }
			t.Cleanup(unblock)
			// a and held handle no notification until the test ends: a must
			// not need one for its own writes.
			postgres.SetCacheHooks(a, func(string) { <-release }, nil)
			postgres.SetCacheHooks(held, func(string) { <-release }, nil)

			u := newUser(c.name + "@example.com")
			if err := truth.CreateUser(t.Context(), u); err != nil {
				t.Fatal(err)
			}
			sess := &users.SessionRecord{
				ID: "S-" + u.ID, TokenHash: []byte(fmt.Sprintf("%-32.32s", "hash-"+u.ID)), UserID: u.ID,
				CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Hour), LastSeenAt: clock.Now(),
				Methods: []users.AuthMethod{users.MethodPassword},
			}
			if err := truth.CreateSession(t.Context(), sess); err != nil {
				t.Fatal(err)
			}
			for _, s := range []*postgres.Store{a, b, held} {
				if _, _, err := getSession(t.Context(), s, sess.TokenHash); err != nil {
					t.Fatal(err)
				}
				if _, n, _ := postgres.CacheState(s); n != 1 {
					t.Fatalf("a cached Store holds %d sessions after reading one; want 1", n)
				}
			}

			if err := c.do(t, a, u, sess); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			wantCurrent(t, a, truth, sess.TokenHash, "the Store that made the change, as soon as it returned")

			select {
			case id := <-forgot:
				if id != u.ID {
					t.Errorf("another Store was told to forget %q; want %q", id, u.ID)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("another Store was never notified of the change")
			}
			if _, n, _ := postgres.CacheState(b); n != 0 {
				t.Errorf("another Store holds %d sessions after the notification; want 0", n)
			}
			wantCurrent(t, b, truth, sess.TokenHash, "another Store, once notified")

			// held has not handled the notification: its entry may be served
			// until the bound, never after.
			clock.Advance(postgres.DefaultSessionCacheTTL)
			wantCurrent(t, held, truth, sess.TokenHash, "a Store whose notification is held back, SessionCacheTTL after the change")
			unblock()
		})
	}
}

// TestSessionCache_ListenerDrops checks that a cache whose listening
// connection drops forgets everything: what it held before the drop is not
// served once it listens again, since notifications sent in between were
// lost.
func TestSessionCache_ListenerDrops(t *testing.T) {
	db := openTestDB(t)
	schema := db.schema(t)
	truth := mustNew(t, db.pool(t, schema))
	s := newCached(t, db.pool(t, schema), nil)
	u := newUser("drops@example.com")
	if err := truth.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sess := &users.SessionRecord{ID: "S1", TokenHash: []byte("drops-0123456789abcdef0123456789"), UserID: u.ID,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), LastSeenAt: now}
	if err := truth.CreateSession(t.Context(), sess); err != nil {
		t.Fatal(err)
	}
	if _, _, err := getSession(t.Context(), s, sess.TokenHash); err != nil {
		t.Fatal(err)
	}
	_, n, pid := postgres.CacheState(s)
	if n != 1 {
		t.Fatalf("cache holds %d sessions; want 1", n)
	}
	if _, err := db.admin.Exec(t.Context(), `SELECT pg_terminate_backend($1)`, int64(pid)); err != nil {
		t.Fatal(err)
	}
	waitOn(t, s, pid)
	if _, n, _ := postgres.CacheState(s); n != 0 {
		t.Errorf("cache holds %d sessions after its listening connection dropped and came back; want 0", n)
	}
}

// TestNewWithOptions_Invalid checks that negative cache settings are refused
// with a ValidationError naming the field.
func TestNewWithOptions_Invalid(t *testing.T) {
	db := openTestDB(t)
	pool := db.pool(t, db.schema(t))
	for field, o := range map[string]*postgres.Options{
		"SessionCacheTTL":  {SessionCache: true, SessionCacheTTL: -time.Second},
		"SessionCacheSize": {SessionCache: true, SessionCacheSize: -1},
	} {
		_, err := postgres.NewWithOptions(t.Context(), pool, o)
		var ve *users.ValidationError
		if !errors.As(err, &ve) || ve.Field != field || !errors.Is(err, users.ErrInvalidInput) {
			t.Errorf("NewWithOptions with a negative %s = %v; want a ValidationError for it", field, err)
		}
	}
}
