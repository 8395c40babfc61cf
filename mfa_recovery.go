package users

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"slices"
	"strings"
)

// Recovery codes: RecoveryCodeCount single-use codes per user, each 80 random
// bits written as 16 lower-case Crockford base32 characters in groups of four
// ("7kq2-m9xd-4hfa-0rtz"). Crockford's alphabet has no i, l, o or u, and
// reading one of the first three as 1, 1 and 0 forgives the usual misreadings;
// case, spaces and hyphens do not matter. They are stored as SHA-256 hashes
// bound to the user: with 80 bits of entropy no salt or slow hash is needed to
// make a stolen hash useless.
const (
	RecoveryCodeCount = 10
	recoveryCodeBytes = 10 // 80 bits
	recoveryCodeChars = 16
)

var crockford = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newRecoveryCodes returns RecoveryCodeCount fresh codes for the user, as shown
// to the user, and their hashes, as stored.
func (m *Manager) newRecoveryCodes(userID string) (codes []string, hashes [][]byte, err error) {
	for range RecoveryCodeCount {
		var b [recoveryCodeBytes]byte
		if err := m.readRand(b[:]); err != nil {
			return nil, nil, err
		}
		c := crockford.EncodeToString(b[:])
		codes = append(codes, c[0:4]+"-"+c[4:8]+"-"+c[8:12]+"-"+c[12:16])
		hashes = append(hashes, recoveryHash(userID, c))
	}
	return codes, hashes, nil
}

// recoveryHash is what a store keeps of the user's recovery code c (in the
// canonical form of canonicalRecoveryCode).
func recoveryHash(userID, c string) []byte {
	h := sha256.Sum256([]byte("users/recovery-code/v1:" + userID + ":" + c))
	return h[:]
}

// normalizeCode lower-cases a code as typed and drops spaces and hyphens. A
// code of more than 64 bytes becomes "", which no factor accepts.
func normalizeCode(code string) string {
	if len(code) > 64 {
		return ""
	}
	var b strings.Builder
	for i := range len(code) {
		switch c := code[i]; {
		case c == ' ' || c == '-' || c == '\t':
		case 'A' <= c && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// canonicalRecoveryCode returns the recovery code a normalised code stands for,
// with Crockford's misreadings mapped, and whether it is one at all.
func canonicalRecoveryCode(code string) (string, bool) {
	if len(code) != recoveryCodeChars {
		return "", false
	}
	c := []byte(code)
	for i, ch := range c {
		switch ch {
		case 'i', 'l':
			c[i] = '1'
		case 'o':
			c[i] = '0'
		}
	}
	if _, err := crockford.DecodeString(string(c)); err != nil {
		return "", false
	}
	return string(c), true
}

// useRecoveryCode removes the hash h from w's unused recovery codes, or
// returns ErrInvalidCode if it is not there. Every hash is compared, in
// constant time.
func useRecoveryCode(w *MFARecord, h []byte) error {
	found := -1
	for i, stored := range w.RecoveryCodes {
		if subtle.ConstantTimeCompare(stored, h) == 1 {
			found = i
		}
	}
	if found < 0 {
		return ErrInvalidCode
	}
	w.RecoveryCodes = slices.Delete(w.RecoveryCodes, found, found+1)
	return nil
}

// RegenerateRecoveryCodes makes RecoveryCodeCount new recovery codes for the
// user and returns them, to show once; the old ones, used or not, stop working
// in the same step. Applications should ask for a fresh second factor first
// (see Manager.RequireSecondFactor).
//
// It returns ErrMFANotEnabled if the user has no active second factor, and
// ErrNotFound. It is safe for concurrent use.
//
// Made with a Session in ctx (see NewContext), it first returns
// ErrReauthRequired, checking and changing nothing, unless that session's
// user proved a password or a factor within Options.ReauthWindow.
func (m *Manager) RegenerateRecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.recentAuth(ctx); err != nil {
		return nil, err
	}
	codes, hashes, err := m.newRecoveryCodes(userID)
	if err != nil {
		return nil, err
	}
	e, err := m.auditEntry(ctx, EventRecoveryCodesGenerated, userID)
	if err != nil {
		return nil, err
	}
	now := m.now()
	err = m.write(ctx, userID, func() error {
		_, err := m.store.UpdateMFA(ctx, userID, func(w *MFARecord) (bool, error) {
			if len(secondFactors(w)) == 0 {
				return false, ErrMFANotEnabled
			}
			w.RecoveryCodes, w.RecoveryCodesAt = hashes, now
			return false, nil
		}, e)
		return err
	}, e)
	if errors.Is(err, ErrMFANotEnabled) {
		return nil, err
	}
	if err != nil {
		return nil, storeErr("regenerate recovery codes", err)
	}
	return codes, nil
}
