package main

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/examples/internal/providertest"
	"github.com/userkit/users/internal/oidctest"
)

var continueURL = regexp.MustCompile(`<a href="([^"]+)" id="continue">`)

// beginFlow posts the form to path (a provider button) and returns the
// answer and the provider's URL on the continue page.
func (b *browser) beginFlow(path string, form url.Values) (*http.Response, string) {
	b.tb.Helper()
	form.Set("csrf", b.token("/signin"))
	resp, body := b.post(path, form)
	m := continueURL.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		b.tb.Fatalf("POST %s: %s, no continue link:\n%s", path, resp.Status, body)
	}
	return resp, html.UnescapeString(m[1])
}

// TestProviderFlowCookie checks the cookie that binds a flow to the browser:
// HttpOnly, Secure with the __Host- prefix, SameSite=Lax (the provider's
// redirect back is a cross-site GET, which must carry it), expiring with the
// flow, and deleted by the callback; and that the continue page keeps the
// site's CSP.
func TestProviderFlowCookie(t *testing.T) {
	s, p := newProviderSite(t, false)
	b := s.browser(t)
	resp, authURL := b.beginFlow("/signin/with/test", url.Values{})
	c := setCookie(resp, "__Host-provider")
	if c == nil {
		t.Fatalf("no __Host-provider cookie: %q", resp.Header["Set-Cookie"])
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || c.Value == "" {
		t.Errorf("flow cookie %s: want HttpOnly, Secure, SameSite=Lax, Path=/, no Domain", c)
	}
	if d := c.Expires.Sub(s.clock.Now()); d <= 0 || d > users.DefaultProviderFlowTTL+1e9 {
		t.Errorf("flow cookie expires in %v, want the flow's %v", d, users.DefaultProviderFlowTTL)
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != csp {
		t.Errorf("continue page CSP %q, want the site's %q", got, csp)
	}
	if !strings.HasPrefix(authURL, p.URL+"/") {
		t.Fatalf("continue link %q is not the provider's", authURL)
	}

	resp, _ = b.get(providertest.Approve(t, p, authURL, provNew.Subject))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
		t.Fatalf("callback: %s to %q, want 303 to /account", resp.Status, resp.Header.Get("Location"))
	}
	if c := setCookie(resp, "__Host-provider"); c == nil || c.MaxAge >= 0 {
		t.Errorf("the callback did not delete the flow cookie: %v", c)
	}
	if b.cookie(s.app.sessionCookie) == "" {
		t.Error("no session after the callback")
	}
}

// TestProviderDevCookie checks the -dev flow cookie: over plain HTTP it
// cannot be Secure, so it is not a __Host- cookie.
func TestProviderDevCookie(t *testing.T) {
	s, _ := newProviderSite(t, true)
	resp, _ := s.browser(t).beginFlow("/signin/with/test", url.Values{})
	c := setCookie(resp, "dev-provider")
	if c == nil || c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("dev flow cookie %v: want HttpOnly, SameSite=Lax, not Secure", c)
	}
}

// TestProviderReturnPath checks that a sign-in through a provider comes back
// only to a path of this site.
func TestProviderReturnPath(t *testing.T) {
	s, p := newProviderSite(t, false)
	for next, want := range map[string]string{
		"/admin/users?x=1":     "/admin/users?x=1",
		"//evil.example/x":     "/account",
		"https://evil.example": "/account",
		"/\\evil.example":      "/account",
		"":                     "/account",
	} {
		b := s.browser(t)
		_, authURL := b.beginFlow("/signin/with/test", url.Values{"next": {next}})
		resp, body := b.get(providertest.Approve(t, p, authURL, provNew.Subject))
		if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != want {
			t.Errorf("next=%q: %s to %q, want 303 to %q\n%s", next, resp.Status, got, want, body)
		}
	}
}

