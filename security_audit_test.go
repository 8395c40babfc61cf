package users_test

// The audit log as an attack surface: failed logins must not tell known from
// unknown identifiers by the store work they cost, strangers must not be able
// to fill the log, and the client recorded must be the one the server saw.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// callLog is a Store that records the name of every method called (with the
// number of audit entries that would be written: those with a Type).
type callLog struct {
	users.Store
	mu    sync.Mutex
	calls []string
}

func (c *callLog) log(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, s)
}

func (c *callLog) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	return out
}

func (c *callLog) GetUserByEmail(ctx context.Context, email string) (*users.UserRecord, error) {
	c.log("GetUserByEmail")
	return c.Store.GetUserByEmail(ctx, email)
}

func (c *callLog) GetLoginAttempts(ctx context.Context, key users.ThrottleKey) (users.LoginAttempts, error) {
	c.log("GetLoginAttempts")
	return c.Store.GetLoginAttempts(ctx, key)
}

func (c *callLog) UpdateLoginAttempts(ctx context.Context, key users.ThrottleKey, fn func(a *users.LoginAttempts) error, audit ...*users.AuditEntry) (users.LoginAttempts, error) {
	c.log(fmt.Sprintf("UpdateLoginAttempts(%d entries given)", len(audit)))
	return c.Store.UpdateLoginAttempts(ctx, key, fn, audit...)
}

func (c *callLog) AppendAudit(ctx context.Context, audit ...*users.AuditEntry) error {
	c.log("AppendAudit")
	return c.Store.AppendAudit(ctx, audit...)
}

// SECURITY.md "Audit", item 22: a failed login writes the same store calls,
// with as many entries offered, whether its identifier names an account or
// not, for the first failure and the ones after it, so recording failures adds
// no timing tell.
func TestSecurity_AuditFailureEqualWork(t *testing.T) {
	store := &callLog{Store: users.NewMemoryStore()}
	clock := storetest.NewClock()
	m := secManager(t, store, clock, nil, nil)
	ctx := t.Context()
	if _, err := m.Create(ctx, users.NewUser{Email: "alice@example.com", Password: storetest.Password}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		store.take()
		m.Login(ctx, "alice@example.com", "not the password")
		known := store.take()
		m.Login(ctx, "nobody@example.com", "not the password")
		unknown := store.take()
		if !slices.Equal(known, unknown) {
			t.Errorf("failure %d: a known account's failed login calls the store %v, an unknown identifier's %v", i+1, known, unknown)
		}
		if !slices.Contains(known, "UpdateLoginAttempts(1 entries given)") || len(known) < 3 {
			t.Errorf("failure %d: store calls %v, want the reservation and the recording write", i+1, known)
		}
	}
}

