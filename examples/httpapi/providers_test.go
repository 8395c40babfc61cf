package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/examples/internal/providertest"
	"github.com/userkit/users/internal/oidctest"
	"github.com/userkit/users/storetest"
)

// The accounts at the test provider.
var (
	provAdmin = oidctest.Account{Subject: "sub-admin", Email: adminEmail, EmailVerified: true, Name: "Admin"}
	provNew   = oidctest.Account{Subject: "sub-new", Email: "newcomer@example.com", EmailVerified: true, Name: "Newcomer"}
	provJane  = oidctest.Account{Subject: "sub-jane", Email: "jane@example.com", EmailVerified: true, Name: "Jane"}
)

// newProviderEnv is an API with the loopback provider as "test" (sign-up
// through it allowed), the test MFA key, the front end at
// https://app.example, and the fake clock at now.
func newProviderEnv(t *testing.T) (*env, *oidctest.Server) {
	t.Helper()
	p := oidctest.New(t, provAdmin, provNew, provJane)
	e := newEnvOpts(t, users.NewMemoryStore(), users.Options{
		MFAKeys: []users.MFAKey{storetest.MFAKey},
		Providers: []users.Provider{{Name: "test", DisplayName: "Test provider", Issuer: p.URL,
			ClientID: p.ClientID, ClientSecret: p.ClientSecret, AllowSignUp: true, HTTPClient: p.Client(),
			RedirectURL: providerRedirectURL("https://api.example", "test")}},
	}, func(s *Server) { s.LinkBase = "https://app.example" })
	// The flow cookie expires with the flow, by the Manager's clock: set it to
	// now, as the browser's.
	e.clock.Advance(time.Since(e.clock.Now()))
	p.SetNow(e.clock.Now)
	return e, p
}

// webBrowser is a browser for the provider flow: a cookie jar, and
// redirects not followed, so that each step can be checked.
type webBrowser struct {
	e      *env
	client *http.Client
}

func (e *env) webBrowser() *webBrowser {
	jar, _ := cookiejar.New(nil)
	c := *e.ts.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &webBrowser{e: e, client: &c}
}

