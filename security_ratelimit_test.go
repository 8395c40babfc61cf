package users_test

// Abuse from one client across many accounts: rate limits per client address
// and per identifier, counted before any work (issue 24, items 1 and 3).

import (
	"context"
	"errors"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// attacker is the address the tests' abusive client comes from.
const attacker = "203.0.113.66"

// from returns the test's context carrying a Client with the address ip.
func from(tb testing.TB, ip string) context.Context {
	return users.WithClient(tb.Context(), users.Client{IP: ip, UserAgent: "stuffer/1.0"})
}

// wantRateLimited fails the test unless err refuses action with a
// *LimitError matching ErrRateLimited and saying when to retry.
func wantRateLimited(tb testing.TB, err error, action users.RateAction, what string) *users.LimitError {
	tb.Helper()
	var le *users.LimitError
	if !errors.Is(err, users.ErrRateLimited) || !errors.As(err, &le) || le.Action != action || le.RetryAfter <= 0 {
		tb.Fatalf("%s: %v (%+v), want a *LimitError of %q matching ErrRateLimited with a RetryAfter", what, err, le, action)
	}
	return le
}

// Item 3: one client trying one password against 1,000 identifiers (some of
// them real accounts) gets exactly its login limit evaluated, whatever the
// accounts; the rest cost no bcrypt work and no lookup. The audit log shows
// the client's failures across accounts and the filled window, and
// EventStats counts the refusals.
func TestSecurity_CredentialStuffing(t *testing.T) {
	const limit, tries = 25, 1000
	f := newFixture(t, func(o *users.Options) {
		o.RateLimits = map[users.RateAction]users.RateLimit{users.ActionLogin: {PerClient: limit}}
	})
	for i := 0; i < tries; i += 100 {
		f.mustCreate(t, users.NewUser{Email: "user" + strconv.Itoa(i) + "@example.com"})
	}
	ctx := from(t, attacker)
	refused := 0
	for i := range tries {
		_, err := f.M.Login(ctx, "user"+strconv.Itoa(i)+"@example.com", "Winter2026!")
		switch {
		case errors.Is(err, users.ErrInvalidCredentials):
		case errors.Is(err, users.ErrRateLimited):
			refused++
		default:
			t.Fatalf("try %d: %v, want ErrInvalidCredentials or ErrRateLimited", i, err)
		}
	}
	if got := f.Compares.Load(); got != limit {
		t.Errorf("%d identifiers x 1 password from one address: %d bcrypt comparisons, want exactly the login limit %d", tries, got, limit)
	}
	if refused != tries-limit {
		t.Errorf("%d refused, want %d", refused, tries-limit)
	}
	if got := f.M.EventStats().RateLimited; got != uint64(tries-limit) {
		t.Errorf("EventStats.RateLimited = %d, want %d", got, tries-limit)
	}
	// The real accounts among the first 25 tried (user0) failed under their
	// own ID with the client's address; the filled window is one entry.
	page, err := f.M.Audit(t.Context(), users.AuditFilter{Types: []users.EventType{users.EventRateLimitReached, users.EventLoginFailed}, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	reached, failedUsers := 0, 0
	for _, e := range page.Entries {
		if e.IP != attacker {
			t.Errorf("entry %s without the client's address: IP %q", e.Type, e.IP)
		}
		switch {
		case e.Type == users.EventRateLimitReached:
			reached++
			if e.Reason != "client" || e.Data["action"] != string(users.ActionLogin) || e.UserID != "" {
				t.Errorf("rate_limit.reached: %+v, want Reason client, the login action, no user", e)
			}
		case e.UserID != "":
			failedUsers++
		}
	}
	if reached != 1 || failedUsers != 1 {
		t.Errorf("audit: %d rate_limit.reached and %d login.failed of real users, want 1 and 1 (user0, the only real one among the first %d)", reached, failedUsers, limit)
	}
	// Another client is not held back, and the lockout of user0 is untouched.
	if _, err := f.M.Login(from(t, "198.51.100.7"), "user0@example.com", storetest.Password); err != nil {
		t.Errorf("the owner of user0 from another address: %v", err)
	}
}

// Item 1: a window refuses with the time until it ends, and the same client
// is admitted again once it has; the refusal is the same whether the email of
// a request names someone or not, and per email across clients.
func TestSecurity_RateLimitRequests(t *testing.T) {
	t.Run("PasswordResetPerEmail", func(t *testing.T) {
		f := newFixture(t, nil)
		f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		def, _ := users.DefaultRateLimit(users.ActionPasswordReset)
		for _, email := range []string{"alice@example.com", "nobody@example.com"} {
			for i := range def.PerIdentifier {
				_, err := f.M.RequestPasswordReset(from(t, "198.51.100."+strconv.Itoa(i)), email)
				if err != nil && !errors.Is(err, users.ErrUnknownEmail) {
					t.Fatalf("%s request %d: %v", email, i, err)
				}
			}
			_, err := f.M.RequestPasswordReset(from(t, "198.51.100.99"), " "+email)
			le := wantRateLimited(t, err, users.ActionPasswordReset, email+" after its limit, from a new client")
			if le.RetryAfter != def.Window {
				t.Errorf("%s: RetryAfter %v, want %v", email, le.RetryAfter, def.Window)
			}
		}
	})
	t.Run("SignUpPerClient", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) {
			o.RateLimits = map[users.RateAction]users.RateLimit{users.ActionSignUp: {PerClient: 3, Window: time.Minute}}
		})
		ctx := from(t, attacker)
		for i := range 3 {
			if _, err := f.M.SignUp(ctx, users.NewUser{Email: f.Email(), Password: storetest.Password}); err != nil {
				t.Fatalf("sign-up %d: %v", i, err)
			}
		}
		_, err := f.M.SignUp(ctx, users.NewUser{Email: f.Email(), Password: storetest.Password})
		wantRateLimited(t, err, users.ActionSignUp, "the fourth sign-up in a minute")
		if n, _ := f.M.Count(t.Context(), users.Filter{}); n != 3 {
			t.Errorf("%d users after the refused sign-up, want 3: nothing stored", n)
		}
		if _, err := f.M.Create(ctx, users.NewUser{Email: f.Email(), Password: storetest.Password}); err != nil {
			t.Errorf("Create (an administrator's) from the same client: %v, want it not limited", err)
		}
		f.Clock.Advance(time.Minute)
		if _, err := f.M.SignUp(ctx, users.NewUser{Email: f.Email(), Password: storetest.Password}); err != nil {
			t.Errorf("a sign-up in the next window: %v", err)
		}
	})
	t.Run("IPv6Per64", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) {
			o.RateLimits = map[users.RateAction]users.RateLimit{users.ActionMagicLink: {PerClient: 2, PerIdentifier: -1}}
		})
		ask := func(ip string) error {
			_, err := f.M.RequestMagicLink(from(t, ip), f.Email())
			if errors.Is(err, users.ErrUnknownEmail) {
				return nil
			}
			return err
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(ask("2001:db8:1:2::1"))
		must(ask("2001:db8:1:2:ffff:ffff:ffff:ffff"))
		wantRateLimited(t, ask("2001:db8:1:2::abcd%eth0"), users.ActionMagicLink, "a third address of the same /64")
		must(ask("2001:db8:1:3::1")) // the next /64
		must(ask("192.0.2.1"))
		must(ask("::ffff:192.0.2.1")) // the same IPv4 client, mapped
		wantRateLimited(t, ask("192.0.2.1"), users.ActionMagicLink, "a third request of an IPv4 client")
	})
	t.Run("NoClientNoLimit", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) {
			o.RateLimits = map[users.RateAction]users.RateLimit{users.ActionLogin: {PerClient: 1, PerIdentifier: 1}}
		})
		for range 5 {
			if _, err := f.M.Login(t.Context(), "nobody@example.com", "whatever it is"); !errors.Is(err, users.ErrInvalidCredentials) {
				t.Fatalf("a login without a Client: %v, want ErrInvalidCredentials (not limited)", err)
			}
		}
	})
	t.Run("LoginPerIdentifierWhenSet", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) {
			o.RateLimits = map[users.RateAction]users.RateLimit{users.ActionLogin: {PerIdentifier: 2}}
		})
		for i := range 2 {
			f.M.Login(from(t, "198.51.100."+strconv.Itoa(i)), "Someone@Example.com", "wrong password here")
		}
		_, err := f.M.Login(from(t, "198.51.100.9"), " someone@example.com", "wrong password here")
		wantRateLimited(t, err, users.ActionLogin, "a third login for one identifier from a third client")
		if got := f.Compares.Load(); got != 2 {
			t.Errorf("%d comparisons, want 2", got)
		}
	})
	t.Run("Redeem", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) {
			o.RateLimits = map[users.RateAction]users.RateLimit{users.ActionRedeem: {PerClient: 2}}
		})
		ctx := from(t, attacker)
		for i := range 2 {
			if _, err := f.M.LoginWithMagicLink(ctx, "not-a-token"); !errors.Is(err, users.ErrInvalidToken) {
				t.Fatalf("redemption %d: %v", i, err)
			}
		}
		for _, redeem := range []func() error{
			func() error { _, err := f.M.LoginWithMagicLink(ctx, "x"); return err },
			func() error { return f.M.ResetPassword(ctx, "x", storetest.NewPassword) },
			func() error { _, err := f.M.VerifyEmail(ctx, "x"); return err },
			func() error { _, err := f.M.AcceptInvitation(ctx, "x", storetest.NewPassword); return err },
			func() error { _, err := f.M.ConfirmEmailChange(ctx, "x"); return err },
		} {
			wantRateLimited(t, redeem(), users.ActionRedeem, "a redemption over the limit")
		}
	})
	t.Run("SecondFactor", func(t *testing.T) {
		f := newMFAFixture(t, func(o *users.Options) {
			o.RateLimits = map[users.RateAction]users.RateLimit{users.ActionSecondFactor: {PerClient: 2}}
		})
		u := f.mustCreate(t, users.NewUser{Email: f.Email()})
		secret, _ := f.MustEnrolTOTP(t, u.ID)
		ctx := from(t, attacker)
		_, err := f.M.Login(ctx, u.Email, storetest.Password)
		var c *users.Challenge
		if !errors.As(err, &c) {
			t.Fatalf("Login: %v, want a Challenge", err)
		}
		for i := range 2 {
			if _, err := f.M.CompleteLogin(ctx, c.Token, storetest.WrongTOTPCode(t, secret, f.Clock.Now(), i)); !errors.Is(err, users.ErrInvalidCode) {
				t.Fatalf("code %d: %v, want ErrInvalidCode", i, err)
			}
		}
		_, err = f.M.CompleteLogin(ctx, c.Token, storetest.WrongTOTPCode(t, secret, f.Clock.Now(), 2))
		wantRateLimited(t, err, users.ActionSecondFactor, "a third code from the client")
		if ls, err := f.M.LockState(t.Context(), u.ID); err != nil || ls.ConsecutiveFailures != 3 {
			t.Errorf("LockState after 2 codes checked and 1 refused: %+v, %v; want 3 failures (the login and 2 codes), the refused code not counted", ls, err)
		}
	})
}

