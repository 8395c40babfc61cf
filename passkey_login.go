package users

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// Signing in with a passkey: passwordless (BeginPasskeyLogin,
// FinishPasskeyLogin), as the second step of a login (BeginPasskeySecondFactor,
// then CompleteLogin), and for step-up (BeginPasskeyStepUp, then StepUp).

// BeginPasskeyLogin starts a passwordless sign-in: it returns the options for
// navigator.credentials.get() with no user named (a discoverable-credential
// login), so that the browser offers the passkeys it holds for the RP ID. The
// same options serve passkey autofill: the page passes mediation
// "conditional" to get(). Pass the browser's answer to FinishPasskeyLogin
// within PasskeyOptions.Timeout.
//
// It returns ErrPasskeysNotConfigured. It is safe for concurrent use.
func (m *Manager) BeginPasskeyLogin(ctx context.Context) (*PasskeyCeremony, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if m.passkey == nil {
		return nil, ErrPasskeysNotConfigured
	}
	return m.beginCeremony(ctx, CeremonyPasskeyLogin, "", func(challenge []byte) (any, error) {
		o, _, err := m.passkey.wa.BeginDiscoverableLogin(webauthn.WithChallenge(challenge),
			webauthn.WithUserVerification(protocol.VerificationPreferred))
		if err != nil {
			return nil, err
		}
		return o.Response, nil
	})
}

// FinishPasskeyLogin verifies response, the JSON of the PublicKeyCredential
// that navigator.credentials.get() returned for a ceremony BeginPasskeyLogin
// began, and signs its user in: a session like Login's, with Methods starting
// with MethodPasskey, the client of ctx (see WithClient) recorded, the
// passkey's LastUsedAt and signature counter updated with a passkey.used
// entry, and a login.succeeded entry.
//
// An assertion in which the authenticator verified the user (a PIN, a
// fingerprint) proves two factors, possession and the user's PIN or body: the
// session's Methods are MethodPasskey twice and its SecondFactorAt is now, and
// a user with a second factor is not asked for it. Without user verification
// it is one factor: a user with a second factor gets a *Challenge (matching
// ErrSecondFactorRequired), as from Login, whose Methods do not offer a
// passkey again.
//
// It returns ErrPasskeysNotConfigured; ErrInvalidToken when the ceremony is
// unknown, used or expired; ErrPasskeyRefused when response does not verify
// (wrong origin or RP ID, unknown credential, bad signature, malformed);
// ErrPasskeyCloned when the signature counter did not increase;
// ErrAccountDisabled for a user who is not active; and
// ErrEmailNotVerified with Options.RequireVerifiedEmail. The ceremony is
// used up whatever the outcome. It is safe for concurrent use: of
// concurrent finishes with assertions of one counter value, at most one gets
// a session.
func (m *Manager) FinishPasskeyLogin(ctx context.Context, response []byte) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if m.passkey == nil {
		return nil, ErrPasskeysNotConfigured
	}
	r, uv, err := m.verifyAssertion(ctx, CeremonyPasskeyLogin, "", response)
	if err != nil {
		return nil, err
	}
	if r.Status != StatusActive {
		return nil, m.refuseLogin(ctx, r.ID, reasonAccountDisabled, ErrAccountDisabled)
	}
	if m.requireVerify && !r.EmailVerified {
		return nil, m.refuseLogin(ctx, r.ID, reasonEmailNotVerified, ErrEmailNotVerified)
	}
	if uv {
		// Possession and the user's PIN or body: both factors at once.
		return m.startSession(ctx, r, "", noCheck, MethodPasskey, MethodPasskey)
	}
	s, err := m.login(ctx, r, MethodPasskey, "", noCheck)
	var ch *Challenge
	if errors.As(err, &ch) {
		// The passkey is spent as the first factor: another is asked for.
		ch.Methods = slices.DeleteFunc(slices.Clone(ch.Methods), func(a AuthMethod) bool { return a == MethodPasskey })
	}
	return s, err
}

// noCheck is the login check of a login that has nothing to compare with
// the stored user.
func noCheck(*UserRecord) error { return nil }

// BeginPasskeySecondFactor starts proving a passkey as the second step of a
// login: challengeToken is the Token of the *Challenge that Login (or
// LoginWithMagicLink) returned, whose Methods include MethodPasskey. It
// returns the options for navigator.credentials.get() naming the user's
// passkeys; pass the browser's answer, as a string, to CompleteLogin with the
// same challenge token, in place of a code.
//
// It returns ErrPasskeysNotConfigured, ErrInvalidToken for a challenge token
// that CompleteLogin would refuse, and ErrMFANotEnabled when the user has no
// passkey. It is safe for concurrent use.
func (m *Manager) BeginPasskeySecondFactor(ctx context.Context, challengeToken string) (*PasskeyCeremony, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if m.passkey == nil {
		return nil, ErrPasskeysNotConfigured
	}
	hash, ok := parseToken(challengeToken)
	if !ok {
		return nil, ErrInvalidToken
	}
	c, err := m.store.GetChallenge(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, storeErr("begin passkey", err)
	}
	r, err := m.store.GetUser(ctx, c.UserID)
	if errors.Is(err, ErrNotFound) || (err == nil && (r.Generation != c.UserGeneration || r.Status != StatusActive)) ||
		!m.now().Before(c.ExpiresAt) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, storeErr("begin passkey", err)
	}
	if slices.Contains(c.Methods, MethodPasskey) {
		return nil, ErrMFANotEnabled // the passkey signed this login in already
	}
	return m.beginFactor(ctx, r)
}

