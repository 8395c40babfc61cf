package users

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The flow of a sign-in with a provider: begin stores a flow (FlowStore)
// under the state's hash and returns the provider's URL; the callback
// consumes the flow, checks the answer and ends in one of the outcomes of
// ProviderResult. oidc.go has the configuration.

// flowData is the Manager's payload of a FlowRecord.
type flowData struct {
	Provider string `json:"p"`
	UserID   string `json:"u,omitempty"` // the linking user; empty for a sign-in
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
	Binding  []byte `json:"b"` // SHA-256 of the binding
}

// identityData is the Data of a CredentialOIDC credential.
type identityData struct {
	Provider      string `json:"provider"`
	Issuer        string `json:"issuer"`
	Subject       string `json:"subject"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified,omitempty"`
	// Tokens are the provider's tokens (JSON of an oauth2.Token), sealed
	// with an MFA key, only with Provider.StoreTokens.
	Tokens []byte `json:"tokens,omitempty"`
	KeyID  string `json:"key_id,omitempty"`
}

// identityID is the credential ID of the identity (issuer, subject): the
// issuer's length, a colon, the issuer and the subject, so that no two
// pairs give one ID.
func identityID(issuer, subject string) string {
	return strconv.Itoa(len(issuer)) + ":" + issuer + subject
}

// maxReturnTo bounds a return path.
const maxReturnTo = 2048

// localPath returns p if it is a local path to return to after sign-in, "/"
// for an empty one, and a *ValidationError on "return_to" otherwise: only a
// path on this site, never one a browser would take to another host
// ("//host", "/\host", a scheme).
func localPath(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	bad := invalid("return_to", ValidationMalformed, "must be a local path starting with a single /")
	if len(p) > maxReturnTo || p[0] != '/' || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\") {
		return "", bad
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return "", bad
		}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "", bad
	}
	return p, nil
}

// provider returns the configured provider named name, or ErrUnknownProvider.
func (m *Manager) provider(name string) (*providerConfig, error) {
	p, ok := m.providers[name]
	if !ok {
		return nil, ErrUnknownProvider
	}
	return p, nil
}

// oauthConfig returns the provider's OAuth 2 configuration, discovering an
// OpenID Connect provider the first time; a failed discovery is tried again
// next time.
func (m *Manager) oauthConfig(ctx context.Context, p *providerConfig) (*oauth2.Config, error) {
	ep := p.oauth2
	if p.Issuer != "" {
		d, err := m.discover(ctx, p)
		if err != nil {
			return nil, err
		}
		ep = d.endpoint
	}
	return &oauth2.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret, Endpoint: ep,
		RedirectURL: p.RedirectURL, Scopes: p.scopes}, nil
}

// discover reads an OpenID Connect provider's discovery document once.
func (m *Manager) discover(ctx context.Context, p *providerConfig) (*discovered, error) {
	p.once.Lock()
	defer p.once.Unlock()
	if p.oidc != nil {
		return p.oidc, nil
	}
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, p.HTTPClient), p.Issuer)
	if err != nil {
		return nil, fmt.Errorf("users: provider %s: discovery: %w", p.Name, err)
	}
	var meta struct {
		IssParam bool `json:"authorization_response_iss_parameter_supported"`
	}
	if err := op.Claims(&meta); err != nil {
		return nil, fmt.Errorf("users: provider %s: discovery: %w", p.Name, err)
	}
	v := op.Verifier(&oidc.Config{ClientID: p.ClientID, Now: m.now})
	p.oidc = &discovered{endpoint: op.Endpoint(), issParam: meta.IssParam,
		verify: func(ctx context.Context, raw string) (*idClaims, error) {
			tok, err := v.Verify(ctx, raw)
			if err != nil {
				return nil, err
			}
			var c struct {
				Email         string `json:"email"`
				EmailVerified any    `json:"email_verified"`
				Name          string `json:"name"`
				GivenName     string `json:"given_name"`
				FamilyName    string `json:"family_name"`
				Picture       string `json:"picture"`
			}
			if err := tok.Claims(&c); err != nil {
				return nil, err
			}
			verified := c.EmailVerified == true || c.EmailVerified == "true"
			return &idClaims{Issuer: tok.Issuer, Subject: tok.Subject, Nonce: tok.Nonce, Email: c.Email,
				EmailVerified: verified, Name: c.Name, GivenName: c.GivenName, FamilyName: c.FamilyName, Picture: c.Picture}, nil
		}}
	return p.oidc, nil
}

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
	return m.beginProvider(ctx, provider, returnTo, "")
}

