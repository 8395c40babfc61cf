package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/userkit/users"
)

// Sign-in with an external provider, and the caller's linked identities.
//
// A provider's pages are for a browser, and this API's sessions are bearer
// tokens, which a browser sends with no navigation. So the flow runs in the
// browser and hands its result over at the end:
//
//  1. The front end sends the browser to GET
//     /v1/auth/providers/{provider}/begin?return_to=/path (a link), or, to
//     link a provider to the caller, asks POST /v1/me/identities for the URL
//     to send it to. Either answer sets the flow cookie, which holds the
//     library's binding (users.ProviderRedirect.Binding) and ties the flow to
//     this browser, and the browser goes on to the provider.
//  2. The provider sends the browser back to
//     /v1/auth/providers/{provider}/callback. A callback without the flow
//     cookie (one started in an attacker's browser), with a used or
//     expired state, or of a flow begun with another provider is refused by
//     users.Manager.FinishProviderAt, which the path's provider is given to
//     (the last before any code is exchanged). The outcome
//     goes into the result cookie (a new session as its token; any other
//     answer, small, as its JSON), and the browser is sent to the front
//     end's return_to (LinkBase + a local path, which the library checked
//     when the flow began; "/" after an error).
//  3. The front end collects the answer with POST /v1/auth/providers/result,
//     which gives it once, the very JSON a login gives, and deletes the
//     cookie. No token ever appears in a URL.
//
// Both cookies are HttpOnly, SameSite=Lax (the provider's redirect is a
// cross-site top-level GET, which carries Lax cookies and no Strict ones),
// and, when the request came over TLS, Secure with the __Host- prefix, which
// no other host can set; they last as long as the flow (the result cookie,
// resultTTL). The front end calls this API from its own origin (the usual
// reverse proxy) or with credentials, so that the browser sends them.
//
// Linking and unlinking need a recent authentication, as every sensitive
// change does (403 reauth_required). A user without a password gets one by
// signing in again through a provider: the new session has just proved it.
//
// The library takes the linking user's session from the callback's context,
// and the callback of a bearer API has none: the flow cookie of a link also
// carries the caller's session token, which the callback checks
// (ValidateToken) and puts in the context.

// Codes this API adds for the provider flow; its errors are the library's
// (users.HTTPError: provider_failed, no_account, identity_taken,
// last_sign_in_method, not_found for an unknown provider).
const (
	codeLinkRequired = "link_required"      // 409 an account has the provider's email: sign in, then link
	codeNoResult     = "no_provider_result" // 404 POST /v1/auth/providers/result without a finished flow
)

// resultTTL is how long the result of a callback waits for the front end.
const resultTTL = 2 * time.Minute

// providerRoutes adds the provider routes to mux (see Handler).
func (s *Server) providerRoutes(mux *http.ServeMux, auth func(http.HandlerFunc) http.Handler) {
	mux.HandleFunc("GET /v1/auth/providers", s.listProviders)
	mux.HandleFunc("GET /v1/auth/providers/{provider}/begin", s.beginProviderSignIn)
	mux.HandleFunc("GET /v1/auth/providers/{provider}/callback", s.providerCallback)
	mux.HandleFunc("POST /v1/auth/providers/result", s.providerResult)
	mux.Handle("GET /v1/me/identities", auth(s.listIdentities))
	mux.Handle("POST /v1/me/identities", auth(s.beginLink))
	mux.Handle("DELETE /v1/me/identities/{id}", auth(s.unlinkIdentity))
}

// providerRedirectURL returns the callback of the provider named name for an
// API served at base ("https://api.example"), as it must be registered at
// the provider and set in users.Provider.RedirectURL.
func providerRedirectURL(base, name string) string {
	return strings.TrimSuffix(base, "/") + "/v1/auth/providers/" + name + "/callback"
}

type apiProvider struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
}

func (s *Server) listProviders(w http.ResponseWriter, r *http.Request) {
	out := []apiProvider{}
	for _, p := range s.Users.Providers() {
		out = append(out, apiProvider{Name: p.Name, DisplayName: p.DisplayName})
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: out})
}

// flowCookie is what the flow cookie holds.
type flowCookie struct {
	Binding string `json:"b"`
	Session string `json:"s,omitempty"` // the linking caller's session token
}

