package users

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
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
	// make for this user. The error's text says which, for logs (HTTPError
	// sends only its code); the ceremony is used up all the same.
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

// passkeyConfig is the Manager's passkey settings, made by New from
// PasskeyOptions; nil when passkeys are off.
type passkeyConfig struct {
	wa      *webauthn.WebAuthn
	rpID    string
	timeout time.Duration
}

// The bounds of PasskeyOptions.Timeout.
const (
	minPasskeyTimeout = 30 * time.Second
	maxPasskeyTimeout = 30 * time.Minute
)

// newPasskeyConfig checks o and makes the relying party from it; nil o
// leaves passkeys off.
func newPasskeyConfig(o *PasskeyOptions) (*passkeyConfig, error) {
	if o == nil {
		return nil, nil
	}
	rpID := o.RPID
	if rpID == "" {
		return nil, invalid("options.Passkeys.RPID", ValidationRequired, "is required")
	}
	if strings.ContainsAny(rpID, ":/?#@ ") || protocol.ValidateRPID(rpID) != nil || strings.ToLower(rpID) != rpID {
		return nil, invalid("options.Passkeys.RPID", ValidationMalformed, "must be a lower-case host name, such as example.com")
	}
	if len(o.Origins) == 0 {
		return nil, invalid("options.Passkeys.Origins", ValidationRequired, "needs at least one origin, such as https://"+rpID)
	}
	origins := make([]string, len(o.Origins))
	for i, origin := range o.Origins {
		if err := checkOrigin(origin, rpID); err != nil {
			return nil, invalid(fmt.Sprintf("options.Passkeys.Origins[%d]", i), ValidationMalformed, err.Error())
		}
		origins[i] = origin
	}
	timeout := or(o.Timeout, DefaultPasskeyTimeout)
	if timeout < minPasskeyTimeout || timeout > maxPasskeyTimeout {
		return nil, invalid("options.Passkeys.Timeout", ValidationOutOfRange, "must be between 30 seconds and 30 minutes")
	}
	name := o.RPName
	if name == "" {
		name = rpID
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:                  rpID,
		RPDisplayName:         name,
		RPOrigins:             origins,
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			RequireResidentKey: protocol.ResidentKeyRequired(),
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			UserVerification:   protocol.VerificationPreferred,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: timeout, TimeoutUVD: timeout},
			Registration: webauthn.TimeoutConfig{Timeout: timeout, TimeoutUVD: timeout},
		},
	})
	if err != nil {
		return nil, invalid("options.Passkeys", ValidationMalformed, err.Error())
	}
	return &passkeyConfig{wa: wa, rpID: rpID, timeout: timeout}, nil
}

// checkOrigin checks that origin is a bare origin (scheme, host, port) whose
// host is rpID or a subdomain of it, over https, or http on localhost.
func checkOrigin(origin, rpID string) error {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must be an origin such as https://" + rpID)
	}
	if strings.HasSuffix(origin, "/") {
		return errors.New("must not end with a slash: the browser reports an origin without one")
	}
	host := u.Hostname()
	if host != rpID && !strings.HasSuffix(host, "."+rpID) {
		return errors.New("its host must be " + rpID + " or a subdomain of it")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && (host == "localhost" || net.ParseIP(host).IsLoopback()):
	default:
		return errors.New("must be https (http only on localhost)")
	}
	return nil
}

// passkeyData is what the Manager keeps of a passkey in
// CredentialRecord.Data, as JSON; the signature counter is
// CredentialRecord.Counter.
type passkeyData struct {
	PublicKey         []byte   `json:"pk"` // COSE_Key
	Transports        []string `json:"tr,omitempty"`
	BackupEligible    bool     `json:"be,omitempty"`
	BackedUp          bool     `json:"bs,omitempty"`
	UserVerified      bool     `json:"uv,omitempty"` // uvInitialized
	AAGUID            []byte   `json:"aaguid,omitempty"`
	AttestationType   string   `json:"at,omitempty"`
	AttestationFormat string   `json:"af,omitempty"`
}

func decodePasskey(c *CredentialRecord) (*passkeyData, error) {
	var d passkeyData
	if err := json.Unmarshal(c.Data, &d); err != nil || len(d.PublicKey) == 0 {
		return nil, fmt.Errorf("users: passkey %s: malformed data", passkeyID(c.ID))
	}
	return &d, nil
}

