// Package oidctest is an OpenID Connect provider and a GitHub-style OAuth 2
// provider on loopback, for tests only. The OpenID Connect provider speaks
// the protocol for real: a discovery document, a JWKS, an authorization
// endpoint (a page a browser can click through, or an automatic answer for
// library tests), a token endpoint that checks the client, the redirect URI
// and the PKCE verifier and issues ES256-signed ID tokens (go-jose, no JOSE
// of its own), and a userinfo endpoint. Its knobs make it misbehave the ways
// a client must notice: another issuer or audience in the ID token, an
// expired token, another nonce, a bad signature, another iss parameter.
//
// Every Server is safe for concurrent use; its knobs may be changed between
// flows with the setter methods.
package oidctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Account is a user at the test provider.
type Account struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
}

// Misbehave holds the ways the provider can answer wrongly. The zero value
// answers correctly.
type Misbehave struct {
	Issuer       string        // the ID token's iss claim, instead of the provider's
	Audience     string        // the ID token's aud claim, instead of the client ID
	Nonce        string        // the ID token's nonce, instead of the one asked for
	Expired      bool          // the ID token expired an hour before it was issued
	OtherKey     bool          // sign the ID token with a key not in the JWKS
	IssParam     string        // the iss parameter of the redirect, instead of the issuer
	NoIssParam   bool          // send no iss parameter
	NoIDToken    bool          // answer the token request without an ID token
	RefuseTokens bool          // refuse every token request (invalid_grant)
	Lifetime     time.Duration // ID token lifetime; zero means 5 minutes
}

// Server is a loopback OpenID Connect provider.
type Server struct {
	// URL is the issuer (the httptest server's URL).
	URL          string
	ClientID     string
	ClientSecret string

	srv      *httptest.Server
	key      *ecdsa.PrivateKey
	otherKey *ecdsa.PrivateKey

	mu        sync.Mutex
	accounts  []Account
	auto      string // subject to approve at once, or ""
	misbehave Misbehave
	now       func() time.Time
	codes     map[string]*grant
	access    map[string]Account
	tokenHits int
}

// grant is an issued authorization code.
type grant struct {
	account     Account
	clientID    string
	redirectURI string
	nonce       string
	challenge   string // PKCE S256 challenge
	used        bool
}

// New starts a provider with the accounts, stopped when tb's test ends. Its
// client is "test-client" with secret "test-secret". Without SetAutoApprove
// its authorization endpoint shows a page to choose an account.
func New(tb testing.TB, accounts ...Account) *Server {
	tb.Helper()
	s, err := Start(accounts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start is New for code without a testing.TB (an Example): the caller
// stops the provider with Close.
func Start(accounts ...Account) (*Server, error) {
	s := &Server{ClientID: "test-client", ClientSecret: "test-secret", accounts: accounts,
		codes: map[string]*grant{}, access: map[string]Account{}, now: time.Now}
	var err error
	if s.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if s.otherKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", s.discovery)
	mux.HandleFunc("GET /jwks", s.jwks)
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /authorize", s.approve)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("GET /userinfo", s.userinfo)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s, nil
}

// Close stops the provider.
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client for the provider's server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// SetAutoApprove makes the authorization endpoint sign in the account with
// this subject at once, without a page; "" shows the page again.
func (s *Server) SetAutoApprove(subject string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auto = subject
}

// SetMisbehave sets how the next answers go wrong.
func (s *Server) SetMisbehave(m Misbehave) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.misbehave = m
}

// SetNow sets the provider's clock (for the ID tokens' iat and exp).
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetAccounts replaces the accounts.
func (s *Server) SetAccounts(accounts ...Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts = accounts
}

// TokenRequests returns how many token requests the provider has answered.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenHits
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{
		"issuer":                                         s.URL,
		"authorization_endpoint":                         s.URL + "/authorize",
		"token_endpoint":                                 s.URL + "/token",
		"userinfo_endpoint":                              s.URL + "/userinfo",
		"jwks_uri":                                       s.URL + "/jwks",
		"response_types_supported":                       []string{"code"},
		"subject_types_supported":                        []string{"public"},
		"id_token_signing_alg_values_supported":          []string{"ES256"},
		"code_challenge_methods_supported":               []string{"S256"},
		"scopes_supported":                               []string{"openid", "email", "profile"},
		"authorization_response_iss_parameter_supported": true,
	})
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &s.key.PublicKey, KeyID: "k1", Algorithm: string(jose.ES256), Use: "sig"},
	}})
}

