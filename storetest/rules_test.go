package storetest

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/userkit/users"
)

// countedStore is a memory store with a Check method that counts its calls.
type countedStore struct {
	*users.MemoryStore
	checks *atomic.Int64
}

func (s countedStore) Check(ctx context.Context) error {
	s.checks.Add(1)
	return ctx.Err()
}

// countRules is how many rules the groups hold.
func countRules(groups []storeGroup) int {
	n := 0
	for _, g := range groups {
		n += len(g.rules)
	}
	return n
}

// TestCheckAfterEveryRule runs each part of Run on stores with a Check method
// and checks that Check ran once on every store, after every rule: exactly one
// store and one Check per Store rule, and one Check per store the Manager rules
// made.
func TestCheckAfterEveryRule(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		run    func(t *testing.T, newStore func(t *testing.T) users.Store)
		groups []storeGroup // nil for the Manager rules
	}{
		{"Users", RunUsers, userGroups},
		{"Sessions", RunSessions, sessionGroups},
		{"Throttle", RunThrottle, throttleGroups},
		{"Tokens", RunTokens, tokenGroups},
		{"Audit", RunAudit, auditGroups},
		{"SecondFactor", RunSecondFactor, secondFactorGroups},
		{"Credentials", RunCredentials, credentialGroups},
		{"Flows", RunFlows, flowGroups},
		{"Ceremonies", RunCeremonies, ceremonyGroups},
		{"Expiry", func(t *testing.T, n func(t *testing.T) users.Store) { runGroups(t, expiryGroups, n) }, expiryGroups},
		{"Canceled", func(t *testing.T, n func(t *testing.T) users.Store) { runGroups(t, canceledGroups, n) }, canceledGroups},
		{"Manager", RunManager, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var made, checks atomic.Int64
			c.run(t, func(t *testing.T) users.Store {
				made.Add(1)
				// A Check during the rule would count too: there must be none.
				return countedStore{users.NewMemoryStore(), &checks}
			})
			if got, want := checks.Load(), made.Load(); got != want {
				t.Errorf("Check ran %d times on %d stores, want once on each", got, want)
			}
			if c.groups == nil {
				if got, want := made.Load(), int64(mgrRuleCount()); got < want {
					t.Errorf("the Manager rules made %d stores, want at least one per rule (%d)", got, want)
				}
				return
			}
			if got, want := checks.Load(), int64(countRules(c.groups)); got != want {
				t.Errorf("Check ran %d times, want %d: once after each rule", got, want)
			}
		})
	}
}

// mgrRuleCount is how many rules RunManager runs.
func mgrRuleCount() int {
	n := 0
	for _, rs := range [][]rule[*mgrSuite]{
		mgrTokenRules, mgrPasswordResetRules, mgrEmailVerificationRules, mgrInvitationRules,
		mgrMagicLinkRules, mgrEmailChangeRules, mgrPasswordChangeRules, mgrRemovedUserRules,
		mgrContextCanceledRules, mgrMFARules, mgrAuditRules(), mgrIdentityRules, mgrSessionLifetimeRules, mgrTrustedDeviceRules,
		mgrPasskeyRules,
	} {
		n += len(rs)
	}
	return n
}

// TestRuleCount logs how many rules there are, and fails if a table lost one
// or a rule has no words.
func TestRuleCount(t *testing.T) {
	store := 0
	for _, gs := range [][]storeGroup{userGroups, sessionGroups, throttleGroups, tokenGroups, auditGroups, secondFactorGroups, credentialGroups, flowGroups, ceremonyGroups, expiryGroups, canceledGroups} {
		for _, g := range gs {
			for _, r := range g.rules {
				if r.name == "" || r.explanation == "" || r.fn == nil {
					t.Errorf("%s: rule %q has no name, words or test", g.name, r.name)
				}
			}
		}
		store += countRules(gs)
	}
	mgr := mgrRuleCount()
	t.Logf("%d Store rules, %d Manager rules", store, mgr)
	// The rule counts when the tables were made one idiom: a smaller number
	// means a rule was dropped.
	if store < storeRulesAtLeast || mgr < mgrRulesAtLeast {
		t.Errorf("%d Store rules and %d Manager rules, want at least %d and %d", store, mgr, storeRulesAtLeast, mgrRulesAtLeast)
	}
}

// The rule counts when the three idioms became one.
const storeRulesAtLeast, mgrRulesAtLeast = 215, 108
