package main

import (
	"encoding/json"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// passkeyOrigin is the front end of the passkey tests; its host is the
// relying party ID.
const passkeyOrigin = "https://localhost:3000"

// newPasskeyEnv is an API whose Manager has passkeys for passkeyOrigin, and
// storetest.MFAKey.
func newPasskeyEnv(t *testing.T) *env {
	return newEnvOpts(t, users.NewMemoryStore(), users.Options{
		MFAKeys:  []users.MFAKey{storetest.MFAKey},
		Passkeys: &users.PasskeyOptions{RPID: "localhost", Origins: []string{passkeyOrigin}},
	})
}

// publicKey is what the tests read of a ceremony's options.
type publicKey struct {
	Challenge string `json:"challenge"`
	RPID      string `json:"rpId"`
	RP        struct {
		ID string `json:"id"`
	} `json:"rp"`
	User struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"user"`
	AuthenticatorSelection struct {
		ResidentKey      string `json:"residentKey"`
		UserVerification string `json:"userVerification"`
	} `json:"authenticatorSelection"`
	AllowCredentials []struct {
		ID string `json:"id"`
	} `json:"allowCredentials"`
}

// begin calls a begin route and returns the options it answered.
func (e *env) begin(path, token, body string) publicKey {
	e.tb.Helper()
	r := e.call("POST", path, token, body, 200)
	var c struct {
		PublicKey publicKey `json:"publicKey"`
	}
	if err := json.Unmarshal(r.Data, &c); err != nil || c.PublicKey.Challenge == "" {
		e.tb.Fatalf("POST %s answered %s (%v), want the options of a ceremony", path, r.Raw, err)
	}
	return c.PublicKey
}

// TestPasskeys_Off checks that without Options.Passkeys every passkey route
// answers 501 passkeys_not_configured, and changes nothing.
func TestPasskeys_Off(t *testing.T) {
	e := newEnv(t, users.NewMemoryStore())
	admin := e.login(adminEmail, adminPassword)
	for _, c := range []struct{ method, path, token, body string }{
		{"POST", "/v1/auth/passkey/begin", "", ""},
		{"POST", "/v1/auth/passkey", "", `{"credential":{"id":"x"}}`},
		{"GET", "/v1/me/passkeys", admin, ""},
		{"POST", "/v1/me/passkeys/begin", admin, ""},
		{"POST", "/v1/me/passkeys/step-up/begin", admin, ""},
	} {
		e.fail(c.method, c.path, c.token, c.body, 501, codePasskeysNotConfigured, "")
	}
}

// TestPasskeys_Begin checks the options of each ceremony as the browser gets
// them: the relying party, a fresh challenge each time, a discoverable
// credential asked for at registration, the caller's own passkeys and no one
// else's; and that adding one needs a recent sign-in.
func TestPasskeys_Begin(t *testing.T) {
	e := newPasskeyEnv(t)
	admin := e.login(adminEmail, adminPassword)

	a, b := e.begin("/v1/auth/passkey/begin", "", ""), e.begin("/v1/auth/passkey/begin", "", "")
	if a.RPID != "localhost" || a.Challenge == b.Challenge || len(a.AllowCredentials) != 0 {
		t.Errorf("sign-in options %+v and %+v: want rpId localhost, two challenges, no credentials named", a, b)
	}
	reg := e.begin("/v1/me/passkeys/begin", admin, "")
	if reg.RP.ID != "localhost" || reg.User.Name != adminEmail || reg.AuthenticatorSelection.ResidentKey != "required" {
		t.Errorf("registration options %+v: want rp localhost, the admin, a discoverable credential", reg)
	}
	if got := e.call("GET", "/v1/me/passkeys", admin, "", 200); string(got.Data) != "[]" {
		t.Errorf("GET /v1/me/passkeys = %s, want []", got.Data)
	}

	e.clock.Advance(users.DefaultReauthWindow + 1)
	e.fail("POST", "/v1/me/passkeys/begin", admin, "", 403, users.CodeReauthRequired, "")
}

// TestPasskeys_BadRequests checks the answers to bodies and names that are
// wrong, before any ceremony.
func TestPasskeys_BadRequests(t *testing.T) {
	e := newPasskeyEnv(t)
	admin := e.login(adminEmail, adminPassword)
	e.fail("POST", "/v1/auth/passkey", "", `{}`, 400, users.CodeInvalidRequest, "credential")
	e.fail("POST", "/v1/auth/passkey", "", `{"credential":"a string"}`, 400, users.CodeInvalidRequest, "credential")
	e.fail("POST", "/v1/auth/passkey", "", `{"credential":{"id":"x"}}`, 401, codePasskeyRefused, "")
	e.fail("POST", "/v1/auth/login/passkey", "", `{"credential":{"id":"x"}}`, 400, users.CodeInvalidRequest, "challenge")
	e.fail("POST", "/v1/auth/login/passkey/begin", "", `{"challenge":"not a challenge"}`, 401, users.CodeInvalidToken, "")
	e.fail("POST", "/v1/me/passkeys", admin, `{"name":"laptop"}`, 400, users.CodeInvalidRequest, "credential")
	e.fail("PATCH", "/v1/me/passkeys/nope", admin, `{}`, 400, users.CodeInvalidRequest, "name")
	e.fail("PATCH", "/v1/me/passkeys/nope", admin, `{"name":"laptop"}`, 404, users.CodeNotFound, "")
	e.fail("DELETE", "/v1/me/passkeys/nope?end_sessions=maybe", admin, "", 400, users.CodeInvalidRequest, "end_sessions")
	e.fail("DELETE", "/v1/me/passkeys/nope", admin, "", 404, users.CodeNotFound, "")
	e.fail("GET", "/v1/me/passkeys", "", "", 401, users.CodeInvalidToken, "")
}
