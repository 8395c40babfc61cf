package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userkit/users"
)

// The Manager's audit rules: every method that changes state, and every
// outcome of an authentication, writes exactly its entries, atomically with
// the change (through the store), and Options.OnEvent sees the same entries
// after their commit, in the order they committed.

// auditClient is the client every audited call is made from.
var auditClient = users.Client{IP: "203.0.113.9", UserAgent: "storetest-agent/1.0"}

// auditState is what a case's setup prepares and its call uses.
type auditState struct {
	u       *users.User    // the subject of the entries
	token   string         // a one-time or session token for the call
	sess    *users.Session // a session of u
	other   *users.Session // another session of u
	session string         // the session ID the call's session entries name
	secrets []string       // what no entry may contain
}

// auditWant is one entry a case expects.
type auditWant struct {
	typ     users.EventType
	nobody  bool // UserID is empty (a login failure of an identifier that names nobody)
	reason  string
	purpose users.Purpose
	session bool     // SessionID is auditState.session
	fields  []string // Fields, when not nil
}

type auditCase struct {
	name  string
	opts  func(o *users.Options)
	setup func(t *testing.T, f *Fixture, st *auditState)
	call  func(ctx context.Context, f *Fixture, st *auditState) error
	fails bool // the call returns an error (and still records what it says)
	want  []auditWant
}

// hookRecorder is an Options.OnEvent that keeps what it is given and whether
// the store already held each entry when the hook saw it.
type hookRecorder struct {
	store  users.Store
	mu     sync.Mutex
	events []users.AuditEntry
	unseen []string // IDs of entries the store did not hold yet
}

func (h *hookRecorder) onEvent(ctx context.Context, e users.AuditEntry) {
	got, err := h.store.ListAudit(context.Background(), users.AuditQuery{Until: e.Time.Add(time.Millisecond), Before: e.ID + "0", Limit: 1})
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil || len(got) == 0 || got[0].ID != e.ID {
		h.unseen = append(h.unseen, e.ID)
	}
	h.events = append(h.events, e)
}

func (h *hookRecorder) snapshot() ([]users.AuditEntry, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events), slices.Clone(h.unseen)
}

