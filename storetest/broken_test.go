package storetest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userkit/users"
)

// Deliberately broken stores: each wraps the memory store and breaks one rule
// of the contract the way a real store could. TestBrokenStores runs the suite's
// part for that rule against each of them, in a child process (the suite takes
// a *testing.T, and a failing rule must fail a real test), and checks that the
// child fails, naming the rule.

// brokenEnv names the broken store the child process runs the suite on.
const brokenEnv = "STORETEST_BROKEN_STORE"

var brokenStores = []struct {
	name     string
	newStore func() users.Store
	run      func(t *testing.T, newStore func(t *testing.T) users.Store)
	failing  string // the subtest that must fail, below the child's test
}{
	{"None", func() users.Store { return users.NewMemoryStore() }, RunTokens, ""},
	{"LostUpdate", func() users.Store { return &lostUpdateStore{MemoryStore: users.NewMemoryStore()} }, RunUsers, "UpdateUser/ConcurrentReadModifyWrite"},
	{"DuplicateEmailUnderConcurrency", func() users.Store { return &racyEmailStore{MemoryStore: users.NewMemoryStore()} }, RunUsers, "CreateUser/ConcurrentSameEmail"},
	{"SessionOutlivesUser", func() users.Store { return &orphanSessionStore{MemoryStore: users.NewMemoryStore()} }, RunUsers, "DeleteUser/DeletesEverything"},
	{"AuditEntryDropped", func() users.Store { return &droppedAuditStore{users.NewMemoryStore()} }, RunAudit, "Audit/EveryMutatorWritesItsEntries"},
	{"TokenConsumedTwice", func() users.Store { return &twiceTokenStore{users.NewMemoryStore()} }, RunTokens, "ConsumeToken/ConcurrentExactlyOnce"},
	{"ReturnsStoredRecord", func() users.Store { return &aliasingStore{MemoryStore: users.NewMemoryStore()} }, RunUsers, "GetUser/ReturnsCopy"},
	{"SweepDeletesTooMuch", func() users.Store { return &eagerSweepStore{users.NewMemoryStore()} }, func(t *testing.T, newStore func(t *testing.T) users.Store) {
		runGroups(t, expiryGroups, newStore) // DeleteExpired is Run's, across the domains
	}, "DeleteExpired/Boundary"},
	{"RateLimitOvershoots", func() users.Store { return &lostAttemptStore{users.NewMemoryStore()} }, func(t *testing.T, newStore func(t *testing.T) users.Store) {
		for _, g := range throttleGroups {
			if g.name == "RateLimit" {
				runGroups(t, []storeGroup{g}, newStore)
			}
		}
	}, "RateLimit/ConcurrentAdmitsLimit"},
	{"CheckFindsCorruption", func() users.Store { return corruptStore{users.NewMemoryStore(), new(atomic.Bool)} }, RunTokens, "GetToken/NotFound"},
}

// TestBrokenStores checks that each broken store fails the rule it breaks, and
// that the unbroken memory store passes the same run.
func TestBrokenStores(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		return // the child process: TestBrokenStoreChild runs
	}
	t.Parallel()
	for _, b := range brokenStores {
		t.Run(b.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenStoreChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+b.name)
			out, err := cmd.CombinedOutput()
			if b.failing == "" {
				if err != nil {
					t.Fatalf("the memory store failed the run: %v\n%s", err, out)
				}
				return
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the child process with the %s store: err %v, want a failing test\n%s", b.name, err, out)
			}
			if want := "--- FAIL: TestBrokenStoreChild/" + b.failing + " "; !strings.Contains(string(out), want) {
				t.Errorf("the %s store did not fail %s (no %q in the output):\n%s", b.name, b.failing, want, out)
			}
			if !strings.Contains(string(out), "The rule: ") {
				t.Errorf("the failing rule's words were not logged:\n%s", out)
			}
		})
	}
}

// TestBrokenStoreChild runs one broken store's part of the suite, in the
// child process TestBrokenStores starts; otherwise it does nothing.
func TestBrokenStoreChild(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		return
	}
	for _, b := range brokenStores {
		if b.name == name {
			b.run(t, func(t *testing.T) users.Store { return b.newStore() })
			return
		}
	}
	t.Fatalf("no broken store %q", name)
}

// lostAttemptStore's UpdateLoginAttempts reads, calls fn and writes in
// separate steps, so concurrent counts overwrite each other and more attempts
// than the limit get through.
type lostAttemptStore struct{ *users.MemoryStore }

func (s *lostAttemptStore) UpdateLoginAttempts(ctx context.Context, key users.ThrottleKey, fn func(a *users.LoginAttempts) error, audit ...*users.AuditEntry) (users.LoginAttempts, error) {
	a, err := s.MemoryStore.GetLoginAttempts(ctx, key)
	if err != nil {
		return a, err
	}
	if err := fn(&a); err != nil {
		return users.LoginAttempts{}, err
	}
	runtime.Gosched() // let the others read the same count
	return s.MemoryStore.UpdateLoginAttempts(ctx, key, func(cur *users.LoginAttempts) error {
		*cur = a
		return nil
	}, audit...)
}

// lostUpdateStore's UpdateUser reads, calls fn and writes in three steps, so
// a concurrent update between the read and the write is lost.
type lostUpdateStore struct{ *users.MemoryStore }

