package main

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/breach"
)

type failingBreach struct{}

func (failingBreach) Breached(context.Context, string) (bool, error) {
	return false, errors.New("breach service down")
}

// TestSignupBreachedPassword checks that the page a sign-up link opens, where
// the password is chosen and the account created, refuses a breached password
// with the Manager's own check, and that a checker that cannot answer stops
// the sign-up. Nothing is created either way.
func TestSignupBreachedPassword(t *testing.T) {
	const pw = "a breached password here"
	sum := sha1.Sum([]byte(pw))
	list, err := breach.ReadList(strings.NewReader(hex.EncodeToString(sum[:])+":7\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	finish := func(s *site, password string) (int, string) {
		s.signUpAs(t, "new@example.com", "Create your account")
		link := strings.TrimPrefix(s.link(t, "new@example.com", "Create your account"), s.srv.URL)
		b := s.browser(t)
		resp, page := b.post("/signup/finish", url.Values{"csrf": {b.token(link)},
			"token": {strings.TrimPrefix(link, "/signup/finish?token=")}, "password": {password}})
		if _, err := s.users.GetByEmail(t.Context(), "new@example.com"); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("a refused sign-up created the account: %v", err)
		}
		return resp.StatusCode, page
	}

	s := newSiteBreach(t, false, list)
	if code, page := finish(s, pw); code != 400 || !strings.Contains(page, "Has appeared in a data breach") {
		t.Errorf("sign-up with a breached password: %d\n%s", code, page)
	}
	s = newSiteBreach(t, false, failingBreach{})
	if code, _ := finish(s, "an unlisted password"); code != 500 {
		t.Errorf("sign-up while the breach checker fails: %d, want 500", code)
	}
}
