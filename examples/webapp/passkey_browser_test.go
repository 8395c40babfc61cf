package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/userkit/users"
)

// The passkey harness: Chromium's virtual authenticators, driven through the
// DevTools WebAuthn domain. A virtual authenticator belongs to one tab and
// answers navigator.credentials in it as a real one would, with a real key
// pair, so the site sees genuine attestations and assertions.

// addAuthenticator gives the tab a virtual platform authenticator that keeps
// discoverable credentials (passkeys) and answers every request at once, as
// if its user touched it; uv says whether it verifies its user (a PIN, a
// fingerprint).
func (b *tab) addAuthenticator(t *testing.T, uv bool) webauthn.AuthenticatorID {
	t.Helper()
	ctx, cancel := b.timeout()
	defer cancel()
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	res, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:                    webauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                webauthn.Ctap2versionCtap21,
			Transport:                   webauthn.AuthenticatorTransportInternal,
			HasResidentKey:              true,
			HasUserVerification:         uv,
			IsUserVerified:              uv,
			AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	return res.AuthenticatorID
}

// held returns the credentials the authenticator holds.
func (b *tab) held(t *testing.T, id webauthn.AuthenticatorID) []*webauthn.Credential {
	t.Helper()
	ctx, cancel := b.timeout()
	defer cancel()
	res, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
	if err != nil {
		t.Fatalf("WebAuthn.getCredentials: %v", err)
	}
	return res.Credentials
}

// impostor puts into the authenticator a passkey that claims to be c (the
// same credential ID, relying party and user) with a key pair of its own, as
// a copy made without the private key would be.
func (b *tab) impostor(t *testing.T, id webauthn.AuthenticatorID, c *webauthn.Credential) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// The generated webauthn.Credential always sends
	// generateCmtgKeyOnNextOperation, which Chromium refuses for an
	// authenticator without that extension: send the command with only the
	// fields it needs.
	type credential struct {
		CredentialID         []byte `json:"credentialId"`
		IsResidentCredential bool   `json:"isResidentCredential"`
		RpID                 string `json:"rpId"`
		PrivateKey           []byte `json:"privateKey"`
		UserHandle           []byte `json:"userHandle"`
		SignCount            int    `json:"signCount"`
	}
	type params struct {
		AuthenticatorID webauthn.AuthenticatorID `json:"authenticatorId"`
		Credential      credential               `json:"credential"`
	}
	addCredential := cdp.Command[params, cdp.Empty]{Method: webauthn.CommandAddCredential}
	ctx, cancel := b.timeout()
	defer cancel()
	if _, err := chromedp.Call(ctx, addCredential, params{AuthenticatorID: id, Credential: credential{
		CredentialID: c.CredentialID, IsResidentCredential: true, RpID: c.RpID,
		PrivateKey: der, UserHandle: c.UserHandle, SignCount: 1}}); err != nil {
		t.Fatalf("WebAuthn.addCredential: %v", err)
	}
}

// withoutAutofill makes the tab's pages, from the next one on, report that
// the browser has no passkey autofill (conditional mediation), so that a
// page's passkey button, or its password, is what signs in: the virtual
// authenticator would otherwise answer the autofill request at once. It
// returns the func that gives the autofill back.
func (b *tab) withoutAutofill(t *testing.T) (restore func()) {
	t.Helper()
	ctx, cancel := b.timeout()
	defer cancel()
	res, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
		Source: `if (window.PublicKeyCredential) PublicKeyCredential.isConditionalMediationAvailable = async () => false;`,
	})
	if err != nil {
		t.Fatalf("Page.addScriptToEvaluateOnNewDocument: %v", err)
	}
	return func() {
		ctx, cancel := b.timeout()
		defer cancel()
		if _, err := chromedp.Call(ctx, cdppage.RemoveScriptToEvaluateOnNewDocument,
			cdppage.RemoveScriptToEvaluateOnNewDocumentParams(res)); err != nil {
			t.Fatalf("Page.removeScriptToEvaluateOnNewDocument: %v", err)
		}
	}
}

// eval evaluates expr in the tab's page, waiting at most a few seconds (a
// page that is being replaced may not answer).
func (b *tab) eval(expr string) (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[string](expr))
}