// BeginProviderLink starts linking an identity at the provider to the user
// userID, who must be signed in: like BeginTOTP it requires a recent
// authentication (Options.ReauthWindow) of the Session in ctx, and returns
// ErrReauthRequired without one. FinishProvider then links the identity
// (outcome ProviderLinked) if the callback's context carries a Session of the
// same user. It returns ErrNotFound for an unknown user, and what
// BeginProviderSignIn returns. It is safe for concurrent use.
func (m *Manager) BeginProviderLink(ctx context.Context, userID, provider, returnTo string) (*ProviderRedirect, error) {
	if err := m.recentAuth(ctx); err != nil {
		return nil, err
	}
	if _, err := m.store.GetUser(ctx, userID); err != nil {
		return nil, storeErr("link", err)
	}
	return m.beginProvider(ctx, provider, returnTo, userID)
}

func (m *Manager) beginProvider(ctx context.Context, provider, returnTo, userID string) (*ProviderRedirect, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := m.provider(provider)
	if err != nil {
		return nil, err
	}
	rt, err := localPath(returnTo)
	if err != nil {
		return nil, err
	}
	cfg, err := m.oauthConfig(ctx, p)
	if err != nil {
		return nil, err
	}
	var secrets [4]string
	var stateHash, bindingHash []byte
	for i := range secrets {
		var h []byte
		if secrets[i], h, err = m.newToken(); err != nil {
			return nil, err
		}
		switch i {
		case 0:
			stateHash = h
		case 1:
			bindingHash = h
		}
	}
	state, binding, nonce, verifier := secrets[0], secrets[1], secrets[2], secrets[3]
	data, err := json.Marshal(flowData{Provider: p.Name, UserID: userID, Nonce: nonce, Verifier: verifier, ReturnTo: rt, Binding: bindingHash})
	if err != nil {
		return nil, err
	}
	now := m.now()
	f := &FlowRecord{Hash: stateHash, Data: data, CreatedAt: now, ExpiresAt: now.Add(m.flowTTL)}
	if err := m.store.CreateFlow(ctx, f); err != nil {
		return nil, storeErr("begin sign-in", err)
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if p.Issuer != "" {
		opts = append(opts, oidc.Nonce(nonce))
	}
	return &ProviderRedirect{URL: cfg.AuthCodeURL(state, opts...), Binding: binding, ExpiresAt: f.ExpiresAt}, nil
}

// FinishProvider completes a flow begun by BeginProviderSignIn or
// BeginProviderLink. binding is the value the caller kept in its cookie and
// callback the query of the request to Provider.RedirectURL.
//
// It consumes the flow the state names (a state works once), and refuses
// with ErrProviderState a state that is unknown, used, expired, or begun
// with another binding. It returns ErrProviderDenied when the provider sent
// an error, and ErrProviderResponse when the iss parameter names another
// issuer or is missing from a provider that promises it (RFC 9207), the code
// does not redeem, or the ID token does not verify (signature, issuer,
// audience, expiry, nonce). Then:
//
//   - an identity linked to a user signs that user in (ProviderSignedIn),
//     through the second step when the user has a second factor, and is
//     refused like a password login when the account is disabled
//     (ErrAccountDisabled) or, with Options.RequireVerifiedEmail, its email
//     is not verified (ErrEmailNotVerified, below);
//   - an identity no user has, whose email a user has, answers
//     ProviderLinkRequired, unless Provider.LinkByEmail is on, the provider
//     says the email is verified and the user's email is verified, when it
//     links the identity to that user and signs in;
//   - otherwise, with Provider.AllowSignUp, it creates a user with the
//     provider's email (verified only if the provider says so) and the
//     identity in one atomic step (ProviderSignedUp), else ErrNoAccount.
//     With Options.RequireVerifiedEmail, a user whose email the provider
//     did not verify is created but not signed in (ErrEmailNotVerified).
//
// ErrEmailNotVerified is the one error that comes with a result: no
// Session or Challenge, but the Outcome (ProviderSignedUp when the user was
// created now, else ProviderSignedIn) and the Identity, whose UserID the
// application passes to RequestEmailVerification to mail the link that
// lets the person in. Every other error comes with a nil result.
//
// A link flow answers ProviderLinked, or ErrIdentityTaken when another user
// has the identity, and ErrProviderState when ctx carries no Session of the
// user who began it. Every outcome and refusal is audited with the
// provider's name and never a token. It is safe for concurrent use.
//
// FinishProvider takes the provider from the flow: an application with one
// callback route per provider calls FinishProviderAt instead.
func (m *Manager) FinishProvider(ctx context.Context, binding string, callback url.Values) (*ProviderResult, error) {
	return m.finishProvider(ctx, "", binding, callback)
}

// FinishProviderAt is FinishProvider for the callback route of the provider
// named provider (an application that serves one route per provider's
// RedirectURL): a flow begun with another provider is refused with a
// *ProviderMismatchError (which matches ErrProviderState) after it is
// consumed and before its code is sent to any token endpoint. A name not in
// Options.Providers returns ErrUnknownProvider and consumes nothing. Its
// other answers are FinishProvider's. It is safe for concurrent use.
func (m *Manager) FinishProviderAt(ctx context.Context, provider, binding string, callback url.Values) (*ProviderResult, error) {
	if _, err := m.provider(provider); err != nil {
		return nil, err
	}
	return m.finishProvider(ctx, provider, binding, callback)
}

// finishProvider is FinishProvider, for the callback of the provider named
// at, or of any provider when at is empty.
func (m *Manager) finishProvider(ctx context.Context, at, binding string, callback url.Values) (*ProviderResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fd, p, err := m.consumeFlow(ctx, at, binding, callback)
	if err != nil {
		return nil, err
	}
	prof, tok, err := m.verifyAnswer(ctx, p, fd, callback)
	if err != nil {
		return nil, m.refuseProvider(ctx, "", p.Name, reasonOf(err), err)
	}
	issuer := p.Name
	if p.Issuer != "" {
		issuer = p.Issuer
	}
	id := &identityData{Provider: p.Name, Issuer: issuer, Subject: prof.Subject, Email: prof.Email, EmailVerified: prof.EmailVerified}
	res := &ProviderResult{Provider: p.Name, ReturnTo: fd.ReturnTo}
	if fd.UserID != "" {
		return m.finishLink(ctx, p, fd.UserID, id, tok, res)
	}
	return m.finishSignIn(ctx, p, id, prof, tok, res)
}

// consumeFlow checks the state, the binding and, when at is not empty, the
// flow's provider, and returns the flow's data and provider, or
// ErrProviderState.
func (m *Manager) consumeFlow(ctx context.Context, at, binding string, callback url.Values) (*flowData, *providerConfig, error) {
	state := callback.Get("state")
	if state == "" || binding == "" {
		return nil, nil, m.refuseProvider(ctx, "", "", "provider_state", ErrProviderState)
	}
	f, err := m.store.ConsumeFlow(ctx, hashToken(state))
	if errors.Is(err, ErrNotFound) {
		return nil, nil, m.refuseProvider(ctx, "", "", "provider_state", ErrProviderState)
	}
	if err != nil {
		return nil, nil, storeErr("finish sign-in", err)
	}
	var fd flowData
	if err := json.Unmarshal(f.Data, &fd); err != nil {
		return nil, nil, fmt.Errorf("users: finish sign-in: stored flow: %w", err)
	}
	switch {
	case !m.now().Before(f.ExpiresAt):
		return nil, nil, m.refuseProvider(ctx, "", fd.Provider, "provider_state_expired", ErrProviderState)
	case subtle.ConstantTimeCompare(hashToken(binding), fd.Binding) != 1:
		return nil, nil, m.refuseProvider(ctx, "", fd.Provider, "provider_state_binding", ErrProviderState)
	case at != "" && fd.Provider != at:
		return nil, nil, m.refuseProvider(ctx, "", fd.Provider, "provider_mismatch", &ProviderMismatchError{Flow: fd.Provider, Callback: at})
	}
	p, err := m.provider(fd.Provider)
	if err != nil {
		return nil, nil, err
	}
	if fd.UserID != "" {
		if s, ok := FromContext(ctx); !ok || s.UserID != fd.UserID {
			return nil, nil, m.refuseProvider(ctx, fd.UserID, fd.Provider, "provider_link_session", ErrProviderState)
		}
	}
	return &fd, p, nil
}

// answerError is a refusal of the provider's answer with its audit reason.
type answerError struct {
	reason string
	err    error
}

func (e *answerError) Error() string { return e.err.Error() }
func (e *answerError) Unwrap() error { return e.err }

func refused(reason string, sentinel error, cause error) error {
	if cause == nil {
		return &answerError{reason, sentinel}
	}
	return &answerError{reason, fmt.Errorf("%w: %w", sentinel, cause)}
}

func reasonOf(err error) string {
	var a *answerError
	if errors.As(err, &a) {
		return a.reason
	}
	return "provider_error"
}

// verifyAnswer checks the provider's answer in callback: the error and iss
// parameters, the code exchange and the ID token, or the profile of a plain
// OAuth 2 provider.
func (m *Manager) verifyAnswer(ctx context.Context, p *providerConfig, fd *flowData, callback url.Values) (*ProviderProfile, *oauth2.Token, error) {
	if callback.Get("error") != "" {
		return nil, nil, refused("provider_denied", ErrProviderDenied, nil)
	}
	cfg, err := m.oauthConfig(ctx, p)
	if err != nil {
		return nil, nil, refused("provider_unavailable", ErrProviderResponse, err)
	}
	if p.Issuer != "" {
		iss, sent := callback["iss"]
		switch {
		case sent && (len(iss) != 1 || iss[0] != p.Issuer):
			return nil, nil, refused("provider_iss_mismatch", ErrProviderResponse, nil)
		case !sent && p.oidc.issParam:
			return nil, nil, refused("provider_iss_missing", ErrProviderResponse, nil)
		}
	}
	code := callback.Get("code")
	if code == "" {
		return nil, nil, refused("provider_no_code", ErrProviderResponse, nil)
	}
	hctx := context.WithValue(ctx, oauth2.HTTPClient, p.HTTPClient)
	tok, err := cfg.Exchange(hctx, code, oauth2.VerifierOption(fd.Verifier))
	if err != nil {
		return nil, nil, refused("provider_exchange", ErrProviderResponse, err)
	}
	var prof *ProviderProfile
	if p.Issuer != "" {
		raw, _ := tok.Extra("id_token").(string)
		if raw == "" {
			return nil, nil, refused("provider_no_id_token", ErrProviderResponse, nil)
		}
		c, err := p.oidc.verify(oidc.ClientContext(ctx, p.HTTPClient), raw)
		if err != nil {
			return nil, nil, refused("provider_id_token", ErrProviderResponse, err)
		}
		if subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(fd.Nonce)) != 1 {
			return nil, nil, refused("provider_nonce", ErrProviderResponse, nil)
		}
		prof = &ProviderProfile{Subject: c.Subject, Email: c.Email, EmailVerified: c.EmailVerified, Name: c.Name,
			GivenName: c.GivenName, FamilyName: c.FamilyName, AvatarURL: c.Picture}
	} else {
		prof, err = p.OAuth2.Profile(ctx, cfg.Client(hctx, tok))
		if err != nil {
			return nil, nil, refused("provider_profile", ErrProviderResponse, err)
		}
	}
	if prof == nil || prof.Subject == "" || len(prof.Subject) > 255 {
		return nil, nil, refused("provider_no_subject", ErrProviderResponse, nil)
	}
	return prof, tok, nil
}