// beginProviderSignIn sends the browser to the provider, to come back to the
// front end's return_to (a local path; default "/").
func (s *Server) beginProviderSignIn(w http.ResponseWriter, r *http.Request) {
	rd, err := s.Users.BeginProviderSignIn(r.Context(), r.PathValue("provider"), r.URL.Query().Get("return_to"))
	if err != nil {
		s.providerFail(w, r, err)
		return
	}
	s.setFlowCookie(w, r, rd, flowCookie{Binding: rd.Binding})
	http.Redirect(w, r, rd.URL, http.StatusSeeOther)
}

// beginLink starts linking a provider to the caller: it answers the URL to
// send the browser to. The library asks for a recent authentication (403
// reauth_required).
func (s *Server) beginLink(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Provider string `json:"provider"`
		ReturnTo string `json:"return_to"`
	}
	if !s.decode(w, r, &req) || !required(w, "provider", req.Provider) {
		return
	}
	sess := session(r)
	rd, err := s.Users.BeginProviderLink(r.Context(), sess.UserID, req.Provider, req.ReturnTo)
	if err != nil {
		s.providerFail(w, r, err)
		return
	}
	s.setFlowCookie(w, r, rd, flowCookie{Binding: rd.Binding, Session: users.TokenFromRequest(r, "")})
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: struct {
		URL       string `json:"url"`
		ExpiresAt string `json:"expires_at"`
	}{rd.URL, timestamp(rd.ExpiresAt)}, Message: "Send the browser to url"})
}

// providerCallback finishes the flow, keeps the answer for the front end in
// the result cookie and sends the browser back to the front end.
func (s *Server) providerCallback(w http.ResponseWriter, r *http.Request) {
	var fc flowCookie
	if c, err := r.Cookie(s.cookieName(r, "provider_flow")); err == nil {
		if b, err := base64.RawURLEncoding.DecodeString(c.Value); err == nil {
			_ = json.Unmarshal(b, &fc) // a damaged cookie is an empty binding, which the library refuses
		}
	}
	s.clearCookie(w, r, "provider_flow")
	ctx := r.Context()
	if fc.Session != "" {
		if sess, err := s.Users.ValidateToken(ctx, fc.Session); err == nil {
			ctx = users.NewContext(ctx, sess)
		}
	}
	res, err := s.Users.FinishProviderAt(ctx, r.PathValue("provider"), fc.Binding, r.URL.Query())

	// A session is kept as its token, and its answer made when it is
	// collected: the user's record can be larger than a cookie. Any other
	// answer is small, made now as for any request, and kept.
	ans := &capture{header: http.Header{}}
	returnTo := "/"
	var val string
	switch {
	case err != nil:
		s.providerFail(ans, r, err)
	case res.Outcome == users.ProviderLinkRequired:
		writeJSON(ans, http.StatusConflict, errorEnvelope{Error: apiError{Code: codeLinkRequired,
			Message:      "An account has this email: log in to it, then link the provider (POST /v1/me/identities)",
			LinkRequired: &apiLinkRequired{Provider: res.Provider, Email: res.Email}}})
	case res.Outcome == users.ProviderLinked:
		writeJSON(ans, http.StatusOK, envelope{Success: true, Data: toIdentity(res.Identity), Message: "Linked"})
	case res.Challenge != nil:
		s.loggedIn(ans, r, nil, res.Challenge)
	default: // signed in or signed up
		val = "session." + res.Session.Token
	}
	if err == nil {
		returnTo = res.ReturnTo
	}
	if val == "" {
		// "STATUS.BODY": no space or quote, which a cookie value would need quoted.
		val = strconv.Itoa(ans.status) + "." + base64.RawURLEncoding.EncodeToString(ans.body.Bytes())
	}
	http.SetCookie(w, s.cookie(r, "provider_result", val, time.Now().Add(resultTTL)))
	http.Redirect(w, r, s.frontEnd(returnTo), http.StatusSeeOther)
}

// frontEnd returns the URL of path on the front end (LinkBase), or of "/"
// when path is not a local path. The library lets only local paths into a
// flow's return_to; this keeps a slip there from becoming an open redirect,
// such as "@evil.example" after the origin, which names evil.example as the
// host.
func (s *Server) frontEnd(path string) string {
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") || strings.Contains(path, "\\") ||
		strings.IndexFunc(path, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		path = "/"
	}
	return s.linkBase() + path
}

// apiLinkRequired is the data of a 409 link_required answer.
type apiLinkRequired struct {
	Provider string `json:"provider"`
	Email    string `json:"email"`
}

