package main

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/userkit/users"
)

// limiterCalls are the store calls of a request by email on its own path:
// the rate limiter's counts for the client and for the email, the same
// whoever has the email.
var limiterCalls = []string{"UpdateLoginAttempts", "UpdateLoginAttempts"}

// setCookieValue matches the value of a Set-Cookie header, which differs from
// browser to browser; the name and the attributes must not.
var setCookieValue = regexp.MustCompile(`^([^=]+)=[^;]*`)

// signupAnswer is everything a sign-up tells the one who asked, with the
// address masked, and the store work it caused.
type signupAnswer struct {
	status, location string
	setCookies       []string // names and attributes, values masked
	page             string   // the page the redirect leads to
	requestCalls     []string // store calls on the request's path
	jobCalls         []string // store calls of the job on the mail worker
}

// signUpAs posts the sign-up form from a new browser with email, a password
// and a username (which sign-up must ignore), and returns what came back.
func (s *site) signUpAs(t *testing.T, email, wantSubject string) signupAnswer {
	t.Helper()
	b := s.browser(t)
	csrf := b.token("/signup")
	resume := s.pause(t) // the job waits, so the request's own store calls are seen
	s.store.take()
	resp, body := b.post("/signup", url.Values{"csrf": {csrf}, "email": {email},
		"password": {"the password P chosen by mallory"}, "username": {"mallory"}})
	a := signupAnswer{status: resp.Status, location: resp.Header.Get("Location"), requestCalls: s.store.take()}
	for _, c := range resp.Header.Values("Set-Cookie") {
		a.setCookies = append(a.setCookies, setCookieValue.ReplaceAllString(c, "$1=…"))
	}
	_, page := b.get(a.location)
	a.page = strings.ReplaceAll(body+page, email, "EMAIL")
	resume()
	s.link(t, email, wantSubject)
	a.jobCalls = s.store.take()
	return a
}

// TestSignup_NoAccountOracle signs up with an email that has an account and
// with one that has none, through the HTTP layer, and checks that the answers
// are the same in status, redirect, cookies and page, after the same store
// work (only the rate limiter's counts on the request's path; one read on the mail worker, then one
// mail), and that neither the password nor the username given leaves a trace
// that sign-in or a second sign-up could read: the oracles of issue 20.
func TestSignup_NoAccountOracle(t *testing.T) {
	s := newSite(t, false)
	s.user(t, users.NewUser{Email: "ada@example.com", Password: "ada's own password"})
	known := s.signUpAs(t, "ada@example.com", "You already have an account")
	unknown := s.signUpAs(t, "nobody@example.com", "Create your account")
	if known.status != unknown.status || known.location != unknown.location || known.page != unknown.page {
		t.Errorf("different answers:\n%s %s\n%s\n---\n%s %s\n%s",
			known.status, known.location, known.page, unknown.status, unknown.location, unknown.page)
	}
	if !slices.Equal(known.setCookies, unknown.setCookies) {
		t.Errorf("different cookies: %q and %q", known.setCookies, unknown.setCookies)
	}
	if !slices.Equal(known.requestCalls, limiterCalls) || !slices.Equal(unknown.requestCalls, limiterCalls) {
		t.Errorf("store calls on the request path: %v and %v, want only the rate limiter's %v", known.requestCalls, unknown.requestCalls, limiterCalls)
	}
	if !slices.Equal(known.jobCalls, unknown.jobCalls) || !slices.Equal(known.jobCalls, []string{"GetUserByEmail"}) {
		t.Errorf("store work of the jobs: %v and %v, want one GetUserByEmail each", known.jobCalls, unknown.jobCalls)
	}
	if known.status != "303 See Other" || known.location != "/check-email?for=signup" {
		t.Errorf("answer %s to %s", known.status, known.location)
	}

	// The password oracle: sign-up took no password, so signing in with it
	// is refused alike for both addresses.
	b := s.browser(t)
	var pages []string
	for _, email := range []string{"ada@example.com", "nobody@example.com"} {
		resp, body := b.post("/signin", url.Values{"csrf": {b.token("/signin")}, "identifier": {email},
			"password": {"the password P chosen by mallory"}})
		pages = append(pages, resp.Status+"\n"+strings.ReplaceAll(body, email, "EMAIL"))
	}
	if pages[0] != pages[1] || !strings.HasPrefix(pages[0], "401") {
		t.Errorf("sign-in with the sign-up's password:\n%s\n---\n%s", pages[0], pages[1])
	}
	// The username oracle: sign-up created nobody and reserved no username.
	if _, err := s.users.GetByUsername(t.Context(), "mallory"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("the username given at sign-up: %v, want ErrNotFound", err)
	}
	if _, err := s.users.GetByEmail(t.Context(), "nobody@example.com"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("sign-up created an account before its link was followed: %v", err)
	}
}

