// Package storetest checks that a users.Store keeps the Store contract.
//
// A Store implementation runs the suite from one of its own tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) users.Store {
//			return mystore.Open(t.TempDir())
//		})
//	}
//
// Run has one subtest per rule of the contract, grouped by Store method
// (TestStore/CreateUser/DuplicateEmail, …), and a failing rule logs the rule
// in words. Some subtests call the Store from many goroutines at once: run the
// suite with -race.
//
// Each domain of the contract has its own entry, which runs only that
// domain's rules: RunUsers, RunSessions, RunThrottle, RunTokens, RunAudit,
// RunSecondFactor, RunCredentials and RunCeremonies; RunManager drives a users.Manager over
// the Store. Run runs them all. Every entry takes a whole users.Store, because the contract ties
// every domain to the user records and the audit log: a store author who
// writes one domain (sessions in Redis, say) joins it with another store's
// other domains into a users.Store and runs that domain's entry on it.
//
// The package is also the test kit that storetest's rules, the users package's
// tests and the stores' tests share: a fake Clock, a Fixture (a Manager over a
// Store with that clock) and ExactlyOne, the check that one racing call won.
package storetest

import (
	"context"
	"testing"

	"github.com/userkit/users"
)

// Run checks that the stores newStore returns keep the whole users.Store
// contract: the rules of every domain (RunUsers, RunSessions, RunThrottle,
// RunTokens, RunAudit, RunSecondFactor, RunCredentials, RunCeremonies), those of
// DeleteExpired and of a canceled context, which span the domains, and
// RunManager's. newStore is
// called once per rule (a Manager rule may call it more than once) and must
// return an empty Store, which it may close with t.Cleanup. Rules run one
// after the other.
//
// If a Store has a method Check(ctx context.Context) error, as the bbolt store
// does, Run calls it on every Store newStore made, after the rule that used
// it, and fails the rule with the error it returns, so a rule that leaves the
// store inconsistent is caught where it ran.
func Run(t *testing.T, newStore func(t *testing.T) users.Store) {
	RunUsers(t, newStore)
	RunSessions(t, newStore)
	RunThrottle(t, newStore)
	RunTokens(t, newStore)
	runGroups(t, expiryGroups, newStore)
	runGroups(t, auditGroups, newStore)
	runGroups(t, secondFactorGroups, newStore)
	runGroups(t, canceledGroups, newStore)
	RunCredentials(t, newStore) // credentials.go
	RunFlows(t, newStore)       // flows.go
	RunCeremonies(t, newStore)  // ceremonies.go
	t.Run("Manager", func(t *testing.T) { RunManager(t, newStore) })
}

// rule is one rule of a contract, as testing/slogtest pairs a case with its
// explanation: the subtest's name, the rule in words, and its test. The test
// gets what the rule runs on (a Store, or for the Manager rules a way to make
// stores) and the rule's words, which it may use in its messages; runRules
// logs them when the rule fails.
type rule[S any] struct {
	name        string
	explanation string
	fn          func(t *testing.T, s S, explanation string)
}

// runRules runs each rule as a subtest on what arg makes for it, and logs the
// rule's words when it fails.
func runRules[S any](t *testing.T, rules []rule[S], arg func(t *testing.T) S) {
	t.Helper()
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			t.Cleanup(func() {
				if t.Failed() {
					t.Log("The rule: " + r.explanation)
				}
			})
			r.fn(t, arg(t), r.explanation)
		})
	}
}

// runGroups runs each group of Store rules as a subtest, each rule on a new
// Store checked after the rule.
func runGroups(t *testing.T, groups []storeGroup, newStore func(t *testing.T) users.Store) {
	t.Helper()
	newStore = checked(newStore)
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { runRules(t, g.rules, newStore) })
	}
}

// checked returns a newStore that runs each Store's Check, when it has one,
// once the test that made the Store is over: after the rule, before the
// cleanup newStore registered (which may close the Store).
func checked(newStore func(t *testing.T) users.Store) func(t *testing.T) users.Store {
	return func(t *testing.T) users.Store {
		s := newStore(t)
		t.Cleanup(func() { checkStore(t, s) })
		return s
	}
}

// checkStore runs the store's own integrity check, when it has one: like
// fstest probing for fs.ReadDirFS, Run asks every Store for an optional
// Check(ctx) error method (the bbolt store has one) and fails the rule with
// the error Check returns. It runs in a cleanup, where t.Context is done, so
// Check gets a context of its own.
func checkStore(t *testing.T, s users.Store) {
	t.Helper()
	c, ok := s.(interface {
		Check(ctx context.Context) error
	})
	if !ok {
		return
	}
	if err := c.Check(context.Background()); err != nil {
		t.Errorf("after the rule, the store's Check: %v", err)
	}
}