// refuseProvider records a refused callback (login.failed, with the reason
// and the provider) and returns err.
func (m *Manager) refuseProvider(ctx context.Context, userID, provider, reason string, err error) error {
	e, eerr := m.auditEntry(ctx, EventLoginFailed, userID)
	if eerr != nil {
		return eerr
	}
	e.Reason = reason
	if provider != "" {
		e.Data = map[string]string{"provider": provider}
	}
	if werr := m.write(ctx, userID, func() error { return m.store.AppendAudit(ctx, e) }, e); werr != nil {
		return storeErr("finish sign-in", werr)
	}
	return err
}

// identityEntry returns an audit entry of type t about the user's identity
// at provider p.
func (m *Manager) identityEntry(ctx context.Context, t EventType, userID, provider string) *AuditEntry {
	e, _ := m.auditEntry(ctx, t, userID)
	e.Data = map[string]string{"provider": provider}
	return e
}

// credential returns the identity as a new credential of the user, with
// the provider's tokens sealed when the provider keeps them.
func (m *Manager) credential(p *providerConfig, userID string, id *identityData, tok *oauth2.Token) (*CredentialRecord, error) {
	c := &CredentialRecord{Kind: CredentialOIDC, ID: identityID(id.Issuer, id.Subject), UserID: userID, CreatedAt: m.now()}
	c.LastUsedAt = c.CreatedAt
	if err := m.setIdentityData(p, c, id, tok); err != nil {
		return nil, err
	}
	return c, nil
}