// TestProviderCallbackInAnotherBrowser checks login CSRF: the callback of a
// flow an attacker started in their browser, finished at the provider as
// themselves, does not sign in the browser it is then opened in, whether
// that browser has no flow of its own or has one (whose binding differs: the
// attacker's flow is then spent).
func TestProviderCallbackInAnotherBrowser(t *testing.T) {
	s, p := newProviderSite(t, false)
	for _, ownFlow := range []bool{false, true} {
		attacker, victim := s.browser(t), s.browser(t)
		_, authURL := attacker.beginFlow("/signin/with/test", url.Values{})
		callback := providertest.Approve(t, p, authURL, provNew.Subject)
		victim.get("/signin") // a CSRF cookie, as a browser that visited has
		if ownFlow {
			victim.beginFlow("/signin/with/test", url.Values{})
		}
		resp, body := victim.get(callback)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "This sign-in has expired") {
			t.Errorf("own flow %v: callback in another browser: %s\n%s", ownFlow, resp.Status, body)
		}
		if victim.cookie(s.app.sessionCookie) != "" {
			t.Errorf("own flow %v: the victim's browser was signed in", ownFlow)
		}
		if ownFlow {
			if resp, _ := attacker.get(callback); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("the spent flow in its own browser: %s, want 400", resp.Status)
			}
		}
	}
}

// TestNoProviders checks the site without providers: no buttons, no account
// section, and no provider route that starts anything.
func TestNoProviders(t *testing.T) {
	s := newSite(t, false)
	s.user(t, users.NewUser{Email: "ada@example.com", Password: "correct horse battery"})
	b := s.browser(t)
	if _, body := b.get("/signin"); strings.Contains(body, "sign in with a provider") || strings.Contains(body, "/signin/with/") {
		t.Errorf("the sign-in page offers providers:\n%s", body)
	}
	resp, body := b.post("/signin/with/google", url.Values{"csrf": {b.token("/signin")}})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /signin/with/google: %s\n%s", resp.Status, body)
	}
	b.signIn("ada@example.com", "correct horse battery")
	if _, body := b.get("/account"); strings.Contains(body, "Sign-in providers") {
		t.Errorf("the account page shows providers:\n%s", body)
	}
}

// TestProviderSuspended checks that a suspended account is refused at the
// callback as at the password form, and that suspending one ends the
// sessions a provider made.
func TestProviderSuspended(t *testing.T) {
	s, p := newProviderSite(t, false)
	b := s.browser(t)
	_, authURL := b.beginFlow("/signin/with/test", url.Values{})
	b.get(providertest.Approve(t, p, authURL, provNew.Subject))
	token := b.cookie(s.app.sessionCookie)
	u, err := s.users.GetByEmail(t.Context(), provNew.Email)
	if err != nil || token == "" {
		t.Fatalf("sign-up through the provider: %v, session %q", err, token)
	}
	st := users.StatusSuspended
	if _, err := s.users.Update(t.Context(), u.ID, users.UserUpdate{Status: &st}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.users.ValidateToken(t.Context(), token); err == nil {
		t.Error("the provider's session outlived the suspension")
	}
	b = s.browser(t)
	_, authURL = b.beginFlow("/signin/with/test", url.Values{})
	resp, body := b.get(providertest.Approve(t, p, authURL, provNew.Subject))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "This account is suspended") {
		t.Errorf("a suspended account's sign-in: %s\n%s", resp.Status, body)
	}
	if b.cookie(s.app.sessionCookie) != "" {
		t.Error("a suspended account was signed in")
	}
}

