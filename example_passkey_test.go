package users_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/userkit/users"
	"github.com/userkit/users/internal/passkeytest"
)

// The README's "Passkeys" snippets, run by ExampleManager_FinishPasskeyLogin.

// readmePasskeyManager is the README's configuration.
func readmePasskeyManager(store users.Store) (*users.Manager, error) {
	m, err := users.New(store, &users.Options{
		Passkeys: &users.PasskeyOptions{
			RPID:    "example.com",                   // the site's domain
			Origins: []string{"https://example.com"}, // where its pages are served
		},
	})
	return m, err
}

// passkeyRoutes serves the four calls the page's script makes.
func passkeyRoutes(mux *http.ServeMux, m *users.Manager) {
	// Registering needs a signed-in user: m.Middleware puts the session in the context.
	signedIn := func(h func(w http.ResponseWriter, r *http.Request, s *users.Session)) http.Handler {
		return m.Middleware("session", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, _ := users.FromContext(r.Context())
			h(w, r, s)
		}))
	}
	mux.Handle("POST /passkeys/register/begin", signedIn(func(w http.ResponseWriter, r *http.Request, s *users.Session) {
		c, err := m.BeginPasskeyRegistration(r.Context(), s.UserID)
		answer(w, c, err)
	}))
	mux.Handle("POST /passkeys/register/finish", signedIn(func(w http.ResponseWriter, r *http.Request, s *users.Session) {
		body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		p, err := m.FinishPasskeyRegistration(r.Context(), s.UserID, r.URL.Query().Get("name"), body)
		answer(w, p, err)
	}))
	mux.HandleFunc("POST /passkeys/login/begin", func(w http.ResponseWriter, r *http.Request) {
		c, err := m.BeginPasskeyLogin(r.Context())
		answer(w, c, err)
	})
	mux.HandleFunc("POST /passkeys/login/finish", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		s, err := m.FinishPasskeyLogin(r.Context(), body) // a *users.Challenge: the second step (see Second factor)
		if err == nil {
			http.SetCookie(w, &http.Cookie{Name: "session", Value: s.Token, Path: "/",
				HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
		}
		answer(w, map[string]any{"signed_in": err == nil}, err)
	})
}

// answer writes v as JSON, or err as users.WriteError maps it.
func answer(w http.ResponseWriter, v any, err error) {
	if err != nil {
		users.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// ExampleManager_FinishPasskeyLogin registers a passkey for a signed-in
// user and signs in with it, through the README's routes. A software
// authenticator (internal/passkeytest) stands in for the browser's
// navigator.credentials: it takes the "publicKey" member of a Begin answer
// and returns what credential.toJSON() would.
func ExampleManager_FinishPasskeyLogin() {
	ctx := context.Background()
	m, err := readmePasskeyManager(users.NewMemoryStore())
	if err != nil {
		panic(err)
	}
	// A user without a password: passkeys and email links are how she signs in.
	if _, err := m.Create(ctx, users.NewUser{Email: "ada@example.com", NoPassword: true}); err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	passkeyRoutes(mux, m)
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := srv.Client()
	client.Jar = jar
	browser := passkeytest.New("https://example.com")

	// call posts body to path and returns the "publicKey" member of the
	// answer, or the answer itself.
	call := func(path, body string) string {
		resp, err := client.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var c struct{ PublicKey json.RawMessage }
		if json.Unmarshal(b, &c) == nil && c.PublicKey != nil {
			return string(c.PublicKey)
		}
		return strings.TrimSpace(string(b))
	}

	// Signed in with a link from her inbox, the user adds a passkey.
	link, err := m.RequestMagicLink(ctx, "ada@example.com")
	if err != nil {
		panic(err)
	}
	s, err := m.LoginWithMagicLink(ctx, link.Token)
	if err != nil {
		panic(err)
	}
	u, _ := url.Parse(srv.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: s.Token}})
	created, err := browser.Register([]byte(call("/passkeys/register/begin", "")))
	if err != nil {
		panic(err)
	}
	var p users.Passkey
	_ = json.Unmarshal([]byte(call("/passkeys/register/finish?name=laptop", string(created))), &p)
	fmt.Println("registered:", p.Name, p.UserVerified)

	// Signed out, the user comes back with the passkey: no email, no password.
	jar.SetCookies(u, []*http.Cookie{{Name: "session", MaxAge: -1}})
	got, err := browser.Assert([]byte(call("/passkeys/login/begin", "")))
	if err != nil {
		panic(err)
	}
	fmt.Println(call("/passkeys/login/finish", string(got)))
	fmt.Println("replayed:", call("/passkeys/login/finish", string(got)))
	// Output:
	// registered: laptop true
	// {"signed_in":true}
	// replayed: {"success":false,"error":{"code":"invalid_token","message":"Invalid or expired token"}}
}
