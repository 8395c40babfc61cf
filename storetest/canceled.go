package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/userkit/users"
)

// ---- Canceled context ----

// fixture is one of everything a Store keeps.
type fixture struct {
	user     *users.UserRecord
	session  *users.SessionRecord
	token    *users.TokenRecord
	key      users.ThrottleKey
	attempts users.LoginAttempts
	entry    *users.AuditEntry
}

func newFixture(t testing.TB, s users.Store) fixture {
	t.Helper()
	f := fixture{key: "id:fixture", attempts: users.LoginAttempts{Failures: 2, WindowStart: base, ExpiresAt: base.Add(time.Hour)}}
	f.user = addUser(t, s)
	f.session = addSession(t, s, f.user.ID)
	f.token = addToken(t, s, f.user, users.PurposePasswordReset)
	mustUpdateAttempts(t, s, f.key, f.attempts)
	f.entry = entryFor(f.user, users.EventUserCreated)
	must(t, s.AppendAudit(t.Context(), f.entry))
	return f
}

// canceledCalls call every Store method with an already-canceled context, in a
// way that would change the fixture if the call went through.
var canceledCalls = []struct {
	method string
	call   func(ctx context.Context, s users.Store, f fixture) error
}{
	{"CreateUser", func(ctx context.Context, s users.Store, f fixture) error {
		return s.CreateUser(ctx, newUser())
	}},
	{"CreateTokenDecoy", func(ctx context.Context, s users.Store, f fixture) error {
		return s.CreateTokenDecoy(ctx, newToken(f.user, users.PurposeMagicLink), entryFor(f.user, users.EventTokenIssued))
	}},
	{"GetUser", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.GetUser(ctx, f.user.ID)
		return err
	}},
	{"CreateUsers", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.CreateUsers(ctx, []*users.UserRecord{newUser(), newUser()})
		return err
	}},
	{"GetUsers", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.GetUsers(ctx, []string{f.user.ID})
		return err
	}},
	{"GetUsersByEmail", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.GetUsersByEmail(ctx, []string{f.user.Email})
		return err
	}},
	{"GetUserByEmail", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.GetUserByEmail(ctx, f.user.Email)
		return err
	}},
	{"GetUserByUsername", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.GetUserByUsername(ctx, f.user.Username)
		return err
	}},
	{"UpdateUser", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.UpdateUser(ctx, f.user.ID, func(r *users.UserRecord) (users.Revoke, error) {
			r.FirstName = "Changed"
			r.Email = "changed@example.com"
			return users.Revoke{Sessions: true, Tokens: users.Purposes()}, nil
		})
		return err
	}},
	{"DeleteUser", func(ctx context.Context, s users.Store, f fixture) error {
		return s.DeleteUser(ctx, f.user.ID)
	}},
	{"ListUsers", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.ListUsers(ctx, users.ListQuery{Limit: 10})
		return err
	}},
	{"CountUsers", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.CountUsers(ctx, users.Match{})
		return err
	}},
	{"CreateSession", func(ctx context.Context, s users.Store, f fixture) error {
		return s.CreateSession(ctx, newSession(f.user))
	}},
	{"GetSession", func(ctx context.Context, s users.Store, f fixture) error {
		_, _, err := getSession(ctx, s, f.session.TokenHash)
		return err
	}},
	{"TouchSession", func(ctx context.Context, s users.Store, f fixture) error {
		return s.TouchSession(ctx, f.session.TokenHash, base.Add(time.Hour))
	}},
	{"DeleteSession", func(ctx context.Context, s users.Store, f fixture) error {
		return s.DeleteSession(ctx, f.session.TokenHash)
	}},
	{"DeleteSessionByID", func(ctx context.Context, s users.Store, f fixture) error {
		return s.DeleteSessionByID(ctx, f.user.ID, f.session.ID)
	}},
	{"DeleteUserSessions", func(ctx context.Context, s users.Store, f fixture) error {
		return s.DeleteUserSessions(ctx, f.user.ID)
	}},
	{"ListSessions", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.ListSessions(ctx, f.user.ID)
		return err
	}},
	{"GetLoginAttempts", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.GetLoginAttempts(ctx, f.key)
		return err
	}},
	{"UpdateLoginAttempts", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.UpdateLoginAttempts(ctx, f.key, func(a *users.LoginAttempts) error {
			a.Failures++
			return nil
		})
		return err
	}},
	{"CreateToken", func(ctx context.Context, s users.Store, f fixture) error {
		return s.CreateToken(ctx, newToken(f.user, f.token.Purpose), true)
	}},
	{"GetToken", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.GetToken(ctx, f.token.Hash, f.token.Purpose)
		return err
	}},
	{"ConsumeToken", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.ConsumeToken(ctx, f.token.Hash, f.token.Purpose)
		return err
	}},
	{"DeleteExpired", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.DeleteExpired(ctx, base.Add(24*time.Hour))
		return err
	}},
	{"DeleteOtherSessions", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.DeleteOtherSessions(ctx, f.user.ID, "", entryFor(f.user, users.EventSessionsRevoked))
		return err
	}},
	{"AppendAudit", func(ctx context.Context, s users.Store, f fixture) error {
		return s.AppendAudit(ctx, entryFor(f.user, users.EventLoginFailed))
	}},
	{"ListAudit", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.ListAudit(ctx, users.AuditQuery{Limit: 10})
		return err
	}},
	{"DeleteAuditBefore", func(ctx context.Context, s users.Store, f fixture) error {
		_, err := s.DeleteAuditBefore(ctx, time.Now().Add(time.Hour))
		return err
	}},
}

func testCanceled(t *testing.T, s users.Store, method string, call func(context.Context, users.Store, fixture) error) {
	f := newFixture(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := call(ctx, s, f)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%s with a canceled context must return an error matching context.Canceled: got %v", method, err)
	}

	rule := method + " with a canceled context must change nothing"
	wantUser(t, s, f.user, rule)
	if n, err := s.CountUsers(t.Context(), users.Match{}); err != nil || n != 1 {
		t.Errorf("%s: CountUsers = %d, %v; want 1", rule, n, err)
	}
	wantSessions(t, s, f.user.ID, []*users.SessionRecord{f.session}, rule)
	wantToken(t, s, f.token, rule)
	wantAttempts(t, s, f.key, f.attempts, rule)
	if es := allEntries(t, s); len(es) != 1 || es[0].ID != f.entry.ID {
		t.Errorf("%s: the audit log holds %s, want just the fixture's entry", rule, showEntries(es))
	}
	// Nothing was added either: the fixture's session, token and throttle entry
	// are the only records DeleteExpired finds.
	if n, err := s.DeleteExpired(t.Context(), base.Add(24*time.Hour)); err != nil || n != 3 {
		t.Errorf("%s: DeleteExpired then deleted %d, %v; want 3 (the fixture's session, token and throttle entry)", rule, n, err)
	}
}

// canceledGroups has one rule per Store method, made from canceledCalls.
var canceledGroups = func() []storeGroup {
	var rules []rule[users.Store]
	for _, c := range canceledCalls {
		rules = append(rules, rule[users.Store]{
			name:        c.method,
			explanation: c.method + " called with a canceled context must return an error matching context.Canceled and change nothing",
			fn: func(t *testing.T, s users.Store, _ string) {
				testCanceled(t, s, c.method, c.call)
			},
		})
	}
	return []storeGroup{{"CanceledContext", rules}}
}()
