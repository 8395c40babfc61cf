package main

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"slices"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// loginFrom logs in with a User-Agent and an X-Forwarded-For header.
func (e *env) loginFrom(email, password, agent, forwarded string) string {
	e.tb.Helper()
	h := map[string]string{"User-Agent": agent}
	if forwarded != "" {
		h["X-Forwarded-For"] = forwarded
	}
	return e.do("POST", "/v1/auth/login", "", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password), h, 200).session(e.tb).Token
}

func (e *env) devices(token string) []apiDevice {
	e.tb.Helper()
	r := e.call("GET", "/v1/me/sessions", token, "", 200)
	var ds []apiDevice
	if err := json.Unmarshal(r.Data, &ds); err != nil || ds == nil {
		e.tb.Fatalf("data is not a list of devices: %v; body %s", err, r.Raw)
	}
	return ds
}

// TestClientIP: the address recorded for a request is the connection's, and
// X-Forwarded-For counts only when the connection comes from a trusted proxy;
// then the rightmost address the proxies did not add is the client's.
func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tt := range []struct {
		remote, xff string
		trust       bool
		want        string
	}{
		{"192.0.2.1:5000", "", false, "192.0.2.1"},
		{"192.0.2.1:5000", "203.0.113.7", false, "192.0.2.1"}, // a client's own header
		{"192.0.2.1:5000", "203.0.113.7", true, "192.0.2.1"},  // not from a proxy
		{"10.1.2.3:5000", "203.0.113.7", true, "203.0.113.7"},
		{"10.1.2.3:5000", "203.0.113.7", false, "10.1.2.3"},
		{"10.1.2.3:5000", "198.51.100.1, 203.0.113.7, 10.9.9.9", true, "203.0.113.7"}, // forged left part ignored
		{"10.1.2.3:5000", "10.0.0.5", true, "10.0.0.5"},                               // proxies all the way
		{"10.1.2.3:5000", "203.0.113.7, junk", true, "10.1.2.3"},                      // malformed: stop at what is known
		{"[::1]:5000", "2001:db8::7", true, "2001:db8::7"},
		{"[::ffff:192.0.2.1]:5000", "", false, "192.0.2.1"},
	} {
		s := &Server{}
		if tt.trust {
			s.TrustedProxies = proxies
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := s.clientIP(r); got != tt.want {
			t.Errorf("RemoteAddr %s, X-Forwarded-For %q, trusted %v: %q, want %q", tt.remote, tt.xff, tt.trust, got, tt.want)
		}
	}
}

