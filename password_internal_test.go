package users

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestDecoyHashPerCost checks the decoy New shares between Managers: each
// Manager's decoy is a hash of our format at its own cost (a cheaper one would
// make an unknown user's login faster than a known one's), Managers at one
// cost share one, and it matches no password.
func TestDecoyHashPerCost(t *testing.T) {
	t.Parallel()
	newManager := func(cost int) *Manager {
		m, err := New(NewMemoryStore(), &Options{BcryptCost: cost, InsecureLowBcryptCostForTests: true})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a4, a5, b4 := newManager(4), newManager(5), newManager(4)
	for _, m := range []*Manager{a4, a5, b4} {
		h, found := strings.CutPrefix(m.dummyHash, hashPrefix)
		if !found {
			t.Fatalf("decoy %q is not in this package's format", m.dummyHash)
		}
		if got, err := bcrypt.Cost([]byte(h)); err != nil || got != m.cost {
			t.Errorf("a Manager at cost %d has a decoy at cost %d (%v)", m.cost, got, err)
		}
		for _, pw := range []string{"", "correct horse battery staple"} {
			if m.passwordCheck(m.dummyHash, pw)() {
				t.Errorf("the decoy at cost %d matched %q", m.cost, pw)
			}
		}
	}
	if a4.dummyHash != b4.dummyHash {
		t.Error("two Managers at cost 4 made a decoy each, want one shared")
	}
}