// await polls the page, across the navigations the site's script starts,
// until expr (a string expression) is not empty, and returns it.
func (b *tab) await(t *testing.T, what, expr string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got, err := b.eval(expr); err == nil && got != "" {
			return got
		}
		if time.Now().After(deadline) {
			main, _ := b.eval(`document.querySelector("main") ? document.querySelector("main").innerText : ""`)
			t.Fatalf("waited 30s for %s; the page says:\n%s", what, main)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// arrive waits until the script has taken the tab to the page with heading
// h1, then checks it as want does.
func (b *tab) arrive(t *testing.T, h1 string, texts ...string) {
	t.Helper()
	b.await(t, "the page "+h1, `(() => { const h = document.querySelector("h1");
		return h && document.readyState === "complete" && h.textContent.trim() === `+jsString(h1)+` ? "yes" : ""; })()`)
	b.want(t, h1, texts...)
}

// press clicks a passkey form's button, whose ceremony is meant to fail, and
// returns the text the form then shows in its alert.
func (b *tab) press(t *testing.T, css string) string {
	t.Helper()
	ctx, cancel := b.timeout()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(css))); err != nil {
		t.Fatalf("clicking %s: %v", css, err)
	}
	return b.await(t, "an error on the page", `(() => { const a = document.querySelector("form[data-passkey] [role=alert]");
		return a && !a.hidden ? a.textContent : ""; })()`)
}

// refused opens the sign-in page, signs in with a passkey and checks that
// the page says want and the tab has no session.
func (b *tab) refused(t *testing.T, s *site, want string) {
	t.Helper()
	b.open(t, "/signin")
	if got := b.press(t, "#passkey-signin"); !strings.Contains(got, want) {
		t.Errorf("the page says %q, want %q", got, want)
	}
	if sess := b.session(t, s); sess != nil {
		t.Fatalf("signed in: %+v", sess)
	}
}

// signInAndAddPasskey signs in with the password (no passkey autofill: the
// tab's authenticator may hold one) and adds a passkey named name on the
// account page.
func (b *tab) signInAndAddPasskey(t *testing.T, identifier, password, name string) {
	t.Helper()
	restore := b.withoutAutofill(t)
	defer restore()
	b.open(t, "/signin")
	b.fill(t, "identifier", identifier, "password", password)
	b.click(t, "main form button")
	b.want(t, "Your account")
	b.fill(t, "passkey_name", name)
	b.click(t, "#passkey-add")
	b.arrive(t, "Your account", "Your passkey is added.")
}

// jsString quotes s for a JavaScript expression.
func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// session returns the session of the tab's session cookie for the site, or
// nil when it has none that is valid.
func (b *tab) session(t *testing.T, s *site) *users.Session {
	t.Helper()
	for _, c := range b.siteCookies(t) {
		if c.Name == s.app.sessionCookie {
			if sess, err := s.users.ValidateToken(t.Context(), c.Value); err == nil {
				return sess
			}
		}
	}
	return nil
}