// TestDevices: a session shows the device it logged in from (the User-Agent
// and, since the test server is not behind a trusted proxy, the connection's
// address and not the forged X-Forwarded-For), the current one is marked, one
// can be ended, and revoke-others ends all but the current one.
func TestDevices(t *testing.T) {
	e := newEnv(t, users.NewMemoryStore())
	admin := e.login(adminEmail, adminPassword)
	const pw = storetest.Password
	jane := e.create(admin, `{"name":"Jane","email":"jane@example.com","password":"`+pw+`"}`)

	phone := e.loginFrom("jane@example.com", pw, "Phone/1.0", "203.0.113.7")
	laptop := e.loginFrom("jane@example.com", pw, "Laptop/2.0", "")
	ds := e.devices(laptop)
	if len(ds) != 2 {
		t.Fatalf("devices %+v, want 2", ds)
	}
	byAgent := map[string]apiDevice{}
	for _, d := range ds {
		byAgent[d.UserAgent] = d
		if d.IP != "127.0.0.1" {
			t.Errorf("device %s has IP %q, want the connection's 127.0.0.1 (X-Forwarded-For is not trusted)", d.UserAgent, d.IP)
		}
		if d.CreatedAt == "" || d.LastSeenAt == "" || d.ExpiresAt == "" || !slices.Equal(d.Methods, []users.AuthMethod{users.MethodPassword}) {
			t.Errorf("device %+v lacks times or methods", d)
		}
	}
	if !byAgent["Laptop/2.0"].Current || byAgent["Phone/1.0"].Current {
		t.Errorf("current marks: %+v, want only the laptop's", ds)
	}
	if got := e.devices(phone); !slices.ContainsFunc(got, func(d apiDevice) bool { return d.Current && d.UserAgent == "Phone/1.0" }) {
		t.Errorf("from the phone: %+v, want the phone marked current", got)
	}

	// The login's audit entry has the same client.
	p := e.auditLog(admin, jane.ID, "?type=login.succeeded")
	if len(p.Entries) != 2 || p.Entries[0].UserAgent != "Laptop/2.0" || p.Entries[0].IP != "127.0.0.1" ||
		p.Entries[0].SessionID != byAgent["Laptop/2.0"].ID || p.Entries[1].UserAgent != "Phone/1.0" {
		t.Errorf("login entries %s, want the laptop's then the phone's, with their client", mustJSON(p.Entries))
	}

	// Someone else's session and an unknown one are not found; the
	// admin's session lives on.
	adminID := e.devices(admin)[0].ID
	e.fail("DELETE", "/v1/me/sessions/"+adminID, laptop, "", 404, "not_found", "")
	e.fail("DELETE", "/v1/me/sessions/01ARZ3NDEKTSV4RRFFQ69G5FAV", laptop, "", 404, "not_found", "")
	e.call("GET", "/v1/me", admin, "", 200)

	e.call("DELETE", "/v1/me/sessions/"+byAgent["Phone/1.0"].ID, laptop, "", 200)
	e.fail("GET", "/v1/me", phone, "", 401, "invalid_token", "")
	if got := e.devices(laptop); len(got) != 1 || !got[0].Current {
		t.Errorf("after ending the phone's: %+v", got)
	}

	// Revoke-others keeps the current session only.
	other1 := e.loginFrom("jane@example.com", pw, "Tablet/3.0", "")
	other2 := e.loginFrom("jane@example.com", pw, "Desktop/4.0", "")
	r := e.call("POST", "/v1/me/sessions/revoke-others", laptop, "", 200)
	if string(r.Data) != `{"revoked":2}` {
		t.Errorf("revoke-others answered %s, want 2 revoked", r.Raw)
	}
	e.fail("GET", "/v1/me", other1, "", 401, "invalid_token", "")
	e.fail("GET", "/v1/me", other2, "", 401, "invalid_token", "")
	e.call("GET", "/v1/me", laptop, "", 200)
	if got := e.devices(laptop); len(got) != 1 || !got[0].Current || got[0].UserAgent != "Laptop/2.0" {
		t.Errorf("after revoke-others: %+v, want the laptop alone", got)
	}
	p = e.auditLog(admin, jane.ID, "?type=session.revoked_all")
	if len(p.Entries) != 1 || p.Entries[0].ActorID != jane.ID || p.Entries[0].Data["kept"] != byAgent["Laptop/2.0"].ID {
		t.Errorf("revoke-others entries %s, want one by Jane keeping the laptop", mustJSON(p.Entries))
	}
	e.fail("GET", "/v1/me/sessions", "", "", 401, "invalid_token", "")
	e.fail("POST", "/v1/me/sessions/revoke-others", "", "", 401, "invalid_token", "")
}

// TestDevicesBehindProxy: with the connection's address among TrustedProxies,
// the client's address is the one the proxy appended to X-Forwarded-For.
func TestDevicesBehindProxy(t *testing.T) {
	e := newEnv(t, users.NewMemoryStore(), func(s *Server) {
		s.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	tok := e.loginFrom(adminEmail, adminPassword, "Browser/5.0", "198.51.100.1, 203.0.113.7")
	if ds := e.devices(tok); len(ds) != 1 || ds[0].IP != "203.0.113.7" || ds[0].UserAgent != "Browser/5.0" {
		t.Errorf("devices %+v, want 203.0.113.7, the address the trusted proxy appended", ds)
	}
}
