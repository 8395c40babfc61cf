package users_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// workStore records the store work of the calls made through it: each
// method's name, and for the token writes the shape of what was written.
type workStore struct {
	users.Store
	calls []string
}

func (w *workStore) GetUserByEmail(ctx context.Context, email string) (*users.UserRecord, error) {
	w.calls = append(w.calls, "GetUserByEmail")
	return w.Store.GetUserByEmail(ctx, email)
}

func (w *workStore) GetUser(ctx context.Context, id string) (*users.UserRecord, error) {
	w.calls = append(w.calls, "GetUser")
	return w.Store.GetUser(ctx, id)
}

func (w *workStore) CreateToken(ctx context.Context, t *users.TokenRecord, replace bool, audit ...*users.AuditEntry) error {
	w.calls = append(w.calls, "write "+tokenShape(t, audit))
	return w.Store.CreateToken(ctx, t, replace, audit...)
}

func (w *workStore) CreateTokenDecoy(ctx context.Context, t *users.TokenRecord, audit ...*users.AuditEntry) error {
	w.calls = append(w.calls, "write "+tokenShape(t, audit))
	return w.Store.CreateTokenDecoy(ctx, t, audit...)
}

// tokenShape describes a token write by what its cost depends on: the sizes
// of the records, the token's lifetime and the entries' types and purposes.
func tokenShape(t *users.TokenRecord, audit []*users.AuditEntry) string {
	s := fmt.Sprintf("token(%d-byte hash, %d-byte user ID, %s, %d-byte email, lives %v)",
		len(t.Hash), len(t.UserID), t.Purpose, len(t.Email), t.ExpiresAt.Sub(t.CreatedAt))
	for _, e := range audit {
		s += fmt.Sprintf(" + entry(%s %s, %d-byte ID, %d-byte user ID)", e.Type, e.Purpose, len(e.ID), len(e.UserID))
	}
	return s
}

// TestSecurity_RecoveryStoreWork is issue 20, item 3: a password-reset or
// magic-link request for an email that names nobody, or names a user who is
// not active, must cost the store what a request for an active user's email
// costs, since the work runs on after the request is answered and slows the
// next request by as much as it differs. The calls and the shapes of the
// writes must be the same; the decoy must keep nothing and answer as before
// (ErrUnknownEmail, ErrAccountDisabled). The timing itself is measured by
// internal/recoverytiming (see SECURITY.md).
func TestSecurity_RecoveryStoreWork(t *testing.T) {
	ws := &workStore{Store: users.NewMemoryStore()}
	f := &Fixture{Fixture: storetest.NewFixture(t, ws, nil)}
	ctx := t.Context()
	// Addresses of one length, so that the records written are of one size.
	active := f.mustCreate(t, users.NewUser{Email: "known1@example.com"})
	inactive := f.mustCreate(t, users.NewUser{Email: "known2@example.com", Status: users.StatusSuspended})
	for _, p := range []struct {
		name    string
		request func(context.Context, string) (*users.Delivery, error)
	}{
		{"RequestPasswordReset", f.M.RequestPasswordReset},
		{"RequestMagicLink", f.M.RequestMagicLink},
	} {
		work := func(email string, want error) []string {
			ws.calls = nil
			d, err := p.request(ctx, email)
			if !errors.Is(err, want) || (want == nil) != (d != nil) {
				t.Fatalf("%s(%s) = %v, %v; want %v", p.name, email, d, err, want)
			}
			return ws.calls
		}
		known := work(active.Email, nil)
		unknown := work("nobody@example.com", users.ErrUnknownEmail)
		disabled := work(inactive.Email, users.ErrAccountDisabled)
		if !slices.ContainsFunc(known, func(c string) bool { return strings.HasPrefix(c, "write ") }) {
			t.Fatalf("%s of a known email wrote nothing: %q", p.name, known)
		}
		if !slices.Equal(unknown, known) {
			t.Errorf("%s: store work for an unknown email\n%q\ndiffers from a known one's\n%q", p.name, unknown, known)
		}
		if !slices.Equal(disabled, known) {
			t.Errorf("%s: store work for a suspended user's email\n%q\ndiffers from an active one's\n%q", p.name, disabled, known)
		}
	}
	// The decoys kept nothing: only the two real tokens expire, and the log
	// has only the real token.issued entries.
	page, err := f.M.Audit(ctx, users.AuditFilter{Types: []users.EventType{users.EventTokenIssued}})
	must(t, err)
	if len(page.Entries) != 2 {
		t.Errorf("%d token.issued entries, want 2 (the decoys' are not kept)", len(page.Entries))
	}
	f.Clock.Advance(48 * time.Hour)
	if n, err := f.M.PurgeExpired(ctx); err != nil || n != 2 {
		t.Errorf("PurgeExpired = %d, %v; want the 2 real tokens", n, err)
	}
}