// setIdentityData encodes id into c.Data, sealing tok when p keeps tokens.
func (m *Manager) setIdentityData(p *providerConfig, c *CredentialRecord, id *identityData, tok *oauth2.Token) error {
	d := *id
	d.Tokens, d.KeyID = nil, ""
	if p.StoreTokens && tok != nil {
		plain, err := json.Marshal(tok)
		if err != nil {
			return err
		}
		if d.Tokens, d.KeyID, err = m.sealFor(tokenAAD(c), plain); err != nil {
			return err
		}
	}
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	c.Data = data
	return nil
}

// tokenAAD binds sealed provider tokens to their user and identity.
func tokenAAD(c *CredentialRecord) []byte {
	return []byte("users/provider-tokens/v1:" + c.UserID + "\x00" + c.ID)
}

// finishLink links the identity to the signed-in user of a link flow.
func (m *Manager) finishLink(ctx context.Context, p *providerConfig, userID string, id *identityData, tok *oauth2.Token, res *ProviderResult) (*ProviderResult, error) {
	c, err := m.credential(p, userID, id, tok)
	if err != nil {
		return nil, err
	}
	e := m.identityEntry(ctx, EventIdentityLinked, userID, p.Name)
	err = m.write(ctx, userID, func() error { return m.store.CreateCredential(ctx, c, e) }, e)
	if errors.Is(err, ErrConflict) {
		cur, gerr := m.store.GetCredential(ctx, CredentialOIDC, c.ID)
		if gerr != nil || cur.UserID != userID {
			return nil, m.refuseProvider(ctx, userID, p.Name, "provider_identity_taken", ErrIdentityTaken)
		}
		c, err = cur, nil // linked already: nothing to do
	}
	if err != nil {
		return nil, storeErr("link", err)
	}
	res.Outcome, res.Identity = ProviderLinked, identityOf(c)
	return res, nil
}

