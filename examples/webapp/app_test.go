package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/userkit/users"
)

// browser is an HTTP client with a cookie jar that does not follow redirects,
// standing in for a browser that sends neither Sec-Fetch-Site nor Origin (as
// browsers from before 2020 do): CrossOriginProtection lets its requests
// through, so only the form token protects it.
type browser struct {
	tb     testing.TB
	site   *site
	client *http.Client
}

func (s *site) browser(tb testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	c := *s.srv.Client() // a copy: the server's client is shared
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{tb: tb, site: s, client: &c}
}

// do sends a request and returns the response with its body read.
func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.tb.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.tb.Fatal(err)
	}
	return resp, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.tb.Helper()
	req, _ := http.NewRequest("GET", b.site.srv.URL+path, nil)
	return b.do(req)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// token returns the CSRF token of the forms on the page at path.
func (b *browser) token(path string) string {
	b.tb.Helper()
	_, body := b.get(path)
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		b.tb.Fatalf("no CSRF token on %s", path)
	}
	return m[1]
}

// post sends the form to path with the given headers.
func (b *browser) post(path string, form url.Values, header ...string) (*http.Response, string) {
	b.tb.Helper()
	req, _ := http.NewRequest("POST", b.site.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

// signinToken returns a form token for the sign-in form: from its page, or,
// for a browser signed in already (sent away from /signin), the account's.
func (b *browser) signinToken() string {
	b.tb.Helper()
	if b.cookie(b.site.app.sessionCookie) != "" {
		return b.token("/account")
	}
	return b.token("/signin")
}

// signIn signs in through the form and returns the session token.
func (b *browser) signIn(identifier, password string) string {
	b.tb.Helper()
	resp, body := b.post("/signin", url.Values{"csrf": {b.signinToken()}, "identifier": {identifier}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther {
		b.tb.Fatalf("sign-in: %s\n%s", resp.Status, body)
	}
	return b.cookie(b.site.app.sessionCookie)
}

func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.site.srv.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func TestLocalPath(t *testing.T) {
	for next, want := range map[string]string{
		"/account":               "/account",
		"/admin/users?role=user": "/admin/users?role=user",
		"":                       "",
		"account":                "",
		"//evil.example/":        "",
		"/\\evil.example/":       "",
		"/\\/evil.example/":      "",
		"https://evil.example/":  "",
		"javascript:alert(1)":    "",
		"/\t/evil.example":       "",
		"/a\\b":                  "",
		" /account":              "",
	} {
		if got := localPath(next); got != want {
			t.Errorf("localPath(%q) = %q, want %q", next, got, want)
		}
	}
}

func TestSignIn_NextRedirect(t *testing.T) {
	s := newSite(t, false)
	s.user(t, users.NewUser{Email: "ada@example.com", Password: "correct horse battery"})
	for next, want := range map[string]string{
		"/admin/users":         "/admin/users",
		"//evil.example/x":     "/account",
		"https://evil.example": "/account",
		"/\\evil.example":      "/account",
	} {
		b := s.browser(t)
		resp, _ := b.post("/signin", url.Values{"csrf": {b.token("/signin")}, "identifier": {"ada@example.com"},
			"password": {"correct horse battery"}, "next": {next}})
		if got := resp.Header.Get("Location"); got != want {
			t.Errorf("next=%q: redirected to %q, want %q", next, got, want)
		}
	}
}

func TestHeaders(t *testing.T) {
	s := newSite(t, false)
	resp, body := s.browser(t).get("/signin")
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self'", "style-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	// Scripts only from the site itself: the one script file, never inline
	// or from elsewhere.
	if !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe-") || strings.Count(csp, "script-src") != 1 {
		t.Errorf("CSP %q allows scripts other than the site's own files", csp)
	}
	for h, want := range map[string]string{
		"Referrer-Policy":           "same-origin",
		"X-Content-Type-Options":    "nosniff",
		"X-Frame-Options":           "DENY",
		"Cache-Control":             "no-store",
		"Strict-Transport-Security": "max-age=31536000",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if !strings.Contains(body, `<label for="identifier">`) {
		t.Error("the sign-in page has no label for its identifier field")
	}
	// The CSP would block inline scripts and styles; the templates have none,
	// nor anything loaded from elsewhere. The layout's one script tag loads
	// the site's script file.
	fs.WalkDir(templateFS, ".", func(path string, d fs.DirEntry, err error) error {
		if d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(templateFS, path)
		b = bytes.Replace(b, []byte(`<script src="/static/passkey.js" defer></script>`), nil, 1)
		for _, bad := range []string{"<script", " style=", "<style", "http://", "https://", " on"} {
			if bad == " on" {
				if regexp.MustCompile(` on[a-z]+=`).Match(b) {
					t.Errorf("%s has an inline event handler", path)
				}
				continue
			}
			if strings.Contains(string(b), bad) {
				t.Errorf("%s contains %q", path, bad)
			}
		}
		return nil
	})
}

func TestCSRF(t *testing.T) {
	s := newSite(t, false)
	ada := s.user(t, users.NewUser{Email: "ada@example.com", Password: "correct horse battery"})
	b := s.browser(t)
	b.signIn("ada@example.com", "correct horse battery")
	profile := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "first_name": {"Mallory"}, "last_name": {""}, "username": {""}}
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		if u, _ := s.users.Get(t.Context(), ada.ID); u.FirstName != "" {
			t.Fatalf("the profile changed: first name %q", u.FirstName)
		}
	}
	t.Run("CrossSite", func(t *testing.T) {
		resp, body := b.post("/account/profile", profile(b.token("/account")), "Sec-Fetch-Site", "cross-site")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Cross-origin request refused") {
			t.Errorf("got %s, want 403 from CrossOriginProtection", resp.Status)
		}
		unchanged(t)
	})
	t.Run("OtherOrigin", func(t *testing.T) {
		resp, body := b.post("/account/profile", profile(b.token("/account")), "Origin", "https://evil.example")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Cross-origin request refused") {
			t.Errorf("got %s, want 403 from CrossOriginProtection", resp.Status)
		}
		unchanged(t)
	})
	t.Run("NoHeadersNoToken", func(t *testing.T) {
		resp, body := b.post("/account/profile", profile(""))
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "This form has expired") {
			t.Errorf("got %s, want 403 from the token check", resp.Status)
		}
		unchanged(t)
	})
	t.Run("AnotherBrowsersToken", func(t *testing.T) {
		other := s.browser(t).token("/signin")
		resp, _ := b.post("/account/profile", profile(other))
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("got %s, want 403", resp.Status)
		}
		unchanged(t)
	})
	t.Run("TokenFromBeforeSignIn", func(t *testing.T) {
		c := s.browser(t)
		before := c.token("/signin")
		c.signIn("ada@example.com", "correct horse battery")
		resp, _ := c.post("/account/profile", profile(before))
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("got %s, want 403: sign-in must replace the CSRF cookie", resp.Status)
		}
		unchanged(t)
	})
	t.Run("TokenIsNotTheSession", func(t *testing.T) {
		tok := b.token("/account")
		if sess := b.cookie(s.app.sessionCookie); tok == sess || strings.Contains(tok, sess) {
			t.Error("the CSRF token reveals the session token")
		}
	})
	t.Run("OK", func(t *testing.T) {
		resp, _ := b.post("/account/profile", profile(b.token("/account")), "Sec-Fetch-Site", "same-origin")
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("got %s, want 303", resp.Status)
		}
		if u, _ := s.users.Get(t.Context(), ada.ID); u.FirstName != "Mallory" {
			t.Errorf("first name %q, want Mallory", u.FirstName)
		}
	})
}

