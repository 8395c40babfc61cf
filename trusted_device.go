package users

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Trusted devices. After a second factor, the application may trust the
// device it was proved on (TrustDevice): the device gets a device token, and
// a password login that presents it (WithDeviceToken) skips the second step.
// The token is 256 random bits, like a session token; the store keeps only
// its SHA-256, as a credential of kind CredentialTrustedDevice bound to the
// user, so any number of Managers over one store agree on it and revoking is
// deleting. Its Data ties it to the user's Generation and to the user's
// second factors as they were, so a password change or reset, "log out
// everywhere" (LogoutAll), a suspension and any change of factor (TOTP
// enrolled or removed, recovery codes made again) all revoke it without
// visiting it. A login that does not present it, or presents another user's,
// is asked for the second factor as before.

// DefaultTrustedDeviceTTL is the default of Options.TrustedDeviceTTL.
const DefaultTrustedDeviceTTL = 30 * 24 * time.Hour

// CredentialTrustedDevice is a device trusted to skip the second step of a
// password login (Manager.TrustDevice). Its identifier is the base64url
// SHA-256 of the device token; its Data is the Manager's. It is not a way to
// sign in by itself: a guard counting the user's ways to sign in must not
// count it.
const CredentialTrustedDevice CredentialKind = "trusted_device"

// MethodTrustedDevice is recorded on a session, after the first factor, when
// a trusted device skipped the second step. It is not a second factor: such
// a session's SecondFactorAt is zero until StepUp.
const MethodTrustedDevice AuthMethod = "trusted_device"

// The audit events of trusted devices; AuditEntry.Data["device"] is the
// device's ID.
const (
	EventDeviceTrusted EventType = "device.trusted" // Manager.TrustDevice; SessionID is the session that trusted it
	EventDeviceRevoked EventType = "device.revoked" // Manager.RevokeTrustedDevice
)

// ErrTrustedDevicesOff is returned by TrustDevice when Options.TrustDevices
// is false.
var ErrTrustedDevicesOff = errors.New("users: trusted devices are off")

// TrustedDevice is a device a user trusted to skip the second step.
type TrustedDevice struct {
	// ID names the device for lists and RevokeTrustedDevice. It is the
	// SHA-256 of the token: it cannot be used to skip anything.
	ID string `json:"id"`
	// Token is the device token to keep on the device (a long-lived,
	// HttpOnly cookie) and present with WithDeviceToken. It is set only in
	// TrustDevice's result.
	Token  string `json:"token,omitempty"`
	UserID string `json:"user_id"`
	// IP and UserAgent describe the client that trusted it (see WithClient).
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	// CreatedAt is when it was trusted, ExpiresAt when it stops being
	// trusted (CreatedAt + Options.TrustedDeviceTTL), LastUsedAt the last
	// login that it let skip the second step, or zero.
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// trustConfig is the Manager's trusted-device settings.
type trustConfig struct {
	on  bool
	ttl time.Duration
}

// newTrustConfig checks the trusted-device options of o.
func newTrustConfig(o *Options) (trustConfig, error) {
	c := trustConfig{on: o.TrustDevices, ttl: or(o.TrustedDeviceTTL, DefaultTrustedDeviceTTL)}
	if c.ttl < 0 {
		return c, invalid("options.TrustedDeviceTTL", ValidationNegative, "must not be negative")
	}
	return c, nil
}

type deviceTokenKey struct{}

// WithDeviceToken returns a copy of ctx that carries the device token a
// client presents (from TrustDevice, kept on the device). Login called with
// it skips the second step if the token is the user's, unexpired and not
// revoked; any other token, or none, changes nothing.
func WithDeviceToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, deviceTokenKey{}, token)
}

// deviceData is what a trusted device's CredentialRecord.Data holds.
type deviceData struct {
	ExpiresAt  time.Time `json:"expires_at"`
	Generation int64     `json:"generation"` // the user's, when trusted
	Factors    string    `json:"factors"`    // factorStamp of the user's factors, when trusted
	IP         string    `json:"ip,omitempty"`
}

// deviceID is the credential ID of a device token.
func deviceID(token string) string {
	return base64.RawURLEncoding.EncodeToString(hashToken(token))
}

// factorStamp names the user's second factors as they are: it changes when
// a TOTP factor is enrolled, confirmed or removed and when recovery codes are
// made again, not when a code is used.
func factorStamp(r *MFARecord) string {
	if r == nil {
		return ""
	}
	var b []byte
	if t := r.TOTP; t != nil {
		b = append(b, 't')
		if t.Confirmed {
			b = append(b, 'c')
		}
		b = binary.BigEndian.AppendUint64(b, uint64(t.CreatedAt.UnixNano()))
		b = binary.BigEndian.AppendUint64(b, uint64(t.ConfirmedAt.UnixNano()))
	}
	b = append(b, 'r')
	b = binary.BigEndian.AppendUint64(b, uint64(r.RecoveryCodesAt.UnixNano()))
	h := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(h[:16])
}

