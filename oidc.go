package users

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Sign-in with an external identity provider. The providers are
// configuration (Options.Providers): an OpenID Connect provider found by
// discovery from its issuer URL, or a plain OAuth 2 provider through an
// OAuth2Adapter (GitHub's ships). A linked identity is a credential of kind
// CredentialOIDC whose ID is (issuer or provider name, subject), so one
// identity belongs to one user in every store. The flow (oidc_login.go):
// BeginProviderSignIn or BeginProviderLink returns the provider's URL and a
// binding the caller keeps in a cookie; FinishProvider checks the callback
// and answers with a ProviderResult. SECURITY.md ("Sign in with a provider")
// lists the threats and the rules.

// Provider configures one external identity provider. Exactly one of Issuer
// (OpenID Connect) and OAuth2 (plain OAuth 2) is set. Google, Microsoft and
// GitHub return ready ones. New checks every Provider and returns a
// *ValidationError on "options.Providers" naming the provider and the field.
// New does not contact the provider: discovery happens at the first sign-in
// and is kept for the Manager's life.
type Provider struct {
	// Name identifies the provider in URLs, audit entries and the identities
	// of a plain OAuth 2 provider: 1 to 32 of a-z, 0-9, '-' and '_', unique
	// among Options.Providers. Renaming a plain OAuth 2 provider unlinks its
	// identities (their ID holds the name); an OpenID Connect provider's
	// identities hold its issuer instead.
	Name string
	// DisplayName is what a button says ("Sign in with Google"); empty means
	// Name.
	DisplayName string

	// Issuer is an OpenID Connect provider's issuer URL (https, or http on a
	// loopback address for tests), exactly as its ID tokens' iss claim says.
	// Its discovery document is read from Issuer +
	// "/.well-known/openid-configuration".
	Issuer string
	// OAuth2 describes a plain OAuth 2 provider (no ID token): its endpoints
	// and how its user-info answer becomes a ProviderProfile.
	OAuth2 *OAuth2Adapter

	// ClientID and ClientSecret are the application's credentials at the
	// provider. ClientID is required; ClientSecret may be empty for a
	// public client (PKCE is always used).
	ClientID     string
	ClientSecret string
	// RedirectURL is the absolute URL of the application's callback, as
	// registered at the provider: the page that calls FinishProvider.
	// Required.
	RedirectURL string
	// Scopes are the scopes asked for. Empty means "openid", "email" and
	// "profile" for OpenID Connect ("openid" is added if missing), and the
	// adapter's Scopes for plain OAuth 2.
	Scopes []string

	// AllowSignUp lets a first sign-in with an identity that no user has,
	// and whose email no user has, create a new user (outcome
	// ProviderSignedUp). When false, such a sign-in is refused with
	// ErrNoAccount.
	AllowSignUp bool
	// LinkByEmail lets a first sign-in link the identity to the user whose
	// email it is, without that user signing in first, when the provider
	// says the email is verified and the user's email is verified too.
	// Otherwise (and always when false, the default) such a sign-in answers
	// ProviderLinkRequired: the user must sign in and link (see
	// BeginProviderLink). Turn it on only for a provider that verifies
	// email addresses itself and whose verification you trust.
	LinkByEmail bool
	// StoreTokens keeps the provider's access and refresh tokens with the
	// identity, sealed with Options.MFAKeys (which must then have a key);
	// ProviderTokens opens them. When false (the default) no provider token
	// is ever stored.
	StoreTokens bool

	// HTTPClient makes the requests to the provider (discovery, keys, token,
	// user info). Nil means a client with a 10-second timeout.
	HTTPClient *http.Client
}

// OAuth2Adapter turns a plain OAuth 2 provider, one without ID tokens, into
// something the Manager can sign in with: its endpoints and a Profile
// function that asks the provider who the token's user is. GitHubAdapter
// is one; an application can write its own for another provider.
type OAuth2Adapter struct {
	// AuthURL and TokenURL are the provider's authorization and token
	// endpoints (absolute URLs). Both required.
	AuthURL  string
	TokenURL string
	// Scopes are the default scopes, used when Provider.Scopes is empty.
	Scopes []string
	// Profile returns the user the access token belongs to. client sends
	// the token with every request; ctx is the callback's. It must return a
	// profile with a non-empty Subject that never changes for that user at
	// that provider (a numeric account ID, not a login name), and say
	// EmailVerified only when the provider says so. Required.
	Profile func(ctx context.Context, client *http.Client) (*ProviderProfile, error)
}

// ProviderProfile is who a provider says the signed-in user is.
type ProviderProfile struct {
	Subject       string // the provider's stable ID of the user; required
	Email         string // may be empty
	EmailVerified bool   // the provider says it verified Email
	Name          string
	GivenName     string
	FamilyName    string
	AvatarURL     string
}

// ProviderInfo describes a configured provider, for a sign-in page.
type ProviderInfo struct {
	Name        string
	DisplayName string
}

