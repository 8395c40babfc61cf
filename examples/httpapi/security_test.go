package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// TestEmailChange: a user changes their own email only with their password and
// a link mailed to the new address, and the API never answers 409 to tell the
// caller that an address has an account.
func TestEmailChange(t *testing.T) {
	e := newEnv(t, users.NewMemoryStore())
	admin := e.login(adminEmail, adminPassword)
	const pw = storetest.Password
	bob := e.create(admin, `{"name":"Bob","email":"bob@example.com","password":"`+pw+`"}`)
	e.create(admin, `{"name":"Jane","email":"jane@example.com","password":"`+pw+`"}`)
	tok := e.login("bob@example.com", pw)

	// PATCH cannot change one's own email: no password, and a 409 would probe.
	e.fail("PATCH", "/v1/users/"+bob.ID, tok, `{"email":"jane@example.com"}`, 400, "invalid_request", "email")
	e.fail("PATCH", "/v1/users/"+bob.ID, tok, `{"email":"bob2@example.com"}`, 400, "invalid_request", "email")
	e.fail("POST", "/v1/me/email", tok, `{"email":"bob2@example.com"}`, 400, "invalid_request", "current_password")
	e.fail("POST", "/v1/me/email", tok, `{"email":"bob2@example.com","current_password":"wrong password!"}`, 401, "invalid_credentials", "")
	e.fail("POST", "/v1/me/email", tok, `{"email":"b\u212aob@example.com","current_password":"`+pw+`"}`, 400, "invalid_request", "email")
	if ms := e.mail(); len(ms) != 0 {
		t.Fatalf("mailed %+v after refused requests", ms)
	}

	// A taken address and a free one get the same answer.
	taken := e.call("POST", "/v1/me/email", tok, `{"email":"JANE@example.com","current_password":"`+pw+`"}`, 202)
	takenTok := e.mustMail("email-change", "jane@example.com")
	free := e.call("POST", "/v1/me/email", tok, `{"email":"bob2@example.com","current_password":"`+pw+`"}`, 202)
	freeTok := e.mustMail("email-change", "bob2@example.com")
	if taken.Raw != free.Raw {
		t.Errorf("a taken address answered %s, a free one %s: they must not differ", taken.Raw, free.Raw)
	}
	if got := e.call("GET", "/v1/me", tok, "", 200).user(t).Email; got != "bob@example.com" {
		t.Errorf("email is %q before the link was followed, want it unchanged", got)
	}

	// The conflict shows only to whoever reads the new address's mail. The
	// later request voided the earlier token.
	e.fail("POST", "/v1/auth/email-change/confirm", "", `{"token":"`+takenTok+`"}`, 401, "invalid_token", "")
	u := e.call("POST", "/v1/auth/email-change/confirm", "", `{"token":"`+freeTok+`"}`, 200).user(t)
	if u.Email != "bob2@example.com" || !u.EmailVerified {
		t.Errorf("after the confirmation: %+v, want bob2@example.com, verified", u)
	}
	e.fail("POST", "/v1/auth/email-change/confirm", "", `{"token":"`+freeTok+`"}`, 401, "invalid_token", "")

	e.call("POST", "/v1/me/email", tok, `{"email":"jane@example.com","current_password":"`+pw+`"}`, 202)
	takenTok = e.mustMail("email-change", "jane@example.com")
	e.fail("POST", "/v1/auth/email-change/confirm", "", `{"token":"`+takenTok+`"}`, 409, "duplicate_email", "")

	// Admins still change other users' emails directly.
	e.call("PATCH", "/v1/users/"+bob.ID, admin, `{"email":"bob3@example.com"}`, 200)
}

// TestLockEndpoints: admins see why a user cannot log in and end the lock.
func TestLockEndpoints(t *testing.T) {
	e := newEnv(t, users.NewMemoryStore())
	admin := e.login(adminEmail, adminPassword)
	const pw = storetest.Password
	bob := e.create(admin, `{"name":"Bob","email":"bob@example.com","password":"`+pw+`"}`)
	for range 10 {
		e.fail("POST", "/v1/auth/login", "", `{"email":"bob@example.com","password":"wrong password!"}`, 401, "invalid_credentials", "")
	}
	e.fail("POST", "/v1/auth/login", "", `{"email":"bob@example.com","password":"`+pw+`"}`, 429, "account_locked", "")
	var st users.LockState
	if err := json.Unmarshal(e.call("GET", "/v1/users/"+bob.ID+"/lock", admin, "", 200).Data, &st); err != nil {
		t.Fatal(err)
	}
	if !st.Locked || st.ConsecutiveFailures != 10 || st.LockedUntil.IsZero() {
		t.Errorf("lock state %+v; want locked after 10 failures, with an end", st)
	}
	tok := e.login(adminEmail, adminPassword)
	e.call("DELETE", "/v1/users/"+bob.ID+"/lock", tok, "", 200)
	bobTok := e.login("bob@example.com", pw)
	e.fail("GET", "/v1/users/"+bob.ID+"/lock", bobTok, "", 403, "forbidden", "")
	e.fail("DELETE", "/v1/users/"+bob.ID+"/lock", bobTok, "", 403, "forbidden", "")
	e.fail("DELETE", "/v1/users/01ARZ3NDEKTSV4RRFFQ69G5FAV/lock", admin, "", 404, "not_found", "")
}

