package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userkit/users"
)

// RunManager checks the account-lifecycle rules end to end: it drives a
// users.Manager over stores made by newStore through password reset, email
// verification, invitations, magic-link login, session lifetimes and trusted
// devices, so that a Store whose
// primitives pass Run is also seen to carry every flow built on them.
//
// newStore must return a new, empty store each time it is called; it may
// register cleanup with t.Cleanup. The Managers RunManager builds use bcrypt
// cost 4 and a fake clock. Each store is checked as Run checks it, once the
// (sub)test that made it is over. Some subtests run many goroutines at once
// and are meant for go test -race.
func RunManager(t *testing.T, newStore func(t *testing.T) users.Store) {
	s := &mgrSuite{newStore: checked(newStore)}
	for _, g := range []struct {
		name  string
		rules []rule[*mgrSuite]
	}{
		{"Token", mgrTokenRules},
		{"PasswordReset", mgrPasswordResetRules},
		{"EmailVerification", mgrEmailVerificationRules},
		{"Invitation", mgrInvitationRules},
		{"MagicLink", mgrMagicLinkRules},
		{"EmailChange", mgrEmailChangeRules},
		{"PasswordChange", mgrPasswordChangeRules},
		{"RemovedUser", mgrRemovedUserRules},
		{"ContextCanceled", mgrContextCanceledRules},
		{"MFA", mgrMFARules},                         // manager_mfa.go
		{"Audit", mgrAuditRules()},                   // manager_audit.go
		{"Identity", mgrIdentityRules},               // manager_identity.go
		{"SessionLifetime", mgrSessionLifetimeRules}, // manager_session.go
		{"TrustedDevice", mgrTrustedDeviceRules},     // manager_session.go
		{"Passkey", mgrPasskeyRules},                 // manager_passkey.go
	} {
		t.Run(g.name, func(t *testing.T) {
			runRules(t, g.rules, func(*testing.T) *mgrSuite { return s })
		})
	}
}

// mgrSuite makes the stores of the Manager rules: each store it makes is
// checked once the test that made it is over.
type mgrSuite struct {
	newStore func(t *testing.T) users.Store
}

// fixture returns a Fixture over a new store. edit, if not nil, changes the
// options first.
func (s *mgrSuite) fixture(t *testing.T, edit func(o *users.Options)) *Fixture {
	t.Helper()
	return NewFixture(t, s.newStore(t), edit)
}

// user creates an active user with a fresh email and Password.
func (f *Fixture) user(t *testing.T) *users.User {
	t.Helper()
	return f.MustCreate(t, users.NewUser{Email: f.Email()})
}

// storedSessions is how many sessions the store holds for the user, live or not.
func (f *Fixture) storedSessions(t *testing.T, userID string) int {
	t.Helper()
	ss, err := f.Store.ListSessions(t.Context(), userID)
	if err != nil {
		t.Fatalf("store.ListSessions: %v", err)
	}
	return len(ss)
}

// requestReset returns a password-reset token for u.
func (f *Fixture) requestReset(t *testing.T, u *users.User) string {
	t.Helper()
	d, err := f.M.RequestPasswordReset(t.Context(), u.Email)
	if err != nil {
		t.Fatalf("RequestPasswordReset(%q): %v", u.Email, err)
	}
	mgrWantDelivery(t, "RequestPasswordReset", d, u)
	return d.Token
}

func (f *Fixture) requestVerification(t *testing.T, u *users.User) string {
	t.Helper()
	d, err := f.M.RequestEmailVerification(t.Context(), u.ID)
	if err != nil {
		t.Fatalf("RequestEmailVerification: %v", err)
	}
	mgrWantDelivery(t, "RequestEmailVerification", d, u)
	return d.Token
}

func (f *Fixture) requestMagicLink(t *testing.T, u *users.User) string {
	t.Helper()
	d, err := f.M.RequestMagicLink(t.Context(), u.Email)
	if err != nil {
		t.Fatalf("RequestMagicLink(%q): %v", u.Email, err)
	}
	mgrWantDelivery(t, "RequestMagicLink", d, u)
	return d.Token
}

// mgrWantDelivery fails unless d is addressed to u's stored email, for u, with a
// token and an expiry.
func mgrWantDelivery(t *testing.T, what string, d *users.Delivery, u *users.User) {
	t.Helper()
	if d == nil || d.To != u.Email || d.UserID != u.ID || d.Token == "" || d.ExpiresAt.IsZero() {
		t.Fatalf("%s: Delivery %+v; want To %q (the stored address), UserID %q, a token and an expiry", what, d, u.Email, u.ID)
	}
}

func (f *Fixture) invite(t *testing.T) (*users.User, string) {
	t.Helper()
	u, tok, err := f.M.Invite(t.Context(), users.NewUser{Email: f.Email(), FirstName: "Ada"})
	if err != nil {
		t.Fatalf("Invite: %v", err)
	}
	return u, tok
}

// mgrTokenHash is what a store must keep of a token: the SHA-256 of the token string.
func mgrTokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// stored reports whether the store still holds the token (whatever its expiry:
// it asks as of the zero time).
func (f *Fixture) stored(t *testing.T, token string, p users.Purpose) bool {
	t.Helper()
	_, err := f.Store.GetToken(t.Context(), mgrTokenHash(token), p)
	switch {
	case err == nil:
		return true
	case errors.Is(err, users.ErrNotFound):
		return false
	}
	t.Fatalf("store.GetToken: %v", err)
	return false
}

// mgrPurpose describes one flow generically: how to get a token of the purpose
// and how to redeem one.
type mgrPurpose struct {
	name    string
	purpose users.Purpose
	def     time.Duration                         // default lifetime
	option  func(o *users.Options) *time.Duration // the option that sets the lifetime
	custom  time.Duration                         // a non-default lifetime to try
	issue   func(t *testing.T, f *Fixture) (token string, u *users.User)
	redeem  func(ctx context.Context, f *Fixture, token string) error
}

