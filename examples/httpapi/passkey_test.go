package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/internal/passkeytest"
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
		e.fail(c.method, c.path, c.token, c.body, 501, users.CodePasskeysNotConfigured, "")
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
	e.fail("POST", "/v1/auth/passkey", "", `{"credential":{"id":"x"}}`, 401, users.CodePasskeyRefused, "")
	e.fail("POST", "/v1/auth/login/passkey", "", `{"credential":{"id":"x"}}`, 400, users.CodeInvalidRequest, "challenge")
	e.fail("POST", "/v1/auth/login/passkey/begin", "", `{"challenge":"not a challenge"}`, 401, users.CodeInvalidToken, "")
	e.fail("POST", "/v1/me/passkeys", admin, `{"name":"laptop"}`, 400, users.CodeInvalidRequest, "credential")
	e.fail("PATCH", "/v1/me/passkeys/nope", admin, `{}`, 400, users.CodeInvalidRequest, "name")
	e.fail("PATCH", "/v1/me/passkeys/nope", admin, `{"name":"laptop"}`, 404, users.CodeNotFound, "")
	e.fail("DELETE", "/v1/me/passkeys/nope?end_sessions=maybe", admin, "", 400, users.CodeInvalidRequest, "end_sessions")
	if r := e.fail("DELETE", "/v1/me/passkeys/nope", admin, "", 404, users.CodeNotFound, ""); r.Error.Message != "No such passkey" {
		t.Errorf("a passkey not found: %q", r.Error.Message)
	}
	e.fail("GET", "/v1/me/passkeys", "", "", 401, users.CodeInvalidToken, "")
}

// options calls a begin route and returns the raw options for the
// authenticator (the ceremony's publicKey).
func (e *env) options(path, token, body string) []byte {
	e.tb.Helper()
	r := e.call("POST", path, token, body, 200)
	var c struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if err := json.Unmarshal(r.Data, &c); err != nil || len(c.PublicKey) == 0 {
		e.tb.Fatalf("POST %s answered %s (%v), want a ceremony", path, r.Raw, err)
	}
	return c.PublicKey
}

// register adds a passkey of a, named name, for the session's user, and
// returns it as the API answered it.
func (e *env) register(a *passkeytest.Authenticator, token, name string) users.Passkey {
	e.tb.Helper()
	cred, err := a.Register(e.options("/v1/me/passkeys/begin", token, ""))
	if err != nil {
		e.tb.Fatal(err)
	}
	r := e.call("POST", "/v1/me/passkeys", token, fmt.Sprintf(`{"name":%q,"credential":%s}`, name, cred), 201)
	var p users.Passkey
	if err := json.Unmarshal(r.Data, &p); err != nil || p.ID == "" {
		e.tb.Fatalf("registration answered %s (%v)", r.Raw, err)
	}
	return p
}

// assert answers the options of path with a, and returns the credential.
func (e *env) assert(a *passkeytest.Authenticator, path, token, body string) string {
	e.tb.Helper()
	cred, err := a.Assert(e.options(path, token, body))
	if err != nil {
		e.tb.Fatal(err)
	}
	return string(cred)
}

// passkeyLogin signs in with a passkey of a and checks the status.
func (e *env) passkeyLogin(a *passkeytest.Authenticator, status int) *response {
	e.tb.Helper()
	return e.call("POST", "/v1/auth/passkey", "", `{"credential":`+e.assert(a, "/v1/auth/passkey/begin", "", "")+`}`, status)
}

// currentMethods returns the methods of the session token's device.
func (e *env) currentMethods(token string) []users.AuthMethod {
	e.tb.Helper()
	for _, d := range e.devices(token) {
		if d.Current {
			return d.Methods
		}
	}
	e.tb.Fatal("no current device")
	return nil
}