func TestSessionCookie(t *testing.T) {
	s := newSite(t, false)
	s.user(t, users.NewUser{Email: "ada@example.com", Password: "correct horse battery"})
	b := s.browser(t)
	// signIn signs in with the form's fields and extra, and returns the
	// session cookie set (not the one cleared before it).
	signIn := func(extra url.Values) *http.Cookie {
		t.Helper()
		f := url.Values{"csrf": {b.signinToken()}, "identifier": {"ada@example.com"}, "password": {"correct horse battery"}}
		for k, v := range extra {
			f[k] = v
		}
		resp, _ := b.post("/signin", f)
		var c *http.Cookie
		for _, k := range resp.Cookies() {
			if k.Name == "__Host-session" && k.Value != "" {
				c = k
			}
		}
		if c == nil {
			t.Fatalf("no __Host-session cookie set: %v", resp.Header["Set-Cookie"])
		}
		return c
	}
	c := signIn(nil)
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Errorf("cookie %s: want Secure, HttpOnly, SameSite=Lax, Path=/ and no Domain", c)
	}
	if _, err := s.users.ValidateToken(t.Context(), c.Value); err != nil {
		t.Fatal(err)
	}
	if !c.Expires.IsZero() || c.MaxAge != 0 {
		t.Errorf("cookie of a sign-in without \"Remember me\" expires %v (Max-Age %d), want one that ends with the browser", c.Expires, c.MaxAge)
	}
	// "Remember me": the cookie lasts as long as the remembered session.
	rc := signIn(url.Values{"remember": {"on"}})
	rs, err := s.users.ValidateToken(t.Context(), rc.Value)
	if err != nil {
		t.Fatal(err)
	}
	if d := rc.Expires.Sub(rs.ExpiresAt); d < -time.Second || d > time.Second || rs.ExpiresAt.Sub(rs.CreatedAt) != users.DefaultRememberSessionTTL {
		t.Errorf("remembered cookie expires %v, session %v (from %v), want the remembered session's 30 days", rc.Expires, rs.ExpiresAt, rs.CreatedAt)
	}

	// Signing in again replaces the session; signing out ends it.
	second := b.signIn("ada@example.com", "correct horse battery")
	if second == c.Value {
		t.Fatal("sign-in kept the session token")
	}
	if _, err := s.users.ValidateToken(t.Context(), c.Value); !errors.Is(err, users.ErrInvalidToken) {
		t.Errorf("the session before sign-in: %v, want ErrInvalidToken", err)
	}
	resp, _ := b.post("/signout", url.Values{"csrf": {b.token("/account")}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %s", resp.Status)
	}
	if _, err := s.users.ValidateToken(t.Context(), second); !errors.Is(err, users.ErrInvalidToken) {
		t.Errorf("the session after sign-out: %v, want ErrInvalidToken", err)
	}
	if b.cookie("__Host-session") != "" {
		t.Error("sign-out left the session cookie")
	}
}