// webauthnCredential returns the passkey c as go-webauthn knows credentials.
func webauthnCredential(c *CredentialRecord, d *passkeyData) webauthn.Credential {
	var flags protocol.AuthenticatorFlags = protocol.FlagUserPresent
	if d.UserVerified {
		flags |= protocol.FlagUserVerified
	}
	if d.BackupEligible {
		flags |= protocol.FlagBackupEligible
	}
	if d.BackedUp {
		flags |= protocol.FlagBackupState
	}
	tr := make([]protocol.AuthenticatorTransport, len(d.Transports))
	for i, t := range d.Transports {
		tr[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{
		ID:                []byte(c.ID),
		PublicKey:         d.PublicKey,
		AttestationType:   d.AttestationType,
		AttestationFormat: d.AttestationFormat,
		Transport:         tr,
		Flags:             webauthn.NewCredentialFlags(flags),
		Authenticator:     webauthn.Authenticator{AAGUID: d.AAGUID, SignCount: uint32(c.Counter)},
	}
}

// passkeyID is how the API names a passkey: its credential ID in base64url.
func passkeyID(raw string) string { return base64.RawURLEncoding.EncodeToString([]byte(raw)) }

// passkeyOf returns the public view of the passkey c.
func passkeyOf(c *CredentialRecord) (*Passkey, error) {
	d, err := decodePasskey(c)
	if err != nil {
		return nil, err
	}
	p := &Passkey{
		ID: passkeyID(c.ID), Name: c.Name, CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt,
		Transports: append([]string(nil), d.Transports...), BackupEligible: d.BackupEligible,
		BackedUp: d.BackedUp, UserVerified: d.UserVerified,
	}
	if len(d.AAGUID) == 16 {
		a := d.AAGUID
		p.AAGUID = fmt.Sprintf("%x-%x-%x-%x-%x", a[0:4], a[4:6], a[6:8], a[8:10], a[10:16])
	}
	return p, nil
}

// passkeyUser is a user as go-webauthn sees one: the user handle is the
// user's ID, which is no secret and names nobody outside the application.
type passkeyUser struct {
	r     *UserRecord
	creds []webauthn.Credential
}

func (u *passkeyUser) WebAuthnID() []byte   { return []byte(u.r.ID) }
func (u *passkeyUser) WebAuthnName() string { return u.r.Email }
func (u *passkeyUser) WebAuthnDisplayName() string {
	if n := strings.TrimSpace(u.r.FirstName + " " + u.r.LastName); n != "" {
		return n
	}
	return u.r.Email
}
func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// userPasskeys returns the user's passkeys as credentials and as go-webauthn
// knows them.
func (m *Manager) userPasskeys(ctx context.Context, userID string) ([]*CredentialRecord, []webauthn.Credential, error) {
	all, err := m.store.ListCredentials(ctx, userID)
	if err != nil {
		return nil, nil, storeErr("passkeys", err)
	}
	var recs []*CredentialRecord
	var creds []webauthn.Credential
	for _, c := range all {
		if c.Kind != CredentialPasskey {
			continue
		}
		d, err := decodePasskey(c)
		if err != nil {
			return nil, nil, err
		}
		recs, creds = append(recs, c), append(creds, webauthnCredential(c, d))
	}
	return recs, creds, nil
}

// beginCeremony stores a new ceremony of kind for userID ("" for none) and
// returns the options options makes with its challenge, for the browser.
func (m *Manager) beginCeremony(ctx context.Context, kind CeremonyKind, userID string, options func(challenge []byte) (any, error)) (*PasskeyCeremony, error) {
	token, hash, err := m.newToken()
	if err != nil {
		return nil, err
	}
	challenge, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, err
	}
	o, err := options(challenge)
	if err != nil {
		return nil, fmt.Errorf("users: passkey options: %w", err)
	}
	j, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	now := m.now()
	c := &CeremonyRecord{Hash: hash, Kind: kind, UserID: userID, CreatedAt: now, ExpiresAt: now.Add(m.passkey.timeout)}
	if err := m.store.CreateCeremony(ctx, c); err != nil {
		return nil, storeErr("begin passkey ceremony", err)
	}
	return &PasskeyCeremony{PublicKey: j, ExpiresAt: c.ExpiresAt}, nil
}

// consumeCeremony uses up the ceremony whose challenge the browser signed
// (clientDataJSON's challenge), which must be of kind, alive and, when
// userID is not empty, the user's. It returns the ceremony, or
// ErrInvalidToken.
func (m *Manager) consumeCeremony(ctx context.Context, challenge string, kind CeremonyKind, userID string) (*CeremonyRecord, error) {
	hash, ok := parseToken(challenge)
	if !ok {
		return nil, ErrInvalidToken
	}
	c, err := m.store.ConsumeCeremony(ctx, hash, kind)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, storeErr("passkey ceremony", err)
	}
	if !m.now().Before(c.ExpiresAt) || (userID != "" && c.UserID != userID) {
		return nil, ErrInvalidToken
	}
	return c, nil
}