var mgrAuditCases = []auditCase{
	{name: "Create", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		u, err := f.M.Create(ctx, users.NewUser{Email: f.Email(), Password: Password})
		if err == nil {
			st.u = u
		}
		return err
	}, want: []auditWant{{typ: users.EventUserCreated}}},
	{name: "CreateDuplicate", fails: true, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		_, err := f.M.Create(ctx, users.NewUser{Email: st.u.Email, Password: Password})
		return err
	}},
	{name: "Import", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		rs, err := f.M.Import(ctx, []users.NewUser{{Email: f.Email(), Password: Password}, {Email: st.u.Email, Password: Password}})
		if err == nil && rs[0].User != nil {
			st.u = rs[0].User
		}
		return err
	}, want: []auditWant{{typ: users.EventUserCreated}}},
	{name: "UpdateName", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		name := "Grace"
		_, err := f.M.Update(ctx, st.u.ID, users.UserUpdate{FirstName: &name})
		return err
	}, want: []auditWant{{typ: users.EventUserUpdated, fields: []string{"first_name"}}}},
	{name: "UpdateSeveral", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		name, role := "Grace", users.RoleAdmin
		_, err := f.M.Update(ctx, st.u.ID, users.UserUpdate{FirstName: &name, Role: &role})
		return err
	}, want: []auditWant{{typ: users.EventUserUpdated, fields: []string{"first_name", "role"}}}},
	{name: "UpdateRole", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		_, err := f.M.UpdateRole(ctx, st.u.ID, users.RoleViewer)
		return err
	}, want: []auditWant{{typ: users.EventRoleChanged, fields: []string{"role"}}}},
	{name: "UpdateStatus", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		s := users.StatusSuspended
		_, err := f.M.Update(ctx, st.u.ID, users.UserUpdate{Status: &s})
		return err
	}, want: []auditWant{{typ: users.EventStatusChanged, fields: []string{"status"}}}},
	{name: "UpdateEmail", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		e := f.Email()
		_, err := f.M.Update(ctx, st.u.ID, users.UserUpdate{Email: &e})
		return err
	}, want: []auditWant{{typ: users.EventEmailChanged, fields: []string{"email"}}}},
	{name: "UpdateMissingUser", fails: true, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		name := "Grace"
		_, err := f.M.Update(ctx, "01ARZ3NDEKTSV4RRFFQ69G5FAV", users.UserUpdate{FirstName: &name})
		return err
	}},
	{name: "UpdatePassword", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		return f.M.UpdatePassword(ctx, st.u.ID, Password, NewPassword)
	}, want: []auditWant{{typ: users.EventPasswordChanged}}},
	{name: "UpdatePasswordWrongOld", fails: true, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		return f.M.UpdatePassword(ctx, st.u.ID, "not the password at all", NewPassword)
	}, want: []auditWant{{typ: users.EventLoginFailed, reason: "wrong_password"}}},
	{name: "SetPassword", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		return f.M.SetPassword(ctx, st.u.ID, NewPassword)
	}, want: []auditWant{{typ: users.EventPasswordChanged}}},
	{name: "Remove", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		return f.M.Remove(ctx, st.u.ID)
	}, want: []auditWant{{typ: users.EventUserRemoved}}},
	{name: "Login", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		s, err := f.M.Login(ctx, st.u.Email, Password)
		if err == nil {
			st.session = s.ID
			st.secrets = append(st.secrets, s.Token)
		}
		return err
	}, want: []auditWant{{typ: users.EventLoginSucceeded, session: true}}},
	{name: "LoginWrongPassword", fails: true, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		_, err := f.M.Login(ctx, st.u.Email, "not the password at all")
		return err
	}, want: []auditWant{{typ: users.EventLoginFailed, reason: "wrong_password"}}},
	{name: "LoginThatLocks", fails: true, opts: func(o *users.Options) { o.MaxFailedLogins = 3 },
		setup: func(t *testing.T, f *Fixture, st *auditState) {
			for range 2 {
				f.M.Login(t.Context(), st.u.Email, "not the password at all")
			}
		},
		call: func(ctx context.Context, f *Fixture, st *auditState) error {
			_, err := f.M.Login(ctx, st.u.Email, "not the password at all")
			return err
		}, want: []auditWant{{typ: users.EventAccountLocked, reason: "too_many_failures"}, {typ: users.EventLoginFailed, reason: "wrong_password"}}},
	{name: "LoginWhileLocked", fails: true, opts: func(o *users.Options) { o.MaxFailedLogins = 1 },
		setup: func(t *testing.T, f *Fixture, st *auditState) {
			f.M.Login(t.Context(), st.u.Email, "not the password at all")
		},
		call: func(ctx context.Context, f *Fixture, st *auditState) error {
			_, err := f.M.Login(ctx, st.u.Email, Password)
			return err
		}}, // refused without a comparison and without an entry: the lock's entry stands for it
	{name: "LoginUnknownIdentifier", fails: true, setup: func(t *testing.T, f *Fixture, st *auditState) {
		st.secrets = append(st.secrets, "nobody-here@example.com", "nobody-here")
	}, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		_, err := f.M.Login(ctx, "Nobody-Here@example.com", "a secret password typed")
		return err
	}, want: []auditWant{{typ: users.EventLoginFailed, nobody: true, reason: "unknown_identifier"}}},
	{name: "LoginUnknownIdentifierAgain", fails: true, setup: func(t *testing.T, f *Fixture, st *auditState) {
		f.M.Login(t.Context(), "nobody-here@example.com", "a secret password typed")
	}, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		_, err := f.M.Login(ctx, "nobody-here@example.com", "a secret password typed")
		return err
	}}, // counted, not recorded: only the first failure of a window is
	{name: "LoginDisabled", fails: true, setup: func(t *testing.T, f *Fixture, st *auditState) {
		s := users.StatusInactive
		_, err := f.M.Update(t.Context(), st.u.ID, users.UserUpdate{Status: &s})
		must(t, err)
	}, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		_, err := f.M.Login(ctx, st.u.Email, Password)
		return err
	}, want: []auditWant{{typ: users.EventLoginFailed, reason: "account_disabled"}}},
	{name: "LoginEmailNotVerified", fails: true, opts: func(o *users.Options) { o.RequireVerifiedEmail = true },
		setup: func(t *testing.T, f *Fixture, st *auditState) { st.u = f.user(t) },
		call: func(ctx context.Context, f *Fixture, st *auditState) error {
			_, err := f.M.Login(ctx, st.u.Email, Password)
			return err
		}, want: []auditWant{{typ: users.EventLoginFailed, reason: "email_not_verified"}}},
	{name: "ValidateToken", setup: func(t *testing.T, f *Fixture, st *auditState) {
		f.Clock.Advance(time.Hour) // the touch is due
	}, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		_, err := f.M.ValidateToken(ctx, st.sess.Token)
		return err
	}}, // a read; its touch moves LastActiveAt and records nothing
	{name: "Logout", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		st.session = st.sess.ID
		return f.M.Logout(ctx, st.sess.Token)
	}, want: []auditWant{{typ: users.EventLogout, session: true}}},
	{name: "LogoutUnknownToken", fails: true, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		return f.M.Logout(ctx, strings.Repeat("A", 43))
	}},
	{name: "LogoutAll", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		return f.M.LogoutAll(ctx, st.u.ID)
	}, want: []auditWant{{typ: users.EventSessionsRevoked}}},
	{name: "RevokeSession", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		st.session = st.other.ID
		return f.M.RevokeSession(ctx, st.u.ID, st.other.ID)
	}, want: []auditWant{{typ: users.EventSessionRevoked, session: true}}},
	{name: "RevokeOtherSessions", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		n, err := f.M.RevokeOtherSessions(ctx, st.u.ID, st.sess.ID)
		if err == nil && n != 1 {
			return fmt.Errorf("RevokeOtherSessions = %d, want 1", n)
		}
		return err
	}, want: []auditWant{{typ: users.EventSessionsRevoked}}},
	{name: "RequestPasswordReset", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		d, err := f.M.RequestPasswordReset(ctx, st.u.Email)
		if err == nil {
			st.secrets = append(st.secrets, d.Token)
		}
		return err
	}, want: []auditWant{{typ: users.EventTokenIssued, purpose: users.PurposePasswordReset}}},
	{name: "ResetPassword", setup: func(t *testing.T, f *Fixture, st *auditState) {
		st.token = f.requestReset(t, st.u)
	}, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		return f.M.ResetPassword(ctx, st.token, NewPassword)
	}, want: []auditWant{{typ: users.EventPasswordReset, purpose: users.PurposePasswordReset}}},
	{name: "ResetPasswordUsedToken", fails: true, setup: func(t *testing.T, f *Fixture, st *auditState) {
		st.token = f.requestReset(t, st.u)
		must(t, f.M.ResetPassword(t.Context(), st.token, NewPassword))
	}, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		return f.M.ResetPassword(ctx, st.token, NewPassword+"!")
	}},
	{name: "RequestEmailVerification", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		_, err := f.M.RequestEmailVerification(ctx, st.u.ID)
		return err
	}, want: []auditWant{{typ: users.EventTokenIssued, purpose: users.PurposeVerifyEmail}}},
	{name: "VerifyEmail", setup: func(t *testing.T, f *Fixture, st *auditState) {
		st.token = f.requestVerification(t, st.u)
	}, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		_, err := f.M.VerifyEmail(ctx, st.token)
		return err
	}, want: []auditWant{{typ: users.EventEmailVerified, purpose: users.PurposeVerifyEmail}}},
	{name: "Invite", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		u, tok, err := f.M.Invite(ctx, users.NewUser{Email: f.Email()})
		if err == nil {
			st.u = u
			st.secrets = append(st.secrets, tok)
		}
		return err
	}, want: []auditWant{{typ: users.EventUserCreated, purpose: users.PurposeInvitation}}},
	{name: "Reinvite", setup: func(t *testing.T, f *Fixture, st *auditState) {
		st.u, _ = f.invite(t)
	}, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		_, err := f.M.Reinvite(ctx, st.u.ID)
		return err
	}, want: []auditWant{{typ: users.EventTokenIssued, purpose: users.PurposeInvitation}}},
	{name: "AcceptInvitation", setup: func(t *testing.T, f *Fixture, st *auditState) {
		st.u, st.token = f.invite(t)
	}, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		s, err := f.M.AcceptInvitation(ctx, st.token, Password)
		if err == nil {
			st.session = s.ID
		}
		return err
	}, want: []auditWant{
		{typ: users.EventInvitationAccepted, purpose: users.PurposeInvitation},
		{typ: users.EventLoginSucceeded, purpose: users.PurposeInvitation, session: true},
	}},
	{name: "RequestMagicLink", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		_, err := f.M.RequestMagicLink(ctx, st.u.Email)
		return err
	}, want: []auditWant{{typ: users.EventTokenIssued, purpose: users.PurposeMagicLink}}},
	{name: "LoginWithMagicLinkFirstTime", setup: func(t *testing.T, f *Fixture, st *auditState) {
		st.token = f.requestMagicLink(t, st.u)
	}, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		s, err := f.M.LoginWithMagicLink(ctx, st.token)
		if err == nil {
			st.session = s.ID
		}
		return err
	}, want: []auditWant{
		{typ: users.EventEmailVerified, purpose: users.PurposeMagicLink},
		{typ: users.EventLoginSucceeded, purpose: users.PurposeMagicLink, session: true},
	}},
	{name: "LoginWithMagicLinkVerified", setup: func(t *testing.T, f *Fixture, st *auditState) {
		_, err := f.M.VerifyEmail(t.Context(), f.requestVerification(t, st.u))
		must(t, err)
		st.token = f.requestMagicLink(t, st.u)
	}, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		s, err := f.M.LoginWithMagicLink(ctx, st.token)
		if err == nil {
			st.session = s.ID
		}
		return err
	}, want: []auditWant{{typ: users.EventLoginSucceeded, purpose: users.PurposeMagicLink, session: true}}},
	{name: "RequestEmailChange", call: func(ctx context.Context, f *Fixture, st *auditState) error {
		_, err := f.M.RequestEmailChange(ctx, st.u.ID, Password, f.Email())
		return err
	}, want: []auditWant{{typ: users.EventTokenIssued, purpose: users.PurposeEmailChange}}},
	{name: "RequestEmailChangeWrongPassword", fails: true, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		_, err := f.M.RequestEmailChange(ctx, st.u.ID, "not the password at all", f.Email())
		return err
	}, want: []auditWant{{typ: users.EventLoginFailed, reason: "wrong_password"}}},
	{name: "ConfirmEmailChange", setup: func(t *testing.T, f *Fixture, st *auditState) {
		d, err := f.M.RequestEmailChange(t.Context(), st.u.ID, Password, f.Email())
		must(t, err)
		st.token = d.Token
	}, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		_, err := f.M.ConfirmEmailChange(ctx, st.token)
		return err
	}, want: []auditWant{{typ: users.EventEmailChanged, purpose: users.PurposeEmailChange, fields: []string{"email"}}}},
	// The token is used up, but the change it was for is refused: another user
	// took the address after it was requested.
	{name: "ConfirmEmailChangeTaken", fails: true, setup: func(t *testing.T, f *Fixture, st *auditState) {
		email := f.Email()
		d, err := f.M.RequestEmailChange(t.Context(), st.u.ID, Password, email)
		must(t, err)
		st.token = d.Token
		f.MustCreate(t, users.NewUser{Email: email})
	}, call: func(ctx context.Context, f *Fixture, st *auditState) error {
		_, err := f.M.ConfirmEmailChange(ctx, st.token)
		if !errors.Is(err, users.ErrDuplicateEmail) {
			return fmt.Errorf("got %v, want ErrDuplicateEmail", err)
		}
		return err
	}, want: []auditWant{{typ: users.EventTokenRedeemed, purpose: users.PurposeEmailChange, reason: "email_taken"}}},
	{name: "Unlock", opts: func(o *users.Options) { o.MaxFailedLogins = 1 },
		setup: func(t *testing.T, f *Fixture, st *auditState) {
			f.M.Login(t.Context(), st.u.Email, "not the password at all")
		},
		call: func(ctx context.Context, f *Fixture, st *auditState) error {
			return f.M.Unlock(ctx, st.u.ID)
		}, want: []auditWant{{typ: users.EventAccountUnlocked}}},
	{name: "PurgeExpired", opts: func(o *users.Options) { o.AuditRetention = 24 * time.Hour },
		setup: func(t *testing.T, f *Fixture, st *auditState) {
			f.Clock.Advance(time.Hour) // the setup's entries stay: they are an hour old
		},
		call: func(ctx context.Context, f *Fixture, st *auditState) error {
			_, err := f.M.PurgeExpired(ctx)
			return err
		}}, // housekeeping, not a change of anyone's state
}