var mgrPurposes = []mgrPurpose{
	{
		name:    "PasswordReset",
		purpose: users.PurposePasswordReset,
		def:     time.Hour,
		option:  func(o *users.Options) *time.Duration { return &o.PasswordResetTTL },
		custom:  2 * time.Hour,
		issue: func(t *testing.T, f *Fixture) (string, *users.User) {
			u := f.user(t)
			return f.requestReset(t, u), u
		},
		redeem: func(ctx context.Context, f *Fixture, token string) error {
			return f.M.ResetPassword(ctx, token, NewPassword)
		},
	},
	{
		name:    "EmailVerification",
		purpose: users.PurposeVerifyEmail,
		def:     48 * time.Hour,
		option:  func(o *users.Options) *time.Duration { return &o.EmailVerificationTTL },
		custom:  24 * time.Hour,
		issue: func(t *testing.T, f *Fixture) (string, *users.User) {
			u := f.user(t)
			return f.requestVerification(t, u), u
		},
		redeem: func(ctx context.Context, f *Fixture, token string) error {
			_, err := f.M.VerifyEmail(ctx, token)
			return err
		},
	},
	{
		name:    "Invitation",
		purpose: users.PurposeInvitation,
		def:     7 * 24 * time.Hour,
		option:  func(o *users.Options) *time.Duration { return &o.InvitationTTL },
		custom:  14 * 24 * time.Hour,
		issue: func(t *testing.T, f *Fixture) (string, *users.User) {
			u, tok := f.invite(t)
			return tok, u
		},
		redeem: func(ctx context.Context, f *Fixture, token string) error {
			_, err := f.M.AcceptInvitation(ctx, token, NewPassword)
			return err
		},
	},
	{
		name:    "MagicLink",
		purpose: users.PurposeMagicLink,
		def:     15 * time.Minute,
		option:  func(o *users.Options) *time.Duration { return &o.MagicLinkTTL },
		custom:  5 * time.Minute,
		issue: func(t *testing.T, f *Fixture) (string, *users.User) {
			u := f.user(t)
			return f.requestMagicLink(t, u), u
		},
		redeem: func(ctx context.Context, f *Fixture, token string) error {
			_, err := f.M.LoginWithMagicLink(ctx, token)
			return err
		},
	},
}

func mgrPurposeOf(p users.Purpose) mgrPurpose {
	for _, mp := range mgrPurposes {
		if mp.purpose == p {
			return mp
		}
	}
	panic("storetest: no such purpose " + string(p))
}

// mgrWantInvalidToken fails unless err is ErrInvalidToken.
func mgrWantInvalidToken(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, users.ErrInvalidToken) {
		t.Errorf("%s: got err %v, want ErrInvalidToken", what, err)
	}
}

