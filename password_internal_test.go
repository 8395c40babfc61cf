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

// TestCommonPasswordsEveryWord checks the search over the embedded list: every
// word of it is found, in any case, through DefaultPasswordChecker, and a word
// one letter longer or shorter is not, unless it is in the list too.
func TestCommonPasswordsEveryWord(t *testing.T) {
	list := map[string]bool{}
	for _, line := range strings.Split(commonPasswordsText, "\n") {
		if w := strings.ToLower(strings.TrimSpace(line)); w != "" {
			list[w] = true
		}
	}
	if len(list) < 900 {
		t.Fatalf("the embedded list has %d words, want about 1,000", len(list))
	}
	for w := range list {
		if err := DefaultPasswordChecker(t.Context(), strings.ToUpper(w), nil); !isValidation(err, ValidationCommonPassword) {
			t.Errorf("DefaultPasswordChecker(%q) = %v, want %s", strings.ToUpper(w), err, ValidationCommonPassword)
		}
		for _, near := range []string{w + "x", w[1:], "x" + w} {
			if got := isCommonPassword(near); got != list[near] {
				t.Errorf("isCommonPassword(%q) = %v, want %v", near, got, list[near])
			}
		}
	}
}

func isValidation(err error, code ValidationCode) bool {
	v, ok := err.(*ValidationError)
	return ok && v.Code == code
}