// mgrAuditRules are the audit rules of RunManager: one per case of
// mgrAuditCases, then the order, hook, retention, paging and device rules.
func mgrAuditRules() []rule[*mgrSuite] {
	var rules []rule[*mgrSuite]
	for _, c := range mgrAuditCases {
		rules = append(rules, rule[*mgrSuite]{c.name, "every Manager method that changes state, and every outcome of an authentication, must write exactly its audit entries (type, subject, reason, purpose, session; the actor and client of the context; no secret), and Options.OnEvent must see the same entries after their commit", func(t *testing.T, s *mgrSuite, _ string) {
			s.runAuditCase(t, c)
		}})
	}
	rules = append(rules, rule[*mgrSuite]{"HookKeepsCommitOrder", "Options.OnEvent must see one user's events in the order they committed, even when they are made concurrently", testAuditHookOrder})
	for _, hook := range []bool{false, true} {
		name := "LogKeepsCommitOrder"
		if hook {
			name += "WithHook"
		}
		rules = append(rules, rule[*mgrSuite]{name, "the audit log must list one user's entries in the order their changes committed, with or without Options.OnEvent, however many are made concurrently: oldest first, each role change starts from the role the one before set", func(t *testing.T, s *mgrSuite, _ string) {
			s.testAuditLogOrder(t, hook)
		}})
	}
	return append(rules, []rule[*mgrSuite]{
		{"HookCannotBlockOrBreak", "a hook that panics or blocks must never fail or block a login: panics are recovered and counted, events beyond the queue are dropped and counted, and the audit log keeps them all", testAuditHookSafe},
		{"Retention", "PurgeExpired must delete the audit entries older than Options.AuditRetention, and keep the younger ones", testAuditRetention},
		{"Paging", "Manager.Audit must page through a user's entries newest first with Next, each exactly once, and refuse bad input with a *ValidationError naming the field", testAuditPaging},
		{"DevicesAndActivity", "a session keeps the client it was created from, Sessions lists it, and login and ValidateToken's touch move LastActiveAt, which Find's ActiveSince and InactiveSince select on", testAuditDevices},
	}...)
}