func (s *lostUpdateStore) UpdateUser(ctx context.Context, id string, fn func(r *users.UserRecord) (users.Revoke, error), audit ...*users.AuditEntry) (*users.UserRecord, error) {
	cur, err := s.MemoryStore.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	rv, err := fn(cur)
	if err != nil {
		return nil, err
	}
	runtime.Gosched()
	return s.MemoryStore.UpdateUser(ctx, id, func(r *users.UserRecord) (users.Revoke, error) {
		gen := r.Generation
		*r = *cur.Clone()
		r.Generation = gen
		return rv, nil
	}, audit...)
}

// racyEmailStore checks an email and inserts it in two steps: of two
// CreateUser calls racing for one email, the loser is told it won.
type racyEmailStore struct {
	*users.MemoryStore
	mu       sync.Mutex
	inFlight map[string]int
}

func (s *racyEmailStore) CreateUser(ctx context.Context, r *users.UserRecord, audit ...*users.AuditEntry) error {
	s.mu.Lock()
	if s.inFlight == nil {
		s.inFlight = map[string]int{}
	}
	s.inFlight[r.Email]++
	racing := s.inFlight[r.Email] > 1
	s.mu.Unlock()
	for range 4 {
		runtime.Gosched()
	}
	err := s.MemoryStore.CreateUser(ctx, r, audit...)
	s.mu.Lock()
	racing = racing || s.inFlight[r.Email] > 1
	s.inFlight[r.Email]--
	s.mu.Unlock()
	if racing && errors.Is(err, users.ErrDuplicateEmail) {
		return nil // the check saw the email free; the insert went "through"
	}
	return err
}

// orphanSessionStore's DeleteUser leaves the user's sessions behind, listed
// under the deleted user.
type orphanSessionStore struct {
	*users.MemoryStore
	mu      sync.Mutex
	orphans map[string][]*users.SessionRecord
}

func (s *orphanSessionStore) DeleteUser(ctx context.Context, id string, audit ...*users.AuditEntry) error {
	ss, err := s.MemoryStore.ListSessions(ctx, id)
	if err != nil {
		return err
	}
	if err := s.MemoryStore.DeleteUser(ctx, id, audit...); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.orphans == nil {
		s.orphans = map[string][]*users.SessionRecord{}
	}
	s.orphans[id] = append(s.orphans[id], ss...)
	return nil
}

func (s *orphanSessionStore) ListSessions(ctx context.Context, userID string) ([]*users.SessionRecord, error) {
	ss, err := s.MemoryStore.ListSessions(ctx, userID)
	if err != nil || len(ss) > 0 {
		return ss, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.orphans[userID] {
		ss = append(ss, o.Clone())
	}
	return ss, nil
}

// droppedAuditStore's UpdateUser writes the change and drops its audit entries.
type droppedAuditStore struct{ *users.MemoryStore }

func (s *droppedAuditStore) UpdateUser(ctx context.Context, id string, fn func(r *users.UserRecord) (users.Revoke, error), _ ...*users.AuditEntry) (*users.UserRecord, error) {
	return s.MemoryStore.UpdateUser(ctx, id, fn)
}

// twiceTokenStore's ConsumeToken finds and deletes in two steps, so racing
// calls can each get the token.
type twiceTokenStore struct{ *users.MemoryStore }

func (s *twiceTokenStore) ConsumeToken(ctx context.Context, hash []byte, p users.Purpose, audit ...*users.AuditEntry) (*users.TokenRecord, error) {
	tok, err := s.MemoryStore.GetToken(ctx, hash, p)
	if err != nil {
		return nil, err
	}
	for range 4 {
		runtime.Gosched()
	}
	if _, err := s.MemoryStore.ConsumeToken(ctx, hash, p, audit...); err != nil && !errors.Is(err, users.ErrNotFound) {
		return nil, err
	}
	return tok, nil
}

// aliasingStore's GetUser keeps a cache of the records it returned and hands
// out the cached record itself, so a caller's change reaches the next reader.
type aliasingStore struct {
	*users.MemoryStore
	mu    sync.Mutex
	cache map[string]*users.UserRecord
}

func (s *aliasingStore) GetUser(ctx context.Context, id string) (*users.UserRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.cache[id]; ok {
		return r, nil
	}
	r, err := s.MemoryStore.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if s.cache == nil {
		s.cache = map[string]*users.UserRecord{}
	}
	s.cache[id] = r
	return r, nil
}

// eagerSweepStore's DeleteExpired also deletes what expires in the next
// second.
type eagerSweepStore struct{ *users.MemoryStore }

func (s *eagerSweepStore) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	return s.MemoryStore.DeleteExpired(ctx, now.Add(time.Second))
}

// corruptStore's Check reports corruption after a rule that asked GetToken
// for a missing token, as a store whose read path damaged its indexes would:
// the rule's own checks pass, and only Check fails it.
type corruptStore struct {
	*users.MemoryStore
	bad *atomic.Bool
}

func (s corruptStore) GetToken(ctx context.Context, hash []byte, p users.Purpose) (*users.TokenRecord, error) {
	tok, err := s.MemoryStore.GetToken(ctx, hash, p)
	if errors.Is(err, users.ErrNotFound) {
		s.bad.Store(true)
	}
	return tok, err
}

func (s corruptStore) Check(context.Context) error {
	if s.bad.Load() {
		return errors.New("an index is out of step with its records")
	}
	return nil
}