func TestDevCookies(t *testing.T) {
	if _, err := NewApp(Config{Users: newSite(t, false).users, BaseURL: "http://127.0.0.1:8080"}); err == nil {
		t.Error("NewApp accepted an http BaseURL without Dev")
	}
	s := newSite(t, true)
	s.user(t, users.NewUser{Email: "ada@example.com", Password: "correct horse battery"})
	b := s.browser(t)
	b.signIn("ada@example.com", "correct horse battery")
	if b.cookie("dev-session") == "" || b.cookie("__Host-session") != "" {
		t.Error("with Dev, the session should be in the dev-session cookie")
	}
	resp, _ := b.get("/account")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/account over HTTP with Dev: %s", resp.Status)
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS over plain HTTP")
	}
}

// TestNoEnumeration checks that sign-up, forgot password and magic link answer
// a known email and an unknown one with the same response after the same store
// work: none for the email, since the lookup and the mail run on the worker.
// The worker is paused meanwhile, so a request that waited for it would hang.
func TestNoEnumeration(t *testing.T) {
	s := newSite(t, false)
	s.user(t, users.NewUser{Email: "ada@example.com", Username: "ada", Password: "correct horse battery"})
	for _, tc := range []struct {
		path         string
		form         url.Values
		wantKnown    string // subject of the mail to the known address
		wantUnknown  string // subject of the mail to the unknown one, or ""
		extraUnknown string
	}{
		{path: "/forgot", wantKnown: "Reset your password"},
		{path: "/magic", wantKnown: "Your sign-in link"},
		{path: "/signup", form: url.Values{"password": {"a fine new password"}, "username": {"newbie"}},
			wantKnown: "You already have an account", wantUnknown: "Create your account"},
	} {
		t.Run(tc.path[1:], func(t *testing.T) {
			b := s.browser(t)
			csrf := b.token(tc.path)
			resume := s.pause(t)
			answer := func(email string) (string, []string) {
				form := url.Values{"csrf": {csrf}, "email": {email}}
				for k, v := range tc.form {
					form[k] = v
				}
				s.store.take()
				resp, _ := b.post(tc.path, form)
				calls := s.store.take()
				_, page := b.get(resp.Header.Get("Location"))
				return resp.Status + " " + resp.Header.Get("Location") + "\n" + page, calls
			}
			known, knownCalls := answer("ada@example.com")
			unknown, unknownCalls := answer("nobody-" + tc.path[1:] + "@example.com")
			if known != unknown {
				t.Errorf("known and unknown emails get different answers:\n%s\n---\n%s", known, unknown)
			}
			if !slices.Equal(knownCalls, unknownCalls) {
				t.Errorf("store calls differ: known %v, unknown %v", knownCalls, unknownCalls)
			}
			if !slices.Equal(knownCalls, limiterCalls) {
				t.Errorf("store calls on the request path: %v, want only the rate limiter's %v", knownCalls, limiterCalls)
			}
			if !strings.Contains(known, "303 See Other /check-email") {
				t.Errorf("answer:\n%s", known)
			}
			resume()
			s.link(t, "ada@example.com", tc.wantKnown)
			if tc.wantUnknown != "" {
				s.link(t, "nobody-"+tc.path[1:]+"@example.com", tc.wantUnknown)
			}
		})
	}
}

