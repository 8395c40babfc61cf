package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// challenge logs in with a password and returns the challenge of the 401
// mfa_required answer.
func (e *env) challenge(email, password string) apiChallenge {
	e.tb.Helper()
	r := e.fail("POST", "/v1/auth/login", "", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password), 401, "mfa_required", "")
	return challengeOf(e.tb, r)
}

func challengeOf(tb testing.TB, r *response) apiChallenge {
	tb.Helper()
	var body struct {
		Error apiError `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.Raw), &body); err != nil || body.Error.Challenge == nil || body.Error.Challenge.Token == "" {
		tb.Fatalf("no challenge in %s (%v)", r.Raw, err)
	}
	return *body.Error.Challenge
}

// complete sends the second step and checks the status.
func (e *env) complete(c apiChallenge, code string, status int) *response {
	e.tb.Helper()
	return e.call("POST", "/v1/auth/login/mfa", "", fmt.Sprintf(`{"challenge":%q,"code":%q}`, c.Token, code), status)
}

func (e *env) mfaStatus(token string) users.MFAStatus {
	e.tb.Helper()
	var st users.MFAStatus
	if err := json.Unmarshal(e.call("GET", "/v1/me/mfa", token, "", 200).Data, &st); err != nil {
		e.tb.Fatal(err)
	}
	return st
}

// enrol turns TOTP on for the session's user and returns the secret, the code
// that confirmed it and the recovery codes.
func (e *env) enrol(token string) (secret, used string, codes []string) {
	e.tb.Helper()
	r := e.call("POST", "/v1/me/mfa/totp", token, "", 200)
	var en apiEnrollment
	if err := json.Unmarshal(r.Data, &en); err != nil {
		e.tb.Fatal(err)
	}
	img, ok := strings.CutPrefix(en.QRCode, "data:image/png;base64,")
	b, err := base64.StdEncoding.DecodeString(img)
	if !ok || err != nil {
		e.tb.Fatalf("qr_code %.40q… is not a PNG data URL (%v)", en.QRCode, err)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		e.tb.Errorf("qr_code does not decode as a PNG: %v", err)
	}
	key, err := otp.NewKeyFromURL(en.URI)
	if err != nil || key.Type() != "totp" || key.Secret() != en.Secret {
		e.tb.Fatalf("otpauth_uri %q: %v, want a totp URI with the secret", en.URI, err)
	}
	e.fail("POST", "/v1/me/mfa/totp/confirm", token, `{"code":"`+storetest.WrongTOTPCode(e.tb, en.Secret, e.clock.Now(), 0)+`"}`, 401, "invalid_code", "")
	used = storetest.TOTPCode(e.tb, en.Secret, e.clock.Now())
	r = e.call("POST", "/v1/me/mfa/totp/confirm", token, `{"code":"`+used+`"}`, 200)
	var rc recoveryCodes
	if err := json.Unmarshal(r.Data, &rc); err != nil || len(rc.RecoveryCodes) != users.RecoveryCodeCount {
		e.tb.Fatalf("confirm answered %s, want %d recovery codes", r.Raw, users.RecoveryCodeCount)
	}
	return en.Secret, used, rc.RecoveryCodes
}

// newMFAEnv is an API whose Manager has storetest.MFAKey.
func newMFAEnv(t *testing.T) *env {
	return newEnvOpts(t, users.NewMemoryStore(), users.Options{MFAKeys: []users.MFAKey{storetest.MFAKey}})
}

// TestMFA drives the whole second-factor flow over HTTP, with codes computed
// as an authenticator app computes them.
func TestMFA(t *testing.T) {
	e := newMFAEnv(t)
	admin := e.login(adminEmail, adminPassword)
	const pw = storetest.Password
	jane := e.create(admin, `{"name":"Jane","email":"jane@example.com","password":"`+pw+`"}`)
	tok := e.login("jane@example.com", pw)
	if st := e.mfaStatus(tok); st.Enabled || st.RecoveryCodesLeft != 0 {
		t.Errorf("status before enrolment: %+v", st)
	}

	// Enrolment: a wrong code leaves it pending; the right one turns it on.
	secret, confirmCode, recovery := e.enrol(tok)
	if st := e.mfaStatus(tok); !st.Enabled || st.RecoveryCodesLeft != 10 || st.TOTPPending {
		t.Errorf("status after enrolment: %+v", st)
	}
	e.fail("POST", "/v1/me/mfa/totp", tok, "", 409, "mfa_enabled", "")

	// The password alone now gets a challenge, never a session.
	c := e.challenge("jane@example.com", pw)
	exp, err := time.Parse(time.RFC3339, c.ExpiresAt)
	if err != nil || !slices.Contains(c.Methods, users.MethodTOTP) || !slices.Contains(c.Methods, users.MethodRecoveryCode) ||
		exp.Before(e.clock.Now().Add(4*time.Minute)) || exp.After(e.clock.Now().Add(6*time.Minute)) {
		t.Errorf("challenge %+v, want totp and recovery_code, expiring in 5 minutes", c)
	}
	// The code that confirmed the enrolment is used: refused.
	e.fail("POST", "/v1/auth/login/mfa", "", fmt.Sprintf(`{"challenge":%q,"code":%q}`, c.Token, confirmCode), 401, "invalid_code", "")
	// The next step's code works, once.
	e.clock.Advance(30 * time.Second)
	code := storetest.TOTPCode(t, secret, e.clock.Now())
	s := e.complete(c, code, 200).session(t)
	if s.User.ID != jane.ID {
		t.Errorf("second step logged in %+v", s.User)
	}
	ds := e.devices(s.Token)
	i := slices.IndexFunc(ds, func(d apiDevice) bool { return d.Current })
	if i < 0 || !slices.Equal(ds[i].Methods, []users.AuthMethod{users.MethodPassword, users.MethodTOTP}) || ds[i].SecondFactorAt == "" {
		t.Errorf("devices %+v, want the current one made with password and totp", ds)
	}
	e.fail("POST", "/v1/auth/login/mfa", "", fmt.Sprintf(`{"challenge":%q,"code":%q}`, c.Token, code), 401, "invalid_token", "")
	c2 := e.challenge("jane@example.com", pw)
	e.fail("POST", "/v1/auth/login/mfa", "", fmt.Sprintf(`{"challenge":%q,"code":%q}`, c2.Token, code), 401, "invalid_code", "")

	// Wrong codes kill the challenge: after five, even the right code is
	// refused, and a new login is needed.
	e.clock.Advance(30 * time.Second)
	c3 := e.challenge("jane@example.com", pw)
	bad := storetest.WrongTOTPCode(t, secret, e.clock.Now(), 0)
	for range users.MaxChallengeAttempts {
		e.fail("POST", "/v1/auth/login/mfa", "", fmt.Sprintf(`{"challenge":%q,"code":%q}`, c3.Token, bad), 401, "invalid_code", "")
	}
	e.fail("POST", "/v1/auth/login/mfa", "", fmt.Sprintf(`{"challenge":%q,"code":%q}`, c3.Token, storetest.TOTPCode(t, secret, e.clock.Now())), 401, "invalid_token", "")
	e.fail("POST", "/v1/auth/login/mfa", "", `{"challenge":"`+c3.Token+`"}`, 400, "invalid_request", "code")

	// A recovery code works once, however it is typed.
	c4 := e.challenge("jane@example.com", pw)
	rs := e.complete(c4, recovery[0], 200).session(t)
	c5 := e.challenge("jane@example.com", pw)
	e.fail("POST", "/v1/auth/login/mfa", "", fmt.Sprintf(`{"challenge":%q,"code":%q}`, c5.Token, strings.ToUpper(recovery[0])), 401, "invalid_code", "")
	if st := e.mfaStatus(rs.Token); st.RecoveryCodesLeft != 9 {
		t.Errorf("recovery codes left %d, want 9", st.RecoveryCodesLeft)
	}

	// New recovery codes need a second factor proved within the last 10
	// minutes (freshSecondFactor); the old ones then stop. A literal, so that
	// a longer freshSecondFactor fails here.
	e.clock.Advance(11 * time.Minute)
	e.fail("POST", "/v1/me/mfa/recovery-codes", rs.Token, "", 403, "second_factor_required", "")
	e.fail("POST", "/v1/me/mfa/step-up", rs.Token, `{"code":"`+storetest.WrongTOTPCode(t, secret, e.clock.Now(), 0)+`"}`, 401, "invalid_code", "")
	up := e.call("POST", "/v1/me/mfa/step-up", rs.Token, `{"code":"`+storetest.TOTPCode(t, secret, e.clock.Now())+`"}`, 200)
	var stepped apiDevice
	if err := json.Unmarshal(up.Data, &stepped); err != nil || stepped.SecondFactorAt != timestamp(e.clock.Now()) {
		t.Errorf("step-up answered %s, want second_factor_at now", up.Raw)
	}
	r := e.call("POST", "/v1/me/mfa/recovery-codes", rs.Token, "", 200)
	var fresh recoveryCodes
	if err := json.Unmarshal(r.Data, &fresh); err != nil || len(fresh.RecoveryCodes) != 10 || slices.Contains(fresh.RecoveryCodes, recovery[1]) {
		t.Fatalf("new recovery codes %s", r.Raw)
	}
	c6 := e.challenge("jane@example.com", pw)
	e.fail("POST", "/v1/auth/login/mfa", "", fmt.Sprintf(`{"challenge":%q,"code":%q}`, c6.Token, recovery[1]), 401, "invalid_code", "")
	e.complete(c6, fresh.RecoveryCodes[0], 200)

	// Magic links ask for the second factor too.
	e.call("POST", "/v1/auth/magic-link", "", `{"email":"jane@example.com"}`, 202)
	link := e.mustMail("magic-link", "jane@example.com")
	c7 := challengeOf(t, e.fail("POST", "/v1/auth/magic-link/confirm", "", `{"token":"`+link+`"}`, 401, "mfa_required", ""))
	e.clock.Advance(30 * time.Second)
	e.complete(c7, storetest.TOTPCode(t, secret, e.clock.Now()), 200)

	// An admin resets Jane's second factor only after proving their own.
	e.fail("DELETE", "/v1/users/"+jane.ID+"/mfa", admin, "", 403, "second_factor_required", "")
	// The admin logged in more than ReauthWindow ago: enrolling needs the
	// password again first.
	e.fail("POST", "/v1/me/mfa/totp", admin, "", 403, "reauth_required", "")
	e.call("POST", "/v1/me/reauthenticate", admin, `{"password":"`+adminPassword+`"}`, 200)
	adminSecret, _, _ := e.enrol(admin)
	e.fail("DELETE", "/v1/users/"+jane.ID+"/mfa", admin, "", 403, "second_factor_required", "")
	e.clock.Advance(30 * time.Second)
	e.call("POST", "/v1/me/mfa/step-up", admin, `{"code":"`+storetest.TOTPCode(t, adminSecret, e.clock.Now())+`"}`, 200)
	e.fail("DELETE", "/v1/users/"+jane.ID+"/mfa", rs.Token, "", 403, "forbidden", "")
	e.call("DELETE", "/v1/users/"+jane.ID+"/mfa", admin, "", 200)
	tok = e.login("jane@example.com", pw)
	if st := e.mfaStatus(tok); st.Enabled {
		t.Errorf("after the reset: %+v", st)
	}

	// Disabling one's own needs the password or a code.
	e.clock.Advance(30 * time.Second)
	secret, _, _ = e.enrol(tok)
	e.fail("POST", "/v1/me/mfa/disable", tok, `{}`, 400, "invalid_request", "password")
	e.fail("POST", "/v1/me/mfa/disable", tok, `{"password":"not her password"}`, 401, "invalid_credentials", "")
	e.call("POST", "/v1/me/mfa/disable", tok, `{"password":"`+pw+`"}`, 200)
	e.login("jane@example.com", pw)
	e.fail("POST", "/v1/me/mfa/disable", tok, `{"password":"`+pw+`"}`, 409, "mfa_not_enabled", "")

	// Each step is in Jane's audit log.
	for _, typ := range []users.EventType{users.EventMFAEnabled, users.EventMFAChallenged, users.EventMFAVerified,
		users.EventMFAFailed, users.EventRecoveryCodesGenerated, users.EventMFAReset, users.EventMFADisabled, users.EventMFAStepUp} {
		if p := e.auditLog(admin, jane.ID, "?limit=1&type="+string(typ)); len(p.Entries) != 1 {
			t.Errorf("no %s entry in Jane's log", typ)
		}
	}
	if strings.Contains(mustJSON(e.auditLog(admin, jane.ID, "?limit=500")), secret) {
		t.Error("the audit log holds the TOTP secret")
	}
}

// TestMFANotConfigured: without an MFA key, enrolment answers 501.
func TestMFANotConfigured(t *testing.T) {
	e := newEnv(t, users.NewMemoryStore())
	admin := e.login(adminEmail, adminPassword)
	e.fail("POST", "/v1/me/mfa/totp", admin, "", 501, "mfa_not_configured", "")
	e.fail("GET", "/v1/me/mfa", "", "", 401, "invalid_token", "")
}
