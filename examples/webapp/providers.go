package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/userkit/users"
)

// Sign-in with an external provider ("Sign in with Google"), and the
// account page's linked identities. The providers are the Manager's
// (users.Options.Providers, set from the flags of package
// examples/internal/providerflag); with none, the buttons and the account
// section are not shown.
//
// A sign-in or a link starts with a POST (a button, behind the CSRF checks
// like every change), which the library answers with the provider's URL and
// a binding. The binding goes into the flow cookie (HttpOnly, Secure,
// SameSite=Lax: the provider's redirect back is a cross-site top-level GET,
// which carries Lax cookies and no Strict ones) and the browser goes on to
// the provider through a page that refreshes to it (continuePage: the CSP's
// form-action 'self' makes Chromium refuse a redirect from a form's answer to
// another origin). The provider sends the browser back to the callback, which
// hands the query and the cookie's binding to users.Manager.FinishProviderAt
// with the provider its path names: a callback in a browser without the
// cookie (one an attacker started in theirs) is refused, a state works once,
// and a flow begun with another provider is refused before any code is
// exchanged. The path to return to is
// checked twice: by localPath before the flow starts, and by the library,
// which keeps it in the flow and refuses anything but a local path.

// providerButton is a provider as the pages show it.
type providerButton struct {
	Name, DisplayName string
}

// providerButtons returns the Manager's providers, for every page (page.Providers).
func (a *App) providerButtons() []providerButton {
	var out []providerButton
	for _, p := range a.users.Providers() {
		out = append(out, providerButton{Name: p.Name, DisplayName: p.DisplayName})
	}
	return out
}

// providerRoutes adds the provider routes to mux (see Handler).
func (a *App) providerRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /signin/with/{provider}", a.post(a.providerSignIn))
	mux.HandleFunc("GET /signin/with/{provider}/callback", a.providerCallback)
	mux.HandleFunc("POST /account/identities/link", a.post(a.signedIn(a.linkIdentity)))
	mux.HandleFunc("POST /account/identities/unlink", a.post(a.signedIn(a.unlinkIdentity)))
}

// providerRedirectURL is the callback of the provider named name, as it must
// be registered at the provider.
func providerRedirectURL(base, name string) string {
	return base + "/signin/with/" + url.PathEscape(name) + "/callback"
}

// startFlow keeps the binding of the flow that rd starts in its cookie and
// shows the page that sends the browser on to the provider, or answers err,
// the error of starting it.
func (a *App) startFlow(w http.ResponseWriter, r *http.Request, rd *users.ProviderRedirect, err error, name string) {
	switch {
	case errors.Is(err, users.ErrUnknownProvider):
		a.fail(w, r, http.StatusNotFound, "No such provider", "This site does not sign in with that provider.")
		return
	case err != nil:
		a.providerUnavailable(w, r, "starting a flow with a provider", err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: a.providerCookie, Value: rd.Binding, Path: "/", Expires: rd.ExpiresAt,
		HttpOnly: true, Secure: !a.dev, SameSite: http.SameSiteLaxMode,
	})
	a.render(w, r, http.StatusOK, "provider-continue", page{Title: "Continue to " + a.displayName(name),
		Data: continuePage{URL: rd.URL, Provider: a.displayName(name)}})
}

// continuePage is the data of the page between the button and the provider.
type continuePage struct {
	URL      string // the provider's authorization URL
	Provider string // its display name
}

// displayName returns the display name of the provider named name, or name.
func (a *App) displayName(name string) string {
	for _, p := range a.users.Providers() {
		if p.Name == name {
			return p.DisplayName
		}
	}
	return name
}

// providerSignIn starts a sign-in with the provider of the path, to come back
// to next (a local path; default /account).
func (a *App) providerSignIn(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	next := localPath(r.PostForm.Get("next"))
	if next == "" {
		next = "/account"
	}
	rd, err := a.users.BeginProviderSignIn(r.Context(), name, next)
	a.startFlow(w, r, rd, err, name)
}