// factorsChangedAt is when the user's second factors last changed: the
// latest of the TOTP factor's enrolment and confirmation and the recovery
// codes' making.
func factorsChangedAt(r *MFARecord) time.Time {
	if r.TOTP == nil {
		return r.RecoveryCodesAt
	}
	return later(r.RecoveryCodesAt, r.TOTP.CreatedAt, r.TOTP.ConfirmedAt)
}

// signsIn reports whether the credential c is a way to sign in, which a
// guard of the user's last way to sign in counts: every kind but a trusted
// device, which only stands in for the second step of a password login.
func signsIn(c *CredentialRecord) bool { return c.Kind != CredentialTrustedDevice }

// verifiedSecondFactor reports whether methods, first factor first, include a
// second factor verified at login (a trusted device is not one).
func verifiedSecondFactor(methods []AuthMethod) bool {
	for _, m := range methods[min(1, len(methods)):] {
		if m != MethodTrustedDevice {
			return true
		}
	}
	return false
}

// TrustDevice trusts the device of a session whose second factor was proved
// recently (at login or by StepUp, within Options.ReauthWindow), for
// Options.TrustedDeviceTTL: it returns the TrustedDevice with its Token,
// which the application keeps on the device and presents at the next login
// with WithDeviceToken. Call it only when the user asked ("trust this
// device"). The client of ctx (WithClient) is recorded on it.
//
// It returns ErrTrustedDevicesOff when Options.TrustDevices is false,
// ErrInvalidToken for a session token ValidateToken refuses, ErrMFANotEnabled
// when the session proved no second factor (a session that skipped it on a
// trusted device proved none) or the user has none now, and
// ErrReauthRequired when its second factor is older than
// Options.ReauthWindow or than the user's factors (recovery codes made again,
// a factor enrolled since): StepUp, then retry. Its
// device.trusted entry names the session. It is safe for concurrent use.
func (m *Manager) TrustDevice(ctx context.Context, sessionToken string) (*TrustedDevice, error) {
	if !m.trust.on {
		return nil, ErrTrustedDevicesOff
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	hash, ok := parseToken(sessionToken)
	if !ok {
		return nil, ErrInvalidToken
	}
	var u UserRecord
	s, err := m.store.GetSession(ctx, [sha256.Size]byte(hash), &u)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, storeErr("trust device", err)
	}
	now := m.now()
	switch {
	case !m.live(&s, &u, now):
		return nil, ErrInvalidToken
	case s.SecondFactorAt.IsZero():
		return nil, ErrMFANotEnabled
	case m.reauthWindow >= 0 && now.Sub(s.SecondFactorAt) > m.reauthWindow:
		return nil, ErrReauthRequired
	}
	// The device is trusted under the session's Generation, not the user's
	// as read later: a revocation that lands from here on leaves it stale,
	// never trusted across it. The factors are read after the session: a
	// change that lands later leaves the device stale, and one that landed
	// since the session's proof asks for a new proof.
	rec, err := m.mfaRecord(ctx, s.UserID)
	switch {
	case err != nil:
		return nil, err
	case rec == nil:
		return nil, ErrMFANotEnabled
	case s.SecondFactorAt.Before(factorsChangedAt(rec)):
		return nil, ErrReauthRequired // proved a factor since replaced
	}
	token, _, err := m.newToken()
	if err != nil {
		return nil, err
	}
	c := client(ctx)
	d := &TrustedDevice{ID: deviceID(token), Token: token, UserID: s.UserID, IP: c.IP, UserAgent: c.UserAgent,
		CreatedAt: now, ExpiresAt: now.Add(m.trust.ttl)}
	data, err := json.Marshal(deviceData{ExpiresAt: d.ExpiresAt, Generation: s.UserGeneration, Factors: factorStamp(rec), IP: c.IP})
	if err != nil {
		return nil, err
	}
	e, err := m.auditEntry(ctx, EventDeviceTrusted, s.UserID)
	if err != nil {
		return nil, err
	}
	e.SessionID, e.Data = s.ID, map[string]string{"device": d.ID}
	cr := &CredentialRecord{Kind: CredentialTrustedDevice, ID: d.ID, UserID: s.UserID, Name: c.UserAgent, CreatedAt: now, Data: data}
	err = m.write(ctx, s.UserID, func() error { return m.store.CreateCredential(ctx, cr, e) }, e)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidToken // removed meanwhile
	}
	if err != nil {
		return nil, storeErr("trust device", err)
	}
	return d, nil
}

