package users_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/internal/oidctest"
)

// providerRoutes is the README's "Sign in with a provider" snippet: the two
// routes of a sign-in with a provider.
func providerRoutes(mux *http.ServeMux, m *users.Manager) {
	// GET /auth/{provider}?return_to=/path starts the sign-in.
	mux.HandleFunc("GET /auth/{provider}", func(w http.ResponseWriter, r *http.Request) {
		start, err := m.BeginProviderSignIn(r.Context(), r.PathValue("provider"), r.URL.Query().Get("return_to"))
		if err != nil {
			http.Error(w, "cannot sign in with this provider", http.StatusBadRequest)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "provider_flow", Value: start.Binding, Path: "/auth/callback",
			Expires: start.ExpiresAt, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, start.URL, http.StatusSeeOther)
	})
	// The provider sends the browser back here (Provider.RedirectURL).
	mux.HandleFunc("GET /auth/callback", func(w http.ResponseWriter, r *http.Request) {
		binding := ""
		if c, err := r.Cookie("provider_flow"); err == nil {
			binding = c.Value
		}
		http.SetCookie(w, &http.Cookie{Name: "provider_flow", Path: "/auth/callback", MaxAge: -1})
		res, err := m.FinishProvider(r.Context(), binding, r.URL.Query())
		switch {
		case err != nil:
			http.Error(w, "sign-in failed", http.StatusForbidden)
		case res.Outcome == users.ProviderLinkRequired:
			fmt.Fprintf(w, "An account with %s exists: sign in, then link %s from your account page.", res.Email, res.Provider)
		case res.Challenge != nil:
			// A second factor is due: the next page hands this to CompleteLogin.
			http.SetCookie(w, &http.Cookie{Name: "mfa_challenge", Value: res.Challenge.Token, Path: "/login",
				Expires: res.Challenge.ExpiresAt, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
			http.Redirect(w, r, "/login/second-step", http.StatusSeeOther)
		default:
			http.SetCookie(w, &http.Cookie{Name: "session", Value: res.Session.Token, Path: "/",
				HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
			http.Redirect(w, r, res.ReturnTo, http.StatusSeeOther) // always a local path
		}
	})
}

// ExampleManager_BeginProviderSignIn signs a new user up through an OpenID
// Connect provider (a loopback test provider here) with the README's routes,
// then signs the same person in again.
func ExampleManager_BeginProviderSignIn() {
	op, err := oidctest.Start(oidctest.Account{Subject: "248289761001", Email: "jane@example.com", EmailVerified: true, Name: "Jane"})
	if err != nil {
		log.Fatal(err)
	}
	defer op.Close()
	op.SetAutoApprove("248289761001")

	app := httptest.NewServer(nil)
	defer app.Close()
	m, err := users.New(users.NewMemoryStore(), &users.Options{Providers: []users.Provider{{
		Name: "example", DisplayName: "Example ID", Issuer: op.URL,
		ClientID: op.ClientID, ClientSecret: op.ClientSecret,
		RedirectURL: app.URL + "/auth/callback",
		AllowSignUp: true, // a first sign-in creates the user
	}}})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	providerRoutes(mux, m)
	app.Config.Handler = mux

	for range 2 {
		where, cookies := browse(app.URL+"/auth/example?return_to=/welcome", nil)
		where, cookies = browse(where, cookies) // the provider approves at once
		where, cookies = browse(where, cookies) // the callback
		fmt.Println("back at", where, "signed in:", strings.Contains(fmt.Sprint(cookies), "session="))
	}
	u, _ := m.GetByEmail(context.Background(), "jane@example.com")
	fmt.Println(u.Email, "verified:", u.EmailVerified)
	// Output:
	// back at /welcome signed in: true
	// back at /welcome signed in: true
	// jane@example.com verified: true
}

// browse makes one GET as a browser would, sending cookies, and returns where
// it was redirected and the cookies it was given.
func browse(u string, cookies []*http.Cookie) (string, []*http.Cookie) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Host == "" {
		return loc.String(), resp.Cookies()
	}
	return loc.String(), append(cookies, resp.Cookies()...)
}

// readmeProviders is the README's provider configuration.
func readmeProviders(store users.Store, googleID, googleSecret, githubID, githubSecret, oktaID, oktaSecret string) (*users.Manager, error) {
	m, err := users.New(store, &users.Options{
		Providers: []users.Provider{
			users.Google(googleID, googleSecret, "https://app.example/auth/callback"),
			users.GitHub(githubID, githubSecret, "https://app.example/auth/callback"),
			{Name: "okta", DisplayName: "Okta", Issuer: "https://acme.okta.com",
				ClientID: oktaID, ClientSecret: oktaSecret, RedirectURL: "https://app.example/auth/callback",
				AllowSignUp: true},
		},
	})
	return m, err
}

// TestREADMEProviders checks that the README's providers pass New.
func TestREADMEProviders(t *testing.T) {
	m, err := readmeProviders(users.NewMemoryStore(), "g", "gs", "h", "hs", "o", "os")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Providers(); len(got) != 3 || got[0].DisplayName != "Google" || got[2].Name != "okta" {
		t.Errorf("Providers() = %+v", got)
	}
}