var mgrTokenRules = []rule[*mgrSuite]{
	{"Format", "every one-time token is 256 bits of randomness encoded as base64url without padding: 43 characters that decode to 32 bytes, different every time", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		seen := map[string]bool{}
		for _, p := range mgrPurposes {
			for range 2 {
				tok, _ := p.issue(t, f)
				if got, want := len(tok), 43; got != want {
					t.Errorf("%s token %q: len %d, want %d", p.name, tok, got, want)
				}
				b, err := base64.RawURLEncoding.Strict().DecodeString(tok)
				if err != nil || len(b) != 32 {
					t.Errorf("%s token %q: decodes to %d bytes (err %v), want 32 bytes of base64url", p.name, tok, len(b), err)
				}
				if seen[tok] {
					t.Errorf("%s token %q issued twice", p.name, tok)
				}
				seen[tok] = true
			}
		}
	}},

	{"StoredOnlyAsSHA256", "the store keeps only the SHA-256 of the token string, bound to one user, one purpose and the lifetime of that purpose; nothing is found under the raw token or its decoded bytes", func(t *testing.T, s *mgrSuite, _ string) {
		for _, p := range mgrPurposes {
			t.Run(p.name, func(t *testing.T) {
				f := s.fixture(t, nil)
				ctx := t.Context()
				issued := f.Clock.Now()
				tok, u := p.issue(t, f)
				rec, err := f.Store.GetToken(ctx, mgrTokenHash(tok), p.purpose)
				if err != nil {
					t.Fatalf("store.GetToken(sha256(token)): %v, want the token", err)
				}
				if rec.UserID != u.ID || rec.Purpose != p.purpose || rec.Email != u.Email {
					t.Errorf("stored token: user %q purpose %q email %q, want %q %q %q", rec.UserID, rec.Purpose, rec.Email, u.ID, p.purpose, u.Email)
				}
				if want := issued.Add(p.def); !rec.ExpiresAt.Equal(want) {
					t.Errorf("stored token: ExpiresAt %v, want %v (issue time + %v)", rec.ExpiresAt, want, p.def)
				}
				if string(rec.Hash) != string(mgrTokenHash(tok)) {
					t.Errorf("stored token: Hash %x, want sha256 of the token %x", rec.Hash, mgrTokenHash(tok))
				}
				raw, _ := base64.RawURLEncoding.DecodeString(tok)
				rawHash := sha256.Sum256(raw)
				for what, key := range map[string][]byte{"the raw token": []byte(tok), "the decoded bytes": raw, "sha256 of the decoded bytes": rawHash[:]} {
					if _, err := f.Store.GetToken(ctx, key, p.purpose); !errors.Is(err, users.ErrNotFound) {
						t.Errorf("store.GetToken(%s): err %v, want ErrNotFound: only sha256 of the token string may be stored", what, err)
					}
				}
			})
		}
	}},

	{"PurposeBound", "a token redeems only for the purpose it was issued for (a reset token cannot verify an email, log in or accept an invitation), and a wrong attempt leaves it valid for its own purpose", func(t *testing.T, s *mgrSuite, _ string) {
		for _, p := range mgrPurposes {
			t.Run(p.name, func(t *testing.T) {
				f := s.fixture(t, nil)
				ctx := t.Context()
				tok, _ := p.issue(t, f)
				for _, q := range mgrPurposes {
					if q.purpose != p.purpose {
						mgrWantInvalidToken(t, fmt.Sprintf("%s token redeemed as %s", p.name, q.name), q.redeem(ctx, f, tok))
					}
				}
				if err := p.redeem(ctx, f, tok); err != nil {
					t.Errorf("%s token redeemed for its own purpose after wrong attempts: %v", p.name, err)
				}
			})
		}
	}},

	{"NotASession", "one-time tokens and session tokens are not interchangeable: a one-time token is not a bearer token for ValidateToken (and survives the attempt), and a session token redeems nothing", func(t *testing.T, s *mgrSuite, _ string) {
		for _, p := range mgrPurposes {
			t.Run(p.name, func(t *testing.T) {
				f := s.fixture(t, nil)
				ctx := t.Context()
				tok, _ := p.issue(t, f)
				_, err := f.M.ValidateToken(ctx, tok)
				mgrWantInvalidToken(t, "ValidateToken(one-time token)", err)
				other := f.user(t)
				sess := f.MustLogin(t, other.Email, Password)
				mgrWantInvalidToken(t, "redeeming a session token", p.redeem(ctx, f, sess.Token))
				if _, err := f.M.ValidateToken(ctx, sess.Token); err != nil {
					t.Errorf("session after a redemption attempt with its token: %v", err)
				}
				if err := p.redeem(ctx, f, tok); err != nil {
					t.Errorf("redeeming the one-time token after ValidateToken tried it: %v", err)
				}
			})
		}
	}},

	{"DefaultLifetime", "with no option set a token lives its purpose's default lifetime (reset 1h, verification 48h, invitation 7 days, magic link 15 min): valid 1ns before, invalid at it", func(t *testing.T, s *mgrSuite, _ string) {
		for _, p := range mgrPurposes {
			t.Run(p.name, func(t *testing.T) { s.checkLifetime(t, p, nil, p.def) })
		}
	}},

	{"CustomLifetime", "a lifetime option replaces its purpose's default, whether longer or shorter", func(t *testing.T, s *mgrSuite, _ string) {
		for _, p := range mgrPurposes {
			t.Run(p.name, func(t *testing.T) {
				s.checkLifetime(t, p, func(o *users.Options) { *p.option(o) = p.custom }, p.custom)
			})
		}
	}},

	{"SingleUseUnderConcurrency", "redeeming is atomic: of 16 concurrent redemptions of one token exactly one succeeds and the others get ErrInvalidToken", func(t *testing.T, s *mgrSuite, _ string) {
		for _, p := range mgrPurposes {
			t.Run(p.name, func(t *testing.T) {
				f := s.fixture(t, nil)
				tok, u := p.issue(t, f)
				const n = 16
				errs := make([]error, n)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						<-start
						errs[i] = p.redeem(t.Context(), f, tok)
					})
				}
				close(start)
				wg.Wait()
				ExactlyOne(t, errs, users.ErrInvalidToken, "of concurrent redemptions of one token exactly one must succeed, the others with ErrInvalidToken")
				if p.purpose == users.PurposeInvitation || p.purpose == users.PurposeMagicLink {
					if got := f.storedSessions(t, u.ID); got != 1 {
						t.Errorf("store holds %d sessions after concurrent redemptions, want 1", got)
					}
				}
			})
		}
	}},

	{"UsedTokenDeleted", "redeeming a token deletes it from the store at once (ConsumeToken), so GetToken no longer finds it", func(t *testing.T, s *mgrSuite, _ string) {
		for _, p := range mgrPurposes {
			t.Run(p.name, func(t *testing.T) {
				f := s.fixture(t, nil)
				tok, _ := p.issue(t, f)
				if err := p.redeem(t.Context(), f, tok); err != nil {
					t.Fatalf("redeem: %v", err)
				}
				if f.stored(t, tok, p.purpose) {
					t.Errorf("store still holds the used %s token", p.name)
				}
				mgrWantInvalidToken(t, "second redemption", p.redeem(t.Context(), f, tok))
			})
		}
	}},

	{"PurgeExpired", "PurgeExpired deletes expired tokens of every purpose (a second purge finds nothing) and keeps live ones", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		toks := map[users.Purpose]string{}
		for _, p := range mgrPurposes {
			toks[p.purpose], _ = p.issue(t, f)
		}
		// Past the magic link's lifetime only: the others must survive.
		f.Clock.Advance(15 * time.Minute)
		n, err := f.M.PurgeExpired(ctx)
		if err != nil {
			t.Fatalf("PurgeExpired: %v", err)
		}
		if n < 1 {
			t.Errorf("PurgeExpired after 15 min deleted %d, want at least the magic-link token", n)
		}
		for p, tok := range toks {
			if got, want := f.stored(t, tok, p), p != users.PurposeMagicLink; got != want {
				t.Errorf("after purge at 15 min: %s token stored = %v, want %v", p, got, want)
			}
		}
		// Past every lifetime.
		f.Clock.Advance(7 * 24 * time.Hour)
		if n, err = f.M.PurgeExpired(ctx); err != nil {
			t.Fatalf("PurgeExpired: %v", err)
		}
		if n < 3 {
			t.Errorf("PurgeExpired after 7 days deleted %d, want at least the 3 remaining tokens", n)
		}
		for p, tok := range toks {
			if f.stored(t, tok, p) {
				t.Errorf("after purge at 7 days: %s token still stored", p)
			}
		}
		if n, err = f.M.PurgeExpired(ctx); err != nil || n != 0 {
			t.Errorf("second PurgeExpired: %d, %v; want 0, nil", n, err)
		}
	}},
}

