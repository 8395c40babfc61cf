package main

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/userkit/users/breach"
)

type failingBreach struct{}

func (failingBreach) Breached(context.Context, string) (bool, error) {
	return false, errors.New("breach service down")
}

// TestSignupBreachedPassword checks that the sign-up form refuses a breached
// password on the page, since the Manager's check runs only in the queued
// job, and that a checker that cannot answer stops the sign-up.
func TestSignupBreachedPassword(t *testing.T) {
	const pw = "a breached password here"
	sum := sha1.Sum([]byte(pw))
	list, err := breach.ReadList(strings.NewReader(hex.EncodeToString(sum[:])+":7\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	signup := func(s *site, password string) (int, string) {
		b := s.browser(t)
		s.store.take()
		resp, page := b.post("/signup", url.Values{"csrf": {b.token("/signup")}, "email": {"new@example.com"}, "password": {password}})
		if calls := s.store.take(); len(calls) != 0 {
			t.Errorf("store calls %v for a refused sign-up", calls)
		}
		return resp.StatusCode, page
	}

	s := newSiteBreach(t, false, list)
	code, page := signup(s, pw)
	if code != 400 || !strings.Contains(page, "Has appeared in a data breach") {
		t.Errorf("sign-up with a breached password: %d\n%s", code, page)
	}
	if ms := s.mails("new@example.com"); len(ms) != 0 {
		t.Errorf("mails after a refused sign-up: %q", ms)
	}

	s = newSiteBreach(t, false, failingBreach{})
	if code, _ := signup(s, "an unlisted password"); code != 500 {
		t.Errorf("sign-up while the breach checker fails: %d, want 500", code)
	}
}