// linkIdentity starts linking the provider of the form to the signed-in
// user. The library asks for a recent sign-in first (the re-authentication
// page, which comes back to the account page).
func (a *App) linkIdentity(w http.ResponseWriter, r *http.Request) {
	name := r.PostForm.Get("provider")
	rd, err := a.users.BeginProviderLink(r.Context(), currentUser(r).ID, name, "/account")
	if errors.Is(err, users.ErrReauthRequired) {
		a.askReauth(w, r, "/account", page{})
		return
	}
	a.startFlow(w, r, rd, err, name)
}

// unlinkIdentity removes one of the signed-in user's linked identities. The
// library refuses to remove the last way to sign in, and asks for a recent
// sign-in first.
func (a *App) unlinkIdentity(w http.ResponseWriter, r *http.Request) {
	err := a.users.UnlinkIdentity(r.Context(), currentUser(r).ID, r.PostForm.Get("identity"))
	switch {
	case err == nil:
		a.redirect(w, r, "/account", "unlinked")
	case errors.Is(err, users.ErrReauthRequired):
		a.askReauth(w, r, "/account", page{})
	case errors.Is(err, users.ErrLastSignInMethod):
		a.renderAccount(w, r, http.StatusConflict, page{Fields: map[string]string{"identity": "This is your last way to sign in, so it stays linked. " +
			"Set a password (Forgot your password? sends a link) or link another provider first."}})
	case errors.Is(err, users.ErrNotFound):
		a.redirect(w, r, "/account", "")
	default:
		a.internal(w, r, "unlinking an identity", err)
	}
}

// providerCallback is where the provider sends the browser back: it finishes
// the flow with the cookie's binding and acts on the outcome.
func (a *App) providerCallback(w http.ResponseWriter, r *http.Request) {
	binding := ""
	if c, err := r.Cookie(a.providerCookie); err == nil {
		binding = c.Value
		a.clearCookie(w, a.providerCookie)
	}
	res, err := a.users.FinishProviderAt(r.Context(), r.PathValue("provider"), binding, r.URL.Query())
	if errors.Is(err, users.ErrEmailNotVerified) && res != nil {
		// The sign-in proved the identity at the provider: mail the
		// confirmation link to the user it names, as Login's refusal does.
		id := res.Identity.UserID
		a.work.enqueue(r.Context(), func(ctx context.Context) { a.mailVerification(ctx, id) })
	}
	if err != nil {
		a.providerRefused(w, r, err)
		return
	}
	next := localPath(res.ReturnTo)
	if next == "" || next == "/" {
		next = "/account"
	}
	switch res.Outcome {
	case users.ProviderLinked:
		a.redirect(w, r, "/account", "linked")
	case users.ProviderLinkRequired:
		a.render(w, r, http.StatusConflict, "provider-link", page{Title: "Sign in to link " + a.displayName(res.Provider),
			Data: linkRequiredPage{Provider: a.displayName(res.Provider), Email: res.Email}})
	case users.ProviderSignedIn, users.ProviderSignedUp:
		if res.Challenge != nil {
			a.challengeHere(w, r, res.Challenge, next)
			return
		}
		a.startSession(w, r, res.Session)
		flash := "signed-in"
		if res.Outcome == users.ProviderSignedUp {
			flash = "welcome"
		}
		a.redirect(w, r, next, flash)
	default:
		a.internal(w, r, "finishing a sign-in with a provider", errors.New("unknown outcome "+string(res.Outcome)))
	}
}

// linkRequiredPage is the data of the "sign in to link" page.
type linkRequiredPage struct {
	Provider, Email string
}

// challengeHere starts the second step after a provider's sign-in. Unlike
// startChallenge it shows the code page in this answer instead of
// redirecting to it: the challenge cookie is SameSite=Strict, and Chromium
// withholds Strict cookies from every request of a redirect chain that began
// on another site (the provider), so /signin/code would not see it. The
// code form posts from this site, with the cookie.
func (a *App) challengeHere(w http.ResponseWriter, r *http.Request, c *users.Challenge, next string) {
	http.SetCookie(w, &http.Cookie{
		Name: a.challengeCookie, Value: c.Token, Path: "/", Expires: c.ExpiresAt,
		HttpOnly: true, Secure: !a.dev, SameSite: http.SameSiteStrictMode,
	})
	a.render(w, r, http.StatusOK, "signin-code", a.codePage(page{Form: url.Values{"next": {next}}}))
}