// sessionData is the go-webauthn ceremony state of the ceremony whose
// challenge is challenge, for the user handle userID ("" for none): the
// Manager keeps none of it but the challenge's hash, as the rest follows
// from the options every ceremony is begun with.
func (m *Manager) sessionData(challenge, userID string) webauthn.SessionData {
	sd := webauthn.SessionData{
		Challenge:        challenge,
		RelyingPartyID:   m.passkey.rpID,
		UserVerification: protocol.VerificationPreferred,
		CredParams:       webauthn.CredentialParametersDefault(),
	}
	if userID != "" {
		sd.UserID = []byte(userID)
	}
	return sd
}

// passkeyRefusal wraps a verification failure of go-webauthn as ErrPasskeyRefused,
// keeping its words (never a secret: there is none on this side) for logs.
func passkeyRefusal(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Details != "" {
		return fmt.Errorf("%w: %s", ErrPasskeyRefused, pe.Details)
	}
	return fmt.Errorf("%w: %v", ErrPasskeyRefused, err)
}

// checkPasskeyName checks a passkey's name as the user gave it.
func checkPasskeyName(name string) error {
	switch {
	case len(name) > MaxCredentialNameLen:
		return invalid("name", ValidationTooLong, fmt.Sprintf("must be at most %d bytes", MaxCredentialNameLen))
	case !utf8.ValidString(name):
		return invalid("name", ValidationInvalidUTF8, "must be valid UTF-8")
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return invalid("name", ValidationControlCharacter, "must not contain control characters")
	}
	return nil
}

// passkeyEntry returns an audit entry about the passkey c.
func (m *Manager) passkeyEntry(ctx context.Context, t EventType, c *CredentialRecord) (*AuditEntry, error) {
	e, err := m.auditEntry(ctx, t, c.UserID)
	if err != nil {
		return nil, err
	}
	e.Data = map[string]string{"passkey": passkeyID(c.ID), "name": c.Name}
	return e, nil
}

// activeUser returns the user userID, refusing one who is not active.
func (m *Manager) activeUser(ctx context.Context, op, userID string) (*UserRecord, error) {
	r, err := m.store.GetUser(ctx, userID)
	if err != nil {
		return nil, storeErr(op, err)
	}
	if r.Status != StatusActive {
		return nil, ErrAccountDisabled
	}
	return r, nil
}

// passkeyChange is the first check of a change to the user's passkeys:
// ctx, the acting session's recent authentication, then passkeys being on.
func (m *Manager) passkeyChange(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := m.recentAuth(ctx); err != nil {
		return err
	}
	if m.passkey == nil {
		return ErrPasskeysNotConfigured
	}
	return nil
}

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
	if err := m.passkeyChange(ctx); err != nil {
		return nil, err
	}
	r, err := m.activeUser(ctx, "begin passkey registration", userID)
	if err != nil {
		return nil, err
	}
	_, creds, err := m.userPasskeys(ctx, userID)
	if err != nil {
		return nil, err
	}
	u := &passkeyUser{r: r, creds: creds}
	return m.beginCeremony(ctx, CeremonyPasskeyRegistration, userID, func(challenge []byte) (any, error) {
		o, _, err := m.passkey.wa.BeginRegistration(u,
			webauthn.WithExclusions(webauthn.Credentials(creds).CredentialDescriptors()),
			func(o *protocol.PublicKeyCredentialCreationOptions) error { o.Challenge = challenge; return nil })
		if err != nil {
			return nil, err
		}
		return o.Response, nil
	})
}