// ProviderRedirect is the start of a sign-in or link with a provider.
type ProviderRedirect struct {
	// URL is the provider's authorization URL: send the browser there
	// (303 See Other).
	URL string
	// Binding ties the flow to this browser: keep it in a cookie (HttpOnly,
	// Secure, SameSite=Lax, expiring at ExpiresAt) and pass it to
	// FinishProvider. A callback arriving without it is refused, so nobody
	// can finish a flow in another's browser (login CSRF).
	Binding string
	// ExpiresAt is when the flow expires (Options.ProviderFlowTTL).
	ExpiresAt time.Time
}

// ProviderOutcome says how a callback ended; see ProviderResult.
type ProviderOutcome string

// The outcomes of FinishProvider.
const (
	// ProviderSignedIn: the identity was linked to a user, who is signed
	// in (Session), or must still complete a second factor (Challenge).
	ProviderSignedIn ProviderOutcome = "signed_in"
	// ProviderSignedUp: a new user was created with the identity linked,
	// and signed in (Session), unless FinishProvider refused the sign-in
	// with ErrEmailNotVerified.
	ProviderSignedUp ProviderOutcome = "signed_up"
	// ProviderLinkRequired: no user has the identity, but a user has its
	// email (Email): the person must sign in to that account some other way
	// and link the provider from there. Nothing was written.
	ProviderLinkRequired ProviderOutcome = "link_required"
	// ProviderLinked: a link flow (BeginProviderLink) linked the identity
	// to the signed-in user. No session is made.
	ProviderLinked ProviderOutcome = "linked"
)

// ProviderResult is the answer of FinishProvider.
type ProviderResult struct {
	Outcome  ProviderOutcome
	Provider string // the provider's Name
	// Session is the new session of ProviderSignedIn and ProviderSignedUp,
	// with its Token set; nil when Challenge is set, and when FinishProvider
	// refused the user with ErrEmailNotVerified.
	Session *Session
	// Challenge is set instead of Session when the user has a second
	// factor: the provider's sign-in is one factor, and the login continues
	// with CompleteLogin as after a password.
	Challenge *Challenge
	// Identity is the linked identity (every outcome but
	// ProviderLinkRequired).
	Identity *Identity
	// Email is the provider's email of ProviderLinkRequired, to show on the
	// "sign in to link" page.
	Email string
	// ReturnTo is the local path given at the start ("/" if none): where to
	// send the browser now.
	ReturnTo string
}

// Identity is an identity at an external provider linked to a user.
type Identity struct {
	// ID names the link (the credential's ID): pass it to UnlinkIdentity.
	// It is opaque: not secret, but made of the issuer and subject.
	ID       string
	UserID   string
	Provider string // the provider's Name when linked
	Issuer   string // the OpenID Connect issuer, or the provider's Name for plain OAuth 2
	Subject  string
	// Email is the provider's email when linked or last used, and whether
	// the provider said it verified it. It does not change the user's own
	// email.
	Email         string
	EmailVerified bool
	LinkedAt      time.Time
	LastUsedAt    time.Time // the last sign-in with it, or zero
}

// MethodProvider records a sign-in through an external provider on a
// session (Session.Methods).
const MethodProvider AuthMethod = "provider"

// The audit events of linked identities. AuditEntry.Data["provider"] names
// the provider; no entry ever holds a provider token or code. A sign-in is
// recorded as login.succeeded with Methods' MethodProvider and
// Data["provider"]; a refused callback as login.failed with a Reason of
// "provider_..." (UserID empty when no user is known).
const (
	EventIdentityLinked   EventType = "identity.linked"
	EventIdentityUnlinked EventType = "identity.unlinked"
)

// DefaultProviderFlowTTL is the default of Options.ProviderFlowTTL.
const DefaultProviderFlowTTL = 10 * time.Minute

// The presets' issuers and endpoints.
const (
	GoogleIssuer   = "https://accounts.google.com"
	githubWebURL   = "https://github.com"
	githubAPIURL   = "https://api.github.com"
	providerScopes = "openid email profile"
)

// Google returns a Provider named "google" for Google's OpenID Connect
// service. Google verifies the addresses it asserts as verified, but
// LinkByEmail stays off: turn it on yourself if you want it.
func Google(clientID, clientSecret, redirectURL string) Provider {
	return Provider{Name: "google", DisplayName: "Google", Issuer: GoogleIssuer,
		ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURL}
}

// Microsoft returns a Provider named "microsoft" for the Microsoft identity
// platform of one tenant (a directory ID, a GUID). The multi-tenant
// endpoints ("common", "organizations", "consumers") are not supported:
// their ID tokens name each user's own tenant as issuer, which differs from
// the discovered one.
func Microsoft(tenantID, clientID, clientSecret, redirectURL string) Provider {
	return Provider{Name: "microsoft", DisplayName: "Microsoft",
		Issuer:   "https://login.microsoftonline.com/" + url.PathEscape(tenantID) + "/v2.0",
		ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURL}
}

// GitHub returns a Provider named "github" for GitHub's OAuth apps, through
// GitHubAdapter("", "").
func GitHub(clientID, clientSecret, redirectURL string) Provider {
	return Provider{Name: "github", DisplayName: "GitHub", OAuth2: GitHubAdapter("", ""),
		ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURL}
}