// providerRefusals are the pages of the refusals of FinishProviderAt.
var providerRefusals = []struct {
	err         error
	status      int
	title, text string
}{
	{users.ErrUnknownProvider, http.StatusNotFound, "No such provider",
		"This site does not sign in with that provider."},
	{users.ErrProviderState, http.StatusBadRequest, "This sign-in has expired",
		"It was started in another browser, used already, or took too long. Start again from the sign-in page."},
	{users.ErrProviderDenied, http.StatusBadRequest, "Sign-in cancelled",
		"The provider did not sign you in. Nothing was changed."},
	{users.ErrProviderResponse, http.StatusBadGateway, "The provider's answer could not be checked",
		"Nothing was changed. Try again, or sign in another way."},
	{users.ErrNoAccount, http.StatusForbidden, "No account",
		"No account here is linked to this identity. Sign in another way, then link the provider on your account page."},
	{users.ErrIdentityTaken, http.StatusConflict, "Linked to another account",
		"This identity at the provider is linked to another account here, so it was not linked to yours."},
	{users.ErrAccountDisabled, http.StatusForbidden, "This account is suspended",
		"Contact the administrator."},
	{users.ErrAccountLocked, http.StatusTooManyRequests, "Sign-in is locked",
		"Too many failed attempts: sign-in is locked for a while. Try again later."},
	{users.ErrEmailNotVerified, http.StatusForbidden, "Confirm your email first",
		"This site needs a confirmed address, and the provider has not confirmed yours. We have sent you a confirmation link: follow it, then sign in again."},
}

// providerRefused answers a callback that FinishProviderAt refused.
func (a *App) providerRefused(w http.ResponseWriter, r *http.Request, err error) {
	for _, p := range providerRefusals {
		if errors.Is(err, p.err) {
			a.log.InfoContext(r.Context(), "provider sign-in refused", "err", err)
			a.fail(w, r, p.status, p.title, p.text)
			return
		}
	}
	a.providerUnavailable(w, r, "finishing a sign-in with a provider", err)
}

// providerUnavailable logs err and says the provider cannot be reached; a
// rate limit's refusal is answered as internal answers it.
func (a *App) providerUnavailable(w http.ResponseWriter, r *http.Request, op string, err error) {
	if errors.Is(err, users.ErrRateLimited) {
		a.internal(w, r, op, err)
		return
	}
	a.log.ErrorContext(r.Context(), op, "err", err)
	a.fail(w, r, http.StatusBadGateway, "The provider is not available", "Try again in a moment, or sign in another way.")
}

// linkedIdentity is an identity as the account page shows it.
type linkedIdentity struct {
	ID, Provider, Email string
}

// linkedSection is the account page's list of linked identities and the
// providers that can still be linked; nil when the site has no provider.
type linkedSection struct {
	Linked   []linkedIdentity
	Linkable []providerButton
}

// identities reads the user's linked identities for the account page.
func (a *App) identities(r *http.Request, userID string) *linkedSection {
	ps := a.providerButtons()
	if len(ps) == 0 {
		return nil
	}
	ids, err := a.users.ListIdentities(r.Context(), userID)
	if err != nil {
		a.log.ErrorContext(r.Context(), "reading linked identities", "err", err)
	}
	s := &linkedSection{}
	has := map[string]bool{}
	for _, id := range ids {
		s.Linked = append(s.Linked, linkedIdentity{ID: id.ID, Provider: a.displayName(id.Provider), Email: id.Email})
		has[id.Provider] = true
	}
	for _, p := range ps {
		if !has[p.Name] {
			s.Linkable = append(s.Linkable, p)
		}
	}
	return s
}
