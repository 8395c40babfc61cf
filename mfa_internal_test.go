package users

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// rfc6238 are the test vectors of RFC 6238 Appendix B: Unix time and the
// 8-digit TOTP of the SHA-1 seed "12345678901234567890" (30 s steps, T0 = 0).
var rfc6238SHA1 = []struct {
	unix int64
	code string
}{
	{59, "94287082"},
	{1111111109, "07081804"},
	{1111111111, "14050471"},
	{1234567890, "89005924"},
	{2000000000, "69279037"},
	{20000000000, "65353130"},
}

// TestTOTPStep_RFC6238 checks the code this package accepts (6 digits, SHA-1)
// against RFC 6238 Appendix B: a 6-digit code is the last six digits of the
// 8-digit one, as both are the truncated value modulo 10^digits.
func TestTOTPStep_RFC6238(t *testing.T) {
	seed := []byte("12345678901234567890")
	for _, v := range rfc6238SHA1 {
		at := time.Unix(v.unix, 0)
		code := v.code[2:]
		step, ok := totpStep(seed, code, at)
		if !ok || step != v.unix/30 {
			t.Errorf("T=%d: totpStep(%s) = %d, %v; want %d, true", v.unix, code, step, ok, v.unix/30)
		}
		// One step of skew either way accepts it, and reports the code's step.
		for _, skew := range []time.Duration{-30 * time.Second, 30 * time.Second} {
			if step, ok := totpStep(seed, code, at.Add(skew)); !ok || step != v.unix/30 {
				t.Errorf("T=%d%+v: totpStep(%s) = %d, %v; want %d, true", v.unix, skew, code, step, ok, v.unix/30)
			}
		}
		// Two steps away it is refused.
		if _, ok := totpStep(seed, code, at.Add(90*time.Second)); ok {
			t.Errorf("T=%d: code accepted three steps later", v.unix)
		}
		// The 8-digit form and a changed digit are refused.
		if _, ok := totpStep(seed, v.code, at); ok {
			t.Errorf("T=%d: 8-digit code accepted by a 6-digit factor", v.unix)
		}
		wrong := []byte(code)
		wrong[5] = '0' + (wrong[5]-'0'+1)%10
		if _, ok := totpStep(seed, string(wrong), at); ok {
			t.Errorf("T=%d: wrong code %s accepted", v.unix, wrong)
		}
	}
}

// TestSeal_BoundToUser checks that a sealed TOTP secret opens only for its
// user and under its key, and that a changed byte is detected.
func TestSeal_BoundToUser(t *testing.T) {
	m := &Manager{rand: bytes.NewReader(make([]byte, 1024))}
	var err error
	if m.mfa, err = newMFAConfig([]MFAKey{{ID: "a", Key: bytes.Repeat([]byte{1}, 32)}}, ""); err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdefghij")
	sealed, keyID, err := m.seal("alice", secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret[:8]) {
		t.Fatal("the sealed secret contains the secret")
	}
	got, err := m.open("alice", &TOTPFactor{Secret: sealed, KeyID: keyID})
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open = %q, %v; want the secret", got, err)
	}
	if _, err := m.open("bob", &TOTPFactor{Secret: sealed, KeyID: keyID}); !errors.Is(err, errSecretUnreadable) {
		t.Errorf("opening alice's secret as bob's = %v, want errSecretUnreadable", err)
	}
	changed := bytes.Clone(sealed)
	changed[len(changed)-1] ^= 1
	if _, err := m.open("alice", &TOTPFactor{Secret: changed, KeyID: keyID}); !errors.Is(err, errSecretUnreadable) {
		t.Errorf("opening a changed secret = %v, want errSecretUnreadable", err)
	}
	if _, err := m.open("alice", &TOTPFactor{Secret: sealed, KeyID: "b"}); !errors.Is(err, errSecretUnreadable) {
		t.Errorf("opening under an unknown key ID = %v, want errSecretUnreadable", err)
	}
}
