package users_test

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

// auditSpy is a memory store that also keeps the audit entries the Manager
// hands to the MFA methods and to AppendAudit, so that tests can see which
// events the Manager records (the memory store's own audit log is built
// elsewhere).
type auditSpy struct {
	*users.MemoryStore
	mu      sync.Mutex
	entries []*users.AuditEntry
}

func (s *auditSpy) keep(audit []*users.AuditEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range audit {
		if e.Type != "" {
			s.entries = append(s.entries, e.Clone())
		}
	}
}

func (s *auditSpy) types() []users.EventType {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []users.EventType
	for _, e := range s.entries {
		out = append(out, e.Type)
	}
	return out
}

func (s *auditSpy) UpdateMFA(ctx context.Context, userID string, fn func(r *users.MFARecord) (bool, error), audit ...*users.AuditEntry) (*users.MFARecord, error) {
	r, err := s.MemoryStore.UpdateMFA(ctx, userID, fn, audit...)
	if err == nil {
		s.keep(audit)
	}
	return r, err
}

// CompleteChallenge keeps the entries of the second factor; the session's
// login.succeeded is left out, as it is for the logins CreateSession stores.
func (s *auditSpy) CompleteChallenge(ctx context.Context, hash []byte, fn func(r *users.MFARecord) error, sess *users.SessionRecord, audit ...*users.AuditEntry) error {
	err := s.MemoryStore.CompleteChallenge(ctx, hash, fn, sess, audit...)
	if err == nil {
		s.keep(slices.DeleteFunc(slices.Clone(audit), func(e *users.AuditEntry) bool { return e.Type == users.EventLoginSucceeded }))
	}
	return err
}

func (s *auditSpy) CreateChallenge(ctx context.Context, c *users.ChallengeRecord, audit ...*users.AuditEntry) error {
	err := s.MemoryStore.CreateChallenge(ctx, c, audit...)
	if err == nil {
		s.keep(audit)
	}
	return err
}

func (s *auditSpy) StepUpSession(ctx context.Context, userID, sessionID string, method users.AuthMethod, at time.Time, audit ...*users.AuditEntry) (*users.SessionRecord, error) {
	r, err := s.MemoryStore.StepUpSession(ctx, userID, sessionID, method, at, audit...)
	if err == nil {
		s.keep(audit)
	}
	return r, err
}

func (s *auditSpy) AppendAudit(ctx context.Context, audit ...*users.AuditEntry) error {
	s.keep(audit)
	return nil
}

// TestMFA_AuditEvents checks that every second-factor event is recorded, in
// the store call that makes the change, about the right user, and that no
// entry holds a code, a secret or a token.
func TestMFA_AuditEvents(t *testing.T) {
	spy := &auditSpy{MemoryStore: users.NewMemoryStore()}
	f := storetest.NewFixture(t, spy, storetest.WithMFAKey)
	ctx := t.Context()
	u := f.MustCreate(t, users.NewUser{Email: f.Email()})
	sess := f.MustLogin(t, u.Email, storetest.Password)
	secret, codes := f.MustEnrolTOTP(t, u.ID)
	c := f.MustChallenge(t, u.Email)
	wrong := storetest.WrongTOTPCode(t, secret, f.Clock.Now(), 0)
	f.M.CompleteLogin(ctx, c.Token, wrong)
	right := storetest.TOTPCode(t, secret, f.Clock.Now())
	if _, err := f.M.CompleteLogin(ctx, c.Token, right); err != nil {
		t.Fatalf("CompleteLogin: %v", err)
	}
	f.Clock.Advance(30 * time.Second)
	if _, err := f.M.StepUp(ctx, sess.Token, codes[0]); err != nil {
		t.Fatalf("StepUp: %v", err)
	}
	fresh, err := f.M.RegenerateRecoveryCodes(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	must(t, f.M.DisableMFA(ctx, u.ID, storetest.Password, ""))
	must(t, f.M.ResetMFA(ctx, u.ID)) // nothing left: nothing recorded

	want := []users.EventType{
		users.EventMFAEnrollmentStarted, users.EventMFAEnabled,
		users.EventMFAChallenged, users.EventMFAFailed, users.EventMFAVerified,
		users.EventMFAVerified, users.EventMFAStepUp,
		users.EventRecoveryCodesGenerated, users.EventMFADisabled,
	}
	if got := spy.types(); !slices.Equal(got, want) {
		t.Errorf("events:\n got %v\nwant %v", got, want)
	}
	secrets := append([]string{secret, c.Token, sess.Token, wrong, right}, append(codes, fresh...)...)
	for _, e := range spy.entries {
		if e.UserID != u.ID || e.ID == "" || e.Time.IsZero() {
			t.Errorf("entry %+v: want ID, Time and UserID %s", e, u.ID)
		}
		b, _ := json.Marshal(e)
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("entry %s contains the secret %q", b, s)
			}
		}
	}
}