func (s *mgrSuite) runAuditCase(t *testing.T, c auditCase) {
	store := s.newStore(t)
	rec := &hookRecorder{store: store}
	f := NewFixture(t, store, func(o *users.Options) {
		o.OnEvent = rec.onEvent
		if c.opts != nil {
			c.opts(o)
		}
	})
	ctx := t.Context()
	admin := f.MustCreate(t, users.NewUser{Email: f.Email(), Role: users.RoleAdmin})
	st := &auditState{u: f.user(t)}
	var probe users.Options
	if c.opts != nil {
		c.opts(&probe)
	}
	if probe.RequireVerifiedEmail { // the sessions below need verified emails
		for _, u := range []*users.User{admin, st.u} {
			_, err := f.M.VerifyEmail(ctx, f.requestVerification(t, u))
			must(t, err)
		}
	}
	actor := f.MustLogin(t, admin.Email, Password)
	st.sess = f.MustLogin(t, st.u.Email, Password)
	st.other = f.MustLogin(t, st.u.Email, Password)
	st.secrets = append(st.secrets, Password, NewPassword, "not the password at all", actor.Token, st.sess.Token, st.other.Token)
	if c.setup != nil {
		c.setup(t, f, st)
	}
	must(t, f.M.FlushEvents(ctx))
	before := allEntries(t, store)
	hooked, _ := rec.snapshot()

	callCtx := users.NewContext(users.WithClient(ctx, auditClient), actor)
	err := c.call(callCtx, f, st)
	if c.fails != (err != nil) {
		t.Fatalf("the call returned %v; the case expects it to %s", err, map[bool]string{true: "fail", false: "succeed"}[c.fails])
	}
	if st.token != "" {
		st.secrets = append(st.secrets, st.token)
	}

	// The new entries, oldest first.
	after := allEntries(t, store)
	old := map[string]bool{}
	for _, e := range before {
		old[e.ID] = true
	}
	var got []*users.AuditEntry
	for _, e := range slices.Backward(after) {
		if !old[e.ID] {
			got = append(got, e)
		}
	}
	if c.name == "PurgeExpired" && len(after) != len(before) {
		t.Errorf("PurgeExpired deleted entries younger than the retention: %d before, %d after", len(before), len(after))
	}
	types := func(es []*users.AuditEntry) []users.EventType {
		var out []users.EventType
		for _, e := range es {
			out = append(out, e.Type)
		}
		return out
	}
	var wantTypes []users.EventType
	for _, w := range c.want {
		wantTypes = append(wantTypes, w.typ)
	}
	if !slices.Equal(types(got), wantTypes) {
		t.Fatalf("the call wrote entries %v, want %v", types(got), wantTypes)
	}
	for i, w := range c.want {
		e := got[i]
		subject := st.u.ID
		if w.nobody {
			subject = ""
		}
		switch {
		case e.UserID != subject:
			t.Errorf("entry %s: UserID %q, want %q", e.Type, e.UserID, subject)
		case e.Reason != w.reason:
			t.Errorf("entry %s: Reason %q, want %q", e.Type, e.Reason, w.reason)
		case e.Purpose != w.purpose:
			t.Errorf("entry %s: Purpose %q, want %q", e.Type, e.Purpose, w.purpose)
		case w.session && e.SessionID != st.session:
			t.Errorf("entry %s: SessionID %q, want %q", e.Type, e.SessionID, st.session)
		case w.fields != nil && !slices.Equal(e.Fields, w.fields):
			t.Errorf("entry %s: Fields %q, want %q", e.Type, e.Fields, w.fields)
		case e.ActorID != admin.ID:
			t.Errorf("entry %s: ActorID %q, want the session in the context, %q", e.Type, e.ActorID, admin.ID)
		case e.IP != auditClient.IP || e.UserAgent != auditClient.UserAgent:
			t.Errorf("entry %s: client %q %q, want %+v", e.Type, e.IP, e.UserAgent, auditClient)
		case !e.Time.Equal(f.Clock.Now()):
			t.Errorf("entry %s: Time %v, want the clock's %v", e.Type, e.Time, f.Clock.Now())
		case e.ID == "":
			t.Errorf("entry %s has no ID", e.Type)
		}
		b, _ := json.Marshal(e)
		for _, secret := range st.secrets {
			if secret != "" && strings.Contains(strings.ToLower(string(b)), strings.ToLower(secret)) {
				t.Errorf("entry %s contains a secret or what was typed (%q): %s", e.Type, secret, b)
			}
		}
	}

	// The hook saw the same entries, in the same order, each after its commit.
	must(t, f.M.FlushEvents(ctx))
	events, unseen := rec.snapshot()
	events = events[len(hooked):]
	if len(events) != len(got) {
		t.Fatalf("OnEvent saw %d events for the call, the store holds %d new entries", len(events), len(got))
	}
	for i := range events {
		if !sameEntry(&events[i], got[i]) {
			t.Errorf("OnEvent's event %d is %+v, the store's entry %+v", i, normEntry(&events[i]), normEntry(got[i]))
		}
	}
	if len(unseen) > 0 {
		t.Errorf("OnEvent was called with entries %v before the store held them: the hook must run after the commit", unseen)
	}
	if st := f.M.EventStats(); st.Dropped != 0 || st.Panics != 0 {
		t.Errorf("EventStats %+v, want nothing dropped or panicking", st)
	}
}

