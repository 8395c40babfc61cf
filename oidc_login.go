package users

import (
	"context"
	"errors"
	"net/url"

	"golang.org/x/oauth2"
)

// errNotBuilt marks the parts of the provider flow still being written.
var errNotBuilt = errors.New("users: not built yet")

// BeginProviderSignIn starts a sign-in with the provider named provider. It
// makes a state, a nonce and a PKCE (S256) verifier, stores them (with
// returnTo and the binding's hash) as a single-use flow that expires after
// Options.ProviderFlowTTL, and returns the provider's URL and the Binding
// the caller keeps in a cookie for FinishProvider.
//
// returnTo is where the browser goes after the sign-in: a local path ("/",
// "/account?tab=x"); empty means "/". Anything else (a scheme, a host, "//",
// a backslash, a control character) is refused with a *ValidationError on
// "return_to", so the flow can never redirect off the site. It returns
// ErrUnknownProvider for a name not in Options.Providers, and an error
// wrapping the cause when the provider's discovery document cannot be read.
// It is safe for concurrent use.
func (m *Manager) BeginProviderSignIn(ctx context.Context, provider, returnTo string) (*ProviderRedirect, error) {
	return nil, errNotBuilt
}

// BeginProviderLink starts linking an identity at the provider to the user
// userID, who must be signed in: like BeginTOTP it requires a recent
// authentication (Options.ReauthWindow) of the Session in ctx, and returns
// ErrReauthRequired without one. FinishProvider then links the identity
// (outcome ProviderLinked) if the callback's context carries a Session of the
// same user. It returns ErrNotFound for an unknown user, and what
// BeginProviderSignIn returns. It is safe for concurrent use.
func (m *Manager) BeginProviderLink(ctx context.Context, userID, provider, returnTo string) (*ProviderRedirect, error) {
	return nil, errNotBuilt
}

// FinishProvider completes a flow begun by BeginProviderSignIn or
// BeginProviderLink. binding is the value the caller kept in its cookie and
// callback the query of the request to Provider.RedirectURL.
//
// It consumes the flow the state names (a state works once), and refuses
// with ErrProviderState a state that is unknown, used, expired, or begun
// with another binding. It returns ErrProviderDenied when the provider sent
// an error, and ErrProviderResponse when the iss parameter names another
// issuer (RFC 9207), the code does not redeem, or the ID token does not
// verify (signature, issuer, audience, expiry, nonce). Then:
//
//   - an identity linked to a user signs that user in (ProviderSignedIn),
//     through the second step when the user has a second factor, and is
//     refused like a password login when the account is disabled
//     (ErrAccountDisabled);
//   - an identity no user has, whose email a user has, answers
//     ProviderLinkRequired, unless Provider.LinkByEmail is on, the provider
//     says the email is verified and the user's email is verified, when it
//     links the identity to that user and signs in;
//   - otherwise, with Provider.AllowSignUp, it creates a user with the
//     provider's email (verified only if the provider says so) and the
//     identity in one atomic step (ProviderSignedUp), else ErrNoAccount.
//
// A link flow answers ProviderLinked, or ErrIdentityTaken when another user
// has the identity, and ErrProviderState when ctx carries no Session of the
// user who began it. Every outcome and refusal is audited with the
// provider's name and never a token. It is safe for concurrent use.
func (m *Manager) FinishProvider(ctx context.Context, binding string, callback url.Values) (*ProviderResult, error) {
	return nil, errNotBuilt
}

// ListIdentities returns the identities linked to the user, oldest first.
// A user without any, or no such user, gives an empty slice. It is safe for
// concurrent use.
func (m *Manager) ListIdentities(ctx context.Context, userID string) ([]*Identity, error) {
	return nil, errNotBuilt
}

// UnlinkIdentity removes the identity id (an Identity.ID) from the user. It
// requires a recent authentication of the Session in ctx (ErrReauthRequired),
// returns ErrNotFound when the user has no such identity, and
// ErrLastSignInMethod when it is the user's last way to sign in (no
// password, no passkey, no other identity): the check and the delete are one
// atomic step in the store, so a concurrent password removal cannot leave
// the user with nothing. It is safe for concurrent use.
func (m *Manager) UnlinkIdentity(ctx context.Context, userID, id string) error {
	return errNotBuilt
}

// ProviderTokens returns the provider's access and refresh tokens kept with
// the identity id of the user (Provider.StoreTokens), opened with
// Options.MFAKeys. It returns ErrNotFound when the user has no such identity
// or no tokens were kept for it. It is safe for concurrent use.
func (m *Manager) ProviderTokens(ctx context.Context, userID, id string) (*oauth2.Token, error) {
	return nil, errNotBuilt
}