// page is the authorization page: one button per account, and a refusal.
var page = template.Must(template.New("authorize").Parse(`<!doctype html>
<html><head><title>Test provider: sign in</title></head><body>
<h1>Test provider</h1>
<p>Sign in to {{.Client}} as:</p>
{{range .Accounts}}<form method="post" action="/authorize">{{range $k, $v := $.Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<input type="hidden" name="subject" value="{{.Subject}}">
<button type="submit" id="account-{{.Subject}}">{{.Name}} &lt;{{.Email}}&gt;</button></form>
{{end}}<form method="post" action="/authorize">{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<input type="hidden" name="deny" value="1"><button type="submit" id="deny">Cancel</button></form>
</body></html>`))

// authorizeParams are the query parameters the page carries to approve.
var authorizeParams = []string{"client_id", "redirect_uri", "state", "nonce", "code_challenge", "code_challenge_method", "response_type", "scope"}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.ClientID || q.Get("response_type") != "code" || q.Get("redirect_uri") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	auto, accounts := s.auto, s.accounts
	s.mu.Unlock()
	if auto != "" {
		s.finishAuthorize(w, r, q, auto)
		return
	}
	params := map[string]string{}
	for _, k := range authorizeParams {
		params[k] = q.Get(k)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = page.Execute(w, map[string]any{"Client": s.ClientID, "Accounts": accounts, "Params": params})
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.PostForm.Get("deny") != "" {
		s.redirect(w, r, r.PostForm, url.Values{"error": {"access_denied"}})
		return
	}
	s.finishAuthorize(w, r, r.PostForm, r.PostForm.Get("subject"))
}

// finishAuthorize issues a code for the account with subject and redirects.
func (s *Server) finishAuthorize(w http.ResponseWriter, r *http.Request, q url.Values, subject string) {
	s.mu.Lock()
	var acct *Account
	for i := range s.accounts {
		if s.accounts[i].Subject == subject {
			acct = &s.accounts[i]
		}
	}
	if acct == nil {
		s.mu.Unlock()
		http.Error(w, "no such account", http.StatusBadRequest)
		return
	}
	code := rand.Text()
	s.codes[code] = &grant{account: *acct, clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"),
		nonce: q.Get("nonce"), challenge: q.Get("code_challenge")}
	if q.Get("code_challenge_method") != "S256" {
		s.codes[code].challenge = "" // plain or none: refused at the token endpoint
	}
	s.mu.Unlock()
	s.redirect(w, r, q, url.Values{"code": {code}})
}

// redirect sends the browser back to the client with answer, the state and
// the iss parameter.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, q url.Values, answer url.Values) {
	s.mu.Lock()
	m := s.misbehave
	s.mu.Unlock()
	answer.Set("state", q.Get("state"))
	switch {
	case m.NoIssParam:
	case m.IssParam != "":
		answer.Set("iss", m.IssParam)
	default:
		answer.Set("iss", s.URL)
	}
	u, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	u.RawQuery = answer.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func tokenError(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, "invalid_request")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenHits++
	g := s.codes[r.PostForm.Get("code")]
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case id != s.ClientID || secret != s.ClientSecret:
		tokenError(w, "invalid_client")
		return
	case r.PostForm.Get("grant_type") != "authorization_code", g == nil, g.used, g.clientID != id,
		g.redirectURI != r.PostForm.Get("redirect_uri"), s.misbehave.RefuseTokens,
		g.challenge == "" || g.challenge != base64.RawURLEncoding.EncodeToString(sum[:]):
		tokenError(w, "invalid_grant")
		return
	}
	g.used = true
	access := rand.Text()
	s.access[access] = g.account
	answer := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 3600, "refresh_token": rand.Text()}
	if !s.misbehave.NoIDToken {
		raw, err := s.idToken(g)
		if err != nil {
			tokenError(w, "server_error")
			return
		}
		answer["id_token"] = raw
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, answer)
}