// FinishPasskeyRegistration verifies response, the JSON of the
// PublicKeyCredential that navigator.credentials.create() returned for a
// ceremony BeginPasskeyRegistration began for the user, and stores the
// passkey under name (up to MaxCredentialNameLen bytes; it may be empty).
// The ceremony is used up whatever the outcome.
//
// It returns ErrPasskeysNotConfigured; a *ValidationError ("name") for a
// name too long, not valid UTF-8 or with control characters, checked before
// anything else; ErrInvalidToken when the ceremony is unknown, used, expired
// or another user's; ErrPasskeyRefused when response does not verify (wrong
// origin or RP ID, malformed); ErrConflict when the credential is registered
// already; ErrNotFound and ErrAccountDisabled as BeginPasskeyRegistration
// does. The recent authentication is checked again, as
// BeginPasskeyRegistration checks it. The passkey is stored with its
// passkey.registered entry in one atomic step. It is safe for concurrent
// use: of concurrent finishes that register one credential, exactly one
// succeeds.
func (m *Manager) FinishPasskeyRegistration(ctx context.Context, userID, name string, response []byte) (*Passkey, error) {
	if err := m.passkeyChange(ctx); err != nil {
		return nil, err
	}
	if err := checkPasskeyName(name); err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, passkeyRefusal(err)
	}
	challenge := parsed.Response.CollectedClientData.Challenge
	if _, err := m.consumeCeremony(ctx, challenge, CeremonyPasskeyRegistration, userID); err != nil {
		return nil, err
	}
	r, err := m.activeUser(ctx, "finish passkey registration", userID)
	if err != nil {
		return nil, err
	}
	cred, err := m.passkey.wa.CreateCredential(&passkeyUser{r: r}, m.sessionData(challenge, userID), parsed)
	if err != nil {
		return nil, passkeyRefusal(err)
	}
	if len(cred.ID) == 0 || len(cred.ID) > MaxCredentialIDLen {
		return nil, fmt.Errorf("%w: credential ID of %d bytes", ErrPasskeyRefused, len(cred.ID))
	}
	d := passkeyData{
		PublicKey:         cred.PublicKey,
		BackupEligible:    cred.Flags.BackupEligible,
		BackedUp:          cred.Flags.BackupState,
		UserVerified:      cred.Flags.UserVerified,
		AAGUID:            cred.Authenticator.AAGUID,
		AttestationType:   cred.AttestationType,
		AttestationFormat: cred.AttestationFormat,
	}
	for _, t := range cred.Transport {
		d.Transports = append(d.Transports, string(t))
	}
	data, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	now := m.now()
	c := &CredentialRecord{Kind: CredentialPasskey, ID: string(cred.ID), UserID: userID, Name: name,
		CreatedAt: now, Counter: int64(cred.Authenticator.SignCount), Data: data}
	e, err := m.passkeyEntry(ctx, EventPasskeyRegistered, c)
	if err != nil {
		return nil, err
	}
	if err := m.write(ctx, userID, func() error { return m.store.CreateCredential(ctx, c, e) }, e); err != nil {
		return nil, storeErr("finish passkey registration", err)
	}
	return passkeyOf(c)
}

// Passkeys returns the user's passkeys, oldest first. A user without any, or
// no such user, gives an empty slice. It returns ErrPasskeysNotConfigured. It
// is safe for concurrent use.
func (m *Manager) Passkeys(ctx context.Context, userID string) ([]*Passkey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if m.passkey == nil {
		return nil, ErrPasskeysNotConfigured
	}
	recs, _, err := m.userPasskeys(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]*Passkey, 0, len(recs))
	for _, c := range recs {
		p, err := passkeyOf(c)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// passkeyKey returns the credential ID a Passkey.ID names, or ErrNotFound
// for one that names none.
func passkeyKey(id string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(raw) == 0 || len(raw) > MaxCredentialIDLen {
		return "", ErrNotFound
	}
	return string(raw), nil
}

// RenamePasskey changes the name of the user's passkey id (Passkey.ID) and
// returns it. It returns ErrPasskeysNotConfigured, a *ValidationError
// ("name") as FinishPasskeyRegistration does, and ErrNotFound when the user
// has no such passkey (also when it is another user's). It is safe for
// concurrent use.
func (m *Manager) RenamePasskey(ctx context.Context, userID, id, name string) (*Passkey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if m.passkey == nil {
		return nil, ErrPasskeysNotConfigured
	}
	if err := checkPasskeyName(name); err != nil {
		return nil, err
	}
	key, err := passkeyKey(id)
	if err != nil {
		return nil, err
	}
	e, err := m.auditEntry(ctx, EventPasskeyRenamed, userID)
	if err != nil {
		return nil, err
	}
	var out *CredentialRecord
	err = m.write(ctx, userID, func() (err error) {
		out, err = m.store.UpdateCredential(ctx, CredentialPasskey, key, func(c *CredentialRecord) error {
			if c.UserID != userID {
				return ErrNotFound
			}
			e.Data = map[string]string{"passkey": id, "name": name, "old_name": c.Name}
			c.Name = name
			return nil
		}, e)
		return err
	}, e)
	if err != nil {
		return nil, storeErr("rename passkey", err)
	}
	return passkeyOf(out)
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
	if err := m.passkeyChange(ctx); err != nil {
		return err
	}
	key, err := passkeyKey(id)
	if err != nil {
		return err
	}
	e, err := m.auditEntry(ctx, EventPasskeyRemoved, userID)
	if err != nil {
		return err
	}
	e.Data = map[string]string{"passkey": id}
	err = m.write(ctx, userID, func() error {
		return m.store.DeleteCredential(ctx, userID, CredentialPasskey, key, keepsSignIn, e)
	}, e)
	if err != nil {
		return storeErr("remove passkey", err)
	}
	if !endSessions {
		return nil
	}
	ss, err := m.Sessions(ctx, userID)
	if err != nil {
		return err
	}
	for _, s := range ss {
		if len(s.Methods) > 0 && s.Methods[0] == MethodPasskey {
			if err := m.RevokeSession(ctx, userID, s.ID); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
	}
	return nil
}
