package users

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Passkeys (WebAuthn). A passkey is a key pair an authenticator (a phone, a
// laptop's platform authenticator, a security key) makes for one relying
// party: the server keeps only the public key, as a CredentialRecord of kind
// CredentialPasskey. Every ceremony is two calls: a Begin method returns the
// options the page hands to navigator.credentials.create() or get(), and a
// Finish method (or CompleteLogin and StepUp, for a second factor) takes the
// browser's answer back as the JSON of PublicKeyCredential.toJSON(). The
// challenge of each ceremony is single-use, bound to its purpose (and to its
// user when it has one), expires after PasskeyOptions.Timeout and is held in
// the Store, so that several Managers over one database agree on it.
//
// Passkeys are off until Options.Passkeys is set; until then every passkey
// method returns ErrPasskeysNotConfigured.

// MethodPasskey is the AuthMethod of a session signed in with a passkey, and
// of a second factor proved with one.
const MethodPasskey AuthMethod = "passkey"

// DefaultPasskeyTimeout is the default of PasskeyOptions.Timeout.
const DefaultPasskeyTimeout = 5 * time.Minute

// The events of passkeys, recorded like the others (see EventType). None of
// them carries a challenge, an attestation or an assertion; the passkey's
// name and its credential ID (base64url) are in AuditEntry.Data["name"] and
// Data["passkey"].
const (
	EventPasskeyRegistered EventType = "passkey.registered"
	EventPasskeyRenamed    EventType = "passkey.renamed"
	EventPasskeyRemoved    EventType = "passkey.removed"
	// EventPasskeyUsed records a sign-in, second factor or step-up with the
	// passkey, written with the passkey's new LastUsedAt and counter.
	EventPasskeyUsed EventType = "passkey.used"
	// EventPasskeyRefused records an assertion refused for a reason worth an
	// administrator's eye: Reason "counter_not_increased" (a possible clone).
	EventPasskeyRefused EventType = "passkey.refused"
)

// PasskeyOptions are the relying-party settings of passkeys (Options.Passkeys).
// New checks them and returns a *ValidationError naming the field
// ("options.Passkeys.RPID", ...) when one is wrong.
type PasskeyOptions struct {
	// RPID is the relying party ID: the domain the passkeys are bound to,
	// such as "example.com" (a host name, no scheme, port or path; "localhost"
	// for development). Required. A passkey works only for the RP ID it was
	// made for: changing it later strands every passkey registered before.
	RPID string

	// RPName is the name the browser shows when it asks the user to create
	// or use a passkey ("Example"). Empty means RPID.
	RPName string

	// Origins are the origins allowed to run a ceremony, exactly as the
	// browser reports them ("https://example.com",
	// "https://login.example.com:8443"): each is https, or http on
	// localhost, and its host is RPID or a subdomain of it. Required: at
	// least one. Every registration and assertion whose client data names
	// another origin is refused (ErrPasskeyRefused).
	Origins []string

	// Timeout is how long a ceremony may take, from its Begin to its Finish:
	// the challenge expires then, and the browser is told the same. Zero
	// means DefaultPasskeyTimeout (5 minutes); it must be between 30 seconds
	// and 30 minutes.
	Timeout time.Duration
}

// PasskeyCeremony is what a Begin method returns for the page: the options
// of one WebAuthn ceremony. It holds no secret; it may be sent to the page
// as JSON.
type PasskeyCeremony struct {
	// PublicKey is the JSON of the PublicKeyCredentialCreationOptions (for a
	// registration) or PublicKeyCredentialRequestOptions (for a sign-in),
	// with binary members (challenge, user.id, credential IDs) in base64url:
	// the page turns it into the argument of navigator.credentials.create()
	// or get() with PublicKeyCredential.parseCreationOptionsFromJSON or
	// parseRequestOptionsFromJSON, and sends back the credential's toJSON().
	PublicKey json.RawMessage `json:"publicKey"`
	// ExpiresAt is when the ceremony's challenge stops working.
	ExpiresAt time.Time `json:"expires_at"`
}

// Passkey is one of a user's passkeys, as Manager.Passkeys lists it. Show it
// only to its user: its ID is not a secret, but it is the user's alone.
type Passkey struct {
	// ID is the credential ID in base64url without padding, as the browser
	// gives it (PublicKeyCredential.id); it names the passkey in
	// RenamePasskey and RemovePasskey.
	ID string `json:"id"`
	// Name is the label the user gave it ("work laptop"); it may be empty.
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"` // zero: never used since registration
	// Transports are how the browser can reach the authenticator ("internal",
	// "hybrid", "usb", "nfc", "ble"), as it reported them at registration.
	Transports []string `json:"transports,omitempty"`
	// BackupEligible reports a passkey that may be synced to other devices
	// (a passkey provider's); BackedUp, that it is synced now.
	BackupEligible bool `json:"backup_eligible"`
	BackedUp       bool `json:"backed_up"`
	// UserVerified reports that the authenticator verified the user (a PIN,
	// a fingerprint) at registration or a later ceremony: a passkey sign-in
	// that verifies the user counts as two factors.
	UserVerified bool `json:"user_verified"`
	// AAGUID names the authenticator's model (a UUID, all zeros when it does
	// not say), for showing a provider's name or icon.
	AAGUID string `json:"aaguid,omitempty"`
}

// Errors of passkeys.
var (
	// ErrPasskeysNotConfigured is returned by every passkey method when
	// Options.Passkeys is not set.
	ErrPasskeysNotConfigured = errors.New("users: passkeys not configured (Options.Passkeys)")

	// ErrPasskeyRefused is returned when the browser's answer to a ceremony
	// does not verify: malformed, made for another origin or RP ID, for
	// another challenge, a bad signature, an unknown credential or another
	// user's, or a response to a registration that the authenticator did not
	// make for this user. It never says which, beyond what errors.Is can
	// tell; the ceremony is used up all the same.
	ErrPasskeyRefused = errors.New("users: passkey refused")

	// ErrPasskeyCloned is returned, and recorded (EventPasskeyRefused with
	// Reason "counter_not_increased"), when an authenticator reports a
	// signature counter that did not increase since the passkey's last use:
	// two copies of its private key may exist. Authenticators that always
	// report zero are not refused. It matches ErrPasskeyRefused too.
	ErrPasskeyCloned = &passkeyClonedError{}
)

type passkeyClonedError struct{}

func (*passkeyClonedError) Error() string {
	return "users: passkey refused: signature counter did not increase (possible cloned authenticator)"
}

// Is makes ErrPasskeyCloned match ErrPasskeyRefused.
func (*passkeyClonedError) Is(target error) bool { return target == ErrPasskeyRefused }

// BeginPasskeyRegistration starts registering a new passkey for the user: it
// returns the options for navigator.credentials.create(), which ask for a
// discoverable credential (a passkey the browser can offer without a user
// name), prefer user verification, ask for no attestation and exclude the
// user's passkeys already registered. Pass the browser's answer to
// FinishPasskeyRegistration within PasskeyOptions.Timeout.
//
// It returns ErrPasskeysNotConfigured, ErrNotFound for no such user and
// ErrAccountDisabled for a user who is not active. Made with a Session in
// ctx (see NewContext), it first returns ErrReauthRequired, checking and
// changing nothing, unless that session's user proved a password or a
// factor within Options.ReauthWindow. It is safe for concurrent use.
func (m *Manager) BeginPasskeyRegistration(ctx context.Context, userID string) (*PasskeyCeremony, error) {
	return nil, errPasskeyTODO
}

// FinishPasskeyRegistration verifies response, the JSON of the
// PublicKeyCredential that navigator.credentials.create() returned for a
// ceremony BeginPasskeyRegistration began for the user, and stores the
// passkey under name (up to MaxCredentialNameLen bytes; it may be empty).
// The ceremony is used up whatever the outcome.
//
// It returns ErrPasskeysNotConfigured; a *ValidationError ("name") for a
// name too long or not valid UTF-8, checked before anything else;
// ErrInvalidToken when the ceremony is unknown, used, expired or another
// user's; ErrPasskeyRefused when response does not verify (wrong origin or
// RP ID, malformed); ErrConflict when the credential is registered already;
// ErrNotFound and ErrAccountDisabled as BeginPasskeyRegistration does. The
// recent authentication is checked again, as BeginPasskeyRegistration checks
// it. The passkey is stored with its passkey.registered entry in one atomic
// step. It is safe for concurrent use: of concurrent finishes that register
// one credential, exactly one succeeds.
func (m *Manager) FinishPasskeyRegistration(ctx context.Context, userID, name string, response []byte) (*Passkey, error) {
	return nil, errPasskeyTODO
}

// Passkeys returns the user's passkeys, oldest first. A user without any, or
// no such user, gives an empty slice. It returns ErrPasskeysNotConfigured. It
// is safe for concurrent use.
func (m *Manager) Passkeys(ctx context.Context, userID string) ([]*Passkey, error) {
	return nil, errPasskeyTODO
}

// RenamePasskey changes the name of the user's passkey id (Passkey.ID) and
// returns it. It returns ErrPasskeysNotConfigured, a *ValidationError
// ("name") as FinishPasskeyRegistration does, and ErrNotFound when the user
// has no such passkey (also when it is another user's). It is safe for
// concurrent use.
func (m *Manager) RenamePasskey(ctx context.Context, userID, id, name string) (*Passkey, error) {
	return nil, errPasskeyTODO
}

// RemovePasskey removes the user's passkey id (Passkey.ID). It refuses with
// ErrLastSignInMethod, removing nothing, when the passkey is the user's last
// way to sign in (no password and no other credential), checked atomically
// with the removal.
//
// Sessions are not ended by default: a session stands on its own once made.
// With endSessions, every session of the user that a passkey signed in
// (Session.Methods starting with MethodPasskey) is ended too: a session does
// not record which passkey made it, so that ends those of the user's other
// passkeys as well. Use it when the passkey is removed because its device
// was lost.
//
// It returns ErrPasskeysNotConfigured and ErrNotFound when the user has no
// such passkey (also when it is another user's). Made with a Session in ctx,
// it first returns ErrReauthRequired as BeginPasskeyRegistration does. It is
// safe for concurrent use.
func (m *Manager) RemovePasskey(ctx context.Context, userID, id string, endSessions bool) error {
	return errPasskeyTODO
}

var errPasskeyTODO = errors.New("users: passkeys: not implemented yet")