// Item 1: the HTTP answer to a refusal for a while is 429 with Retry-After,
// for a rate limit and for today's lockout alike.
func TestSecurity_RetryAfter(t *testing.T) {
	f := newFixture(t, func(o *users.Options) {
		o.MaxFailedLogins = 2
		o.RateLimits = map[users.RateAction]users.RateLimit{users.ActionLogin: {PerClient: 3, Window: 90 * time.Second}}
	})
	f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
	answer := func(err error) (int, string, string) {
		w := httptest.NewRecorder()
		users.WriteError(w, err)
		_, code, _ := users.HTTPError(err)
		return w.Code, code, w.Header().Get("Retry-After")
	}
	ctx := from(t, attacker)
	for range 2 {
		f.M.Login(ctx, "alice@example.com", "wrong password here")
	}
	f.Clock.Advance(time.Second + time.Millisecond)
	_, err := f.M.Login(ctx, "alice@example.com", "wrong password here")
	if status, code, ra := answer(err); status != 429 || code != users.CodeAccountLocked || ra != "899" {
		t.Errorf("a locked account: %d %s Retry-After %q (%v), want 429 account_locked 899 (15 minutes less 1.001s, rounded up)", status, code, ra, err)
	}
	_, err = f.M.Login(ctx, "alice@example.com", "wrong password here")
	if status, code, ra := answer(err); status != 429 || code != users.CodeRateLimited || ra != "89" {
		t.Errorf("over the login limit: %d %s Retry-After %q (%v), want 429 rate_limited 89", status, code, ra, err)
	}
	var le *users.LimitError
	if !errors.As(err, &le) || le.RetryAfter != 90*time.Second-time.Second-time.Millisecond {
		t.Errorf("LimitError %+v, want RetryAfter 88.999s", le)
	}
	if _, _, ra := answer(users.ErrAccountLocked); ra != "" {
		t.Errorf("a bare ErrAccountLocked: Retry-After %q, want none", ra)
	}
}