// checkLifetime checks that a token of p issued now is valid at ttl-1ns and
// invalid at ttl, under options edited by edit.
func (s *mgrSuite) checkLifetime(t *testing.T, p mgrPurpose, edit func(o *users.Options), ttl time.Duration) {
	t.Helper()
	f := s.fixture(t, edit)
	tok, _ := p.issue(t, f)
	f.Clock.Advance(ttl - time.Nanosecond)
	if err := p.redeem(t.Context(), f, tok); err != nil {
		t.Errorf("%s token redeemed %v after issue (lifetime %v): %v, want success", p.name, ttl-time.Nanosecond, ttl, err)
	}

	f = s.fixture(t, edit)
	tok, _ = p.issue(t, f)
	f.Clock.Advance(ttl)
	ctx := t.Context()
	// An expired token is refused before the new password is looked at.
	switch p.purpose {
	case users.PurposePasswordReset:
		mgrWantInvalidToken(t, "expired reset token with a refused password", f.M.ResetPassword(ctx, tok, "short"))
	case users.PurposeInvitation:
		_, err := f.M.AcceptInvitation(ctx, tok, "short")
		mgrWantInvalidToken(t, "expired invitation with a refused password", err)
	}
	mgrWantInvalidToken(t, fmt.Sprintf("%s token redeemed %v after issue (lifetime %v)", p.name, ttl, ttl), p.redeem(ctx, f, tok))
}

var mgrPasswordResetRules = []rule[*mgrSuite]{
	{"UnknownEmail", "a reset request for an email nobody has returns ErrUnknownEmail (which applications answer exactly like success) and no token", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		f.user(t)
		d, err := f.M.RequestPasswordReset(t.Context(), "nobody@example.com")
		if !errors.Is(err, users.ErrUnknownEmail) || d != nil {
			t.Errorf("RequestPasswordReset(unknown): %+v, %v; want nil, ErrUnknownEmail", d, err)
		}
	}},

	{"DeliversToStoredAddress", "reset and magic-link requests return the address stored for the user, not the one typed, and refuse non-ASCII input before folding it", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u := f.user(t)
		if _, err := f.M.Create(ctx, users.NewUser{Email: "kate@example.com", Password: Password}); err != nil {
			t.Fatalf("Create: %v", err)
		}
		typed := "  " + strings.ToUpper(u.Email) + " "
		for what, req := range map[string]func(context.Context, string) (*users.Delivery, error){
			"RequestPasswordReset": f.M.RequestPasswordReset,
			"RequestMagicLink":     f.M.RequestMagicLink,
		} {
			d, err := req(ctx, typed)
			if err != nil {
				t.Fatalf("%s(%q): %v", what, typed, err)
			}
			mgrWantDelivery(t, what, d, u)
			// U+212A KELVIN SIGN lower-cases to "k": it must not reach kate.
			if d, err := req(ctx, "\u212aate@example.com"); !errors.Is(err, users.ErrInvalidInput) || d != nil {
				t.Errorf("%s(\"\\u212aate@example.com\"): %+v, %v; want a *ValidationError and no delivery", what, d, err)
			}
		}
	}},

	{"SetsNewPassword", "redeeming a reset token sets the new password: the old one stops working and the new one logs in", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u := f.user(t)
		if err := f.M.ResetPassword(ctx, f.requestReset(t, u), NewPassword); err != nil {
			t.Fatalf("ResetPassword: %v", err)
		}
		if _, err := f.M.Login(ctx, u.Email, Password); !errors.Is(err, users.ErrInvalidCredentials) {
			t.Errorf("Login with the old password: %v, want ErrInvalidCredentials", err)
		}
		f.MustLogin(t, u.Email, NewPassword)
	}},

	{"PasswordPolicy", "the full password policy applies to the new password (a *ValidationError on \"password\"), and a refused password leaves the token valid", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u := f.user(t)
		tok := f.requestReset(t, u)
		for _, bad := range []string{"short", "password", u.Email} {
			err := f.M.ResetPassword(ctx, tok, bad)
			var ve *users.ValidationError
			if !errors.As(err, &ve) || ve.Field != "password" {
				t.Errorf("ResetPassword(%q): %v, want a *ValidationError on \"password\"", bad, err)
			}
		}
		f.MustLogin(t, u.Email, Password)
		if err := f.M.ResetPassword(ctx, tok, NewPassword); err != nil {
			t.Errorf("ResetPassword with a good password after refused ones: %v", err)
		}
	}},

	{"RevokesSessions", "a password reset revokes every session of the user", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u := f.user(t)
		s1, s2 := f.MustLogin(t, u.Email, Password), f.MustLogin(t, u.Email, Password)
		if err := f.M.ResetPassword(ctx, f.requestReset(t, u), NewPassword); err != nil {
			t.Fatalf("ResetPassword: %v", err)
		}
		for i, sess := range []*users.Session{s1, s2} {
			_, err := f.M.ValidateToken(ctx, sess.Token)
			mgrWantInvalidToken(t, fmt.Sprintf("ValidateToken(session %d from before the reset)", i+1), err)
		}
		if got := f.storedSessions(t, u.ID); got != 0 {
			t.Errorf("store holds %d sessions after the reset, want 0", got)
		}
	}},

	{"RevokesOtherResetTokens", "redeeming one reset token voids every other outstanding reset token of the user", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u := f.user(t)
		t1, t2, t3 := f.requestReset(t, u), f.requestReset(t, u), f.requestReset(t, u)
		if err := f.M.ResetPassword(ctx, t2, NewPassword); err != nil {
			t.Fatalf("ResetPassword: %v", err)
		}
		for _, tok := range []string{t1, t3} {
			if f.stored(t, tok, users.PurposePasswordReset) {
				t.Errorf("store still holds another reset token after a reset")
			}
			mgrWantInvalidToken(t, "ResetPassword(another reset token)", f.M.ResetPassword(ctx, tok, "yet another horse battery"))
		}
		f.MustLogin(t, u.Email, NewPassword)
	}},

	{"ClearsLoginLock", "a password reset clears a login lock: the new password logs in at once", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, func(o *users.Options) { o.MaxFailedLogins = 3 })
		ctx := t.Context()
		u := f.user(t)
		for range 3 {
			f.M.Login(ctx, u.Email, "wrong horse battery staple")
		}
		if _, err := f.M.Login(ctx, u.Email, Password); !errors.Is(err, users.ErrAccountLocked) {
			t.Fatalf("Login after 3 failures with MaxFailedLogins 3: %v, want ErrAccountLocked", err)
		}
		if err := f.M.ResetPassword(ctx, f.requestReset(t, u), NewPassword); err != nil {
			t.Fatalf("ResetPassword: %v", err)
		}
		f.MustLogin(t, u.Email, NewPassword)
	}},

	{"DisabledAccount", "a reset request for a user who is not active returns ErrAccountDisabled and no token, and a reset token of a user suspended since changes nothing", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u := f.user(t)
		tok := f.requestReset(t, u)
		suspended, active := users.StatusSuspended, users.StatusActive
		if _, err := f.M.Update(ctx, u.ID, users.UserUpdate{Status: &suspended}); err != nil {
			t.Fatalf("Update(suspend): %v", err)
		}
		if d, err := f.M.RequestPasswordReset(ctx, u.Email); !errors.Is(err, users.ErrAccountDisabled) || d != nil {
			t.Errorf("RequestPasswordReset(suspended): %+v, %v; want nil, ErrAccountDisabled", d, err)
		}
		if err := f.M.ResetPassword(ctx, tok, NewPassword); err == nil {
			t.Errorf("ResetPassword for a suspended user succeeded")
		}
		if _, err := f.M.Update(ctx, u.ID, users.UserUpdate{Status: &active}); err != nil {
			t.Fatalf("Update(activate): %v", err)
		}
		f.MustLogin(t, u.Email, Password)
	}},
}

