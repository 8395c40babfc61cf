package users

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
)

// MFAKey is one AES-256-GCM key that seals TOTP secrets at rest (see
// Options.MFAKeys). Key is 32 bytes from a cryptographically secure source,
// kept outside the store (an environment variable, a secrets manager): whoever
// holds the store and the key can read every user's TOTP secret. ID names the
// key in the records it sealed, so that keys can be rotated; it is not secret.
type MFAKey struct {
	ID  string // 1 to 64 bytes, unique among Options.MFAKeys
	Key []byte // exactly 32 bytes
}

// mfaConfig is the Manager's second-factor configuration.
type mfaConfig struct {
	issuer  string
	current string                 // ID of the key that seals, or "" when there is none
	aeads   map[string]cipher.AEAD // by key ID
}

// newMFAConfig checks Options.MFAKeys and Options.MFAIssuer and prepares the
// ciphers. It returns a *ValidationError on "options.MFAKeys" for a key that is
// not 32 bytes or an ID that is empty, too long or repeated.
func newMFAConfig(keys []MFAKey, issuer string) (mfaConfig, error) {
	c := mfaConfig{issuer: or(issuer, "users"), aeads: make(map[string]cipher.AEAD, len(keys))}
	for i, k := range keys {
		switch _, dup := c.aeads[k.ID]; {
		case len(k.Key) != 32:
			return c, invalid("options.MFAKeys", ValidationMalformed, fmt.Sprintf("key %d must be 32 bytes", i))
		case k.ID == "" || len(k.ID) > 64:
			return c, invalid("options.MFAKeys", ValidationMalformed, fmt.Sprintf("key %d must have an ID of 1 to 64 bytes", i))
		case dup:
			return c, invalid("options.MFAKeys", ValidationDuplicate, "key IDs must be unique")
		}
		block, err := aes.NewCipher(k.Key) // copies the key
		if err != nil {
			return c, fmt.Errorf("users: MFA key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return c, fmt.Errorf("users: MFA key %q: %w", k.ID, err)
		}
		c.aeads[k.ID] = aead
		if i == 0 {
			c.current = k.ID
		}
	}
	return c, nil
}

// sealAAD binds a sealed secret to its user: a sealed secret copied into
// another user's record does not open.
func sealAAD(userID string) []byte { return []byte("users/totp-secret/v1:" + userID) }

// errSecretUnreadable is returned when a sealed TOTP secret does not open: its
// key is not among Options.MFAKeys, or the bytes were changed.
var errSecretUnreadable = errors.New("users: TOTP secret cannot be opened with Options.MFAKeys")

// seal encrypts secret for the user with the current key, with a random nonce
// read through m.readRand. It returns the nonce followed by the ciphertext and
// tag, and the key's ID, or ErrMFANotConfigured when there is no key.
func (m *Manager) seal(userID string, secret []byte) (sealed []byte, keyID string, err error) {
	return m.sealFor(sealAAD(userID), secret)
}

// open decrypts a TOTP secret sealed for the user. It returns
// ErrMFANotConfigured when there is no key at all, and errSecretUnreadable
// when the key is unknown or the bytes do not authenticate.
func (m *Manager) open(userID string, t *TOTPFactor) ([]byte, error) {
	if len(m.mfa.aeads) == 0 {
		return nil, ErrMFANotConfigured
	}
	return m.openFor(sealAAD(userID), t.KeyID, t.Secret)
}

// sealFor seals plain under aad with the current MFA key: TOTP secrets
// (seal) and provider tokens (oidc_login.go). It returns the nonce followed
// by the ciphertext and tag, and the key's ID, or ErrMFANotConfigured.
func (m *Manager) sealFor(aad, plain []byte) ([]byte, string, error) {
	aead, ok := m.mfa.aeads[m.mfa.current]
	if !ok {
		return nil, "", ErrMFANotConfigured
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if err := m.readRand(nonce); err != nil {
		return nil, "", err
	}
	return aead.Seal(nonce, nonce, plain, aad), m.mfa.current, nil
}

// openFor opens what sealFor sealed under aad with the key keyID.
func (m *Manager) openFor(aad []byte, keyID string, sealed []byte) ([]byte, error) {
	aead, ok := m.mfa.aeads[keyID]
	if !ok || len(sealed) < aead.NonceSize() {
		return nil, errSecretUnreadable
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, errSecretUnreadable
	}
	return plain, nil
}