// TestSignup_Finish follows a sign-up link: the page it opens creates the
// account with the password and username chosen there, its email confirmed,
// and signs in. The link cannot make a second account, nor be forged, nor be
// used after it expires.
func TestSignup_Finish(t *testing.T) {
	s := newSite(t, false)
	s.user(t, users.NewUser{Email: "ada@example.com", Username: "ada", Password: "ada's own password"})
	s.signUpAs(t, "grace@example.com", "Create your account")
	link := s.link(t, "grace@example.com", "Create your account")
	path := strings.TrimPrefix(link, s.srv.URL)
	token := strings.TrimPrefix(path, "/signup/finish?token=")

	b := s.browser(t)
	resp, body := b.get(path)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "grace@example.com") {
		t.Fatalf("the link's page: %s\n%s", resp.Status, body)
	}
	finish := func(username, password string) (*http.Response, string) {
		return b.post("/signup/finish", url.Values{"csrf": {b.token(path)}, "token": {token},
			"username": {username}, "password": {password}})
	}
	if resp, body := finish("grace", "short"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "at least 8") {
		t.Errorf("a short password: %s\n%s", resp.Status, body)
	}
	// A bad username and a short password: both errors at once, in the
	// summary too, in the form's order (username first), and the username
	// typed is kept, the password not.
	if resp, body := finish("not a name!", "short"); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(body, `id="username-error"`) || !strings.Contains(body, `id="password-error"`) ||
		!strings.Contains(body, "There are problems") || !strings.Contains(body, `value="not a name!"`) || strings.Contains(body, `value="short"`) ||
		!strings.Contains(body, `<a href="#username">Username: may contain only a-z, 0-9, _, . and -.</a>`) ||
		strings.Index(body, `<a href="#username">`) > strings.Index(body, `<a href="#password">Password: must be at least 8 characters.</a>`) {
		t.Errorf("a bad username and a short password: %s\n%s", resp.Status, body)
	}
	if resp, body := finish("ada", "grace's chosen password"); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "This username is taken.") {
		t.Errorf("a taken username: %s\n%s", resp.Status, body)
	}
	if _, err := s.users.GetByEmail(t.Context(), "grace@example.com"); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("a refused form created the account: %v", err)
	}
	resp, _ = finish("grace", "grace's chosen password")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" || b.cookie(s.app.sessionCookie) == "" {
		t.Fatalf("creating the account: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	u, err := s.users.GetByEmail(t.Context(), "grace@example.com")
	if err != nil || !u.EmailVerified || u.Username != "grace" {
		t.Fatalf("the new account: %+v, %v; want grace, confirmed", u, err)
	}

	other := s.browser(t)
	resp, body = other.post("/signup/finish", url.Values{"csrf": {other.token(path)}, "token": {token},
		"password": {"a second password for grace"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "You already have an account") {
		t.Errorf("the link used again: %s\n%s", resp.Status, body)
	}
	if _, err := s.users.Login(t.Context(), "grace@example.com", "a second password for grace"); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Errorf("the second use set a password: %v", err)
	}

	// Forged: another address with the MAC of this one; and expired.
	forged := s.app.signupToken("mallory@example.com", s.clock.Now().Add(2*time.Hour))
	forged = forged[:strings.Index(forged, ".")] + token[strings.Index(token, "."):]
	s.signUpAs(t, "eve@example.com", "Create your account")
	evePath := strings.TrimPrefix(s.link(t, "eve@example.com", "Create your account"), s.srv.URL)
	for _, c := range []struct{ name, path string }{
		{"forged", "/signup/finish?token=" + url.QueryEscape(forged)},
		{"truncated", path[:len(path)-4]},
		{"expired", evePath}, // last: it moves the clock
	} {
		name, path := c.name, c.path
		if name == "expired" {
			s.clock.Advance(signupLinkTTL)
		}
		if resp, body := other.get(path); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "This link does not work") {
			t.Errorf("%s link: %s\n%s", name, resp.Status, body)
		}
	}
	s.clock.Advance(-signupLinkTTL) // forged is good for two hours: only its MAC is wrong
	resp, _ = other.post("/signup/finish", url.Values{"csrf": {other.token("/signup")}, "token": {forged}, "password": {"mallory's password!"}})
	if _, err := s.users.GetByEmail(t.Context(), "mallory@example.com"); resp.StatusCode != http.StatusBadRequest || !errors.Is(err, users.ErrNotFound) {
		t.Errorf("a forged link: %s, account lookup %v", resp.Status, err)
	}
}