var mgrEmailVerificationRules = []rule[*mgrSuite]{
	{"Verify", "a new user's email is unverified; redeeming a verification token sets EmailVerified and EmailVerifiedAt (the redemption time)", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		u := f.user(t)
		if u.EmailVerified || !u.EmailVerifiedAt.IsZero() {
			t.Errorf("new user: EmailVerified %v, EmailVerifiedAt %v; want false, zero", u.EmailVerified, u.EmailVerifiedAt)
		}
		tok := f.requestVerification(t, u)
		f.Clock.Advance(time.Minute)
		got, err := f.M.VerifyEmail(t.Context(), tok)
		if err != nil {
			t.Fatalf("VerifyEmail: %v", err)
		}
		for what, v := range map[string]*users.User{"VerifyEmail's result": got, "Get": f.MustGet(t, u.ID)} {
			if !v.EmailVerified || !v.EmailVerifiedAt.Equal(f.Clock.Now()) {
				t.Errorf("%s: EmailVerified %v, EmailVerifiedAt %v; want true, %v", what, v.EmailVerified, v.EmailVerifiedAt, f.Clock.Now())
			}
		}
	}},

	{"EmailChangeClears", "changing the email clears EmailVerified and EmailVerifiedAt and voids the outstanding verification tokens; a token for the new email works", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u := f.user(t)
		if _, err := f.M.VerifyEmail(ctx, f.requestVerification(t, u)); err != nil {
			t.Fatalf("VerifyEmail: %v", err)
		}
		old := f.requestVerification(t, u)
		email := f.Email()
		got, err := f.M.Update(ctx, u.ID, users.UserUpdate{Email: &email})
		if err != nil {
			t.Fatalf("Update(email): %v", err)
		}
		for what, v := range map[string]*users.User{"Update's result": got, "Get": f.MustGet(t, u.ID)} {
			if v.EmailVerified || !v.EmailVerifiedAt.IsZero() {
				t.Errorf("%s after an email change: EmailVerified %v, EmailVerifiedAt %v; want false, zero", what, v.EmailVerified, v.EmailVerifiedAt)
			}
		}
		if f.stored(t, old, users.PurposeVerifyEmail) {
			t.Errorf("store still holds a verification token issued for the old email")
		}
		_, err = f.M.VerifyEmail(ctx, old)
		mgrWantInvalidToken(t, "VerifyEmail(token for the old email)", err)
		if f.MustGet(t, u.ID).EmailVerified {
			t.Errorf("the old email's token verified the new email")
		}
		if v, err := f.M.VerifyEmail(ctx, f.requestVerification(t, got)); err != nil || !v.EmailVerified || v.Email != email {
			t.Errorf("VerifyEmail(token for the new email): %v, %v", v, err)
		}
		// Away and back again: a token issued before is still void, although
		// its email is the user's email once more.
		before := f.requestVerification(t, got)
		for _, e := range []string{f.Email(), email} {
			if _, err := f.M.Update(ctx, u.ID, users.UserUpdate{Email: &e}); err != nil {
				t.Fatalf("Update(email %q): %v", e, err)
			}
		}
		_, err = f.M.VerifyEmail(ctx, before)
		mgrWantInvalidToken(t, "VerifyEmail(token issued before the email changed away and back)", err)
	}},

	{"RequireVerifiedEmail", "with RequireVerifiedEmail, Login with the right password on an unverified email gives ErrEmailNotVerified; a wrong password still gives ErrInvalidCredentials; after verification Login works", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, func(o *users.Options) { o.RequireVerifiedEmail = true })
		ctx := t.Context()
		u := f.user(t)
		if _, err := f.M.Login(ctx, u.Email, Password); !errors.Is(err, users.ErrEmailNotVerified) {
			t.Errorf("Login(unverified, right password): %v, want ErrEmailNotVerified", err)
		}
		_, err := f.M.Login(ctx, u.Email, "wrong horse battery staple")
		if !errors.Is(err, users.ErrInvalidCredentials) || errors.Is(err, users.ErrEmailNotVerified) {
			t.Errorf("Login(unverified, wrong password): %v, want ErrInvalidCredentials and not ErrEmailNotVerified", err)
		}
		if _, err := f.M.VerifyEmail(ctx, f.requestVerification(t, u)); err != nil {
			t.Fatalf("VerifyEmail: %v", err)
		}
		f.MustLogin(t, u.Email, Password)
	}},
}