// TestRecoveryTiming: the reset and magic-link endpoints answer a known and an
// unknown email in the same time, and a request right after one of each is
// answered in the same time too (the token write of a known email happens in
// the mail worker, away from the answers). Ratios of medians over interleaved
// requests, on a bbolt store whose writes are real. The band is narrow (0.95 to
// 1.05) because the leak it guards against was small: 1.10 to 1.17 here before
// the worker queue (1.25 to 1.41 when first reported).
func TestRecoveryTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test skipped in -short mode")
	}
	store, err := users.OpenBoltStore(filepath.Join(t.TempDir(), "users.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	// The limits off: thousands of requests from one client, and the
	// limiter's work comes before the email is looked up, the same for any.
	off := users.RateLimit{PerClient: -1, PerIdentifier: -1}
	e := newEnvOpts(t, store, users.Options{RateLimits: map[users.RateAction]users.RateLimit{
		users.ActionPasswordReset: off, users.ActionMagicLink: off,
	}})
	admin := e.login(adminEmail, adminPassword)
	e.create(admin, `{"name":"Kim","email":"kim@example.com","password":"correct horse battery staple"}`)

	post := func(path, email string) time.Duration {
		req, _ := http.NewRequest("POST", e.ts.URL+path, strings.NewReader(`{"email":"`+email+`"}`))
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		res, err := e.ts.Client().Do(req)
		d := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 202 {
			t.Fatalf("POST %s: %d", path, res.StatusCode)
		}
		return d
	}
	median := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	for _, path := range []string{"/v1/auth/password-reset", "/v1/auth/magic-link"} {
		t.Run(strings.TrimPrefix(path, "/v1/auth/"), func(t *testing.T) {
			// Pass in any of several attempts: load on a shared machine moves a
			// ratio of medians by a few percent for seconds at a time, while the
			// defect this guards against (1.10-1.17 on the code before issue 9)
			// is off in every attempt.
			const samples, attempts = 600, 6
			for a := range attempts {
				var answer, next [2][]time.Duration // [known, unknown]
				for i := range samples {
					for k := range 2 {
						c := (i + k) % 2 // alternate which goes first
						email := "kim@example.com"
						if c == 1 {
							email = fmt.Sprintf("nobody%d@example.com", i)
						}
						answer[c] = append(answer[c], post(path, email))
						next[c] = append(next[c], post(path, "follow-up@example.com"))
					}
				}
				e.mail() // wait for the worker
				ra := float64(median(answer[0])) / float64(median(answer[1]))
				rn := float64(median(next[0])) / float64(median(next[1]))
				t.Logf("attempt %d: known/unknown answer %.3f (medians %v, %v), follow-up %.3f (%v, %v), %d samples each",
					a+1, ra, median(answer[0]), median(answer[1]), rn, median(next[0]), median(next[1]), samples)
				if ra >= 0.95 && ra <= 1.05 && rn >= 0.95 && rn <= 1.05 {
					return
				}
				if a == attempts-1 {
					t.Errorf("known vs unknown email: answer ratio %.3f, follow-up ratio %.3f; want both within 0.95-1.05 (in any of %d attempts)", ra, rn, attempts)
				}
			}
		})
	}
}

// TestStolenSessionCannotEnrolTOTP is the attack of issue 20, item 9, over
// HTTP: with only a session token taken from its owner, POST /v1/me/mfa/totp
// enrolled the attacker's authenticator. Once the session's last proof is
// older than the library's ReauthWindow, every route that changes a factor,
// the password or the email answers 403 reauth_required and changes nothing;
// a wrong password at POST /v1/me/reauthenticate does not help; the owner's
// password does, for this session.
func TestStolenSessionCannotEnrolTOTP(t *testing.T) {
	e := newMFAEnv(t)
	admin := e.login(adminEmail, adminPassword)
	const pw = storetest.Password
	jane := e.create(admin, `{"name":"Jane","email":"jane@example.com","password":"`+pw+`"}`)
	stolen := e.login("jane@example.com", pw)
	e.clock.Advance(users.DefaultReauthWindow + time.Second)

	e.fail("POST", "/v1/me/mfa/totp", stolen, "", 403, "reauth_required", "")
	e.fail("POST", "/v1/me/mfa/totp/confirm", stolen, `{"code":"123456"}`, 403, "reauth_required", "")
	e.fail("PUT", "/v1/me/password", stolen, `{"current_password":"`+pw+`","new_password":"attacker's own password","confirm_password":"attacker's own password"}`, 403, "reauth_required", "")
	e.fail("POST", "/v1/me/email", stolen, `{"current_password":"`+pw+`","email":"attacker@example.com"}`, 403, "reauth_required", "")
	e.fail("PATCH", "/v1/users/"+jane.ID, admin, `{"email":"attacker@example.com"}`, 403, "reauth_required", "")
	e.fail("PUT", "/v1/users/"+jane.ID+"/password", admin, `{"new_password":"attacker's own password","confirm_password":"attacker's own password"}`, 403, "reauth_required", "")
	if st := e.mfaStatus(stolen); st.Enabled || st.TOTPPending {
		t.Errorf("after the refused enrolment: %+v, want nothing enrolled or pending", st)
	}
	if len(e.mail()) != 0 {
		t.Error("a refused email change mailed something")
	}
	e.login("jane@example.com", pw) // her password still works: nothing changed

	e.fail("POST", "/v1/me/reauthenticate", stolen, `{"password":"a guess"}`, 401, "invalid_credentials", "")
	e.fail("POST", "/v1/me/reauthenticate", stolen, `{}`, 400, "invalid_request", "password")
	e.fail("POST", "/v1/me/mfa/totp", stolen, "", 403, "reauth_required", "")
	r := e.call("POST", "/v1/me/reauthenticate", stolen, `{"password":"`+pw+`"}`, 200)
	var d apiDevice
	if err := json.Unmarshal(r.Data, &d); err != nil || d.AuthenticatedAt != timestamp(e.clock.Now()) || !d.Current {
		t.Errorf("reauthenticate answered %s, want the current session with authenticated_at now", r.Raw)
	}
	e.enrol(stolen)
}