func testAuditHookOrder(t *testing.T, s *mgrSuite, _ string) {
	store := s.newStore(t)
	rec := &hookRecorder{store: store}
	const writers = 24
	roles := []users.Role{users.RoleUser}
	for i := range writers {
		roles = append(roles, users.Role(fmt.Sprintf("r%02d", i)))
	}
	f := NewFixture(t, store, func(o *users.Options) {
		o.OnEvent, o.Roles = rec.onEvent, roles
	})
	u := f.user(t)
	errs := make([]error, writers)
	start(writers, func(i int) {
		_, errs[i] = f.M.UpdateRole(context.Background(), u.ID, roles[i+1])
	})
	for _, err := range errs {
		must(t, err)
	}
	must(t, f.M.FlushEvents(t.Context()))
	events, _ := rec.snapshot()
	var changes []users.AuditEntry
	for _, e := range events {
		if e.Type == users.EventRoleChanged {
			changes = append(changes, e)
		}
	}
	if len(changes) != writers {
		t.Fatalf("OnEvent saw %d role changes, want %d", len(changes), writers)
	}
	// In commit order each change starts from the role the one before set.
	prev := string(users.RoleUser)
	for i, e := range changes {
		if e.Data["role_from"] != prev {
			t.Fatalf("event %d changes the role from %q, but the event before set %q: events are out of commit order", i, e.Data["role_from"], prev)
		}
		prev = e.Data["role_to"]
	}
	if got := f.MustGet(t, u.ID).Role; string(got) != prev {
		t.Errorf("the last event sets %q, the user has %q", prev, got)
	}
}