var mgrInvitationRules = []rule[*mgrSuite]{
	{"Invite", "Invite creates a user in StatusInvited, without a password: Login refuses it with ErrInvalidCredentials whatever the password", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u, _ := f.invite(t)
		if u.Status != users.StatusInvited || f.MustGet(t, u.ID).Status != users.StatusInvited {
			t.Errorf("invited user: Status %q, want %q", u.Status, users.StatusInvited)
		}
		for _, pw := range []string{"", Password, NewPassword, "x"} {
			if _, err := f.M.Login(ctx, u.Email, pw); !errors.Is(err, users.ErrInvalidCredentials) {
				t.Errorf("Login(invited user, %q): %v, want ErrInvalidCredentials", pw, err)
			}
		}
		if got := f.storedSessions(t, u.ID); got != 0 {
			t.Errorf("store holds %d sessions of an invited user, want 0", got)
		}
	}},

	{"Accept", "accepting an invitation with a password activates the user, verifies their email, sets the password and returns a valid session", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, func(o *users.Options) { o.RequireVerifiedEmail = true })
		ctx := t.Context()
		u, tok := f.invite(t)
		sess, err := f.M.AcceptInvitation(ctx, tok, NewPassword)
		if err != nil {
			t.Fatalf("AcceptInvitation: %v", err)
		}
		if sess.Token == "" || sess.UserID != u.ID {
			t.Fatalf("AcceptInvitation: session %+v, want one with a Token for user %q", sess, u.ID)
		}
		v, err := f.M.ValidateToken(ctx, sess.Token)
		if err != nil {
			t.Fatalf("ValidateToken(session from AcceptInvitation): %v", err)
		}
		if v.User.Status != users.StatusActive || !v.User.EmailVerified || v.User.EmailVerifiedAt.IsZero() {
			t.Errorf("accepted user: Status %q, EmailVerified %v, EmailVerifiedAt %v; want active, true, set", v.User.Status, v.User.EmailVerified, v.User.EmailVerifiedAt)
		}
		f.MustLogin(t, u.Email, NewPassword)
	}},

	{"AcceptPasswordPolicy", "the password policy applies when accepting, and a refused password leaves the invitation valid", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u, tok := f.invite(t)
		_, err := f.M.AcceptInvitation(ctx, tok, "short")
		var ve *users.ValidationError
		if !errors.As(err, &ve) || ve.Field != "password" {
			t.Errorf("AcceptInvitation(short password): %v, want a *ValidationError on \"password\"", err)
		}
		if f.MustGet(t, u.ID).Status != users.StatusInvited {
			t.Errorf("a refused password activated the user")
		}
		if _, err := f.M.AcceptInvitation(ctx, tok, NewPassword); err != nil {
			t.Errorf("AcceptInvitation after a refused password: %v", err)
		}
	}},

	{"Reinvite", "re-inviting voids the earlier invitation token; the new one works", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u, old := f.invite(t)
		d, err := f.M.Reinvite(ctx, u.ID)
		if err != nil {
			t.Fatalf("Reinvite: %v", err)
		}
		mgrWantDelivery(t, "Reinvite", d, u)
		tok := d.Token
		if f.stored(t, old, users.PurposeInvitation) {
			t.Errorf("store still holds the earlier invitation token")
		}
		_, err = f.M.AcceptInvitation(ctx, old, NewPassword)
		mgrWantInvalidToken(t, "AcceptInvitation(earlier token)", err)
		if _, err := f.M.AcceptInvitation(ctx, tok, NewPassword); err != nil {
			t.Errorf("AcceptInvitation(new token): %v", err)
		}
		if _, err := f.M.Reinvite(ctx, u.ID); !errors.Is(err, users.ErrInvalidInput) {
			t.Errorf("Reinvite(accepted user): %v, want a *ValidationError", err)
		}
	}},

	{"DuplicateEmail", "inviting an email another user has returns ErrDuplicateEmail and stores nothing", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u := f.user(t)
		before, _ := f.M.Count(ctx, users.Filter{})
		if _, tok, err := f.M.Invite(ctx, users.NewUser{Email: u.Email}); !errors.Is(err, users.ErrDuplicateEmail) || tok != "" {
			t.Errorf("Invite(taken email): %q, %v; want \"\", ErrDuplicateEmail", tok, err)
		}
		if after, _ := f.M.Count(ctx, users.Filter{}); after != before {
			t.Errorf("user count %d after a refused Invite, want %d", after, before)
		}
	}},
}