// TestPasskeys_Flow drives passkeys over HTTP with a software authenticator:
// adding one, listing it to its user only, signing in with it (two factors
// when it verifies its user, the second step otherwise), as the second step
// after a password, step-up, renaming, and removing it, with the sessions it
// made or not; and the refusals: another origin, a cloned authenticator, a
// removed passkey, the last way to sign in.
func TestPasskeys_Flow(t *testing.T) {
	e := newPasskeyEnv(t)
	admin := e.login(adminEmail, adminPassword)
	const pw = storetest.Password
	jane := e.create(admin, `{"name":"Jane","email":"jane@example.com","password":"`+pw+`"}`)
	tok := e.login("jane@example.com", pw)
	laptop := passkeytest.New(passkeyOrigin)

	p := e.register(laptop, tok, "laptop")
	if p.Name != "laptop" || !p.UserVerified || p.ID != laptop.CredentialIDs()[0] {
		t.Errorf("registered %+v", p)
	}
	list := e.call("GET", "/v1/me/passkeys", tok, "", 200)
	if !strings.Contains(string(list.Data), p.ID) {
		t.Errorf("jane's list %s lacks her passkey", list.Data)
	}
	if r := e.call("GET", "/v1/me/passkeys", admin, "", 200); string(r.Data) != "[]" {
		t.Errorf("the admin's list shows %s", r.Data)
	}
	if r := e.call("GET", "/v1/users/"+jane.ID, admin, "", 200); strings.Contains(r.Raw, p.ID) {
		t.Errorf("the user resource shows the credential ID: %s", r.Raw)
	}

	t.Run("SignIn", func(t *testing.T) {
		s := e.passkeyLogin(laptop, 200).session(t)
		if s.User.ID != jane.ID || !slices.Equal(e.currentMethods(s.Token), []users.AuthMethod{users.MethodPasskey, users.MethodPasskey}) {
			t.Errorf("signed in %+v with %v, want jane with a user-verifying passkey (two factors)", s.User, e.currentMethods(s.Token))
		}
	})
	t.Run("OtherOrigin", func(t *testing.T) {
		evil := passkeytest.New("https://evil.example")
		cred, err := evil.Register(e.options("/v1/me/passkeys/begin", tok, ""))
		if err != nil {
			t.Fatal(err)
		}
		e.fail("POST", "/v1/me/passkeys", tok, `{"name":"evil","credential":`+string(cred)+`}`, 401, users.CodePasskeyRefused, "")
	})
	e.enrol(tok) // a second factor: TOTP
	t.Run("SecondFactor", func(t *testing.T) {
		r := e.fail("POST", "/v1/auth/login", "", fmt.Sprintf(`{"email":"jane@example.com","password":%q}`, pw), 401, "mfa_required", "")
		c := challengeOf(t, r)
		if !slices.Contains(c.Methods, users.MethodPasskey) || !strings.Contains(r.Error.Message, "passkey") {
			t.Fatalf("challenge %+v, %q: want passkey among its methods and in the message", c, r.Error.Message)
		}
		cred := e.assert(laptop, "/v1/auth/login/passkey/begin", "", fmt.Sprintf(`{"challenge":%q}`, c.Token))
		s := e.call("POST", "/v1/auth/login/passkey", "", fmt.Sprintf(`{"challenge":%q,"credential":%s,"remember":true}`, c.Token, cred), 200).session(t)
		if got := e.currentMethods(s.Token); !slices.Equal(got, []users.AuthMethod{users.MethodPassword, users.MethodPasskey}) {
			t.Errorf("methods %v, want password then passkey", got)
		}
		if want := timestamp(e.clock.Now().Add(users.DefaultRememberSessionTTL)); s.ExpiresAt != want {
			t.Errorf("remembered second step with a passkey: expires_at %s, want %s", s.ExpiresAt, want)
		}
	})
	t.Run("WithoutUserVerification", func(t *testing.T) {
		// One factor only: jane has a second factor, so the second step.
		phone := passkeytest.New(passkeyOrigin)
		phone.NoUserVerification = true
		e.register(phone, tok, "phone")
		r := e.passkeyLogin(phone, 401)
		if c := challengeOf(t, r); slices.Contains(c.Methods, users.MethodPasskey) {
			t.Errorf("the second step offers a passkey again: %v", c.Methods)
		}
	})
	t.Run("StepUp", func(t *testing.T) {
		cred := e.assert(laptop, "/v1/me/passkeys/step-up/begin", tok, "")
		r := e.call("POST", "/v1/me/passkeys/step-up", tok, `{"credential":`+cred+`}`, 200)
		if !strings.Contains(r.Raw, `"second_factor_at":"`) {
			t.Errorf("step-up answered %s", r.Raw)
		}
	})
	t.Run("Cloned", func(t *testing.T) {
		clone := laptop.Clone()
		e.passkeyLogin(laptop, 200)
		e.fail("POST", "/v1/auth/passkey", "", `{"credential":`+e.assert(clone, "/v1/auth/passkey/begin", "", "")+`}`, 401, users.CodePasskeyCloned, "")
	})
	t.Run("RenameAndRemove", func(t *testing.T) {
		r := e.call("PATCH", "/v1/me/passkeys/"+p.ID, tok, `{"name":"old laptop"}`, 200)
		if !strings.Contains(r.Raw, `"name":"old laptop"`) {
			t.Errorf("rename answered %s", r.Raw)
		}
		e.fail("PATCH", "/v1/me/passkeys/"+p.ID, admin, `{"name":"mine"}`, 404, users.CodeNotFound, "")
		e.fail("DELETE", "/v1/me/passkeys/"+p.ID, admin, "", 404, users.CodeNotFound, "")

		kept := e.passkeyLogin(laptop, 200).session(t).Token
		e.call("DELETE", "/v1/me/passkeys/"+p.ID, tok, "", 200)
		e.call("GET", "/v1/me", kept, "", 200) // by default its sessions stay
		e.fail("POST", "/v1/auth/passkey", "", `{"credential":`+e.assert(laptop, "/v1/auth/passkey/begin", "", "")+`}`, 401, users.CodePasskeyRefused, "")
	})
}

