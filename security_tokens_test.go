package users_test

// One-time tokens: unguessable, stored only as a hash, and void once the account
// is suspended.

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// Item 9: 256-bit tokens from the random source, stored only as SHA-256.
func TestSecurity_TokenEntropy(t *testing.T) {
	t.Parallel()
	bg := t.Context()
	f := newFixture(t, nil)
	f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
	const n = 1000
	seen := make(map[string]bool, n)
	var ones [256]int
	check := func(what, tok string) []byte {
		t.Helper()
		raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
		if err != nil || len(raw) != 32 {
			t.Fatalf("%s %q: decodes to %d bytes (%v), want 32", what, tok, len(raw), err)
		}
		if seen[tok] {
			t.Fatalf("%s %q issued twice", what, tok)
		}
		seen[tok] = true
		for i := range 256 {
			ones[i] += int(raw[i/8] >> (i % 8) & 1)
		}
		return raw
	}
	var sessions []string
	for i := range n {
		if i%10 == 0 { // a tenth are session tokens: logins are slow under -race
			s := f.MustLogin(t, "alice@example.com", storetest.Password)
			check("session token", s.Token)
			sessions = append(sessions, s.Token)
			continue
		}
		d, err := f.M.RequestPasswordReset(bg, "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		tok := d.Token
		raw := check("reset token", tok)
		if _, err := f.Store.GetToken(bg, sha256Sum(tok), users.PurposePasswordReset); err != nil {
			t.Fatalf("the store does not know the reset token by SHA-256 of its string: %v", err)
		}
		if _, err := f.Store.GetToken(bg, sha256Sum(string(raw)), users.PurposePasswordReset); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("GetToken by SHA-256 of the raw bytes: %v, want ErrNotFound", err)
		}
	}
	// Every bit position is set in about half the tokens: 1000 fair coins stay
	// within 400-600 with probability 1-3e-10 each.
	for i, c := range ones {
		if c < 400 || c > 600 {
			t.Errorf("bit %d set in %d of %d tokens: not uniformly random", i, c, n)
		}
	}
	for _, tok := range sessions[:10] {
		raw, _ := base64.RawURLEncoding.DecodeString(tok)
		s, _, err := getSession(bg, f.Store, sha256Sum(tok))
		if err != nil {
			t.Fatalf("the store does not know the session by SHA-256 of its token string: %v", err)
		}
		if !bytes.Equal(s.TokenHash, sha256Sum(tok)) {
			t.Fatalf("TokenHash is not SHA-256 of the token string")
		}
		// GetSession takes 32 bytes: the raw token and the hash of the raw
		// token are the other keys of that size a store could have used.
		for _, k := range [][]byte{raw, sha256Sum(string(raw))} {
			if _, _, err := getSession(bg, f.Store, k); !errors.Is(err, users.ErrNotFound) {
				t.Fatalf("the store finds the session by another key than SHA-256 of the token string: %v", err)
			}
		}
	}
}

// Item 16: suspending (or deactivating) an account voids its outstanding
// one-time tokens, so none works after a reactivation.
func TestSecurity_SuspensionVoidsTokens(t *testing.T) {
	bg := t.Context()
	for _, status := range []users.Status{users.StatusSuspended, users.StatusInactive} {
		t.Run(string(status), func(t *testing.T) {
			f := newFixture(t, nil)
			u := f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
			reset, err := f.M.RequestPasswordReset(bg, u.Email)
			if err != nil {
				t.Fatal(err)
			}
			magic, err := f.M.RequestMagicLink(bg, u.Email)
			if err != nil {
				t.Fatal(err)
			}
			verify, err := f.M.RequestEmailVerification(bg, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			active := users.StatusActive
			for _, s := range []*users.Status{&status, &active} {
				if _, err := f.M.Update(bg, u.ID, users.UserUpdate{Status: s}); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.M.ResetPassword(bg, reset.Token, "a brand new password"); !errors.Is(err, users.ErrInvalidToken) {
				t.Errorf("reset token issued before %s, after reactivation: %v, want ErrInvalidToken", status, err)
			}
			if _, err := f.M.LoginWithMagicLink(bg, magic.Token); !errors.Is(err, users.ErrInvalidToken) {
				t.Errorf("magic link issued before %s, after reactivation: %v, want ErrInvalidToken", status, err)
			}
			if _, err := f.M.VerifyEmail(bg, verify.Token); !errors.Is(err, users.ErrInvalidToken) {
				t.Errorf("verification token issued before %s, after reactivation: %v, want ErrInvalidToken", status, err)
			}
		})
	}
}