var mgrMagicLinkRules = []rule[*mgrSuite]{
	{"Login", "redeeming a magic link logs the user in with a new valid session", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u := f.user(t)
		sess, err := f.M.LoginWithMagicLink(ctx, f.requestMagicLink(t, u))
		if err != nil {
			t.Fatalf("LoginWithMagicLink: %v", err)
		}
		v, err := f.M.ValidateToken(ctx, sess.Token)
		if err != nil || v.UserID != u.ID {
			t.Errorf("ValidateToken(magic-link session): %v, %v; want a session of %q", v, err, u.ID)
		}
	}},

	{"Once", "a magic link logs in once: the second redemption gives ErrInvalidToken and no session", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u := f.user(t)
		tok := f.requestMagicLink(t, u)
		if _, err := f.M.LoginWithMagicLink(ctx, tok); err != nil {
			t.Fatalf("LoginWithMagicLink: %v", err)
		}
		sess, err := f.M.LoginWithMagicLink(ctx, tok)
		mgrWantInvalidToken(t, "second LoginWithMagicLink", err)
		if sess != nil {
			t.Errorf("second LoginWithMagicLink returned a session")
		}
		if got := f.storedSessions(t, u.ID); got != 1 {
			t.Errorf("store holds %d sessions, want 1", got)
		}
	}},

	{"UnknownEmail", "a magic-link request for an email nobody has returns ErrUnknownEmail and no token", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		d, err := f.M.RequestMagicLink(t.Context(), "nobody@example.com")
		if !errors.Is(err, users.ErrUnknownEmail) || d != nil {
			t.Errorf("RequestMagicLink(unknown): %+v, %v; want nil, ErrUnknownEmail", d, err)
		}
	}},

	{"SuspendedUser", "a magic link of a user suspended after it was issued logs nobody in: an error and no session", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u := f.user(t)
		tok := f.requestMagicLink(t, u)
		suspended := users.StatusSuspended
		if _, err := f.M.Update(ctx, u.ID, users.UserUpdate{Status: &suspended}); err != nil {
			t.Fatalf("Update(suspend): %v", err)
		}
		if sess, err := f.M.LoginWithMagicLink(ctx, tok); err == nil || sess != nil {
			t.Errorf("LoginWithMagicLink(suspended user): %v, %v; want an error and no session", sess, err)
		}
		if got := f.storedSessions(t, u.ID); got != 0 {
			t.Errorf("store holds %d sessions of a suspended user, want 0", got)
		}
		if d, err := f.M.RequestMagicLink(ctx, u.Email); !errors.Is(err, users.ErrAccountDisabled) || d != nil {
			t.Errorf("RequestMagicLink(suspended): %+v, %v; want nil, ErrAccountDisabled", d, err)
		}
	}},
}

var mgrPasswordChangeRules = []rule[*mgrSuite]{
	{"UpdatePassword", "tokens issued before UpdatePassword (reset, verification, magic link) are void afterwards; tokens issued after work", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u := f.user(t)
		toks := map[users.Purpose]string{
			users.PurposePasswordReset: f.requestReset(t, u),
			users.PurposeVerifyEmail:   f.requestVerification(t, u),
			users.PurposeMagicLink:     f.requestMagicLink(t, u),
		}
		if err := f.M.UpdatePassword(ctx, u.ID, Password, NewPassword); err != nil {
			t.Fatalf("UpdatePassword: %v", err)
		}
		for p, tok := range toks {
			mgrWantInvalidToken(t, string(p)+" token from before UpdatePassword", mgrPurposeOf(p).redeem(ctx, f, tok))
		}
		if _, err := f.M.LoginWithMagicLink(ctx, f.requestMagicLink(t, u)); err != nil {
			t.Errorf("LoginWithMagicLink(token from after UpdatePassword): %v", err)
		}
	}},

	{"ResetPassword", "tokens issued before a password reset (verification, magic link and the other reset tokens) are void afterwards", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u := f.user(t)
		reset := f.requestReset(t, u)
		toks := map[users.Purpose]string{
			users.PurposePasswordReset: f.requestReset(t, u),
			users.PurposeVerifyEmail:   f.requestVerification(t, u),
			users.PurposeMagicLink:     f.requestMagicLink(t, u),
		}
		if err := f.M.ResetPassword(ctx, reset, NewPassword); err != nil {
			t.Fatalf("ResetPassword: %v", err)
		}
		for p, tok := range toks {
			mgrWantInvalidToken(t, string(p)+" token from before ResetPassword", mgrPurposeOf(p).redeem(ctx, f, tok))
		}
	}},
}

var mgrRemovedUserRules = []rule[*mgrSuite]{
	{"TokensVoid", "the tokens of a removed user are void, also after a new user takes the same email", func(t *testing.T, s *mgrSuite, _ string) {
		for _, p := range mgrPurposes {
			t.Run(p.name, func(t *testing.T) {
				f := s.fixture(t, nil)
				ctx := t.Context()
				tok, u := p.issue(t, f)
				if err := f.M.Remove(ctx, u.ID); err != nil {
					t.Fatalf("Remove: %v", err)
				}
				if f.stored(t, tok, p.purpose) {
					t.Errorf("store still holds a token of a removed user")
				}
				if _, err := f.M.Create(ctx, users.NewUser{Email: u.Email, Password: Password}); err != nil {
					t.Fatalf("Create(same email): %v", err)
				}
				mgrWantInvalidToken(t, "redeeming a removed user's token", p.redeem(ctx, f, tok))
			})
		}
	}},
}

// canceledContext returns a context that is already canceled.
func canceledContext(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}

// wantCanceled fails unless err matches context.Canceled.
func wantCanceled(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%s with a canceled context: %v, want context.Canceled", what, err)
	}
}