// finishSignIn ends a sign-in flow: with the user the identity is linked
// to, with a user linked now by email, with a new user, or with
// ProviderLinkRequired.
func (m *Manager) finishSignIn(ctx context.Context, p *providerConfig, id *identityData, prof *ProviderProfile, tok *oauth2.Token, res *ProviderResult) (*ProviderResult, error) {
	key := identityID(id.Issuer, id.Subject)
	for range 3 { // a concurrent first sign-in of the identity may win: then it is linked
		c, err := m.store.GetCredential(ctx, CredentialOIDC, key)
		if err == nil {
			return m.signInLinked(ctx, p, c, id, tok, res, ProviderSignedIn)
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, storeErr("finish sign-in", err)
		}
		email, verr := NormalizeEmail(prof.Email)
		if verr != nil {
			if !p.AllowSignUp {
				return nil, m.refuseProvider(ctx, "", p.Name, "provider_no_account", ErrNoAccount)
			}
			return nil, m.refuseProvider(ctx, "", p.Name, "provider_no_email", fmt.Errorf("%w: no usable email", ErrProviderResponse))
		}
		u, err := m.store.GetUserByEmail(ctx, email)
		switch {
		case err == nil:
			if !p.LinkByEmail || !prof.EmailVerified || !u.EmailVerified {
				// A concurrent first sign-in of this identity may have made
				// the user since the lookup above: then it is linked.
				if c, err := m.store.GetCredential(ctx, CredentialOIDC, key); err == nil {
					return m.signInLinked(ctx, p, c, id, tok, res, ProviderSignedIn)
				}
				res.Outcome, res.Email = ProviderLinkRequired, email
				return res, m.refuseProvider(ctx, u.ID, p.Name, "provider_link_required", nil)
			}
			c, err := m.credential(p, u.ID, id, tok)
			if err != nil {
				return nil, err
			}
			e := m.identityEntry(ctx, EventIdentityLinked, u.ID, p.Name)
			e.Reason = "verified_email"
			err = m.write(ctx, u.ID, func() error { return m.store.CreateCredential(ctx, c, e) }, e)
			if errors.Is(err, ErrConflict) {
				continue
			}
			if err != nil {
				return nil, storeErr("finish sign-in", err)
			}
			return m.signInLinked(ctx, p, c, id, nil, res, ProviderSignedIn)
		case !errors.Is(err, ErrNotFound):
			return nil, storeErr("finish sign-in", err)
		case !p.AllowSignUp:
			return nil, m.refuseProvider(ctx, "", p.Name, "provider_no_account", ErrNoAccount)
		}
		r, c, err := m.newProviderUser(ctx, p, email, id, prof, tok)
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrDuplicateEmail) {
			continue // the identity or the email was taken meanwhile
		}
		if err != nil {
			return nil, err
		}
		if m.requireVerify && !r.EmailVerified {
			return m.refuseUnverified(ctx, p, r, c, res, ProviderSignedUp)
		}
		return m.startProviderSession(ctx, p, r, c, res, ProviderSignedUp)
	}
	return nil, storeErr("finish sign-in", ErrConflict)
}