// testAuditLogOrder makes 8 goroutines change one user's role 25 times each
// and reads the role changes back from the log, oldest first.
func (s *mgrSuite) testAuditLogOrder(t *testing.T, hook bool) {
	const writers, calls = 8, 25
	store := s.newStore(t)
	roles := []users.Role{users.RoleUser, users.RoleAdmin}
	for i := range writers {
		roles = append(roles, users.Role(fmt.Sprintf("r%02d", i)))
	}
	f := NewFixture(t, store, func(o *users.Options) {
		o.Roles = roles
		if hook {
			o.OnEvent = (&hookRecorder{store: store}).onEvent
		}
	})
	u := f.user(t)
	errs := make([]error, writers)
	start(writers, func(i int) {
		for j := range calls {
			if _, err := f.M.UpdateRole(context.Background(), u.ID, roles[(i+j)%len(roles)]); err != nil {
				errs[i] = err
				return
			}
		}
	})
	for _, err := range errs {
		must(t, err)
	}
	WantRoleLogInCommitOrder(t, f.M, u.ID, users.RoleUser)
}

func testAuditHookSafe(t *testing.T, s *mgrSuite, _ string) {
	release := make(chan struct{})
	var calls sync.WaitGroup
	calls.Add(1)
	first := true
	f := NewFixture(t, s.newStore(t), func(o *users.Options) {
		o.EventQueueSize = 2
		o.OnEvent = func(ctx context.Context, e users.AuditEntry) {
			if first {
				first = false
				calls.Done()
				<-release // a hook stuck on its first event
				panic("hook panics")
			}
		}
	})
	u := f.user(t) // user.created: the hook takes it and blocks
	calls.Wait()
	for range 5 {
		s := f.MustLogin(t, u.Email, Password) // must not block
		if _, err := f.M.ValidateToken(t.Context(), s.Token); err != nil {
			t.Fatalf("ValidateToken while the hook is stuck: %v", err)
		}
	}
	if got := f.M.EventStats().Dropped; got != 3 {
		t.Errorf("EventStats().Dropped = %d with a queue of 2 and 5 events waiting, want 3", got)
	}
	close(release)
	must(t, f.M.FlushEvents(t.Context()))
	if got := f.M.EventStats().Panics; got != 1 {
		t.Errorf("EventStats().Panics = %d, want 1", got)
	}
	es, err := f.M.Audit(t.Context(), users.AuditFilter{UserID: u.ID, Types: []users.EventType{users.EventLoginSucceeded}})
	must(t, err)
	if len(es.Entries) != 5 {
		t.Errorf("the audit log holds %d logins, want 5: dropped events are still recorded", len(es.Entries))
	}
}