var mgrContextCanceledRules = []rule[*mgrSuite]{
	{"Requests", "a request with a canceled context fails with context.Canceled, returns no token and creates nothing", func(t *testing.T, s *mgrSuite, _ string) {
		canceled := canceledContext(t)
		f := s.fixture(t, nil)
		ctx := t.Context()
		u := f.user(t)
		invited, _ := f.invite(t)
		before, _ := f.M.Count(ctx, users.Filter{})
		token := func(d *users.Delivery, err error) (string, error) {
			if d != nil {
				return d.Token, err
			}
			return "", err
		}
		for what, call := range map[string]func() (string, error){
			"RequestPasswordReset":     func() (string, error) { return token(f.M.RequestPasswordReset(canceled, u.Email)) },
			"RequestEmailVerification": func() (string, error) { return token(f.M.RequestEmailVerification(canceled, u.ID)) },
			"RequestMagicLink":         func() (string, error) { return token(f.M.RequestMagicLink(canceled, u.Email)) },
			"Reinvite":                 func() (string, error) { return token(f.M.Reinvite(canceled, invited.ID)) },
			"Invite": func() (string, error) {
				_, tok, err := f.M.Invite(canceled, users.NewUser{Email: "new@example.com"})
				return tok, err
			},
		} {
			tok, err := call()
			wantCanceled(t, what, err)
			if tok != "" {
				t.Errorf("%s with a canceled context returned a token", what)
			}
		}
		if after, _ := f.M.Count(ctx, users.Filter{}); after != before {
			t.Errorf("user count %d after canceled calls, want %d", after, before)
		}
		if _, err := f.M.GetByEmail(ctx, "new@example.com"); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("GetByEmail(user of a canceled Invite): %v, want ErrNotFound", err)
		}
	}},

	{"Reinvite", "a Reinvite with a canceled context leaves the earlier invitation valid", func(t *testing.T, s *mgrSuite, _ string) {
		canceled := canceledContext(t)
		f := s.fixture(t, nil)
		u, tok := f.invite(t)
		_, err := f.M.Reinvite(canceled, u.ID)
		wantCanceled(t, "Reinvite", err)
		if _, err := f.M.AcceptInvitation(t.Context(), tok, NewPassword); err != nil {
			t.Errorf("AcceptInvitation after a canceled Reinvite: %v", err)
		}
	}},

	{"Redemptions", "a redemption with a canceled context fails with context.Canceled and changes nothing: the user is as before, no session exists, and the token still redeems", func(t *testing.T, s *mgrSuite, _ string) {
		canceled := canceledContext(t)
		for _, p := range mgrPurposes {
			t.Run(p.name, func(t *testing.T) {
				f := s.fixture(t, nil)
				ctx := t.Context()
				tok, u := p.issue(t, f)
				wantCanceled(t, p.name+" redemption", p.redeem(canceled, f, tok))
				got := f.MustGet(t, u.ID)
				if got.Status != u.Status || got.EmailVerified != u.EmailVerified || !got.UpdatedAt.Equal(u.UpdatedAt) {
					t.Errorf("user changed by a canceled redemption: %+v, was %+v", got, u)
				}
				if n := f.storedSessions(t, u.ID); n != 0 {
					t.Errorf("store holds %d sessions after a canceled redemption, want 0", n)
				}
				if u.Status == users.StatusActive {
					f.MustLogin(t, u.Email, Password)
				}
				if err := p.redeem(ctx, f, tok); err != nil {
					t.Errorf("redeeming after a canceled attempt: %v", err)
				}
			})
		}
	}},
}

var mgrEmailChangeRules = []rule[*mgrSuite]{
	{"NeedsPassword", "RequestEmailChange with a wrong password returns ErrInvalidCredentials and no token", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		u := f.user(t)
		if d, err := f.M.RequestEmailChange(t.Context(), u.ID, "not the password", "new@example.com"); !errors.Is(err, users.ErrInvalidCredentials) || d != nil {
			t.Errorf("RequestEmailChange(wrong password): %+v, %v; want nil, ErrInvalidCredentials", d, err)
		}
	}},

	{"ChangesOnConfirm", "the email changes only when the token mailed to the new address is redeemed, and counts as verified; the token works once", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u := f.user(t)
		d, err := f.M.RequestEmailChange(ctx, u.ID, Password, " New@Example.com ")
		if err != nil {
			t.Fatalf("RequestEmailChange: %v", err)
		}
		if d.To != "new@example.com" || d.UserID != u.ID || d.Token == "" {
			t.Fatalf("Delivery %+v; want To new@example.com for %s", d, u.ID)
		}
		if got := f.MustGet(t, u.ID).Email; got != u.Email {
			t.Errorf("email before the confirmation = %q, want %q", got, u.Email)
		}
		got, err := f.M.ConfirmEmailChange(ctx, d.Token)
		if err != nil || got.Email != "new@example.com" || !got.EmailVerified {
			t.Fatalf("ConfirmEmailChange: %+v, %v; want new@example.com, verified", got, err)
		}
		_, err = f.M.ConfirmEmailChange(ctx, d.Token)
		mgrWantInvalidToken(t, "ConfirmEmailChange again", err)
		f.MustLogin(t, "new@example.com", Password)
	}},

	{"TakenShowsOnlyAtConfirm", "RequestEmailChange does not look whether the address is taken; ConfirmEmailChange returns ErrDuplicateEmail and changes nothing", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u, other := f.user(t), f.user(t)
		d, err := f.M.RequestEmailChange(ctx, u.ID, Password, other.Email)
		if err != nil || d.To != other.Email {
			t.Fatalf("RequestEmailChange(taken address): %+v, %v; want a delivery to %s", d, err, other.Email)
		}
		if _, err := f.M.ConfirmEmailChange(ctx, d.Token); !errors.Is(err, users.ErrDuplicateEmail) {
			t.Errorf("ConfirmEmailChange(taken address): %v, want ErrDuplicateEmail", err)
		}
		if got := f.MustGet(t, u.ID).Email; got != u.Email {
			t.Errorf("email after a refused change = %q, want %q", got, u.Email)
		}
	}},

	{"VoidedByPasswordChange", "a password change voids an outstanding email-change token", func(t *testing.T, s *mgrSuite, _ string) {
		f := s.fixture(t, nil)
		ctx := t.Context()
		u := f.user(t)
		d, err := f.M.RequestEmailChange(ctx, u.ID, Password, "new@example.com")
		if err != nil {
			t.Fatalf("RequestEmailChange: %v", err)
		}
		if err := f.M.UpdatePassword(ctx, u.ID, Password, NewPassword); err != nil {
			t.Fatalf("UpdatePassword: %v", err)
		}
		_, err = f.M.ConfirmEmailChange(ctx, d.Token)
		mgrWantInvalidToken(t, "ConfirmEmailChange after a password change", err)
	}},
}
