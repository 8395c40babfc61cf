package users

import (
	"bytes"
	"context"
	"encoding/base32"
	"errors"
	"image/png"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TOTP (RFC 6238) with the parameters every authenticator app understands:
// HMAC-SHA-1, 6 digits, a 30-second step, and one step of clock skew either
// way. The algorithm is github.com/pquerna/otp's; this file only decides which
// steps to try and remembers the last one accepted.
const (
	totpPeriod     = 30 // seconds
	totpSkew       = 1  // steps either side of now
	totpSecretSize = 20 // bytes: 160 bits, RFC 4226's recommendation
	qrCodeSize     = 256
)

var totpDigits = otp.DigitsSix

var b32NoPad = base32.StdEncoding.WithPadding(base32.NoPadding)

// TOTPEnrollment is the first step of TOTP enrolment: what the user needs to
// add the account to an authenticator app. It holds the secret in the clear:
// show it to the user once and do not keep or log it.
type TOTPEnrollment struct {
	// Secret is the TOTP secret in base32 (no padding), for typing in by hand.
	Secret string `json:"secret"`
	// URI is the otpauth://totp/ URI that QRCode encodes.
	URI string `json:"uri"`
	// QRCode is a PNG image of URI, 256×256 pixels, for the app to scan.
	QRCode []byte `json:"qr_code"`
}

// BeginTOTP starts TOTP enrolment for the user: it makes a new secret, stores
// it sealed (see Options.MFAKeys) but not yet active, and returns it with its
// otpauth:// URI and QR code. ConfirmTOTP activates it. Calling BeginTOTP
// again before confirming replaces the secret.
//
// It returns ErrMFANotConfigured when Options.MFAKeys is empty, ErrNotFound,
// ErrAccountDisabled for a user who is not active, and ErrMFAEnabled when the
// user has a confirmed TOTP factor already. It is safe for concurrent use.
//
// Made with a Session in ctx (see NewContext), it first returns
// ErrReauthRequired, checking and changing nothing, unless that session's
// user proved a password or a factor within Options.ReauthWindow.
func (m *Manager) BeginTOTP(ctx context.Context, userID string) (*TOTPEnrollment, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.recentAuth(ctx); err != nil {
		return nil, err
	}
	if m.mfa.current == "" {
		return nil, ErrMFANotConfigured
	}
	r, err := m.store.GetUser(ctx, userID)
	if err != nil {
		return nil, storeErr("begin TOTP", err)
	}
	if r.Status != StatusActive {
		return nil, ErrAccountDisabled
	}
	secret := make([]byte, totpSecretSize)
	if err := m.readRand(secret); err != nil {
		return nil, err
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      m.mfa.issuer,
		AccountName: r.Email,
		Period:      totpPeriod,
		Secret:      secret,
		Digits:      totpDigits,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return nil, err
	}
	img, err := key.Image(qrCodeSize, qrCodeSize)
	if err != nil {
		return nil, err
	}
	var qr bytes.Buffer
	if err := png.Encode(&qr, img); err != nil {
		return nil, err
	}
	sealed, keyID, err := m.seal(userID, secret)
	if err != nil {
		return nil, err
	}
	e, err := m.auditEntry(ctx, EventMFAEnrollmentStarted, userID)
	if err != nil {
		return nil, err
	}
	now := m.now()
	err = m.write(ctx, userID, func() error {
		_, err := m.store.UpdateMFA(ctx, userID, func(w *MFARecord) (bool, error) {
			if w.TOTP != nil && w.TOTP.Confirmed {
				return false, ErrMFAEnabled
			}
			w.TOTP = &TOTPFactor{Secret: sealed, KeyID: keyID, CreatedAt: now}
			return false, nil
		}, e)
		return err
	}, e)
	if errors.Is(err, ErrMFAEnabled) {
		return nil, err
	}
	if err != nil {
		return nil, storeErr("begin TOTP", err)
	}
	return &TOTPEnrollment{Secret: key.Secret(), URI: key.URL(), QRCode: qr.Bytes()}, nil
}

// ConfirmTOTP completes TOTP enrolment with a code from the app the user set
// up with BeginTOTP: only then is the factor active, and Login asks for it.
// It returns the user's first recovery codes (RecoveryCodeCount of them, see
// RegenerateRecoveryCodes), to show once.
//
// Each code is counted as a failed login of the user before it is checked,
// as CompleteLogin counts codes, so at most Options.MaxFailedLogins wrong
// codes are checked before the account locks; a right code takes back its
// own count but forgets no earlier failure.
//
// It returns ErrInvalidCode for a wrong code (try again: the enrolment stays),
// ErrAccountLocked (no code checked) while the account is locked,
// ErrMFANotEnabled when no enrolment was begun, ErrMFAEnabled when it was
// confirmed already, ErrMFANotConfigured when Options.MFAKeys is empty, and
// ErrNotFound. It is safe for concurrent use: of concurrent confirmations of
// one enrolment exactly one succeeds.
//
// Made with a Session in ctx (see NewContext), it first returns
// ErrReauthRequired, checking and changing nothing, unless that session's
// user proved a password or a factor within Options.ReauthWindow.
func (m *Manager) ConfirmTOTP(ctx context.Context, userID, code string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.recentAuth(ctx); err != nil {
		return nil, err
	}
	if _, err := m.store.GetUser(ctx, userID); err != nil {
		return nil, storeErr("confirm TOTP", err)
	}
	rec, err := m.store.GetMFA(ctx, userID)
	switch {
	case errors.Is(err, ErrNotFound) || err == nil && rec.TOTP == nil:
		return nil, ErrMFANotEnabled
	case err != nil:
		return nil, storeErr("confirm TOTP", err)
	case rec.TOTP.Confirmed:
		return nil, ErrMFAEnabled
	}
	secret, err := m.open(userID, rec.TOTP)
	if err != nil {
		return nil, err
	}
	key := UserThrottleKey(userID)
	if err := m.checkLock(ctx, key); err != nil {
		return nil, err
	}
	res, err := m.reserveAttempt(ctx, key, userID)
	if err != nil {
		return nil, err
	}
	step, ok := totpStep(secret, normalizeCode(code), m.now())
	if !ok {
		return nil, m.codeFailed(ctx, userID)
	}
	// A right code is no failure; it forgets none either, since whoever holds
	// a session can set up an authenticator of their own.
	if err := m.unreserve(ctx, key, res); err != nil {
		return nil, err
	}
	codes, hashes, err := m.newRecoveryCodes(userID)
	if err != nil {
		return nil, err
	}
	e, err := m.auditEntry(ctx, EventMFAEnabled, userID)
	if err != nil {
		return nil, err
	}
	e.Data = map[string]string{"method": string(MethodTOTP)}
	now := m.now()
	err = m.write(ctx, userID, func() error {
		_, err := m.store.UpdateMFA(ctx, userID, func(w *MFARecord) (bool, error) {
			switch {
			case w.TOTP == nil || !bytes.Equal(w.TOTP.Secret, rec.TOTP.Secret):
				return false, ErrMFANotEnabled // replaced or removed meanwhile
			case w.TOTP.Confirmed:
				return false, ErrMFAEnabled
			}
			w.TOTP.Confirmed, w.TOTP.ConfirmedAt, w.TOTP.LastStep = true, now, step
			w.RecoveryCodes, w.RecoveryCodesAt = hashes, now
			return false, nil
		}, e)
		return err
	}, e)
	if errors.Is(err, ErrMFANotEnabled) || errors.Is(err, ErrMFAEnabled) {
		return nil, err
	}
	if err != nil {
		return nil, storeErr("confirm TOTP", err)
	}
	return codes, nil
}

// totpStep returns the time step whose code code is, among the steps within
// totpSkew of now, and whether there is one. The latest matching step wins.
// code must be normalised (normalizeCode).
func totpStep(secret []byte, code string, now time.Time) (int64, bool) {
	if len(code) != totpDigits.Length() || !allDigits(code) {
		return 0, false
	}
	s := b32NoPad.EncodeToString(secret)
	opts := hotp.ValidateOpts{Digits: totpDigits, Algorithm: otp.AlgorithmSHA1}
	cur := now.Unix() / totpPeriod
	found, step := false, int64(0)
	// Every step is tried, so the time taken does not tell which matched.
	for st := cur - totpSkew; st <= cur+totpSkew; st++ {
		if st < 0 {
			continue
		}
		ok, err := hotp.ValidateCustom(code, uint64(st), s, opts)
		if err == nil && ok {
			found, step = true, st
		}
	}
	return step, found
}

// allDigits reports whether s is made of ASCII digits only.
func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