// newProviderUser creates a user with the identity, in one atomic step.
func (m *Manager) newProviderUser(ctx context.Context, p *providerConfig, email string, id *identityData, prof *ProviderProfile, tok *oauth2.Token) (*UserRecord, *CredentialRecord, error) {
	r, _, err := m.checkNew(ctx, NewUser{Email: email, NoPassword: true}, false)
	if err != nil {
		return nil, nil, err
	}
	if f, err := checkText("first_name", or(prof.GivenName, prof.Name), maxNameChars); err == nil {
		r.FirstName = f
	}
	if l, err := checkText("last_name", prof.FamilyName, maxNameChars); err == nil {
		r.LastName = l
	}
	if a, err := checkAvatarURL(prof.AvatarURL); err == nil {
		r.AvatarURL = a
	}
	r.EmailVerified = prof.EmailVerified
	now := m.now()
	if r.ID, err = m.newID(now); err != nil {
		return nil, nil, err
	}
	r.CreatedAt, r.UpdatedAt = now, now
	c, err := m.credential(p, r.ID, id, tok)
	if err != nil {
		return nil, nil, err
	}
	created, _ := m.auditEntry(ctx, EventUserCreated, r.ID)
	created.Data = map[string]string{"provider": p.Name}
	linked := m.identityEntry(ctx, EventIdentityLinked, r.ID, p.Name)
	err = m.write(ctx, r.ID, func() error { return m.store.CreateUserWithCredential(ctx, r, c, created, linked) }, created, linked)
	if err != nil {
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrDuplicateEmail) {
			return nil, nil, err
		}
		return nil, nil, storeErr("finish sign-in", err)
	}
	return r, c, nil
}

