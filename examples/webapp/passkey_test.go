package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/internal/passkeytest"
)

// The passkey handlers over HTTP, without a browser: what the pages offer,
// the JSON of the script's POSTs, and the checks in front of the library. The
// ceremonies themselves run in Chromium (passkey_browser_test.go).

// newPasskeySite starts a site reached at localhost (a relying party ID is a
// host name, never an IP address), whose Manager has passkeys for the relying
// party "localhost" and the origins, by default the site's own.
func newPasskeySite(tb testing.TB, dev bool, origins ...string) *site {
	tb.Helper()
	return startSite(tb, dev, "localhost", func(o *users.Options, base string) {
		if origins == nil {
			origins = []string{base}
		}
		o.Passkeys = &users.PasskeyOptions{RPID: "localhost", RPName: "Example app", Origins: origins}
	})
}

// answer is the JSON of a passkey POST: the options of a begin, or the
// passkeyAnswer of a finish.
type answer struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			Name string `json:"name"`
		} `json:"user"`
	} `json:"publicKey"`
	passkeyAnswer
}

// postJSON posts the form to path and reads its JSON answer.
func (b *browser) postJSON(path string, form url.Values) (int, answer) {
	b.tb.Helper()
	resp, body := b.post(path, form)
	var a answer
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		b.tb.Fatalf("POST %s: %s, Content-Type %q, want JSON:\n%s", path, resp.Status, ct, body)
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		b.tb.Fatalf("POST %s: %v\n%s", path, err, body)
	}
	return resp.StatusCode, a
}

// TestPasskeys_Off checks that a site whose Manager has no passkeys offers
// none: no forms on the pages, and 501 from the routes.
func TestPasskeys_Off(t *testing.T) {
	s := newSite(t, false)
	s.user(t, users.NewUser{Email: "ada@example.com", Password: "ada's own password"})
	b := s.browser(t)
	if _, body := b.get("/signin"); strings.Contains(body, "data-passkey") {
		t.Error("the sign-in page offers passkeys")
	}
	status, a := b.postJSON("/signin/passkey/begin", url.Values{"csrf": {b.token("/signin")}})
	if status != http.StatusNotImplemented || a.Error == "" {
		t.Errorf("begin: %d %+v, want 501 with an error", status, a)
	}
	b.signIn("ada@example.com", "ada's own password")
	if _, body := b.get("/account"); strings.Contains(body, "passkeys-heading") {
		t.Error("the account page has a passkeys section")
	}
}