// idToken signs g's ID token, as the knobs say. s.mu is held.
func (s *Server) idToken(g *grant) (string, error) {
	m := s.misbehave
	now := s.now()
	life := m.Lifetime
	if life == 0 {
		life = 5 * time.Minute
	}
	exp := now.Add(life)
	if m.Expired {
		exp = now.Add(-time.Hour)
	}
	iss, aud, nonce := s.URL, s.ClientID, g.nonce
	if m.Issuer != "" {
		iss = m.Issuer
	}
	if m.Audience != "" {
		aud = m.Audience
	}
	if m.Nonce != "" {
		nonce = m.Nonce
	}
	claims := map[string]any{
		"iss": iss, "sub": g.account.Subject, "aud": aud, "iat": now.Unix(), "exp": exp.Unix(),
		"nonce": nonce, "email": g.account.Email, "email_verified": g.account.EmailVerified, "name": g.account.Name,
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	key := s.key
	if m.OtherKey {
		key = s.otherKey
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	a, ok := s.access[bearer(r)]
	s.mu.Unlock()
	if !ok {
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return
	}
	writeJSON(w, map[string]any{"sub": a.Subject, "email": a.Email, "email_verified": a.EmailVerified, "name": a.Name})
}

func bearer(r *http.Request) string {
	const p = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) > len(p) && h[:len(p)] == p {
		return h[len(p):]
	}
	return ""
}

// GitHubAccount is a user at the GitHub-style server.
type GitHubAccount struct {
	ID            int64
	Login         string
	Name          string
	PublicEmail   string // the profile's public email, may be empty
	PrimaryEmail  string
	EmailVerified bool // whether the primary email is verified
}

// GitHub is a GitHub-style OAuth 2 server: /login/oauth/authorize answers at
// once for its account, /login/oauth/access_token answers form-encoded as
// GitHub does, and /user and /user/emails serve the account.
type GitHub struct {
	URL          string
	ClientID     string
	ClientSecret string

	srv *httptest.Server

	mu      sync.Mutex
	account GitHubAccount
	codes   map[string]string // code → PKCE challenge
	access  map[string]bool
}

// NewGitHub starts a GitHub-style server signing in account, stopped when
// tb's test ends. Its client is "gh-client" with secret "gh-secret".
func NewGitHub(tb testing.TB, account GitHubAccount) *GitHub {
	tb.Helper()
	g := &GitHub{ClientID: "gh-client", ClientSecret: "gh-secret", account: account,
		codes: map[string]string{}, access: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", g.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", g.token)
	mux.HandleFunc("GET /user", g.user)
	mux.HandleFunc("GET /user/emails", g.emails)
	g.srv = httptest.NewServer(mux)
	g.URL = g.srv.URL
	tb.Cleanup(g.srv.Close)
	return g
}

// SetAccount replaces the account the server signs in.
func (g *GitHub) SetAccount(a GitHubAccount) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.account = a
}

func (g *GitHub) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != g.ClientID {
		http.Error(w, "bad client", http.StatusBadRequest)
		return
	}
	code := rand.Text()
	g.mu.Lock()
	g.codes[code] = q.Get("code_challenge")
	g.mu.Unlock()
	u, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	u.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (g *GitHub) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	challenge, known := g.codes[r.PostForm.Get("code")]
	delete(g.codes, r.PostForm.Get("code"))
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
	if id != g.ClientID || secret != g.ClientSecret || !known ||
		(challenge != "" && challenge != base64.RawURLEncoding.EncodeToString(sum[:])) {
		_, _ = w.Write([]byte(url.Values{"error": {"bad_verification_code"}}.Encode()))
		return
	}
	access := rand.Text()
	g.access[access] = true
	_, _ = w.Write([]byte(url.Values{"access_token": {access}, "token_type": {"bearer"}, "scope": {"read:user,user:email"}}.Encode()))
}

func (g *GitHub) authorized(r *http.Request) (GitHubAccount, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.account, g.access[bearer(r)]
}

func (g *GitHub) user(w http.ResponseWriter, r *http.Request) {
	a, ok := g.authorized(r)
	if !ok {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	var email any
	if a.PublicEmail != "" {
		email = a.PublicEmail
	}
	writeJSON(w, map[string]any{"id": a.ID, "login": a.Login, "name": a.Name, "email": email,
		"avatar_url": "https://avatars.example/u/" + strconv.FormatInt(a.ID, 10)})
}

func (g *GitHub) emails(w http.ResponseWriter, r *http.Request) {
	a, ok := g.authorized(r)
	if !ok {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	out := []map[string]any{{"email": a.Login + "@users.noreply.github.example", "primary": false, "verified": true}}
	if a.PrimaryEmail != "" {
		out = append(out, map[string]any{"email": a.PrimaryEmail, "primary": true, "verified": a.EmailVerified})
	}
	writeJSON(w, out)
}