// providerResult gives the front end the answer of the last callback, once.
func (s *Server) providerResult(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(s.cookieName(r, "provider_result"))
	if err != nil {
		writeError(w, http.StatusNotFound, codeNoResult, "No sign-in with a provider has finished in this browser", "")
		return
	}
	s.clearCookie(w, r, "provider_result")
	code, body, _ := strings.Cut(c.Value, ".")
	if code == "session" {
		sess, err := s.Users.ValidateToken(r.Context(), body)
		if err == nil {
			sess.Token = body // not kept by ValidateToken
		}
		s.loggedIn(w, r, sess, err)
		return
	}
	status, err := strconv.Atoi(code)
	b, berr := base64.RawURLEncoding.DecodeString(body)
	if err != nil || berr != nil || status < 200 || status > 599 {
		writeError(w, http.StatusNotFound, codeNoResult, "No sign-in with a provider has finished in this browser", "")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	w.WriteHeader(status)
	w.Write(b)
}

// apiIdentity is a linked identity.
type apiIdentity struct {
	ID            string `json:"id"`
	Provider      string `json:"provider"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified"`
	LinkedAt      string `json:"linked_at"`
	LastUsedAt    string `json:"last_used_at,omitempty"`
}

func toIdentity(id *users.Identity) apiIdentity {
	a := apiIdentity{ID: id.ID, Provider: id.Provider, Email: id.Email, EmailVerified: id.EmailVerified, LinkedAt: timestamp(id.LinkedAt)}
	if !id.LastUsedAt.IsZero() {
		a.LastUsedAt = timestamp(id.LastUsedAt)
	}
	return a
}

func (s *Server) listIdentities(w http.ResponseWriter, r *http.Request) {
	ids, err := s.Users.ListIdentities(r.Context(), session(r).UserID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := []apiIdentity{}
	for _, id := range ids {
		out = append(out, toIdentity(id))
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: out})
}

// unlinkIdentity removes one of the caller's identities. The library refuses
// the last way to sign in (409 last_sign_in_method) and asks for a recent
// authentication (403 reauth_required).
func (s *Server) unlinkIdentity(w http.ResponseWriter, r *http.Request) {
	if err := s.Users.UnlinkIdentity(r.Context(), session(r).UserID, r.PathValue("id")); err != nil {
		s.providerFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Message: "Unlinked"})
}

// providerFail answers err as fail does, naming what is not found: the
// provider or the identity, not a user.
func (s *Server) providerFail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, users.ErrUnknownProvider):
		writeError(w, http.StatusNotFound, users.CodeNotFound, "No such provider", "")
	case errors.Is(err, users.ErrNotFound):
		writeError(w, http.StatusNotFound, users.CodeNotFound, "No such identity", "")
	default:
		s.fail(w, r, err)
	}
}

// Cookies.

// secure reports whether r came over TLS, to this server or to a trusted
// proxy that says so.
func (s *Server) secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if r.Header.Get("X-Forwarded-Proto") != "https" {
		return false
	}
	peer, err := netip.ParseAddr(users.ClientFromRequest(r).IP)
	return err == nil && slices.ContainsFunc(s.TrustedProxies, func(p netip.Prefix) bool { return p.Contains(peer.Unmap()) })
}

// cookieName is name with the __Host- prefix over TLS.
func (s *Server) cookieName(r *http.Request, name string) string {
	if s.secure(r) {
		return "__Host-" + name
	}
	return name
}

func (s *Server) cookie(r *http.Request, name, value string, expires time.Time) *http.Cookie {
	return &http.Cookie{Name: s.cookieName(r, name), Value: value, Path: "/", Expires: expires,
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode}
}

func (s *Server) setFlowCookie(w http.ResponseWriter, r *http.Request, rd *users.ProviderRedirect, fc flowCookie) {
	b, _ := json.Marshal(fc) // two strings: never fails
	http.SetCookie(w, s.cookie(r, "provider_flow", base64.RawURLEncoding.EncodeToString(b), rd.ExpiresAt))
}

func (s *Server) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	c := s.cookie(r, name, "", time.Time{})
	c.MaxAge = -1
	http.SetCookie(w, c)
}

// capture is a ResponseWriter that keeps an answer instead of sending it.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header { return c.header }
func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
}
func (c *capture) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}
