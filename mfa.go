package users

import (
	"slices"
	"time"
)

// The second-factor authentication methods, as recorded on a session after
// the first factor (MethodPassword or MethodEmailLink).
const (
	MethodTOTP         AuthMethod = "totp"          // a code from an authenticator app (RFC 6238)
	MethodRecoveryCode AuthMethod = "recovery_code" // one of the user's single-use recovery codes
)

// MFARecord is what a Store keeps about one user's second factors. It never
// holds a secret in the clear: the TOTP secret is sealed by the Manager with
// AES-GCM under a key only the application holds, and recovery codes are kept
// as hashes. A user has at most one MFARecord.
type MFARecord struct {
	UserID string

	// TOTP is the user's authenticator-app factor, or nil if the user has none.
	TOTP *TOTPFactor

	// RecoveryCodes are the SHA-256 hashes (32 bytes each) of the user's unused
	// recovery codes. A code is removed from the list when it is used, and the
	// whole list is replaced when new codes are made.
	RecoveryCodes [][]byte
	// RecoveryCodesAt is when the current recovery codes were made, or zero.
	RecoveryCodesAt time.Time
}

// TOTPFactor is a user's TOTP (RFC 6238) factor as a Store keeps it.
type TOTPFactor struct {
	// Secret is the TOTP secret sealed with AES-GCM (nonce, ciphertext and tag)
	// under the key KeyID names; never the secret itself. Stores keep the bytes
	// exactly.
	Secret []byte
	// KeyID names the key of Options.MFAKeys that sealed Secret.
	KeyID string
	// Confirmed is false between the two steps of enrolment: only a confirmed
	// factor is asked for at login.
	Confirmed bool
	// CreatedAt is when enrolment began; ConfirmedAt when it was confirmed, or zero.
	CreatedAt   time.Time
	ConfirmedAt time.Time
	// LastStep is the RFC 6238 time step (Unix time / 30 s) of the last code
	// accepted, or 0: a code of this step or an earlier one is refused, so a
	// code once accepted cannot be replayed.
	LastStep int64
}

// IsEmpty reports whether r holds no factor at all: no TOTP and no recovery
// codes. A Store deletes a record that UpdateMFA leaves empty.
func (r *MFARecord) IsEmpty() bool {
	return r.TOTP == nil && len(r.RecoveryCodes) == 0 && r.RecoveryCodesAt.IsZero()
}

// Clone returns a deep copy of r.
func (r *MFARecord) Clone() *MFARecord {
	if r == nil {
		return nil
	}
	c := *r
	if r.TOTP != nil {
		t := *r.TOTP
		t.Secret = slices.Clone(r.TOTP.Secret)
		c.TOTP = &t
	}
	if r.RecoveryCodes != nil {
		c.RecoveryCodes = make([][]byte, len(r.RecoveryCodes))
		for i, h := range r.RecoveryCodes {
			c.RecoveryCodes[i] = slices.Clone(h)
		}
	}
	return &c
}

// ChallengeRecord is what a Store keeps for one MFA challenge: a login whose
// first factor succeeded and which waits for a second. The challenge token
// itself is never stored, only its SHA-256.
type ChallengeRecord struct {
	Hash           []byte // SHA-256 of the challenge token, 32 bytes
	UserID         string
	UserGeneration int64 // the user's Generation when the first factor was checked
	// Methods are the factors already verified, first factor first (for example
	// MethodPassword); the session made from the challenge starts with them.
	Methods []AuthMethod
	// Attempts counts the second-factor codes tried against the challenge (see
	// Store.CountChallengeAttempt).
	Attempts  int
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Clone returns a deep copy of c.
func (c *ChallengeRecord) Clone() *ChallengeRecord {
	if c == nil {
		return nil
	}
	d := *c
	d.Hash = slices.Clone(c.Hash)
	d.Methods = slices.Clone(c.Methods)
	return &d
}