// SECURITY.md "Audit", item 23: failures of identifiers that name nobody are
// recorded only when an identifier's count begins or locks, and at most
// strangerEntriesPerMinute (60) a minute per Manager, whatever is typed; the
// rest are counted in EventStats.
func TestSecurity_AuditStrangersCannotFillTheLog(t *testing.T) {
	t.Parallel()
	store := users.NewMemoryStore()
	clock := storetest.NewClock()
	m := secManager(t, store, clock, nil, func(o *users.Options) { o.MaxFailedLogins = 3 })
	ctx := t.Context()
	count := func() int {
		es, err := store.ListAudit(ctx, users.AuditQuery{Types: []users.EventType{users.EventLoginFailed}, Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.UserID != "" || strings.Contains(e.Reason, "@") {
				t.Fatalf("a stranger's entry names someone or something typed: %+v", e)
			}
		}
		return len(es)
	}
	// One identifier, many failures: one entry when its count begins, one
	// when it locks; attempts while locked are neither counted nor recorded.
	for range 10 {
		m.Login(ctx, "same-stranger@example.com", "guess")
	}
	if got := count(); got != 2 {
		t.Errorf("10 failures of one unknown identifier wrote %d entries, want 2 (first, lock)", got)
	}
	// 100 different identifiers in one minute: at most 60 entries. (More
	// identifiers prove nothing more: each one past the budget is one more
	// bcrypt decoy comparison, slow under -race.)
	for i := range 100 {
		m.Login(ctx, fmt.Sprintf("stranger%d@example.com", i), "guess")
	}
	if got := count(); got != 60 {
		t.Errorf("after 100 different unknown identifiers in a minute the log holds %d stranger entries, want 60 (2 + 58)", got)
	}
	if got := m.EventStats().UnrecordedStrangers; got != 42 {
		t.Errorf("EventStats().UnrecordedStrangers = %d, want 42", got)
	}
	clock.Advance(30 * time.Second) // half a minute refills half the budget
	for i := range 50 {
		m.Login(ctx, fmt.Sprintf("later%d@example.com", i), "guess")
	}
	if got := count(); got != 90 {
		t.Errorf("30 s later the log holds %d stranger entries, want 90", got)
	}
	// A known account's failures are all recorded: the lockout bounds them.
	if _, err := m.Create(ctx, users.NewUser{Email: "alice@example.com", Password: storetest.Password}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		m.Login(ctx, "alice@example.com", "guess")
	}
	es, err := store.ListAudit(ctx, users.AuditQuery{Types: []users.EventType{users.EventLoginFailed, users.EventAccountLocked}, Since: clock.Now(), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	known := 0
	for _, e := range es {
		if e.UserID != "" {
			known++
		}
	}
	if known != 4 {
		t.Errorf("10 failed logins of a known account (3 lock it) wrote %d entries, want 4 (3 failures, 1 lock)", known)
	}
}

// SECURITY.md "Audit", item 24: the client recorded is the one the server
// saw: ClientFromRequest reads RemoteAddr, not headers a client can forge,
// and the middleware keeps a Client a trusted proxy-aware layer put there.
func TestSecurity_AuditClientIsRemoteAddr(t *testing.T) {
	var got users.Client
	h := users.ClientMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = users.ClientFromContext(r.Context())
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.10:5555"
	r.Header.Set("X-Forwarded-For", "10.9.9.9")
	r.Header.Set("Forwarded", "for=10.9.9.9")
	r.Header.Set("User-Agent", "Agent/1")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got != (users.Client{IP: "192.0.2.10", UserAgent: "Agent/1"}) {
		t.Errorf("ClientMiddleware put %+v in the context, want the RemoteAddr host and the User-Agent", got)
	}
	trusted := users.Client{IP: "198.51.100.1", UserAgent: "Agent/1"}
	h.ServeHTTP(httptest.NewRecorder(), r.WithContext(users.WithClient(r.Context(), trusted)))
	if got != trusted {
		t.Errorf("ClientMiddleware replaced the Client already in the context with %+v", got)
	}
	// Over-long values are cut, so a client cannot make entries huge.
	long := users.Client{IP: strings.Repeat("1", 5000), UserAgent: strings.Repeat("é", 5000)}
	f := newFixture(t, nil)
	u := f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
	s, err := f.M.Login(users.WithClient(t.Context(), long), "alice@example.com", storetest.Password)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.IP) > 256 || len(s.UserAgent) > 256 {
		t.Errorf("a session keeps a client of %d and %d bytes, want at most 256 each", len(s.IP), len(s.UserAgent))
	}
	p, err := f.M.Audit(t.Context(), users.AuditFilter{UserID: u.ID, Types: []users.EventType{users.EventLoginSucceeded}})
	if err != nil || len(p.Entries) != 1 || len(p.Entries[0].UserAgent) > 256 {
		t.Errorf("the login's entry: %v, %+v; want one with a user agent of at most 256 bytes", err, p)
	}
}

// The session middleware puts both the actor (the request's Session) and the
// client in the context: a change made by a handler behind it records who made
// it and from where.
func TestMiddlewareRecordsActorAndClient(t *testing.T) {
	f := newFixture(t, nil)
	admin := f.mustCreate(t, users.NewUser{Email: "admin@example.com", Role: users.RoleAdmin})
	target := f.mustCreate(t, users.NewUser{Email: "bob@example.com"})
	s := f.MustLogin(t, admin.Email, storetest.Password)
	h := f.M.Middleware("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := f.M.UpdateRole(r.Context(), target.ID, users.RoleViewer); err != nil {
			users.WriteError(w, err)
		}
	}))
	r := httptest.NewRequest("PUT", "/v1/users/bob/role", nil)
	r.RemoteAddr = "[2001:db8::1]:443"
	r.Header.Set("Authorization", "Bearer "+s.Token)
	r.Header.Set("User-Agent", "AdminConsole/3")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	p, err := f.M.Audit(t.Context(), users.AuditFilter{UserID: target.ID, Types: []users.EventType{users.EventRoleChanged}})
	if err != nil || len(p.Entries) != 1 {
		t.Fatalf("Audit: %v, %+v; want one role change", err, p)
	}
	e := p.Entries[0]
	if e.ActorID != admin.ID || e.SessionID != s.ID || e.IP != "2001:db8::1" || e.UserAgent != "AdminConsole/3" {
		t.Errorf("the role change records actor %q session %q client %q %q; want %q %q 2001:db8::1 AdminConsole/3", e.ActorID, e.SessionID, e.IP, e.UserAgent, admin.ID, s.ID)
	}
	if e.Data["role_from"] != "user" || e.Data["role_to"] != "viewer" {
		t.Errorf("the role change's Data is %v, want role_from user, role_to viewer", e.Data)
	}
}