// TestBrowser_Passkeys walks passkeys in Chromium, over HTTPS at localhost,
// with virtual authenticators that verify their user: a passkey added on the
// account page and renamed, sign-in with it by the button and by the username field's
// autofill, a passkey as the second step after the password (for a user with
// an authenticator app too), confirming it is you with it, and removing it.
// It fails where it must: another authenticator that does not hold the key,
// one that holds a copy of its ID and user with another key, the site reached
// at another origin (127.0.0.1) than its relying party's, a signature
// counter that went back (a possible clone), and a removed passkey.
func TestBrowser_Passkeys(t *testing.T) {
	ctx := newBrowser(t)
	s := newPasskeySite(t, false)
	const pw = "ada's own password"
	ada := s.user(t, users.NewUser{Email: "ada@example.com", Password: pw})
	shots := os.Getenv("WEBAPP_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	one := &tab{ctx: ctx, base: s.app.base, shots: shots}
	auth := one.addAuthenticator(t, true)
	var cred *webauthn.Credential
	var secret string // of ada's authenticator app, from SecondFactor on

	t.Run("Register", func(t *testing.T) {
		one.signInAndAddPasskey(t, "ada@example.com", pw, "laptop")
		sctx, cancel := one.timeout()
		defer cancel()
		if err := chromedp.Do(sctx, chromedp.ScrollIntoView(chromedp.CSS("#passkeys-heading"))); err != nil {
			t.Fatal(err)
		}
		one.shot(t, "passkeys")
		if got := one.text(t, "#passkeys tbody"); !strings.Contains(got, "never") {
			t.Errorf("the list of passkeys says %q", got)
		}
		if v, _ := one.eval(`document.querySelector("#passkeys tbody input[name=name]").value`); v != "laptop" {
			t.Errorf("the passkey's name is %q, want laptop", v)
		}
		held := one.held(t, auth)
		if len(held) != 1 || !held[0].IsResidentCredential || held[0].RpID != "localhost" {
			t.Fatalf("the authenticator holds %+v, want one discoverable credential for localhost", held)
		}
		cred = held[0]
		pks, err := s.users.Passkeys(t.Context(), ada.ID)
		if err != nil || len(pks) != 1 || pks[0].Name != "laptop" || !pks[0].UserVerified {
			t.Fatalf("the library has %+v (%v), want the passkey laptop, user verified", pks, err)
		}
		one.fill(t, "passkey-"+pks[0].ID, "work laptop")
		one.click(t, `form[action$="/rename"] button`)
		one.want(t, "Your account", "Your passkey is renamed.")
		if pks, _ := s.users.Passkeys(t.Context(), ada.ID); len(pks) != 1 || pks[0].Name != "work laptop" {
			t.Errorf("after renaming, the library has %+v", pks)
		}
	})
	t.Run("SignInWithTheButton", func(t *testing.T) {
		one.click(t, "header form button")
		one.want(t, "Welcome", "You are signed out.")
		restore := one.withoutAutofill(t)
		defer restore()
		one.open(t, "/signin")
		one.click(t, "#passkey-signin")
		one.arrive(t, "Your account", "You are signed in.")
		sess := one.session(t, s)
		if sess == nil || sess.UserID != ada.ID || !slices.Contains(sess.Methods, users.MethodPasskey) {
			t.Fatalf("session %+v, want ada's, signed in with a passkey", sess)
		}
		if pks, _ := s.users.Passkeys(t.Context(), ada.ID); len(pks) != 1 || pks[0].LastUsedAt.IsZero() {
			t.Errorf("the passkey's last use is not recorded: %+v", pks)
		}
	})
	t.Run("SignInWithAutofill", func(t *testing.T) {
		one.click(t, "header form button")
		one.want(t, "Welcome", "You are signed out.")
		// The sign-in page offers the passkey in the username field's
		// suggestions; the virtual authenticator picks it at once.
		one.open(t, "/signin")
		one.arrive(t, "Your account", "You are signed in.")
		if sess := one.session(t, s); sess == nil || sess.UserID != ada.ID {
			t.Fatalf("session %+v, want ada's", sess)
		}
	})
	t.Run("ConfirmItIsYouThenAddAgain", func(t *testing.T) {
		s.clock.Advance(users.DefaultReauthWindow + time.Second)
		one.open(t, "/account")
		one.fill(t, "passkey_name", "second")
		one.click(t, "#passkey-add")
		one.arrive(t, "Confirm it is you")
		one.click(t, "#passkey-reauth")
		one.arrive(t, "Your account", "Confirmed. You can make the change now.")
		// The options exclude the passkeys ada has: this authenticator will
		// not make a second one for her.
		one.fill(t, "passkey_name", "second")
		if got := one.press(t, "#passkey-add"); !strings.Contains(got, "No passkey was added") {
			t.Errorf("a second passkey on the same authenticator: the page says %q", got)
		}
		if n := len(one.held(t, auth)); n != 1 {
			t.Errorf("the authenticator holds %d passkeys, want 1", n)
		}
	})
	t.Run("SecondFactor", func(t *testing.T) {
		secret, _ = s.enrol(t, ada.ID)
		one.click(t, "header form button")
		restore := one.withoutAutofill(t)
		defer restore()
		one.open(t, "/signin")
		one.fill(t, "identifier", "ada@example.com", "password", pw)
		one.click(t, "main form button")
		one.want(t, "Enter your code")
		one.click(t, "#passkey-second")
		one.arrive(t, "Your account", "You are signed in.")
		sess := one.session(t, s)
		if sess == nil || !slices.Equal(sess.Methods, []users.AuthMethod{users.MethodPassword, users.MethodPasskey}) {
			t.Fatalf("session %+v, want the password then a passkey", sess)
		}
	})

	other := one.newTab(t)
	otherAuth := other.addAuthenticator(t, true)
	t.Run("AnotherAuthenticatorFails", func(t *testing.T) {
		restore := other.withoutAutofill(t)
		defer restore()
		other.refused(t, s, "No passkey was used") // it holds none
		// A copy of the passkey's ID and user, with another key: the browser
		// offers it, the site refuses its signature.
		other.impostor(t, otherAuth, cred)
		other.refused(t, s, "not accepted")
	})
	t.Run("WrongOrigin", func(t *testing.T) {
		// The same server at 127.0.0.1: the browser will not use a passkey of
		// localhost there, nor would the site take one made there.
		ip := &tab{ctx: one.ctx, base: s.srv.URL, shots: shots}
		restore := ip.withoutAutofill(t)
		defer restore()
		ip.refused(t, s, "No passkey was used")
	})
	t.Run("CounterWentBack", func(t *testing.T) {
		// The authenticator's signature counter set back, as on a copy of
		// the key that was used less: the site refuses it as a possible
		// clone.
		ctx, cancel := one.timeout()
		defer cancel()
		zero := 0.0
		if _, err := chromedp.Call(ctx, webauthn.SetCredentialProperties, webauthn.SetCredentialPropertiesParams{
			AuthenticatorID: auth, CredentialID: cred.CredentialID, SignCount: &zero}); err != nil {
			t.Fatalf("WebAuthn.setCredentialProperties: %v", err)
		}
		one.open(t, "/account")
		one.click(t, "header form button")
		restore := one.withoutAutofill(t)
		defer restore()
		one.refused(t, s, "may have been copied")
	})
	t.Run("Remove", func(t *testing.T) {
		restore := one.withoutAutofill(t)
		one.open(t, "/signin")
		one.fill(t, "identifier", "ada@example.com", "password", pw)
		one.click(t, "main form button")
		one.fill(t, "code", s.code(t, secret))
		one.click(t, "main form button")
		one.want(t, "Your account", "You are signed in.")
		restore()
		one.click(t, `form[action$="/remove"] button`)
		one.want(t, "Your account", "Your passkey is removed.")
		if pks, _ := s.users.Passkeys(t.Context(), ada.ID); len(pks) != 0 {
			t.Fatalf("passkeys left: %+v", pks)
		}
		one.click(t, "header form button")
		restore = one.withoutAutofill(t)
		defer restore()
		one.refused(t, s, "not accepted")
	})
}

// TestBrowser_PasskeyOtherOrigin registers a passkey on a site whose relying
// party allows another origin than the one the browser is at: the browser
// makes the passkey (the RP ID, localhost, matches), and the site refuses it
// by the origin in its client data.
func TestBrowser_PasskeyOtherOrigin(t *testing.T) {
	ctx := newBrowser(t)
	s := newPasskeySite(t, false, "https://localhost:1")
	const pw = "ada's own password"
	ada := s.user(t, users.NewUser{Email: "ada@example.com", Password: pw})
	b := &tab{ctx: ctx, base: s.app.base, shots: t.TempDir()}
	auth := b.addAuthenticator(t, true)
	b.withoutAutofill(t)
	b.open(t, "/signin")
	b.fill(t, "identifier", "ada@example.com", "password", pw)
	b.click(t, "main form button")
	b.want(t, "Your account", "You have no passkeys.")
	if got := b.press(t, "#passkey-add"); !strings.Contains(got, "not accepted") {
		t.Errorf("the page says %q", got)
	}
	if len(b.held(t, auth)) != 1 {
		t.Fatal("the browser made no passkey: the test proves nothing about the site's origin check")
	}
	if pks, _ := s.users.Passkeys(t.Context(), ada.ID); len(pks) != 0 {
		t.Fatalf("the site stored a passkey made at another origin: %+v", pks)
	}
}

// TestBrowser_PasskeyDev adds a passkey and signs in with it over plain HTTP
// at localhost, the way "go run ./examples/webapp -dev -base-url
// http://localhost:8080" is tried: browsers count localhost as a secure
// context, and the library allows http origins there.
func TestBrowser_PasskeyDev(t *testing.T) {
	ctx := newBrowser(t)
	s := newPasskeySite(t, true)
	if !strings.HasPrefix(s.app.base, "http://localhost:") {
		t.Fatalf("not plain HTTP at localhost: %s", s.app.base)
	}
	const pw = "ada's dev password"
	ada := s.user(t, users.NewUser{Email: "ada@example.com", Password: pw})
	b := &tab{ctx: ctx, base: s.app.base, shots: t.TempDir()}
	b.addAuthenticator(t, true)
	b.signInAndAddPasskey(t, "ada@example.com", pw, "laptop")
	b.click(t, "header form button")
	restore := b.withoutAutofill(t)
	defer restore()
	b.open(t, "/signin")
	b.click(t, "#passkey-signin")
	b.arrive(t, "Your account", "You are signed in.")
	if sess := b.session(t, s); sess == nil || sess.UserID != ada.ID {
		t.Fatalf("session %+v, want ada's", sess)
	}
}