// beginFactor begins proving one of r's passkeys.
func (m *Manager) beginFactor(ctx context.Context, r *UserRecord) (*PasskeyCeremony, error) {
	_, creds, err := m.userPasskeys(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	if len(creds) == 0 {
		return nil, ErrMFANotEnabled
	}
	u := &passkeyUser{r: r, creds: creds}
	return m.beginCeremony(ctx, CeremonyPasskeyFactor, r.ID, func(challenge []byte) (any, error) {
		o, _, err := m.passkey.wa.BeginLogin(u, webauthn.WithChallenge(challenge),
			webauthn.WithUserVerification(protocol.VerificationPreferred))
		if err != nil {
			return nil, err
		}
		return o.Response, nil
	})
}

// BeginPasskeyStepUp starts proving a passkey again for an existing session,
// before a sensitive action: it returns the options for
// navigator.credentials.get() naming the user's passkeys; pass the browser's
// answer, as a string, to StepUp with the same session token, in place of a
// code.
//
// It returns ErrPasskeysNotConfigured, ErrInvalidToken for a session token
// that ValidateToken refuses, and ErrMFANotEnabled when the user has no
// passkey. It is safe for concurrent use.
func (m *Manager) BeginPasskeyStepUp(ctx context.Context, sessionToken string) (*PasskeyCeremony, error) {
	if m.passkey == nil {
		return nil, ErrPasskeysNotConfigured
	}
	s, err := m.ValidateToken(ctx, sessionToken)
	if err != nil {
		return nil, err
	}
	r, err := m.store.GetUser(ctx, s.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, storeErr("begin passkey", err)
	}
	return m.beginFactor(ctx, r)
}

// isPasskeyResponse reports whether a second factor's proof is a passkey's
// answer (JSON) rather than a code.
func isPasskeyResponse(proof string) bool {
	b := bytes.TrimLeft([]byte(proof), " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// checkPasskeyFactor is checkSecondFactor for a passkey's answer to a
// ceremony BeginPasskeySecondFactor or BeginPasskeyStepUp began: counted as
// a failure under key first, like a code, then verified, the passkey's
// counter advanced and its use recorded. Nothing of the MFA record is spent:
// the ceremony and the counter were, in their own steps. A refused answer is
// recorded as a failed code and returns ErrPasskeyRefused (ErrPasskeyCloned
// for a counter that did not increase).
func (m *Manager) checkPasskeyFactor(ctx context.Context, userID string, key ThrottleKey, proof string) (AuthMethod, func(*MFARecord) error, error) {
	if _, err := m.reserveAttempt(ctx, key, userID); err != nil {
		return "", nil, err
	}
	_, _, err := m.verifyAssertion(ctx, CeremonyPasskeyFactor, userID, []byte(proof))
	if errors.Is(err, ErrInvalidToken) {
		err = errors.Join(ErrPasskeyRefused, errors.New("no such ceremony for this user, or it expired"))
	}
	if errors.Is(err, ErrPasskeyRefused) {
		if ferr := m.codeFailed(ctx, userID); !errors.Is(ferr, ErrInvalidCode) {
			return "", nil, ferr
		}
		return "", nil, err
	}
	if err != nil {
		return "", nil, err
	}
	return MethodPasskey, func(*MFARecord) error { return nil }, nil
}

// withPasskeyFactor adds MethodPasskey to methods, the second factors a
// login offers a user who has some, when the user has a passkey too: a
// passkey alone does not make a login two-step (login asks only when methods
// is not empty).
func (m *Manager) withPasskeyFactor(ctx context.Context, userID string, methods []AuthMethod) ([]AuthMethod, error) {
	if m.passkey == nil {
		return methods, nil
	}
	recs, _, err := m.userPasskeys(ctx, userID)
	if err != nil || len(recs) == 0 {
		return methods, err
	}
	return append(methods, MethodPasskey), nil
}

// verifyAssertion verifies response, a passkey's answer to a ceremony of
// kind begun for userID ("" for a passwordless sign-in, whose user the
// passkey names), uses the ceremony up, and advances the passkey's counter
// and LastUsedAt with a passkey.used entry. It returns the user and whether
// the authenticator verified the user; ErrInvalidToken for a ceremony that
// is unknown, used, expired or another user's; ErrPasskeyRefused for an
// answer that does not verify; and ErrPasskeyCloned, recorded, for a
// counter that did not increase.
func (m *Manager) verifyAssertion(ctx context.Context, kind CeremonyKind, userID string, response []byte) (*UserRecord, bool, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, false, passkeyRefusal(err)
	}
	challenge := parsed.Response.CollectedClientData.Challenge
	if _, err := m.consumeCeremony(ctx, challenge, kind, userID); err != nil {
		return nil, false, err
	}
	var (
		r   *UserRecord
		rec *CredentialRecord
	)
	find := func(rawID, userHandle []byte) (webauthn.User, error) {
		c, err := m.store.GetCredential(ctx, CredentialPasskey, string(rawID))
		if err != nil {
			return nil, err
		}
		if (userID != "" && c.UserID != userID) || (len(userHandle) > 0 && string(userHandle) != c.UserID) {
			return nil, ErrNotFound // another user's
		}
		d, err := decodePasskey(c)
		if err != nil {
			return nil, err
		}
		if r, err = m.store.GetUser(ctx, c.UserID); err != nil {
			return nil, err
		}
		rec = c
		return &passkeyUser{r: r, creds: []webauthn.Credential{webauthnCredential(c, d)}}, nil
	}
	if userID == "" {
		if len(parsed.Response.UserHandle) == 0 {
			return nil, false, passkeyRefusal(errors.New("no user handle in a passwordless sign-in"))
		}
		_, _, err = m.passkey.wa.ValidatePasskeyLogin(find, m.sessionData(challenge, ""), parsed)
	} else {
		var u webauthn.User
		if u, err = find(parsed.RawID, parsed.Response.UserHandle); err == nil {
			_, err = m.passkey.wa.ValidateLogin(u, m.sessionData(challenge, userID), parsed)
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		return nil, false, passkeyRefusal(errors.New("unknown credential"))
	case errors.As(err, new(*protocol.Error)), errors.As(err, new(*protocol.ErrorUnknownCredential)):
		return nil, false, passkeyRefusal(err)
	default:
		return nil, false, storeErr("passkey", err)
	}
	// go-webauthn only flags a counter that did not increase
	// (CloneWarning); usePasskey refuses it, checking against the record as
	// it is written, which settles concurrent uses too.
	flags := parsed.Response.AuthenticatorData.Flags
	if err := m.usePasskey(ctx, rec, parsed.Response.AuthenticatorData.Counter, flags); err != nil {
		return nil, false, err
	}
	return r, flags.HasUserVerified(), nil
}

// usePasskey advances the passkey's counter to count (unless it is an
// authenticator that always says 0), records its backup state and last use,
// with a passkey.used entry. Of concurrent uses with one count exactly one
// succeeds: the others find the counter moved and are refused as clones.
func (m *Manager) usePasskey(ctx context.Context, c *CredentialRecord, count uint32, flags protocol.AuthenticatorFlags) error {
	e, err := m.passkeyEntry(ctx, EventPasskeyUsed, c)
	if err != nil {
		return err
	}
	now := m.now()
	err = m.write(ctx, c.UserID, func() error {
		_, err := m.store.UpdateCredential(ctx, c.Kind, c.ID, func(w *CredentialRecord) error {
			if w.UserID != c.UserID {
				return ErrNotFound
			}
			if (count != 0 || w.Counter != 0) && int64(count) <= w.Counter {
				return errCounterMoved
			}
			d, err := decodePasskey(w)
			if err != nil {
				return err
			}
			d.BackedUp = flags.HasBackupState()
			if w.Data, err = json.Marshal(d); err != nil {
				return err
			}
			w.Counter, w.LastUsedAt = int64(count), now
			e.Data["name"] = w.Name
			return nil
		}, e)
		return err
	}, e)
	switch {
	case errors.Is(err, errCounterMoved):
		return m.passkeyRefused(ctx, c)
	case errors.Is(err, ErrNotFound):
		return passkeyRefusal(errors.New("passkey removed meanwhile"))
	}
	return storeErr("passkey", err)
}

var errCounterMoved = errors.New("users: passkey counter moved")

// passkeyRefused records that the passkey c reported a counter that did not
// increase, and returns ErrPasskeyCloned.
func (m *Manager) passkeyRefused(ctx context.Context, c *CredentialRecord) error {
	e, err := m.passkeyEntry(ctx, EventPasskeyRefused, c)
	if err != nil {
		return err
	}
	e.Reason = "counter_not_increased"
	if err := m.write(ctx, c.UserID, func() error { return m.store.AppendAudit(ctx, e) }, e); err != nil {
		return storeErr("passkey", err)
	}
	return ErrPasskeyCloned
}