// startRun runs the command with args in the background and returns the URL
// it listens on, and a func that stops it and returns run's error.
func startRun(t *testing.T, args ...string) (base string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0", "-db", t.TempDir() + "/webapp.db"}, args...), out)
	}()
	for deadline := time.Now().Add(time.Minute); base == ""; {
		if _, after, ok := strings.Cut(out.String(), "listening on "); ok {
			base = strings.TrimSpace(after)
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("run did not start")
		}
	}
	return base, func() error { cancel(); return <-done }
}

// TestRun starts the command on a bbolt file in -dev mode, signs the admin in
// over HTTP, and stops it; and starts it over HTTPS with its self-signed
// certificate.
func TestRun(t *testing.T) {
	if err := run(t.Context(), []string{"-dev", "-bcrypt-cost", "4", "-addr", "127.0.0.1:0", "-db", t.TempDir() + "/f.db",
		"-admin-email", "admin@example.com", "-admin-password", "a password in ps"}, io.Discard); err == nil {
		t.Error("-admin-password was accepted: flags show in ps")
	}
	t.Setenv("USERS_ADMIN_PASSWORD", "")
	err := run(t.Context(), []string{"-dev", "-bcrypt-cost", "4", "-addr", "127.0.0.1:0", "-db", t.TempDir() + "/g.db", "-admin-email", "admin@example.com"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "$USERS_ADMIN_PASSWORD") { // the test's stdin is no terminal
		t.Errorf("an admin with no password in the environment and no terminal: %v", err)
	}
	t.Setenv("USERS_ADMIN_PASSWORD", "the first admin's password")
	base, stop := startRun(t, "-dev", "-bcrypt-cost", "4", "-admin-email", "admin@example.com")
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Errorf("-dev listens on %s", base)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfInput.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no form token on /signin:\n%s", body)
	}
	resp, err = c.PostForm(base+"/signin", url.Values{"csrf": {string(m[1])}, "identifier": {"admin@example.com"}, "password": {"the first admin's password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
		t.Errorf("admin sign-in: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	if err := stop(); err != nil {
		t.Errorf("run: %v", err)
	}

	base, stop = startRun(t, "-bcrypt-cost", "10") // New hashes once at this cost
	if !strings.HasPrefix(base, "https://127.0.0.1:") {
		t.Errorf("without -dev it listens on %s", base)
	}
	tc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // self-signed
	resp, err = tc.Get(base + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Set-Cookie"), "__Host-csrf=") {
		t.Errorf("over HTTPS: %s, Set-Cookie %q", resp.Status, resp.Header.Get("Set-Cookie"))
	}
	if err := stop(); err != nil {
		t.Errorf("run: %v", err)
	}

	if err := run(t.Context(), []string{"-dev", "-addr", "0.0.0.0:0", "-db", t.TempDir() + "/x.db"}, io.Discard); err == nil {
		t.Error("-dev on a public address was accepted")
	}
	if err := run(t.Context(), []string{"-bcrypt-cost", "4", "-addr", "127.0.0.1:0", "-db", t.TempDir() + "/y.db"}, io.Discard); err == nil {
		t.Error("a bcrypt cost of 4 was accepted without -dev")
	}
}

func TestAdminUsers(t *testing.T) {
	s := newSite(t, false)
	s.user(t, users.NewUser{Email: "admin@example.com", Password: "the admin's password", Role: users.RoleAdmin})
	ada := s.user(t, users.NewUser{Email: "ada@example.com", Password: "correct horse battery"})

	b := s.browser(t)
	b.signIn("ada@example.com", "correct horse battery")
	if resp, _ := b.get("/admin/users"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a user on the admin page: %s, want 403", resp.Status)
	}
	resp, _ := b.post("/admin/users/"+ada.ID+"/role", url.Values{"csrf": {b.token("/account")}, "role": {"admin"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a user changing a role: %s, want 403", resp.Status)
	}

	a := s.browser(t)
	a.signIn("admin@example.com", "the admin's password")
	resp, body := a.get("/admin/users?role=bogus")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Role: must be") || strings.Contains(body, "page 0") {
		t.Errorf("an unknown role filter: %s\n%s", resp.Status, body)
	}
	_, body = a.get("/admin/users?status=active&q=ADA")
	if !strings.Contains(body, "1 user, page 1 of 1.") || !strings.Contains(body, "ada@example.com") {
		t.Errorf("search for ADA:\n%s", body)
	}
	admin, _ := s.users.GetByEmail(t.Context(), "admin@example.com")
	resp, _ = a.post("/admin/users/"+admin.ID+"/role", url.Values{"csrf": {a.token("/admin/users")}, "role": {"viewer"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("changing one's own role: %s", resp.Status)
	}
	if u, _ := s.users.Get(t.Context(), admin.ID); u.Role != users.RoleAdmin {
		t.Error("an admin demoted themselves")
	}
	resp, _ = a.post("/admin/users/"+ada.ID+"/status", url.Values{"csrf": {a.token("/admin/users")}, "status": {"suspended"},
		"back": {"//evil.example/admin/users"}})
	if got := resp.Header.Get("Location"); got != "/admin/users" {
		t.Errorf("back to %q, want /admin/users", got)
	}
	if u, _ := s.users.Get(t.Context(), ada.ID); u.Status != users.StatusSuspended {
		t.Errorf("ada is %s, want suspended", u.Status)
	}
	// Suspension ends ada's sessions at once.
	if resp, _ := b.get("/account"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a suspended user's session still works: %s", resp.Status)
	}
}

// TestMailGoesToTheStoredAddress checks that a link is mailed to the address
// the store holds for the account, not to the text typed into the form.
func TestMailGoesToTheStoredAddress(t *testing.T) {
	s := newSite(t, false)
	s.user(t, users.NewUser{Email: "ada@example.com", Password: "correct horse battery"})
	b := s.browser(t)
	for _, path := range []string{"/forgot", "/magic"} {
		resp, _ := b.post(path, url.Values{"csrf": {b.token(path)}, "email": {"  Ada@EXAMPLE.com "}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %s", path, resp.Status)
		}
	}
	s.link(t, "ada@example.com", "Reset your password")
	s.link(t, "ada@example.com", "Your sign-in link")
	for _, m := range mailLine.FindAllStringSubmatch(s.log.String(), -1) {
		if m[1] != "ada@example.com" {
			t.Errorf("mail to %q", m[1])
		}
	}
}

// TestIdleTimeout checks that the site's options (managerOptions) sign out a
// browser left without a request for defaultIdleTimeout, and keep one in use.
func TestIdleTimeout(t *testing.T) {
	s := newSite(t, false)
	s.user(t, users.NewUser{Email: "ada@example.com", Password: "correct horse battery"})
	b := s.browser(t)
	b.signIn("ada@example.com", "correct horse battery")
	for range 3 { // in use: a page every 20 minutes
		s.clock.Advance(20 * time.Minute)
		if resp, _ := b.get("/account"); resp.StatusCode != http.StatusOK {
			t.Fatalf("a session in use ended: %s", resp.Status)
		}
	}
	s.clock.Advance(defaultIdleTimeout + time.Minute) // LastSeenAt is written about once a minute
	if resp, _ := b.get("/account"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
		t.Errorf("after %v idle: %s to %q, want sign-in", defaultIdleTimeout+time.Minute, resp.Status, resp.Header.Get("Location"))
	}
	if defaultIdleTimeout > time.Hour {
		t.Errorf("defaultIdleTimeout %v: more than an hour is not what an example should teach", defaultIdleTimeout)
	}
}