// signInLinked signs in the user of the linked identity c, recording its use.
func (m *Manager) signInLinked(ctx context.Context, p *providerConfig, c *CredentialRecord, id *identityData, tok *oauth2.Token, res *ProviderResult, outcome ProviderOutcome) (*ProviderResult, error) {
	r, err := m.store.GetUser(ctx, c.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, m.refuseProvider(ctx, "", p.Name, "provider_no_account", ErrNoAccount)
	}
	if err != nil {
		return nil, storeErr("finish sign-in", err)
	}
	if r.Status != StatusActive {
		return nil, m.refuseProvider(ctx, r.ID, p.Name, reasonAccountDisabled, ErrAccountDisabled)
	}
	if m.requireVerify && !r.EmailVerified {
		return m.refuseUnverified(ctx, p, r, c, res, outcome)
	}
	c, err = m.store.UpdateCredential(ctx, CredentialOIDC, c.ID, func(cur *CredentialRecord) error {
		cur.LastUsedAt = m.now()
		if tok == nil {
			var old identityData
			if json.Unmarshal(cur.Data, &old) == nil {
				id.Tokens, id.KeyID = old.Tokens, old.KeyID
			}
			data, err := json.Marshal(id)
			cur.Data = data
			return err
		}
		return m.setIdentityData(p, cur, id, tok)
	})
	if errors.Is(err, ErrNotFound) {
		return nil, m.refuseProvider(ctx, r.ID, p.Name, reasonChangedMeanwhile, ErrInvalidCredentials) // unlinked meanwhile
	}
	if err != nil {
		return nil, storeErr("finish sign-in", err)
	}
	return m.startProviderSession(ctx, p, r, c, res, outcome)
}

// refuseUnverified refuses, as Login does, the sign-in of r through its
// identity c when Options.RequireVerifiedEmail is set and r's email is not
// verified: no session, ErrEmailNotVerified, and res naming the user (its
// Outcome and Identity) so that the application can send a verification
// mail.
func (m *Manager) refuseUnverified(ctx context.Context, p *providerConfig, r *UserRecord, c *CredentialRecord, res *ProviderResult, outcome ProviderOutcome) (*ProviderResult, error) {
	if err := m.refuseProvider(ctx, r.ID, p.Name, reasonEmailNotVerified, ErrEmailNotVerified); !errors.Is(err, ErrEmailNotVerified) {
		return nil, err // the refusal could not be audited
	}
	res.Outcome, res.Identity = outcome, identityOf(c)
	return res, ErrEmailNotVerified
}