// get requests path (with its query) from the API and returns the answer,
// its body closed.
func (b *webBrowser) get(path string) *http.Response {
	b.e.tb.Helper()
	resp, err := b.client.Get(b.e.ts.URL + path)
	if err != nil {
		b.e.tb.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// result collects the answer of the flow with POST /v1/auth/providers/result
// and checks its status.
func (b *webBrowser) result(status int) *response {
	b.e.tb.Helper()
	return b.call("POST", "/v1/auth/providers/result", "", "", status)
}

// cookie returns the value of the browser's cookie for the API.
func (b *webBrowser) cookie(name string) string {
	u, _ := url.Parse(b.e.ts.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// finish has the provider approve subject at authURL, then opens
// the callback it redirects to, which must send the browser to the front
// end's path back; it returns the callback's answer.
func (b *webBrowser) finish(p *oidctest.Server, authURL, subject, back string) *http.Response {
	b.e.tb.Helper()
	cb := providertest.Approve(b.e.tb, p, authURL, subject)
	if !strings.HasPrefix(cb, "/v1/auth/providers/test/callback?") {
		b.e.tb.Fatalf("the provider redirected to %q, not the callback", cb)
	}
	resp := b.get(cb)
	if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != "https://app.example"+back {
		b.e.tb.Fatalf("callback: %s to %q, want 303 to https://app.example%s", resp.Status, got, back)
	}
	for _, c := range resp.Header["Set-Cookie"] {
		if len(c) > 4096 { // browsers drop a larger cookie (RFC 6265 section 6.1)
			b.e.tb.Errorf("the callback sets a cookie of %d bytes", len(c))
		}
	}
	return resp
}

// signIn runs a whole sign-in through the provider as subject, coming back
// to "/", and returns the result's answer, which must have status.
func (b *webBrowser) signIn(p *oidctest.Server, subject string, status int) *response {
	b.e.tb.Helper()
	resp := b.get("/v1/auth/providers/test/begin")
	if resp.StatusCode != http.StatusSeeOther {
		b.e.tb.Fatalf("begin: %s", resp.Status)
	}
	b.finish(p, resp.Header.Get("Location"), subject, "/")
	return b.result(status)
}

func cookieOf(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestProviders_SignIn signs up and in through the provider: the flow cookie,
// the hand-over of the answer through the result cookie, once, with no token
// in any URL, and a local return path only.
func TestProviders_SignIn(t *testing.T) {
	e, p := newProviderEnv(t)
	r := e.call("GET", "/v1/auth/providers", "", "", 200)
	if got := strings.TrimSpace(string(r.Data)); got != `[{"name":"test","display_name":"Test provider"}]` {
		t.Errorf("providers %s", got)
	}

	b := e.webBrowser()
	resp := b.get("/v1/auth/providers/test/begin?return_to=" + url.QueryEscape("/welcome?tab=1"))
	authURL := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(authURL, p.URL+"/") {
		t.Fatalf("begin: %s to %q, want 303 to the provider", resp.Status, authURL)
	}
	fc := cookieOf(resp, "provider_flow")
	if fc == nil || !fc.HttpOnly || fc.SameSite != http.SameSiteLaxMode || fc.Path != "/" || fc.Secure {
		t.Errorf("flow cookie %v: want HttpOnly, SameSite=Lax, Path=/ (not Secure over plain HTTP)", fc)
	}
	resp = b.finish(p, authURL, provNew.Subject, "/welcome?tab=1")
	if c := cookieOf(resp, "provider_flow"); c == nil || c.MaxAge >= 0 {
		t.Errorf("the callback did not delete the flow cookie: %v", c)
	}
	rc := cookieOf(resp, "provider_result")
	if rc == nil || !rc.HttpOnly || rc.SameSite != http.SameSiteLaxMode {
		t.Fatalf("result cookie %v: want HttpOnly, SameSite=Lax", rc)
	}
	if d := time.Until(rc.Expires); d <= 0 || d > resultTTL+time.Second {
		t.Errorf("result cookie expires in %v, want at most %v", d, resultTTL)
	}

	s := b.result(200).session(t)
	if strings.Contains(resp.Header.Get("Location"), s.Token) {
		t.Error("the session token is in the redirect to the front end")
	}
	me := e.call("GET", "/v1/me", s.Token, "", 200).user(t)
	if me.Email != provNew.Email || !me.EmailVerified {
		t.Errorf("signed up as %+v, want %s, verified", me, provNew.Email)
	}
	// Once only.
	b.result(404)
	if b.cookie("provider_result") != "" {
		t.Error("the result cookie outlived its collection")
	}

	// A user's record larger than a cookie can hold still signs in.
	prefs := map[string]string{}
	for i := range 64 {
		prefs[fmt.Sprintf("key%02d", i)] = strings.Repeat("v", 1000)
	}
	pj, _ := json.Marshal(map[string]any{"preferences": prefs})
	e.call("PATCH", "/v1/users/"+me.ID, s.Token, string(pj), 200)
	if got := e.webBrowser().signIn(p, provNew.Subject, 200).session(t).User; len(got.Preferences) != 64 {
		t.Errorf("signed in with %d preferences, want 64", len(got.Preferences))
	}

	// Only a local return path.
	for _, to := range []string{"https://evil.example/", "//evil.example", "/\\evil.example"} {
		e.fail("GET", "/v1/auth/providers/test/begin?return_to="+url.QueryEscape(to), "", "", 400, "invalid_request", "return_to")
	}
	e.fail("GET", "/v1/auth/providers/nope/begin", "", "", 404, users.CodeNotFound, "")
}

// TestProviders_CallbackInAnotherBrowser checks login CSRF: the callback of a
// flow an attacker began in their browser signs nobody in elsewhere.
func TestProviders_CallbackInAnotherBrowser(t *testing.T) {
	e, p := newProviderEnv(t)
	attacker, victim := e.webBrowser(), e.webBrowser()
	resp := attacker.get("/v1/auth/providers/test/begin")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("begin: %s", resp.Status)
	}
	if resp := victim.get(providertest.Approve(t, p, resp.Header.Get("Location"), provNew.Subject)); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "https://app.example/" {
		t.Fatalf("callback: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	r := victim.result(401)
	if r.Error == nil || r.Error.Code != users.CodeProviderFailed {
		t.Errorf("answer %s, want provider_failed", r.Raw)
	}
}

// TestProviders_CallbackOfAnotherProvider checks that a flow begun with one
// provider and brought back to another provider's callback is refused before
// its code reaches any token endpoint.
func TestProviders_CallbackOfAnotherProvider(t *testing.T) {
	p, q := oidctest.New(t, provNew), oidctest.New(t, provNew)
	var ps []users.Provider
	for name, op := range map[string]*oidctest.Server{"test": p, "other": q} {
		ps = append(ps, users.Provider{Name: name, Issuer: op.URL, ClientID: op.ClientID, ClientSecret: op.ClientSecret,
			AllowSignUp: true, HTTPClient: op.Client(), RedirectURL: providerRedirectURL("https://api.example", name)})
	}
	e := newEnvOpts(t, users.NewMemoryStore(), users.Options{MFAKeys: []users.MFAKey{storetest.MFAKey}, Providers: ps},
		func(s *Server) { s.LinkBase = "https://app.example" })
	e.clock.Advance(time.Since(e.clock.Now()))
	p.SetNow(e.clock.Now)
	q.SetNow(e.clock.Now)
	b := e.webBrowser()
	resp := b.get("/v1/auth/providers/test/begin")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("begin: %s", resp.Status)
	}
	cb := providertest.Approve(t, p, resp.Header.Get("Location"), provNew.Subject)
	if resp := b.get(strings.Replace(cb, "/test/callback", "/other/callback", 1)); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback at other's path: %s", resp.Status)
	}
	r := b.result(401)
	if r.Error == nil || r.Error.Code != users.CodeProviderFailed {
		t.Errorf("answer %s, want provider_failed", r.Raw)
	}
	if n := p.TokenRequests() + q.TokenRequests(); n != 0 {
		t.Errorf("%d token requests, want 0", n)
	}
}

// TestProviders_LinkAndUnlink links the provider to a signed-in user, signs
// in with it, unlinks it, and refuses to unlink a provider-only user's last
// way to sign in; an email with an account answers link_required.
func TestProviders_LinkAndUnlink(t *testing.T) {
	e, p := newProviderEnv(t)
	b := e.webBrowser()

	// The admin's email at the provider: sign in first, then link.
	r := b.signIn(p, provAdmin.Subject, 409)
	var lr struct {
		Error apiError `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.Raw), &lr); err != nil || r.Error.Code != codeLinkRequired ||
		lr.Error.LinkRequired == nil || lr.Error.LinkRequired.Email != adminEmail || lr.Error.LinkRequired.Provider != "test" {
		t.Errorf("answer %s, want link_required with the email", r.Raw)
	}

	admin := e.login(adminEmail, adminPassword)
	e.fail("POST", "/v1/me/identities", admin, `{"provider":"test","return_to":"https://evil.example"}`, 400, "invalid_request", "return_to")
	e.fail("POST", "/v1/me/identities", admin, `{"provider":"nope"}`, 404, users.CodeNotFound, "")
	r = b.call("POST", "/v1/me/identities", admin, `{"provider":"test","return_to":"/settings"}`, 200)
	var link struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(r.Data, &link); err != nil || !strings.HasPrefix(link.URL, p.URL+"/") {
		t.Fatalf("link answer %s, want the provider's URL", r.Raw)
	}
	b.finish(p, link.URL, provAdmin.Subject, "/settings")
	var id apiIdentity
	if r := b.result(200); json.Unmarshal(r.Data, &id) != nil || id.Provider != "test" || id.Email != adminEmail || id.ID == "" {
		t.Fatalf("link result %s, want the identity", r.Raw)
	}
	var ids []apiIdentity
	if err := json.Unmarshal(e.call("GET", "/v1/me/identities", admin, "", 200).Data, &ids); err != nil || len(ids) != 1 || ids[0].ID != id.ID {
		t.Fatalf("identities %+v (%v), want the one linked", ids, err)
	}

	// The identity now signs the admin in.
	other := e.webBrowser()
	s := other.signIn(p, provAdmin.Subject, 200).session(t)
	if me := e.call("GET", "/v1/me", s.Token, "", 200).user(t); me.Email != adminEmail {
		t.Errorf("signed in as %s, want the admin", me.Email)
	}
	// The admin has a password: unlinking is allowed, once.
	e.call("DELETE", "/v1/me/identities/"+url.PathEscape(id.ID), admin, "", 200)
	e.fail("DELETE", "/v1/me/identities/"+url.PathEscape(id.ID), admin, "", 404, users.CodeNotFound, "")

	// A user created through the provider has no other way to sign in.
	s = e.webBrowser().signIn(p, provNew.Subject, 200).session(t)
	if err := json.Unmarshal(e.call("GET", "/v1/me/identities", s.Token, "", 200).Data, &ids); err != nil || len(ids) != 1 {
		t.Fatalf("identities %+v (%v)", ids, err)
	}
	e.fail("DELETE", "/v1/me/identities/"+url.PathEscape(ids[0].ID), s.Token, "", 409, users.CodeLastSignInMethod, "")
	if err := json.Unmarshal(e.call("GET", "/v1/me/identities", s.Token, "", 200).Data, &ids); err != nil || len(ids) != 1 {
		t.Errorf("identities after the refusal %+v (%v), want the one", ids, err)
	}
}

// TestProviders_SecondFactor checks that a provider's sign-in is one factor:
// a user with TOTP gets the challenge, and its code the session.
func TestProviders_SecondFactor(t *testing.T) {
	e, p := newProviderEnv(t)
	admin := e.login(adminEmail, adminPassword)
	e.create(admin, `{"name":"Jane","email":"jane@example.com","password":"`+storetest.Password+`"}`)
	jane := e.login("jane@example.com", storetest.Password)
	b := e.webBrowser()
	r := b.call("POST", "/v1/me/identities", jane, `{"provider":"test"}`, 200)
	var link struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(r.Data, &link); err != nil {
		t.Fatal(err)
	}
	b.finish(p, link.URL, provJane.Subject, "/")
	b.result(200)
	secret, _, _ := e.enrol(jane)

	r = e.webBrowser().signIn(p, provJane.Subject, 401)
	if r.Error == nil || r.Error.Code != users.CodeMFARequired {
		t.Fatalf("answer %s, want mfa_required", r.Raw)
	}
	c := challengeOf(t, r)
	e.clock.Advance(30 * time.Second)
	s := e.complete(c, storetest.TOTPCode(t, secret, e.clock.Now()), 200).session(t)
	if me := e.call("GET", "/v1/me", s.Token, "", 200).user(t); me.Email != "jane@example.com" {
		t.Errorf("signed in as %s", me.Email)
	}
}

// TestProviders_SecureCookies checks the cookies over TLS, to this server or
// to a trusted proxy that says so: Secure, with the __Host- prefix.
func TestProviders_SecureCookies(t *testing.T) {
	e, _ := newProviderEnv(t)
	e.srv.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	h := e.srv.Handler()
	for name, req := range map[string]*http.Request{
		"TLS":   httptest.NewRequest("GET", "https://api.example/v1/auth/providers/test/begin", nil),
		"Proxy": httptest.NewRequest("GET", "http://api.example/v1/auth/providers/test/begin", nil),
		"Plain": httptest.NewRequest("GET", "http://api.example/v1/auth/providers/test/begin", nil),
		"Liar":  httptest.NewRequest("GET", "http://api.example/v1/auth/providers/test/begin", nil),
	} {
		req.RemoteAddr = "192.0.2.1:1234"
		if name == "Proxy" || name == "Liar" {
			req.Header.Set("X-Forwarded-Proto", "https")
		}
		if name == "Proxy" {
			req.RemoteAddr = "10.1.2.3:1234"
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		secure := name == "TLS" || name == "Proxy"
		want := "provider_flow"
		if secure {
			want = "__Host-provider_flow"
		}
		c := cookieOf(rec.Result(), want)
		if rec.Code != http.StatusSeeOther || c == nil || c.Secure != secure || !c.HttpOnly || c.Path != "/" {
			t.Errorf("%s: %d, cookie %v; want %s, Secure=%v", name, rec.Code, c, want, secure)
		}
	}
}

// call sends a JSON request from the browser, with its cookies and the
// bearer token (if not empty), keeps the cookies it sets, and checks the
// status.
func (b *webBrowser) call(method, path, token, body string, status int) *response {
	b.e.tb.Helper()
	req := b.e.request(method, path, token, body)
	for _, c := range b.client.Jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	r := b.e.send(req, status)
	b.client.Jar.SetCookies(req.URL, (&http.Response{Header: r.Header}).Cookies())
	return r
}

// TestFrontEnd checks that a callback sends the browser only to a path of the
// front end, whatever return_to the library hands back.
func TestFrontEnd(t *testing.T) {
	s := &Server{LinkBase: "https://app.example/"}
	for path, want := range map[string]string{
		"/":               "https://app.example/",
		"/welcome?tab=1":  "https://app.example/welcome?tab=1",
		"":                "https://app.example/",
		"@evil.example":   "https://app.example/",
		"//evil.example":  "https://app.example/",
		"/\\evil.example": "https://app.example/",
		"/users/@me":      "https://app.example/users/@me",
		"evil.example":    "https://app.example/",
		"/\tx":            "https://app.example/",
	} {
		if got := s.frontEnd(path); got != want {
			t.Errorf("frontEnd(%q) = %q, want %q", path, got, want)
		}
	}
}

// TestProviders_Reauth checks that linking and unlinking need a recent
// authentication, and that a user without a password gets one by signing in
// again through the provider.
func TestProviders_Reauth(t *testing.T) {
	e, p := newProviderEnv(t)
	s := e.webBrowser().signIn(p, provNew.Subject, 200).session(t)
	var ids []apiIdentity
	if err := json.Unmarshal(e.call("GET", "/v1/me/identities", s.Token, "", 200).Data, &ids); err != nil || len(ids) != 1 {
		t.Fatalf("identities %+v (%v)", ids, err)
	}
	e.clock.Advance(users.DefaultReauthWindow + time.Second)
	e.fail("POST", "/v1/me/identities", s.Token, `{"provider":"test"}`, 403, users.CodeReauthRequired, "")
	e.fail("DELETE", "/v1/me/identities/"+url.PathEscape(ids[0].ID), s.Token, "", 403, users.CodeReauthRequired, "")
	fresh := e.webBrowser().signIn(p, provNew.Subject, 200).session(t)
	e.fail("DELETE", "/v1/me/identities/"+url.PathEscape(ids[0].ID), fresh.Token, "", 409, users.CodeLastSignInMethod, "")
}
