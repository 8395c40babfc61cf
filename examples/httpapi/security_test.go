package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
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

// TestRecoveryAnswersBeforeLookup: the reset and magic-link endpoints answer a
// known and an unknown email alike before anything looks either up. With the
// mail worker held, the two answers are byte for byte the same, and the store
// work done before them is the same (the rate limiter's counting) and has no
// lookup or token write in it; the lookups and the token writes (a real one
// and a decoy: TestSecurity_RecoveryStoreWork at the root says they cost the
// same) come from the worker once it runs. So neither an answer nor its
// timing can depend on who has an account; TestRecoveryTiming (-tags soak)
// measures the timing itself.
func TestRecoveryAnswersBeforeLookup(t *testing.T) {
	rs := &recordingStore{Store: users.NewMemoryStore()}
	e := newEnv(t, rs)
	admin := e.login(adminEmail, adminPassword)
	e.create(admin, `{"name":"Kim","email":"kim@example.com","password":"correct horse battery staple"}`)
	for _, path := range []string{"/v1/auth/password-reset", "/v1/auth/magic-link"} {
		t.Run(strings.TrimPrefix(path, "/v1/auth/"), func(t *testing.T) {
			release := e.holdWorker(t)
			var answers [2]string
			var calls [2][]string
			for i, email := range []string{"kim@example.com", "nobody@example.com"} {
				rs.take()
				answers[i] = e.call("POST", path, "", `{"email":"`+email+`"}`, 202).Raw
				calls[i] = rs.take()
			}
			if answers[0] != answers[1] {
				t.Errorf("a known email answered %s, an unknown one %s", answers[0], answers[1])
			}
			if !slices.Equal(calls[0], calls[1]) {
				t.Errorf("store work before the answer: %q for a known email, %q for an unknown one", calls[0], calls[1])
			}
			for _, c := range calls[0] {
				if c != "UpdateLoginAttempts" {
					t.Errorf("the handler called %s before answering: only the rate limiter may touch the store (calls %q)", c, calls[0])
				}
			}
			release()
			if ms := e.mail(); len(ms) != 1 || ms[0].To != "kim@example.com" {
				t.Errorf("mailed %+v, want one mail to kim@example.com", ms)
			}
			after := rs.take()
			for name, want := range map[string]int{"GetUserByEmail": 2, "CreateToken": 1, "CreateTokenDecoy": 1} {
				if got := count(after, name); got != want {
					t.Errorf("the worker called %s %d times, want %d (calls %q)", name, got, want, after)
				}
			}
		})
	}
}

// holdWorker blocks the mail worker until the returned func is called (or
// the test ends), so that a test sees what the handlers do on their own.
func (e *env) holdWorker(tb testing.TB) (release func()) {
	tb.Helper()
	held, started := make(chan struct{}), make(chan struct{})
	e.srv.enqueue("hold", func(context.Context) {
		close(started)
		<-held
	})
	<-started
	var once sync.Once
	release = func() { once.Do(func() { close(held) }) }
	tb.Cleanup(release)
	return release
}

// recordingStore records the names of the calls that can tell one email from
// another: the lookups by email, the token writes and the throttle's.
type recordingStore struct {
	users.Store
	mu    sync.Mutex
	calls []string
}

func (s *recordingStore) record(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, name)
}

// take returns the calls recorded so far and forgets them.
func (s *recordingStore) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = nil
	return c
}

func (s *recordingStore) GetUserByEmail(ctx context.Context, email string) (*users.UserRecord, error) {
	s.record("GetUserByEmail")
	return s.Store.GetUserByEmail(ctx, email)
}

func (s *recordingStore) GetUsersByEmail(ctx context.Context, emails []string) ([]*users.UserRecord, error) {
	s.record("GetUsersByEmail")
	return s.Store.GetUsersByEmail(ctx, emails)
}

func (s *recordingStore) CreateToken(ctx context.Context, t *users.TokenRecord, replace bool, audit ...*users.AuditEntry) error {
	s.record("CreateToken")
	return s.Store.CreateToken(ctx, t, replace, audit...)
}

func (s *recordingStore) CreateTokenDecoy(ctx context.Context, t *users.TokenRecord, audit ...*users.AuditEntry) error {
	s.record("CreateTokenDecoy")
	return s.Store.CreateTokenDecoy(ctx, t, audit...)
}

func (s *recordingStore) GetLoginAttempts(ctx context.Context, key users.ThrottleKey) (users.LoginAttempts, error) {
	s.record("GetLoginAttempts")
	return s.Store.GetLoginAttempts(ctx, key)
}

func (s *recordingStore) UpdateLoginAttempts(ctx context.Context, key users.ThrottleKey, fn func(a *users.LoginAttempts) error, audit ...*users.AuditEntry) (users.LoginAttempts, error) {
	s.record("UpdateLoginAttempts")
	return s.Store.UpdateLoginAttempts(ctx, key, fn, audit...)
}

func (s *recordingStore) AppendAudit(ctx context.Context, audit ...*users.AuditEntry) error {
	s.record("AppendAudit")
	return s.Store.AppendAudit(ctx, audit...)
}

func count(calls []string, name string) int {
	n := 0
	for _, c := range calls {
		if c == name {
			n++
		}
	}
	return n
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