// providerNamePattern is what Provider.Name may be.
var providerNamePattern = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// providerConfig is a checked Provider with what the Manager learns of it.
type providerConfig struct {
	Provider
	scopes []string

	once   sync.Mutex // guards discovery
	oidc   *discovered
	oauth2 oauth2.Endpoint
}

// discovered is what discovery found of an OpenID Connect provider.
type discovered struct {
	endpoint oauth2.Endpoint
	verify   func(ctx context.Context, rawIDToken string) (*idClaims, error)
	// issParam is whether the provider sends the iss parameter with its
	// answers (RFC 9207 authorization_response_iss_parameter_supported).
	issParam bool
}

// idClaims are the claims of a verified ID token the Manager uses.
type idClaims struct {
	Issuer        string
	Subject       string
	Nonce         string
	Email         string
	EmailVerified bool
	Name          string
	GivenName     string
	FamilyName    string
	Picture       string
}

// newProviders checks Options.Providers. It returns a *ValidationError on
// "options.Providers" naming the provider and what is wrong.
func newProviders(ps []Provider, haveKey bool) (map[string]*providerConfig, []string, error) {
	out := make(map[string]*providerConfig, len(ps))
	order := make([]string, 0, len(ps))
	bad := func(i int, p Provider, reason string) error {
		name := p.Name
		if name == "" {
			name = "#" + strconv.Itoa(i)
		}
		return invalid("options.Providers", ValidationMalformed, "provider "+name+": "+reason)
	}
	for i, p := range ps {
		switch {
		case !providerNamePattern.MatchString(p.Name):
			return nil, nil, bad(i, p, "Name must be 1 to 32 of a-z, 0-9, - and _")
		case out[p.Name] != nil:
			return nil, nil, invalid("options.Providers", ValidationDuplicate, "provider "+p.Name+": Name is used twice")
		case (p.Issuer == "") == (p.OAuth2 == nil):
			return nil, nil, bad(i, p, "set exactly one of Issuer and OAuth2")
		case p.ClientID == "":
			return nil, nil, bad(i, p, "ClientID is required")
		case !absoluteURL(p.RedirectURL, true):
			return nil, nil, bad(i, p, "RedirectURL must be an absolute http(s) URL")
		case p.StoreTokens && !haveKey:
			return nil, nil, bad(i, p, "StoreTokens needs a key in Options.MFAKeys to seal them")
		}
		c := &providerConfig{Provider: p}
		if p.Issuer != "" {
			if !absoluteURL(p.Issuer, false) {
				return nil, nil, bad(i, p, "Issuer must be an https URL (http only on a loopback address)")
			}
			c.scopes = slices.Clone(p.Scopes)
			if len(c.scopes) == 0 {
				c.scopes = strings.Fields(providerScopes)
			}
			if !slices.Contains(c.scopes, "openid") {
				c.scopes = append([]string{"openid"}, c.scopes...)
			}
		} else {
			a := p.OAuth2
			switch {
			case !absoluteURL(a.AuthURL, false) || !absoluteURL(a.TokenURL, false):
				return nil, nil, bad(i, p, "OAuth2.AuthURL and OAuth2.TokenURL must be https URLs (http only on a loopback address)")
			case a.Profile == nil:
				return nil, nil, bad(i, p, "OAuth2.Profile is required")
			}
			c.scopes = slices.Clone(p.Scopes)
			if len(c.scopes) == 0 {
				c.scopes = slices.Clone(a.Scopes)
			}
			c.oauth2 = oauth2.Endpoint{AuthURL: a.AuthURL, TokenURL: a.TokenURL, AuthStyle: oauth2.AuthStyleInParams}
		}
		if c.DisplayName == "" {
			c.DisplayName = p.Name
		}
		if c.HTTPClient == nil {
			c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
		}
		out[p.Name] = c
		order = append(order, p.Name)
	}
	return out, order, nil
}

// absoluteURL reports whether s is an absolute URL with a host and without
// a fragment: https, or http on a loopback host (always when anyHTTP).
func absoluteURL(s string, anyHTTP bool) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Fragment != "" || u.User != nil {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		return anyHTTP || h == "localhost" || h == "127.0.0.1" || h == "::1"
	}
	return false
}

// Providers returns the configured providers in the order of
// Options.Providers, for a sign-in page's buttons. It is safe for
// concurrent use.
func (m *Manager) Providers() []ProviderInfo {
	out := make([]ProviderInfo, 0, len(m.providerOrder))
	for _, name := range m.providerOrder {
		out = append(out, ProviderInfo{Name: name, DisplayName: m.providers[name].DisplayName})
	}
	return out
}

// configureProviders checks and keeps Options.Providers and
// Options.ProviderFlowTTL, for New.
func (m *Manager) configureProviders(ps []Provider, ttl time.Duration) error {
	if ttl < 0 {
		return invalid("options.ProviderFlowTTL", ValidationNegative, "must not be negative")
	}
	m.flowTTL = or(ttl, DefaultProviderFlowTTL)
	var err error
	m.providers, m.providerOrder, err = newProviders(ps, m.mfa.current != "")
	return err
}