// TestPasskeys_LastWayToSignIn checks that a user whose only way to sign in is
// one passkey cannot remove it, and that removing one with end_sessions ends
// the sessions passkeys made.
func TestPasskeys_LastWayToSignIn(t *testing.T) {
	store := users.NewMemoryStore()
	e := newEnvOpts(t, store, users.Options{Passkeys: &users.PasskeyOptions{RPID: "localhost", Origins: []string{passkeyOrigin}}})
	admin := e.login(adminEmail, adminPassword)
	jane := e.create(admin, `{"name":"Jane","email":"jane@example.com","password":"`+storetest.Password+`"}`)
	tok := e.login("jane@example.com", storetest.Password)
	a := passkeytest.New(passkeyOrigin)
	p := e.register(a, tok, "laptop")
	// Jane gives up her password (an application would offer it): the
	// passkey is now her only way in.
	if _, err := store.RemovePassword(t.Context(), jane.ID, e.clock.Now(), nil); err != nil {
		t.Fatal(err)
	}
	e.fail("DELETE", "/v1/me/passkeys/"+p.ID, tok, "", 409, users.CodeLastSignInMethod, "")
	e.call("GET", "/v1/me/passkeys", tok, "", 200)

	second := passkeytest.New(passkeyOrigin)
	e.register(second, tok, "phone")
	byPasskey := e.passkeyLogin(a, 200).session(t).Token
	e.call("DELETE", "/v1/me/passkeys/"+p.ID+"?end_sessions=true", byPasskey, "", 200)
	e.fail("GET", "/v1/me", byPasskey, "", 401, users.CodeInvalidToken, "")
	e.call("GET", "/v1/me", tok, "", 200) // the password's session stays
}

// TestPasskeyOptions checks the relying party of -passkey-origin and
// -passkey-rp-id.
func TestPasskeyOptions(t *testing.T) {
	for _, c := range []struct{ origins, rpID, want string }{
		{"", "", "off"},
		{"", "example.com", "error"},
		{"https://app.example", "", "app.example https://app.example"},
		{" https://app.example:8443 , https://www.app.example ", "", "app.example https://app.example:8443,https://www.app.example"},
		{"https://login.example.com", "example.com", "example.com https://login.example.com"},
		{"app.example", "", "error"},
	} {
		got := "off"
		o, err := passkeyOptions(c.origins, c.rpID)
		switch {
		case err != nil:
			got = "error"
		case o != nil:
			got = o.RPID + " " + strings.Join(o.Origins, ",")
		}
		if got != c.want {
			t.Errorf("passkeyOptions(%q, %q) = %s, want %s", c.origins, c.rpID, got, c.want)
		}
	}
}
