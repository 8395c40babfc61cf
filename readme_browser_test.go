package users_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/userkit/users"
	"github.com/userkit/users/internal/browsertest"
)

// TestREADMEPasskeyJavaScript runs the README's browser JavaScript for
// passkeys (its ```js blocks) in headless Chromium, with a virtual
// authenticator, against the README's server side (passkeyRoutes): a
// signed-in user adds a passkey, then signs in with it alone. It skips
// without Chromium or with -short, except under CI=true.
func TestREADMEPasskeyJavaScript(t *testing.T) {
	ctx := browsertest.New(t)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	for _, m := range regexp.MustCompile("(?s)```js\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		script.WriteString(m[1])
	}
	if script.Len() == 0 {
		t.Fatal("README.md has no ```js block")
	}

	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	base := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) // an RP ID is a host name
	m, err := users.New(users.NewMemoryStore(), &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true,
		Passkeys: &users.PasskeyOptions{RPID: "localhost", Origins: []string{base}}})
	if err != nil {
		t.Fatal(err)
	}
	const pw = "ada's own long password"
	ada, err := m.Create(t.Context(), users.NewUser{Email: "ada@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Login(t.Context(), ada.Email, pw)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	passkeyRoutes(mux, m)
	mux.HandleFunc("GET /passkeys.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Write([]byte(script.String()))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<!doctype html><title>Passkeys</title><script src="/passkeys.js"></script>`))
	})
	srv.Config.Handler = mux

	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{Protocol: webauthn.AuthenticatorProtocolCtap2,
			Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	yes := true
	cookie := func(value string) {
		t.Helper()
		if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: "session", Value: value,
			URL: base + "/", HTTPOnly: &yes, Secure: &yes}); err != nil {
			t.Fatal(err)
		}
	}
	run := func(expr string) {
		t.Helper()
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr, chromedp.EvalAwaitPromise))
		if err != nil || !ok {
			t.Fatalf("%s = %v, %v", expr, ok, err)
		}
	}

	cookie(s.Token) // signed in, with a password
	run(`addPasskey("laptop")`)
	if ps, err := m.Passkeys(t.Context(), ada.ID); err != nil || len(ps) != 1 || ps[0].Name != "laptop" {
		t.Fatalf("passkeys %+v, %v; want laptop", ps, err)
	}
	cookie("") // signed out
	run(`signInWithPasskey()`)
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(res.Cookies, func(c *network.Cookie) bool { return c.Name == "session" })
	if i < 0 {
		t.Fatal("no session cookie after signing in")
	}
	got, err := m.ValidateToken(t.Context(), res.Cookies[i].Value)
	if err != nil || got.UserID != ada.ID || !slices.Contains(got.Methods, users.MethodPasskey) {
		t.Fatalf("session %+v, %v; want ada's, by passkey", got, err)
	}
}