// TestPasskeys_Begin checks what a passkey site offers and the options it
// answers: the sign-in page's form and autofill field, the CSRF check on the
// script's POSTs, the relying party in the options, and the way to confirm it
// is you when adding a passkey needs it.
func TestPasskeys_Begin(t *testing.T) {
	s := newPasskeySite(t, false)
	s.user(t, users.NewUser{Email: "ada@example.com", Password: "ada's own password"})
	b := s.browser(t)
	_, body := b.get("/signin")
	for _, want := range []string{`data-passkey="signin"`, `autocomplete="username webauthn"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the sign-in page lacks %s", want)
		}
	}
	if resp, _ := b.post("/signin/passkey/begin", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("begin without the form token: %s, want 403", resp.Status)
	}
	status, a := b.postJSON("/signin/passkey/begin", url.Values{"csrf": {b.token("/signin")}})
	if status != http.StatusOK || a.PublicKey.Challenge == "" || a.PublicKey.RPID != "localhost" {
		t.Errorf("begin: %d %+v, want the options for localhost", status, a)
	}

	b.signIn("ada@example.com", "ada's own password")
	csrf := b.token("/account")
	status, a = b.postJSON("/account/passkeys/begin", url.Values{"csrf": {csrf}})
	if status != http.StatusOK || a.PublicKey.RP.ID != "localhost" || a.PublicKey.User.Name != "ada@example.com" {
		t.Errorf("registration: %d %+v, want the options for ada at localhost", status, a)
	}
	s.clock.Advance(users.DefaultReauthWindow + time.Second)
	status, a = b.postJSON("/account/passkeys/begin", url.Values{"csrf": {csrf}})
	if status != http.StatusForbidden || a.Redirect != "/account/reauth?next=/account" {
		t.Errorf("registration with a stale session: %d %+v, want 403 and the way to confirm it is you", status, a)
	}
	if _, body := b.get(a.Redirect); !strings.Contains(body, "Confirm it is you") {
		t.Errorf("the page to confirm it is you:\n%s", body)
	}
}

// TestPasskeys_Refused checks that an answer that does not verify signs
// nobody in and says so in words, not a 500.
func TestPasskeys_Refused(t *testing.T) {
	s := newPasskeySite(t, false)
	b := s.browser(t)
	csrf := b.token("/signin")
	b.postJSON("/signin/passkey/begin", url.Values{"csrf": {csrf}})
	status, a := b.postJSON("/signin/passkey", url.Values{"csrf": {csrf}, "credential": {`{"id":"x","type":"public-key"}`}})
	if status != http.StatusUnauthorized || !strings.Contains(a.Error, "not accepted") || a.Redirect != "" {
		t.Errorf("a malformed answer: %d %+v, want 401 and not accepted", status, a)
	}
	if b.cookie(s.app.sessionCookie) != "" {
		t.Error("a session cookie after a refused passkey")
	}
}

// options posts a begin route's form and returns the options for the
// authenticator (the ceremony's publicKey).
func (b *browser) options(path string, form url.Values) []byte {
	b.tb.Helper()
	resp, body := b.post(path, form)
	var c struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if err := json.Unmarshal([]byte(body), &c); resp.StatusCode != http.StatusOK || err != nil || len(c.PublicKey) == 0 {
		b.tb.Fatalf("POST %s: %s (%v)\n%s", path, resp.Status, err, body)
	}
	return c.PublicKey
}

// TestPasskeys_Account adds, renames and removes a passkey through the
// account page's handlers with the software authenticator, signs in with it,
// and checks that the last way to sign in cannot be removed and that a name
// too long is refused on the page.
func TestPasskeys_Account(t *testing.T) {
	s := newPasskeySite(t, false)
	ada := s.user(t, users.NewUser{Email: "ada@example.com", Password: "ada's own password"})
	b := s.browser(t)
	b.signIn("ada@example.com", "ada's own password")
	key := passkeytest.New(s.app.base)
	csrf := b.token("/account")
	cred, err := key.Register(b.options("/account/passkeys/begin", url.Values{"csrf": {csrf}}))
	if err != nil {
		t.Fatal(err)
	}
	status, a := b.postJSON("/account/passkeys", url.Values{"csrf": {csrf}, "name": {"laptop"}, "credential": {string(cred)}})
	if status != http.StatusOK || a.Redirect != "/account" {
		t.Fatalf("adding: %d %+v", status, a)
	}
	id := key.CredentialIDs()[0]
	if _, body := b.get("/account"); !strings.Contains(body, `value="laptop"`) || !strings.Contains(body, "/account/passkeys/"+id+"/remove") {
		t.Errorf("the account page does not list the passkey:\n%s", body)
	}

	resp, body := b.post("/account/passkeys/"+id+"/rename", url.Values{"csrf": {csrf}, "name": {strings.Repeat("x", 257)}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "The name is too long.") {
		t.Errorf("a name too long: %s\n%s", resp.Status, body)
	}

	// Ada gives up her password: the passkey is her last way to sign in.
	if _, err := s.store.RemovePassword(t.Context(), ada.ID, s.clock.Now(), nil); err != nil {
		t.Fatal(err)
	}
	resp, body = b.post("/account/passkeys/"+id+"/remove", url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "only way to sign in") {
		t.Errorf("removing the last way to sign in: %s\n%s", resp.Status, body)
	}

	other := s.browser(t)
	other.get("/signin")
	form := url.Values{"csrf": {other.token("/signin")}, "next": {"/admin/users"}}
	cred, err = key.Assert(other.options("/signin/passkey/begin", form))
	if err != nil {
		t.Fatal(err)
	}
	form.Set("credential", string(cred))
	if status, a := other.postJSON("/signin/passkey", form); status != http.StatusOK || a.Redirect != "/admin/users" || other.cookie(s.app.sessionCookie) == "" {
		t.Errorf("signing in with the passkey: %d %+v", status, a)
	}
}

// TestPasskeyOptions checks the relying party the command takes from
// -base-url: its host name and origin, and passkeys off without a host name.
func TestPasskeyOptions(t *testing.T) {
	for base, want := range map[string]string{
		"http://localhost:8080":     "localhost http://localhost:8080",
		"https://app.example/":      "app.example https://app.example",
		"https://app.example:8443/": "app.example https://app.example:8443",
		"":                          "off",
		"http://127.0.0.1:8080":     "off",
		"https://[::1]:8443":        "off",
	} {
		got := "off"
		if o, err := passkeyOptions(base); err == nil {
			got = o.RPID + " " + strings.Join(o.Origins, ",")
		}
		if got != want {
			t.Errorf("passkeyOptions(%q) = %s, want %s", base, got, want)
		}
	}
}

// TestPasskeys_RememberedSecondStep checks that "Remember me" at the password
// reaches the session a passkey completes at the second step, as it reaches
// the one a code completes: the code page's passkey form carries it.
func TestPasskeys_RememberedSecondStep(t *testing.T) {
	s := newPasskeySite(t, false)
	const pw = "ada's own password"
	ada := s.user(t, users.NewUser{Email: "ada@example.com", Password: pw})
	b := s.browser(t)
	b.signIn("ada@example.com", pw)
	key := passkeytest.New(s.app.base)
	csrf := b.token("/account")
	cred, err := key.Register(b.options("/account/passkeys/begin", url.Values{"csrf": {csrf}}))
	if err != nil {
		t.Fatal(err)
	}
	if status, a := b.postJSON("/account/passkeys", url.Values{"csrf": {csrf}, "name": {"laptop"}, "credential": {string(cred)}}); status != http.StatusOK {
		t.Fatalf("adding: %d %+v", status, a)
	}
	s.enrol(t, ada.ID)

	other := s.browser(t)
	resp, body := other.post("/signin", url.Values{"csrf": {other.token("/signin")}, "identifier": {"ada@example.com"},
		"password": {pw}, "remember": {"on"}})
	to := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(to, "remember=on") || !strings.Contains(to, "passkey=1") {
		t.Fatalf("right password with Remember me: %s to %q\n%s", resp.Status, to, body)
	}
	_, page := other.get(to)
	if !strings.Contains(page, `action="/signin/code/passkey"`) {
		t.Fatalf("the code page offers no passkey:\n%s", page)
	}
	if n := strings.Count(page, `name="remember" value="on"`); n != 2 {
		t.Errorf("the code page carries Remember me in %d forms, want 2 (the code's and the passkey's):\n%s", n, page)
	}
	form := url.Values{"csrf": {other.token(to)}, "remember": {"on"}}
	cred, err = key.Assert(other.options("/signin/code/passkey/begin", form))
	if err != nil {
		t.Fatal(err)
	}
	form.Set("credential", string(cred))
	if status, a := other.postJSON("/signin/code/passkey", form); status != http.StatusOK {
		t.Fatalf("the second step with the passkey: %d %+v", status, a)
	}
	sess, err := s.users.ValidateToken(t.Context(), other.cookie(s.app.sessionCookie))
	if err != nil {
		t.Fatal(err)
	}
	if got := sess.ExpiresAt.Sub(sess.CreatedAt); got != users.DefaultRememberSessionTTL {
		t.Errorf("session after a remembered passkey second step lasts %v, want the remembered %v", got, users.DefaultRememberSessionTTL)
	}
}
