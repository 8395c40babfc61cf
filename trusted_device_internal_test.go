package users

import (
	"errors"
	"testing"
)

// TestKeepsSignIn_TrustedDeviceIsNoWayIn checks that the guard of the user's
// last way to sign in does not count a trusted device: a user without a
// password whose only other credential is a trusted device could sign in no
// more, so removing the last identity is refused; with a passkey or another
// identity left, it is not.
func TestKeepsSignIn_TrustedDeviceIsNoWayIn(t *testing.T) {
	noPassword := &UserRecord{}
	device := &CredentialRecord{Kind: CredentialTrustedDevice, ID: "d"}
	if err := keepsSignIn(noPassword, []*CredentialRecord{device}); !errors.Is(err, ErrLastSignInMethod) {
		t.Errorf("keepsSignIn(no password, a trusted device left) = %v, want ErrLastSignInMethod", err)
	}
	for _, k := range []CredentialKind{CredentialPasskey, CredentialOIDC} {
		if err := keepsSignIn(noPassword, []*CredentialRecord{device, {Kind: k, ID: "c"}}); err != nil {
			t.Errorf("keepsSignIn(no password, a trusted device and a %s left) = %v, want nil", k, err)
		}
	}
	if err := keepsSignIn(&UserRecord{PasswordHash: "$2a$..."}, []*CredentialRecord{device}); err != nil {
		t.Errorf("keepsSignIn(a password, a trusted device left) = %v, want nil", err)
	}
}