func testAuditRetention(t *testing.T, s *mgrSuite, _ string) {
	f := s.fixture(t, func(o *users.Options) { o.AuditRetention = 48 * time.Hour })
	u := f.user(t)
	f.Clock.Advance(24 * time.Hour)
	f.MustLogin(t, u.Email, Password)
	f.Clock.Advance(25 * time.Hour) // the creation is 49 h old, the login 25 h
	if _, err := f.M.PurgeExpired(t.Context()); err != nil {
		t.Fatalf("PurgeExpired: %v", err)
	}
	p, err := f.M.Audit(t.Context(), users.AuditFilter{UserID: u.ID})
	must(t, err)
	if len(p.Entries) != 1 || p.Entries[0].Type != users.EventLoginSucceeded {
		t.Errorf("after PurgeExpired the user's entries are %s, want just the login", showEntries(p.Entries))
	}
	if _, err := users.New(f.Store, &users.Options{AuditRetention: -time.Hour}); !isField(err, "options.AuditRetention") {
		t.Errorf("New with a negative AuditRetention: %v, want a *ValidationError on options.AuditRetention", err)
	}
}

func isField(err error, field string) bool {
	var v *users.ValidationError
	return errors.As(err, &v) && v.Field == field
}

func testAuditPaging(t *testing.T, s *mgrSuite, _ string) {
	f := s.fixture(t, nil)
	ctx := t.Context()
	u, other := f.user(t), f.user(t)
	for i := range 12 {
		name := fmt.Sprint("Name", i)
		_, err := f.M.Update(ctx, u.ID, users.UserUpdate{FirstName: &name})
		must(t, err)
		_, err = f.M.Update(ctx, other.ID, users.UserUpdate{FirstName: &name})
		must(t, err)
		f.Clock.Advance(time.Second)
	}
	all, err := f.Store.ListAudit(ctx, users.AuditQuery{UserID: u.ID, Limit: 100})
	must(t, err)
	if len(all) != 13 {
		t.Fatalf("the store holds %d entries of the user, want 13", len(all))
	}
	var walked []*users.AuditEntry
	filter := users.AuditFilter{UserID: u.ID, Limit: 5}
	for range 10 {
		p, err := f.M.Audit(ctx, filter)
		must(t, err)
		walked = append(walked, p.Entries...)
		if p.Next == "" {
			break
		}
		filter.Before = p.Next
	}
	if len(walked) != len(all) {
		t.Fatalf("walking by pages gave %d entries, want %d", len(walked), len(all))
	}
	for i := range all {
		if walked[i].ID != all[i].ID {
			t.Fatalf("page walk entry %d is %s, want %s (newest first)", i, walked[i].ID, all[i].ID)
		}
	}
	since := f.Clock.Now().Add(-5 * time.Second)
	p, err := f.M.Audit(ctx, users.AuditFilter{UserID: u.ID, Since: since})
	must(t, err)
	for _, e := range p.Entries {
		if e.Time.Before(since) {
			t.Errorf("Audit with Since returned an entry of %v", e.Time)
		}
	}
	if len(p.Entries) != 5 {
		t.Errorf("Audit with Since the last 5 seconds: %d entries, want 5", len(p.Entries))
	}
	for _, c := range []struct {
		f     users.AuditFilter
		field string
	}{
		{users.AuditFilter{Limit: -1}, "limit"},
		{users.AuditFilter{Before: "not a cursor"}, "before"},
		{users.AuditFilter{Types: []users.EventType{""}}, "types"},
		{users.AuditFilter{Since: since, Until: since}, "until"},
		{users.AuditFilter{UserID: strings.Repeat("x", 200)}, "user_id"},
	} {
		if _, err := f.M.Audit(ctx, c.f); !isField(err, c.field) || !errors.Is(err, users.ErrInvalidInput) {
			t.Errorf("Audit(%+v): %v, want a *ValidationError on %q", c.f, err, c.field)
		}
	}
}