// trustedDevice returns the trusted device that the device token in ctx
// names, if it lets the user u, whose second factors are rec, skip the
// second step now: on, the user's, unexpired, trusted under u's Generation
// and u's factors as they are. It returns nil when there is none.
func (m *Manager) trustedDevice(ctx context.Context, u *UserRecord, rec *MFARecord) (*CredentialRecord, error) {
	token, _ := ctx.Value(deviceTokenKey{}).(string)
	if !m.trust.on || !wellFormedToken(token) {
		return nil, nil
	}
	c, err := m.store.GetCredential(ctx, CredentialTrustedDevice, deviceID(token))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeErr("login", err)
	}
	if c.UserID != u.ID {
		return nil, nil
	}
	d, ok := decodeDevice(c)
	if !ok || !m.trusts(d, u, rec) {
		return nil, nil
	}
	return c, nil
}

// trusts reports whether a device trusted with d still is, for the user u
// with factors rec.
func (m *Manager) trusts(d deviceData, u *UserRecord, rec *MFARecord) bool {
	return m.now().Before(d.ExpiresAt) && d.Generation == u.Generation && d.Factors == factorStamp(rec)
}

// decodeDevice reads a trusted device's Data.
func decodeDevice(c *CredentialRecord) (deviceData, bool) {
	var d deviceData
	err := json.Unmarshal(c.Data, &d)
	return d, err == nil
}

// skipSecondStep ends the login of r, whose first factor first was right,
// with a session and no second step when the login presents a device the
// user trusted (see trustedDevice) and first is the password. It reports
// whether it did; check and p are as for startSession. The device's
// LastUsedAt is written first, so a store failure there fails the login
// before any session exists. A revocation that moves the user's Generation
// meanwhile still refuses the session (startSession checks it atomically);
// a device forgotten (deleted) at that very instant gets this one login.
func (m *Manager) skipSecondStep(ctx context.Context, r *UserRecord, rec *MFARecord, first AuthMethod, p Purpose,
	check func(cur *UserRecord) error) (*Session, bool, error) {
	if first != MethodPassword {
		return nil, false, nil
	}
	c, err := m.trustedDevice(ctx, r, rec)
	if err != nil || c == nil {
		return nil, false, err
	}
	now := m.now()
	_, err = m.store.UpdateCredential(ctx, c.Kind, c.ID, func(c *CredentialRecord) error {
		if now.After(c.LastUsedAt) {
			c.LastUsedAt = now
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, false, storeErr("login", err)
	}
	s, err := m.startSession(ctx, r, p, check, first, MethodTrustedDevice)
	return s, true, err
}

// TrustedDevices lists the user's trusted devices that still are (unexpired,
// not revoked), oldest first, without their tokens, for the page that lists
// the user's sessions. It returns ErrNotFound if there is no such user. It
// is safe for concurrent use.
func (m *Manager) TrustedDevices(ctx context.Context, userID string) ([]*TrustedDevice, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	u, err := m.store.GetUser(ctx, userID)
	if err != nil {
		return nil, storeErr("trusted devices", err)
	}
	rec, err := m.mfaRecord(ctx, userID)
	if err != nil {
		return nil, err
	}
	cs, err := m.store.ListCredentials(ctx, userID)
	if err != nil {
		return nil, storeErr("trusted devices", err)
	}
	out := []*TrustedDevice{}
	for _, c := range cs {
		if c.Kind != CredentialTrustedDevice {
			continue
		}
		if d, ok := decodeDevice(c); ok && m.trusts(d, u, rec) {
			out = append(out, &TrustedDevice{ID: c.ID, UserID: c.UserID, IP: d.IP, UserAgent: c.Name,
				CreatedAt: c.CreatedAt, ExpiresAt: d.ExpiresAt, LastUsedAt: c.LastUsedAt})
		}
	}
	return out, nil
}

// RevokeTrustedDevice stops trusting one of the user's devices by its ID:
// the next login from it asks for the second factor. It returns ErrNotFound
// if the user has no such device. Its device.revoked entry names the device.
// It is safe for concurrent use.
func (m *Manager) RevokeTrustedDevice(ctx context.Context, userID, deviceID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e, err := m.auditEntry(ctx, EventDeviceRevoked, userID)
	if err != nil {
		return err
	}
	e.Data = map[string]string{"device": deviceID}
	err = m.write(ctx, userID, func() error {
		return m.store.DeleteCredential(ctx, userID, CredentialTrustedDevice, deviceID, nil, e)
	}, e)
	if err != nil {
		return fmt.Errorf("users: revoke trusted device: %w", err)
	}
	return nil
}
