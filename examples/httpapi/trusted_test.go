package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// TestRememberAndTrust checks the API's part of remember me and trusted
// devices: "remember" gives a session that lasts the remembered 30 days, on
// the password login and on the second step; "trust_device" at the second
// step answers a device token that the next login presents to skip the
// second step (a login without it is asked); the device is listed, another
// user cannot forget it, and once its user forgets it it skips nothing.
func TestRememberAndTrust(t *testing.T) {
	e := newEnvOpts(t, users.NewMemoryStore(), users.Options{MFAKeys: []users.MFAKey{storetest.MFAKey}, TrustDevices: true})
	admin := e.login(adminEmail, adminPassword)
	const pw = storetest.Password
	e.create(admin, `{"name":"Jane","email":"jane@example.com","password":"`+pw+`"}`)
	e.create(admin, `{"name":"Joe","email":"joe@example.com","password":"`+pw+`"}`)

	r := e.call("POST", "/v1/auth/login", "", `{"email":"joe@example.com","password":"`+pw+`","remember":true}`, 200)
	var joe apiSession
	if err := json.Unmarshal(r.Data, &joe); err != nil {
		t.Fatal(err)
	}
	if want := timestamp(e.clock.Now().Add(users.DefaultRememberSessionTTL)); joe.ExpiresAt != want {
		t.Errorf("remembered login: expires_at %s, want %s", joe.ExpiresAt, want)
	}

	secret, _, _ := e.enrol(e.login("jane@example.com", pw))
	e.clock.Advance(30 * time.Second)
	c := e.challenge("jane@example.com", pw)
	r = e.call("POST", "/v1/auth/login/mfa", "", fmt.Sprintf(`{"challenge":%q,"code":%q,"remember":true,"trust_device":true}`,
		c.Token, storetest.TOTPCode(t, secret, e.clock.Now())), 200)
	var jane apiSession
	if err := json.Unmarshal(r.Data, &jane); err != nil {
		t.Fatal(err)
	}
	if want := timestamp(e.clock.Now().Add(users.DefaultRememberSessionTTL)); jane.ExpiresAt != want {
		t.Errorf("remembered second step: expires_at %s, want %s", jane.ExpiresAt, want)
	}
	if jane.DeviceToken == "" || jane.DeviceExpiresAt != timestamp(e.clock.Now().Add(users.DefaultTrustedDeviceTTL)) {
		t.Fatalf("second step with trust_device answered %s, want a device token for 30 days", r.Raw)
	}
	login := func(email, device string, status int) *response {
		t.Helper()
		return e.call("POST", "/v1/auth/login", "", fmt.Sprintf(`{"email":%q,"password":%q,"device_token":%q}`, email, pw, device), status)
	}
	login("jane@example.com", jane.DeviceToken, 200)
	e.fail("POST", "/v1/auth/login", "", `{"email":"jane@example.com","password":"`+pw+`"}`, 401, "mfa_required", "")

	var devices []apiTrustedDevice
	if err := json.Unmarshal(e.call("GET", "/v1/me/trusted-devices", jane.Token, "", 200).Data, &devices); err != nil || len(devices) != 1 {
		t.Fatalf("trusted devices = %+v, %v; want one", devices, err)
	}
	e.fail("DELETE", "/v1/me/trusted-devices/"+devices[0].ID, joe.Token, "", 404, users.CodeNotFound, "")
	login("jane@example.com", jane.DeviceToken, 200)
	e.call("DELETE", "/v1/me/trusted-devices/"+devices[0].ID, jane.Token, "", 200)
	login("jane@example.com", jane.DeviceToken, 401)
}