// Options.RateLimits and RateLimitIPv6Prefix out of range are refused by
// New, naming the option; so is Limit for an action with no limit.
func TestNew_RateLimitOptions(t *testing.T) {
	for _, tc := range []struct {
		o     users.Options
		field string
	}{
		{users.Options{RateLimits: map[users.RateAction]users.RateLimit{users.ActionLogin: {Window: -time.Second}}}, `options.RateLimits["login"].Window`},
		{users.Options{RateLimits: map[users.RateAction]users.RateLimit{"mine": {PerClient: 5}}}, `options.RateLimits["mine"].Window`},
		{users.Options{RateLimits: map[users.RateAction]users.RateLimit{"": {PerClient: 5, Window: time.Second}}}, "options.RateLimits"},
		{users.Options{RateLimitIPv6Prefix: 129}, "options.RateLimitIPv6Prefix"},
		{users.Options{RateLimitIPv6Prefix: -1}, "options.RateLimitIPv6Prefix"},
	} {
		tc.o.BcryptCost, tc.o.InsecureLowBcryptCostForTests = 4, true
		_, err := users.New(users.NewMemoryStore(), &tc.o)
		var ve *users.ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("New(%+v): %v, want a *ValidationError on %s", tc.o, err, tc.field)
		}
	}
	f := newFixture(t, nil)
	var ve *users.ValidationError
	if err := f.M.Limit(from(t, attacker), "unconfigured", ""); !errors.As(err, &ve) || ve.Field != "action" {
		t.Errorf("Limit of an action without a limit: %v, want a *ValidationError on action", err)
	}
}