// startProviderSession ends a sign-in through p for r: a session, or a
// Challenge when the user has a second factor.
func (m *Manager) startProviderSession(ctx context.Context, p *providerConfig, r *UserRecord, c *CredentialRecord, res *ProviderResult, outcome ProviderOutcome) (*ProviderResult, error) {
	res.Outcome, res.Identity = outcome, identityOf(c)
	rec, err := m.mfaRecord(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	noCheck := func(*UserRecord) error { return nil }
	if len(secondFactors(rec)) > 0 {
		_, err := m.login(ctx, r, MethodProvider, "", noCheck)
		var ch *Challenge
		if errors.As(err, &ch) {
			res.Challenge = ch
			return res, nil
		}
		return nil, err
	}
	s, err := m.startSessionWith(ctx, r, "", noCheck, func(s *SessionRecord, e *AuditEntry) error {
		e.Data = map[string]string{"provider": p.Name}
		return m.write(ctx, s.UserID, func() error { return m.store.CreateSession(ctx, s, e) }, e)
	}, MethodProvider)
	if err != nil {
		return nil, err
	}
	res.Session = s
	return res, nil
}

// identityOf returns the Identity of a CredentialOIDC credential.
func identityOf(c *CredentialRecord) *Identity {
	var d identityData
	_ = json.Unmarshal(c.Data, &d)
	return &Identity{ID: c.ID, UserID: c.UserID, Provider: d.Provider, Issuer: d.Issuer, Subject: d.Subject,
		Email: d.Email, EmailVerified: d.EmailVerified, LinkedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt}
}

// ListIdentities returns the identities linked to the user, oldest first.
// A user without any, or no such user, gives an empty slice. It is safe for
// concurrent use.
func (m *Manager) ListIdentities(ctx context.Context, userID string) ([]*Identity, error) {
	cs, err := m.store.ListCredentials(ctx, userID)
	if err != nil {
		return nil, storeErr("list identities", err)
	}
	out := []*Identity{}
	for _, c := range cs {
		if c.Kind == CredentialOIDC {
			out = append(out, identityOf(c))
		}
	}
	return out, nil
}

// keepsSignIn is the CredentialGuard of removing a way to sign in: the user
// must keep a password or a credential that signs in (a trusted device does
// not: see signsIn).
func keepsSignIn(u *UserRecord, rest []*CredentialRecord) error {
	if u.PasswordHash == "" && !slices.ContainsFunc(rest, signsIn) {
		return ErrLastSignInMethod
	}
	return nil
}

// UnlinkIdentity removes the identity id (an Identity.ID) from the user. It
// requires a recent authentication of the Session in ctx (ErrReauthRequired),
// returns ErrNotFound when the user has no such identity, and
// ErrLastSignInMethod when it is the user's last way to sign in (no
// password, no passkey, no other identity): the check and the delete are one
// atomic step in the store, so a concurrent password removal cannot leave
// the user with nothing. It is safe for concurrent use.
func (m *Manager) UnlinkIdentity(ctx context.Context, userID, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := m.recentAuth(ctx); err != nil {
		return err
	}
	c, err := m.store.GetCredential(ctx, CredentialOIDC, id)
	if err != nil {
		return storeErr("unlink", err)
	}
	if c.UserID != userID {
		return ErrNotFound
	}
	e := m.identityEntry(ctx, EventIdentityUnlinked, userID, identityOf(c).Provider)
	err = m.write(ctx, userID, func() error {
		return m.store.DeleteCredential(ctx, userID, CredentialOIDC, id, keepsSignIn, e)
	}, e)
	if errors.Is(err, ErrLastSignInMethod) {
		return m.refuseProvider(ctx, userID, identityOf(c).Provider, "last_sign_in_method", err)
	}
	if err != nil {
		return storeErr("unlink", err)
	}
	return nil
}

// ProviderTokens returns the provider's access and refresh tokens kept with
// the identity id of the user (Provider.StoreTokens), opened with
// Options.MFAKeys. It returns ErrNotFound when the user has no such identity
// or no tokens were kept for it, and an error when Options.MFAKeys no longer
// has the key that sealed them. It is safe for concurrent use.
func (m *Manager) ProviderTokens(ctx context.Context, userID, id string) (*oauth2.Token, error) {
	c, err := m.store.GetCredential(ctx, CredentialOIDC, id)
	if err != nil {
		return nil, storeErr("provider tokens", err)
	}
	var d identityData
	if c.UserID != userID || json.Unmarshal(c.Data, &d) != nil || len(d.Tokens) == 0 {
		return nil, ErrNotFound
	}
	plain, err := m.openFor(tokenAAD(c), d.KeyID, d.Tokens)
	if err != nil {
		return nil, errors.New("users: provider tokens cannot be opened with Options.MFAKeys")
	}
	var t oauth2.Token
	if err := json.Unmarshal(plain, &t); err != nil {
		return nil, fmt.Errorf("users: provider tokens: %w", err)
	}
	return &t, nil
}