func testAuditDevices(t *testing.T, s *mgrSuite, _ string) {
	f := s.fixture(t, nil)
	ctx := t.Context()
	u, dormant := f.user(t), f.user(t)
	phone := users.Client{IP: "198.51.100.4", UserAgent: "Phone/2.0"}
	s1, err := f.M.Login(users.WithClient(ctx, phone), u.Email, Password)
	must(t, err)
	s2 := f.MustLogin(t, u.Email, Password) // no client known
	if got := f.MustGet(t, u.ID).LastActiveAt; !got.Equal(f.Clock.Now()) {
		t.Errorf("LastActiveAt %v after a login at %v", got, f.Clock.Now())
	}
	ss, err := f.M.Sessions(ctx, u.ID)
	must(t, err)
	if len(ss) != 2 || ss[0].ID != s1.ID || ss[0].IP != phone.IP || ss[0].UserAgent != phone.UserAgent || ss[1].IP != "" {
		t.Fatalf("Sessions = %+v, want the phone's session with its client, then one without", ss)
	}
	if !slices.Equal(ss[0].Methods, []users.AuthMethod{users.MethodPassword}) {
		t.Errorf("a password login's session has Methods %v", ss[0].Methods)
	}
	f.Clock.Advance(2 * time.Hour)
	v, err := f.M.ValidateToken(ctx, s1.Token)
	must(t, err)
	if v.IP != phone.IP || v.UserAgent != phone.UserAgent {
		t.Errorf("ValidateToken's Session has client %q %q, want %+v", v.IP, v.UserAgent, phone)
	}
	if got := f.MustGet(t, u.ID).LastActiveAt; !got.Equal(f.Clock.Now()) {
		t.Errorf("LastActiveAt %v after ValidateToken's touch at %v", got, f.Clock.Now())
	}
	hour := f.Clock.Now().Add(-time.Hour)
	page, err := f.M.Find(ctx, users.Filter{ActiveSince: hour})
	must(t, err)
	if len(page.Users) != 1 || page.Users[0].ID != u.ID {
		t.Errorf("Find(ActiveSince an hour ago) = %d users, want just the active one", len(page.Users))
	}
	page, err = f.M.Find(ctx, users.Filter{InactiveSince: hour})
	must(t, err)
	if len(page.Users) != 1 || page.Users[0].ID != dormant.ID {
		t.Errorf("Find(InactiveSince an hour ago) = %d users, want just the dormant one", len(page.Users))
	}
	if n, err := f.M.Count(ctx, users.Filter{InactiveSince: hour}); err != nil || n != 1 {
		t.Errorf("Count(InactiveSince) = %d, %v; want 1", n, err)
	}
	n, err := f.M.RevokeOtherSessions(ctx, u.ID, s1.ID)
	must(t, err)
	if n != 1 {
		t.Errorf("RevokeOtherSessions = %d, want 1", n)
	}
	if _, err := f.M.ValidateToken(ctx, s2.Token); !errors.Is(err, users.ErrInvalidToken) {
		t.Errorf("the other session after RevokeOtherSessions: %v, want ErrInvalidToken", err)
	}
	if _, err := f.M.ValidateToken(ctx, s1.Token); err != nil {
		t.Errorf("the kept session after RevokeOtherSessions: %v", err)
	}
}
