package main

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/userkit/users"
)

// TestRateLimits: the site passes the client's address to the library, and a
// client over a limit gets 429 with Retry-After, for sign-in (whatever the
// accounts tried) and for the requests by email (whoever has the email).
func TestRateLimits(t *testing.T) {
	s := newSite(t, false)
	b := s.browser(t)
	login, _ := users.DefaultRateLimit(users.ActionLogin)
	for i := range login.PerClient {
		resp, _ := b.post("/signin", url.Values{"csrf": {b.token("/signin")}, "identifier": {"user" + strconv.Itoa(i) + "@example.com"}, "password": {"Winter2026!"}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("sign-in %d: %s, want 401", i, resp.Status)
		}
	}
	resp, body := b.post("/signin", url.Values{"csrf": {b.token("/signin")}, "identifier": {"another@example.com"}, "password": {"Winter2026!"}})
	if got, want := resp.Header.Get("Retry-After"), strconv.Itoa(int(login.Window.Seconds())); resp.StatusCode != http.StatusTooManyRequests || got != want {
		t.Errorf("sign-in over the limit: %s, Retry-After %q; want 429 and %s\n%s", resp.Status, got, want, body)
	}
	reset, _ := users.DefaultRateLimit(users.ActionPasswordReset)
	for i := range reset.PerIdentifier {
		if resp, _ := b.post("/forgot", url.Values{"csrf": {b.token("/forgot")}, "email": {"ada@example.com"}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("password reset request %d: %s, want the check-email page", i, resp.Status)
		}
	}
	resp, _ = b.post("/forgot", url.Values{"csrf": {b.token("/forgot")}, "email": {"ada@example.com"}})
	if got, want := resp.Header.Get("Retry-After"), strconv.Itoa(int(reset.Window.Seconds())); resp.StatusCode != http.StatusTooManyRequests || got != want {
		t.Errorf("password reset request over the limit: %s, Retry-After %q; want 429 and %s", resp.Status, got, want)
	}
}