// TestProviderCallbackOfAnotherProvider checks that a flow begun with one
// provider and brought back to another provider's callback path is refused
// before its code reaches any token endpoint, and that a callback path of no
// provider is a 404.
func TestProviderCallbackOfAnotherProvider(t *testing.T) {
	p, q := oidctest.New(t, provNew), oidctest.New(t, provNew)
	s := startSite(t, false, "127.0.0.1", func(o *users.Options, base string) {
		for name, op := range map[string]*oidctest.Server{"test": p, "other": q} {
			o.Providers = append(o.Providers, users.Provider{Name: name, Issuer: op.URL, ClientID: op.ClientID,
				ClientSecret: op.ClientSecret, RedirectURL: providerRedirectURL(base, name), AllowSignUp: true,
				HTTPClient: op.Client()})
		}
	})
	p.SetNow(s.clock.Now)
	q.SetNow(s.clock.Now)
	for _, tc := range []struct {
		path   string
		status int
		text   string
	}{
		{"/signin/with/nope/callback", http.StatusNotFound, "No such provider"},
		{"/signin/with/other/callback", http.StatusBadRequest, "This sign-in has expired"},
	} {
		b := s.browser(t)
		_, authURL := b.beginFlow("/signin/with/test", url.Values{})
		callback := providertest.Approve(t, p, authURL, provNew.Subject)
		if !strings.HasPrefix(callback, "/signin/with/test/callback?") {
			t.Fatalf("the provider's callback %q", callback)
		}
		resp, body := b.get(tc.path + strings.TrimPrefix(callback, "/signin/with/test/callback"))
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.text) {
			t.Errorf("%s: %s, want %d %q\n%s", tc.path, resp.Status, tc.status, tc.text, body)
		}
		if b.cookie(s.app.sessionCookie) != "" || p.TokenRequests()+q.TokenRequests() != 0 {
			t.Errorf("%s: signed in, or %d token requests; want neither", tc.path, p.TokenRequests()+q.TokenRequests())
		}
	}
}

// TestProviderUnconfirmedEmail checks that the site, which requires confirmed
// addresses, does not sign in a new user whose provider has not verified the
// address, mails them a confirmation link instead, and signs them in once
// they have followed it.
func TestProviderUnconfirmedEmail(t *testing.T) {
	s, p := newProviderSite(t, false)
	b := s.browser(t)
	_, authURL := b.beginFlow("/signin/with/test", url.Values{})
	resp, body := b.get(providertest.Approve(t, p, authURL, provUnconfirmed.Subject))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Confirm your email first") {
		t.Fatalf("sign-up with an unconfirmed address: %s\n%s", resp.Status, body)
	}
	if b.cookie(s.app.sessionCookie) != "" {
		t.Fatal("a user with an unconfirmed address was signed in")
	}
	s.waitMails(t, provUnconfirmed.Email, 0)
	m := s.mails(provUnconfirmed.Email)[0] // "subject link"
	link, err := url.Parse(m[strings.LastIndex(m, " ")+1:])
	if err != nil || link.Path != "/verify" {
		t.Fatalf("the mail's link %v, %v; want /verify", link, err)
	}
	if _, err := s.users.VerifyEmail(t.Context(), link.Query().Get("token")); err != nil {
		t.Fatalf("the mailed token: %v", err)
	}
	_, authURL = b.beginFlow("/signin/with/test", url.Values{})
	resp, _ = b.get(providertest.Approve(t, p, authURL, provUnconfirmed.Subject))
	if resp.StatusCode != http.StatusSeeOther || b.cookie(s.app.sessionCookie) == "" {
		t.Fatalf("sign-in after confirming: %s, want signed in", resp.Status)
	}
}

// TestProviderRateLimited checks that a rate limit met in a provider flow is
// answered 429 with Retry-After, like every other form's, not as a provider
// that cannot be reached.
func TestProviderRateLimited(t *testing.T) {
	s, _ := newProviderSite(t, false)
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/signin/with/test", nil).WithContext(context.WithValue(t.Context(), stateKey{}, &requestState{}))
	s.app.providerUnavailable(rec, r, "starting a flow", &users.LimitError{Err: users.ErrRateLimited, RetryAfter: 90 * time.Second})
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "90" {
		t.Errorf("status %d, Retry-After %q; want 429 and 90", rec.Code, rec.Header().Get("Retry-After"))
	}
}
