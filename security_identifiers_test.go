package users_test

// Identifier confusion: no input folds into someone else's email or username.

import (
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// Item 14: no input with a character outside ASCII normalises to an address or
// username, so Unicode folding never turns one into someone else's.
func TestSecurity_ASCIIBeforeFolding(t *testing.T) {
	refused := 0
	for r := rune(utf8.RuneSelf); r <= utf8.MaxRune; r++ {
		c := string(r) // surrogates become U+FFFD: still not ASCII
		for _, e := range []string{c + "victim@icloud.com", "victim@" + c + "cloud.com", "vic" + c + "tim@icloud.com", "victim@icloud.com" + c} {
			if got, err := users.NormalizeEmail(e); err == nil {
				t.Fatalf("NormalizeEmail(%q) (U+%04X) = %q, want a *ValidationError: a non-ASCII address must never become an ASCII one", e, r, got)
			} else if !errors.Is(err, users.ErrInvalidInput) {
				t.Fatalf("NormalizeEmail(%q): %v, want a *ValidationError", e, err)
			}
		}
		for _, u := range []string{c + "alice", "al" + c + "ice", "alice" + c} {
			if got, err := users.NormalizeUsername(u); err == nil {
				t.Fatalf("NormalizeUsername(%q) (U+%04X) = %q, want a *ValidationError", u, r, got)
			}
		}
		refused++
	}
	if refused != utf8.MaxRune+1-utf8.RuneSelf {
		t.Fatalf("walked %d runes", refused)
	}

	t.Run("Login", func(t *testing.T) {
		f := newFixture(t, nil)
		f.mustCreate(t, users.NewUser{Email: "kate@example.com", Username: "kate"})
		// U+212A KELVIN SIGN lower-cases to "k"; U+00A0 is trimmed as space.
		for _, id := range []string{"\u212aate@example.com", "\u212aate", "\u00a0kate@example.com", "kate@example.com\u2003"} {
			if n, err := f.secLogin(id, storetest.Password); !errors.Is(err, users.ErrInvalidCredentials) || n != 1 {
				t.Errorf("Login(%q) with kate's password: %v after %d comparisons; want ErrInvalidCredentials after 1 (it names nobody)", id, err, n)
			}
		}
		f.MustLogin(t, "  KATE@example.com ", storetest.Password)
	})
}
