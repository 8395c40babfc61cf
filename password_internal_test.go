package users

import (
	"strings"
	"testing"
)

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
