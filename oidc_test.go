package users_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/internal/oidctest"
	"github.com/userkit/users/storetest"
)

// providerFixture is a Manager with the loopback provider "test" configured.
type providerFixture struct {
	*Fixture
	op *oidctest.Server
}

var (
	alice   = oidctest.Account{Subject: "alice-1", Email: "alice@example.com", EmailVerified: true, Name: "Alice"}
	mallory = oidctest.Account{Subject: "mallory-1", Email: "alice@example.com", EmailVerified: false, Name: "Mallory"}
)

func newProviderFixture(t *testing.T, edit func(p *users.Provider)) *providerFixture {
	t.Helper()
	return newProviderFixtureWith(t, edit, nil)
}

// newProviderFixtureWith is newProviderFixture with the Manager's Options
// edited too.
func newProviderFixtureWith(t *testing.T, edit func(p *users.Provider), editOptions func(o *users.Options)) *providerFixture {
	t.Helper()
	op := oidctest.New(t, alice, mallory)
	op.SetAutoApprove(alice.Subject)
	p := users.Provider{Name: "test", Issuer: op.URL, ClientID: op.ClientID, ClientSecret: op.ClientSecret,
		RedirectURL: "http://app.example/callback", AllowSignUp: true, HTTPClient: op.Client()}
	if edit != nil {
		edit(&p)
	}
	f := newFixture(t, func(o *users.Options) {
		o.Providers = []users.Provider{p}
		storetest.WithMFAKey(o)
		if editOptions != nil {
			editOptions(o)
		}
	})
	op.SetNow(f.Clock.Now)
	return &providerFixture{Fixture: f, op: op}
}

// authorize follows the provider's URL as a browser would, up to the
// redirect to the application's callback, and returns the callback's query.
func authorize(t *testing.T, client *http.Client, r *users.ProviderRedirect) url.Values {
	t.Helper()
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("authorization: %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
	return loc.Query()
}

// signIn runs a whole sign-in flow and returns FinishProvider's answer.
func (f *providerFixture) signIn(t *testing.T) (*users.ProviderResult, error) {
	t.Helper()
	r, err := f.M.BeginProviderSignIn(t.Context(), "test", "/after")
	if err != nil {
		t.Fatalf("BeginProviderSignIn: %v", err)
	}
	return f.M.FinishProvider(t.Context(), r.Binding, authorize(t, f.op.Client(), r))
}

func TestProvider_SignUpThenSignIn(t *testing.T) {
	f := newProviderFixture(t, nil)
	res, err := f.signIn(t)
	if err != nil {
		t.Fatalf("first sign-in: %v", err)
	}
	if res.Outcome != users.ProviderSignedUp || res.Session == nil || res.Session.Token == "" || res.ReturnTo != "/after" {
		t.Fatalf("first sign-in: %+v, want signed_up with a session and ReturnTo /after", res)
	}
	u := f.MustGet(t, res.Session.UserID)
	if u.Email != alice.Email || !u.EmailVerified {
		t.Errorf("new user: email %q verified %v, want %q verified (the provider verified it)", u.Email, u.EmailVerified, alice.Email)
	}
	if got := res.Session.Methods; len(got) != 1 || got[0] != users.MethodProvider {
		t.Errorf("session methods %v, want [provider]", got)
	}
	f.Clock.Advance(time.Minute)
	again, err := f.signIn(t)
	if err != nil {
		t.Fatalf("second sign-in: %v", err)
	}
	if again.Outcome != users.ProviderSignedIn || again.Session.UserID != u.ID {
		t.Fatalf("second sign-in: %+v, want signed_in as %s", again, u.ID)
	}
	ids, err := f.M.ListIdentities(t.Context(), u.ID)
	if err != nil || len(ids) != 1 || ids[0].Subject != alice.Subject || ids[0].Issuer != f.op.URL || ids[0].Provider != "test" {
		t.Fatalf("ListIdentities: %+v, %v", ids, err)
	}
	// Suspension applies to a provider sign-in as to a password login.
	if _, err := f.M.Update(t.Context(), u.ID, users.UserUpdate{Status: ptr(users.StatusSuspended)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.signIn(t); !errors.Is(err, users.ErrAccountDisabled) {
		t.Fatalf("sign-in of a suspended user: %v, want ErrAccountDisabled", err)
	}
}

func TestProvider_Refusals(t *testing.T) {
	for _, tc := range []struct {
		name      string
		misbehave oidctest.Misbehave
		want      error
	}{
		{"OtherIssuer", oidctest.Misbehave{Issuer: "https://evil.example"}, users.ErrProviderResponse},
		{"OtherAudience", oidctest.Misbehave{Audience: "another-client"}, users.ErrProviderResponse},
		{"Expired", oidctest.Misbehave{Expired: true}, users.ErrProviderResponse},
		{"WrongNonce", oidctest.Misbehave{Nonce: "not-the-nonce"}, users.ErrProviderResponse},
		{"BadSignature", oidctest.Misbehave{OtherKey: true}, users.ErrProviderResponse},
		{"IssParamMismatch", oidctest.Misbehave{IssParam: "https://evil.example"}, users.ErrProviderResponse},
		{"IssParamMissing", oidctest.Misbehave{NoIssParam: true}, users.ErrProviderResponse},
		{"NoIDToken", oidctest.Misbehave{NoIDToken: true}, users.ErrProviderResponse},
		{"CodeRefused", oidctest.Misbehave{RefuseTokens: true}, users.ErrProviderResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newProviderFixture(t, nil)
			f.op.SetMisbehave(tc.misbehave)
			res, err := f.signIn(t)
			if !errors.Is(err, tc.want) {
				t.Fatalf("FinishProvider: %+v, %v; want %v", res, err, tc.want)
			}
			if n, _ := f.M.Count(t.Context(), users.Filter{}); n != 0 {
				t.Errorf("%d users exist after a refused sign-in, want 0", n)
			}
		})
	}

	t.Run("WrongState", func(t *testing.T) {
		f := newProviderFixture(t, nil)
		r, err := f.M.BeginProviderSignIn(t.Context(), "test", "")
		if err != nil {
			t.Fatal(err)
		}
		q := authorize(t, f.op.Client(), r)
		q.Set("state", q.Get("state")+"x")
		if _, err := f.M.FinishProvider(t.Context(), r.Binding, q); !errors.Is(err, users.ErrProviderState) {
			t.Fatalf("another state: %v, want ErrProviderState", err)
		}
		if got := f.op.TokenRequests(); got != 0 {
			t.Errorf("the code was sent to the token endpoint %d times for a wrong state, want 0", got)
		}
	})
	t.Run("ReplayedState", func(t *testing.T) {
		f := newProviderFixture(t, nil)
		r, err := f.M.BeginProviderSignIn(t.Context(), "test", "")
		if err != nil {
			t.Fatal(err)
		}
		q := authorize(t, f.op.Client(), r)
		if _, err := f.M.FinishProvider(t.Context(), r.Binding, q); err != nil {
			t.Fatalf("first use: %v", err)
		}
		if _, err := f.M.FinishProvider(t.Context(), r.Binding, q); !errors.Is(err, users.ErrProviderState) {
			t.Fatalf("second use: %v, want ErrProviderState", err)
		}
	})
	t.Run("OtherBrowser", func(t *testing.T) {
		f := newProviderFixture(t, nil)
		attacker, err := f.M.BeginProviderSignIn(t.Context(), "test", "")
		if err != nil {
			t.Fatal(err)
		}
		victim, err := f.M.BeginProviderSignIn(t.Context(), "test", "")
		if err != nil {
			t.Fatal(err)
		}
		q := authorize(t, f.op.Client(), attacker)
		if _, err := f.M.FinishProvider(t.Context(), victim.Binding, q); !errors.Is(err, users.ErrProviderState) {
			t.Fatalf("the attacker's callback in the victim's browser: %v, want ErrProviderState", err)
		}
	})
	t.Run("ExpiredFlow", func(t *testing.T) {
		f := newProviderFixture(t, nil)
		r, err := f.M.BeginProviderSignIn(t.Context(), "test", "")
		if err != nil {
			t.Fatal(err)
		}
		q := authorize(t, f.op.Client(), r)
		f.Clock.Advance(users.DefaultProviderFlowTTL)
		if _, err := f.M.FinishProvider(t.Context(), r.Binding, q); !errors.Is(err, users.ErrProviderState) {
			t.Fatalf("after the flow's TTL: %v, want ErrProviderState", err)
		}
	})
	t.Run("Denied", func(t *testing.T) {
		f := newProviderFixture(t, nil)
		r, err := f.M.BeginProviderSignIn(t.Context(), "test", "")
		if err != nil {
			t.Fatal(err)
		}
		q := authorize(t, f.op.Client(), r)
		q.Del("code")
		q.Set("error", "access_denied")
		if _, err := f.M.FinishProvider(t.Context(), r.Binding, q); !errors.Is(err, users.ErrProviderDenied) {
			t.Fatalf("error=access_denied: %v, want ErrProviderDenied", err)
		}
	})
	t.Run("NoSignUp", func(t *testing.T) {
		f := newProviderFixture(t, func(p *users.Provider) { p.AllowSignUp = false })
		if _, err := f.signIn(t); !errors.Is(err, users.ErrNoAccount) {
			t.Fatalf("sign-in without an account or sign-up: %v, want ErrNoAccount", err)
		}
	})
}

// With Options.RequireVerifiedEmail a sign-in through a provider follows
// Login's rule: a user whose email is not verified gets no session, whether
// the sign-in just created them or their identity was linked before, until
// the email is verified.
func TestProvider_RequireVerifiedEmail(t *testing.T) {
	f := newProviderFixtureWith(t, nil, func(o *users.Options) { o.RequireVerifiedEmail = true })
	bob := oidctest.Account{Subject: "bob-1", Email: "bob@example.com", EmailVerified: false, Name: "Bob"}
	f.op.SetAccounts(alice, bob)
	f.op.SetAutoApprove(bob.Subject)

	noSession := func(t *testing.T, step string, res *users.ProviderResult, err error, want users.ProviderOutcome) string {
		t.Helper()
		if !errors.Is(err, users.ErrEmailNotVerified) {
			t.Fatalf("%s: %+v, %v; want ErrEmailNotVerified", step, res, err)
		}
		if res == nil || res.Outcome != want || res.Session != nil || res.Challenge != nil || res.Identity == nil || res.Identity.Subject != bob.Subject {
			t.Fatalf("%s: result %+v, want outcome %s with bob's identity and no session or challenge", step, res, want)
		}
		ss, err := f.M.Sessions(t.Context(), res.Identity.UserID)
		if err != nil || len(ss) != 0 {
			t.Fatalf("%s: sessions of the unverified user: %d, %v; want none", step, len(ss), err)
		}
		return res.Identity.UserID
	}
	res, err := f.signIn(t)
	id := noSession(t, "first sign-in", res, err, users.ProviderSignedUp)
	if u := f.MustGet(t, id); u.Email != bob.Email || u.EmailVerified {
		t.Fatalf("new user: email %q verified %v, want %q unverified", u.Email, u.EmailVerified, bob.Email)
	}
	f.Clock.Advance(time.Minute)
	res, err = f.signIn(t)
	if got := noSession(t, "sign-in with the linked identity", res, err, users.ProviderSignedIn); got != id {
		t.Fatalf("the second sign-in names user %s, want %s", got, id)
	}
	es, err := f.Store.ListAudit(t.Context(), users.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	refusals := 0
	for _, e := range es {
		if e.Type == users.EventLoginSucceeded {
			t.Errorf("audit: %s of %s, want none", e.Type, e.UserID)
		}
		if e.Type == users.EventLoginFailed && e.UserID == id && e.Reason == "email_not_verified" && e.Data["provider"] == "test" {
			refusals++
		}
	}
	if refusals != 2 {
		t.Errorf("audit: %d login.failed email_not_verified entries for the user, want 2", refusals)
	}

	// The mail the application sends with the result's user lets them in.
	d, err := f.M.RequestEmailVerification(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.VerifyEmail(t.Context(), d.Token); err != nil {
		t.Fatal(err)
	}
	res, err = f.signIn(t)
	if err != nil || res.Outcome != users.ProviderSignedIn || res.Session == nil || res.Session.UserID != id {
		t.Fatalf("sign-in after verification: %+v, %v; want signed_in with a session", res, err)
	}
}

// An application with one callback route per provider names the route's
// provider: a flow begun with another one is refused before its code
// reaches any token endpoint.
func TestManager_FinishProviderAt(t *testing.T) {
	other := oidctest.New(t, alice)
	other.SetAutoApprove(alice.Subject)
	f := newProviderFixtureWith(t, nil, func(o *users.Options) {
		o.Providers = append(o.Providers, users.Provider{Name: "other", Issuer: other.URL, ClientID: other.ClientID,
			ClientSecret: other.ClientSecret, RedirectURL: "http://app.example/callback/other", AllowSignUp: true,
			HTTPClient: other.Client()})
	})
	other.SetNow(f.Clock.Now)
	begin := func(t *testing.T) (*users.ProviderRedirect, url.Values) {
		t.Helper()
		r, err := f.M.BeginProviderSignIn(t.Context(), "test", "")
		if err != nil {
			t.Fatal(err)
		}
		return r, authorize(t, f.op.Client(), r)
	}
	tokenRequests := func() int { return f.op.TokenRequests() + other.TokenRequests() }

	t.Run("OK", func(t *testing.T) {
		r, q := begin(t)
		res, err := f.M.FinishProviderAt(t.Context(), "test", r.Binding, q)
		if err != nil || res.Outcome != users.ProviderSignedUp || res.Session == nil {
			t.Fatalf("FinishProviderAt at the flow's provider: %+v, %v; want signed_up", res, err)
		}
	})
	t.Run("ProviderMismatchError", func(t *testing.T) {
		r, q := begin(t)
		before := tokenRequests()
		_, err := f.M.FinishProviderAt(t.Context(), "other", r.Binding, q)
		var pm *users.ProviderMismatchError
		if !errors.As(err, &pm) || pm.Flow != "test" || pm.Callback != "other" || !errors.Is(err, users.ErrProviderState) {
			t.Fatalf("a flow of test at other's callback: %v, want *ProviderMismatchError{test other} matching ErrProviderState", err)
		}
		if got := tokenRequests() - before; got != 0 {
			t.Errorf("the code was sent to a token endpoint %d times, want 0", got)
		}
		// The flow is used up: the same callback at the right route is refused too.
		if _, err := f.M.FinishProviderAt(t.Context(), "test", r.Binding, q); !errors.Is(err, users.ErrProviderState) || errors.As(err, &pm) {
			t.Fatalf("the refused flow again at its own route: %v, want ErrProviderState", err)
		}
		es, err := f.Store.ListAudit(t.Context(), users.AuditQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range es {
			found = found || e.Type == users.EventLoginFailed && e.Reason == "provider_mismatch" && e.Data["provider"] == "test"
		}
		if !found {
			t.Error("audit: no login.failed provider_mismatch entry for provider test")
		}
	})
	t.Run("ErrUnknownProvider", func(t *testing.T) {
		r, q := begin(t)
		if _, err := f.M.FinishProviderAt(t.Context(), "nope", r.Binding, q); !errors.Is(err, users.ErrUnknownProvider) {
			t.Fatalf("an unknown route provider: %v, want ErrUnknownProvider", err)
		}
		if _, err := f.M.FinishProviderAt(t.Context(), "test", r.Binding, q); err != nil {
			t.Fatalf("the flow after an unknown route provider: %v, want it unconsumed", err)
		}
	})
}

func TestProvider_ReturnToIsLocal(t *testing.T) {
	f := newProviderFixture(t, nil)
	for _, p := range []string{"https://evil.example/", "//evil.example", "/\\evil.example", "evil", "/x\r\nLocation: y", "javascript:alert(1)"} {
		_, err := f.M.BeginProviderSignIn(t.Context(), "test", p)
		var ve *users.ValidationError
		if !errors.As(err, &ve) || ve.Field != "return_to" {
			t.Errorf("return to %q: %v, want a *ValidationError on return_to", p, err)
		}
	}
	for _, p := range []string{"", "/", "/account?tab=2"} {
		if _, err := f.M.BeginProviderSignIn(t.Context(), "test", p); err != nil {
			t.Errorf("return to %q: %v", p, err)
		}
	}
}

func TestProvider_LinkByEmail(t *testing.T) {
	t.Run("OffByDefault", func(t *testing.T) {
		f := newProviderFixture(t, nil)
		u := f.mustCreate(t, users.NewUser{Email: alice.Email})
		markVerified(t, f, u.ID)
		res, err := f.signIn(t)
		if err != nil || res.Outcome != users.ProviderLinkRequired || res.Email != alice.Email || res.Session != nil {
			t.Fatalf("sign-in with a taken email: %+v, %v; want link_required", res, err)
		}
		assertNoIdentity(t, f, u.ID)
	})
	t.Run("UnverifiedAtProvider", func(t *testing.T) {
		f := newProviderFixture(t, func(p *users.Provider) { p.LinkByEmail = true })
		u := f.mustCreate(t, users.NewUser{Email: alice.Email})
		markVerified(t, f, u.ID)
		f.op.SetAutoApprove(mallory.Subject) // says alice's address, unverified
		res, err := f.signIn(t)
		if err != nil || res.Outcome != users.ProviderLinkRequired || res.Session != nil {
			t.Fatalf("email_verified false: %+v, %v; want link_required", res, err)
		}
		assertNoIdentity(t, f, u.ID)
	})
	t.Run("UnverifiedLocally", func(t *testing.T) {
		f := newProviderFixture(t, func(p *users.Provider) { p.LinkByEmail = true })
		u := f.mustCreate(t, users.NewUser{Email: alice.Email})
		res, err := f.signIn(t)
		if err != nil || res.Outcome != users.ProviderLinkRequired {
			t.Fatalf("local email unverified: %+v, %v; want link_required", res, err)
		}
		assertNoIdentity(t, f, u.ID)
	})
	t.Run("BothVerified", func(t *testing.T) {
		f := newProviderFixture(t, func(p *users.Provider) { p.LinkByEmail = true })
		u := f.mustCreate(t, users.NewUser{Email: alice.Email})
		markVerified(t, f, u.ID)
		res, err := f.signIn(t)
		if err != nil || res.Outcome != users.ProviderSignedIn || res.Session.UserID != u.ID {
			t.Fatalf("both verified: %+v, %v; want signed_in as %s", res, err, u.ID)
		}
	})
}

func markVerified(t *testing.T, f *providerFixture, id string) {
	t.Helper()
	if _, err := f.Store.UpdateUser(t.Context(), id, func(r *users.UserRecord) (users.Revoke, error) {
		r.EmailVerified = true
		return users.Revoke{}, nil
	}); err != nil {
		t.Fatal(err)
	}
}

func assertNoIdentity(t *testing.T, f *providerFixture, id string) {
	t.Helper()
	if ids, err := f.M.ListIdentities(t.Context(), id); err != nil || len(ids) != 0 {
		t.Errorf("identities of %s: %+v, %v; want none", id, ids, err)
	}
}

func TestProvider_LinkAndUnlink(t *testing.T) {
	f := newProviderFixture(t, func(p *users.Provider) { p.AllowSignUp = false })
	u := f.mustCreate(t, users.NewUser{Email: "bob@example.com"})
	s := f.MustLogin(t, "bob@example.com", storetest.Password)
	ctx := users.NewContext(t.Context(), s)

	f.Clock.Advance(users.DefaultReauthWindow + time.Second)
	if _, err := f.M.BeginProviderLink(ctx, u.ID, "test", "/account"); !errors.Is(err, users.ErrReauthRequired) {
		t.Fatalf("link with a stale session: %v, want ErrReauthRequired", err)
	}
	s = f.MustLogin(t, "bob@example.com", storetest.Password)
	ctx = users.NewContext(t.Context(), s)
	r, err := f.M.BeginProviderLink(ctx, u.ID, "test", "/account")
	if err != nil {
		t.Fatal(err)
	}
	q := authorize(t, f.op.Client(), r)
	if _, err := f.M.FinishProvider(t.Context(), r.Binding, q); !errors.Is(err, users.ErrProviderState) {
		t.Fatalf("a link's callback without the user's session: %v, want ErrProviderState", err)
	}
	r, err = f.M.BeginProviderLink(ctx, u.ID, "test", "/account")
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.M.FinishProvider(ctx, r.Binding, authorize(t, f.op.Client(), r))
	if err != nil || res.Outcome != users.ProviderLinked || res.Identity.UserID != u.ID || res.ReturnTo != "/account" {
		t.Fatalf("link: %+v, %v", res, err)
	}
	// The provider now signs bob in (alice's identity at the provider is
	// bob's here: the email does not matter once linked).
	in, err := f.signIn(t)
	if err != nil || in.Outcome != users.ProviderSignedIn || in.Session.UserID != u.ID {
		t.Fatalf("sign-in after linking: %+v, %v", in, err)
	}

	// Another user cannot link the same identity.
	other := f.mustCreate(t, users.NewUser{Email: "carol@example.com"})
	os := f.MustLogin(t, "carol@example.com", storetest.Password)
	octx := users.NewContext(t.Context(), os)
	r, err = f.M.BeginProviderLink(octx, other.ID, "test", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.FinishProvider(octx, r.Binding, authorize(t, f.op.Client(), r)); !errors.Is(err, users.ErrIdentityTaken) {
		t.Fatalf("linking another user's identity: %v, want ErrIdentityTaken", err)
	}

	// Without a password, the identity is the last way to sign in.
	if _, err := f.Store.RemovePassword(t.Context(), u.ID, f.Clock.Now(), nil); err != nil {
		t.Fatal(err)
	}
	if err := f.M.UnlinkIdentity(ctx, u.ID, res.Identity.ID); !errors.Is(err, users.ErrLastSignInMethod) {
		t.Fatalf("unlinking the last way to sign in: %v, want ErrLastSignInMethod", err)
	}
	if err := f.M.UnlinkIdentity(ctx, other.ID, res.Identity.ID); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("unlinking another user's identity: %v, want ErrNotFound", err)
	}
}

func TestProvider_SecondFactorStillAsked(t *testing.T) {
	f := newProviderFixture(t, nil)
	res, err := f.signIn(t)
	if err != nil {
		t.Fatal(err)
	}
	f.MustEnrolTOTP(t, res.Session.UserID)
	again, err := f.signIn(t)
	if err != nil {
		t.Fatal(err)
	}
	if again.Session != nil || again.Challenge == nil {
		t.Fatalf("sign-in of a user with TOTP: %+v; want a Challenge and no session", again)
	}
}

func TestProvider_GitHub(t *testing.T) {
	gh := oidctest.NewGitHub(t, oidctest.GitHubAccount{ID: 42, Login: "octo", Name: "Octo Cat", PrimaryEmail: "octo@example.com", EmailVerified: true})
	f := newFixture(t, func(o *users.Options) {
		p := users.GitHub(gh.ClientID, gh.ClientSecret, "http://app.example/callback")
		p.OAuth2 = users.GitHubAdapter(gh.URL, gh.URL)
		p.AllowSignUp = true
		p.HTTPClient = &http.Client{}
		o.Providers = []users.Provider{p}
	})
	r, err := f.M.BeginProviderSignIn(t.Context(), "github", "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.M.FinishProvider(t.Context(), r.Binding, authorize(t, &http.Client{}, r))
	if err != nil || res.Outcome != users.ProviderSignedUp {
		t.Fatalf("GitHub sign-up: %+v, %v", res, err)
	}
	u := f.MustGet(t, res.Session.UserID)
	if u.Email != "octo@example.com" || !u.EmailVerified || res.Identity.Subject != "42" || res.Identity.Issuer != "github" {
		t.Errorf("GitHub user %+v, identity %+v", u, res.Identity)
	}
	// An unverified primary email makes an unverified user.
	gh.SetAccount(oidctest.GitHubAccount{ID: 43, Login: "newbie", PrimaryEmail: "newbie@example.com"})
	r, err = f.M.BeginProviderSignIn(t.Context(), "github", "")
	if err != nil {
		t.Fatal(err)
	}
	res, err = f.M.FinishProvider(t.Context(), r.Binding, authorize(t, &http.Client{}, r))
	if err != nil || res.Outcome != users.ProviderSignedUp {
		t.Fatalf("GitHub sign-up: %+v, %v", res, err)
	}
	if u := f.MustGet(t, res.Session.UserID); u.EmailVerified {
		t.Errorf("a user made from an unverified GitHub email is verified")
	}
}

func TestNew_Providers(t *testing.T) {
	good := users.Provider{Name: "ok", Issuer: "https://id.example", ClientID: "c", RedirectURL: "https://app.example/cb"}
	for name, edit := range map[string]func(p *users.Provider){
		"BadName":     func(p *users.Provider) { p.Name = "Bad Name" },
		"NoClientID":  func(p *users.Provider) { p.ClientID = "" },
		"NoRedirect":  func(p *users.Provider) { p.RedirectURL = "" },
		"HTTPIssuer":  func(p *users.Provider) { p.Issuer = "http://id.example" },
		"BothKinds":   func(p *users.Provider) { p.OAuth2 = users.GitHubAdapter("", "") },
		"NeitherKind": func(p *users.Provider) { p.Issuer = "" },
		"TokensNoKey": func(p *users.Provider) { p.StoreTokens = true },
		"AdapterProfile": func(p *users.Provider) {
			p.Issuer, p.OAuth2 = "", &users.OAuth2Adapter{AuthURL: "https://a.example", TokenURL: "https://a.example/t"}
		},
	} {
		p := good
		edit(&p)
		_, err := users.New(users.NewMemoryStore(), &users.Options{Providers: []users.Provider{p}})
		var ve *users.ValidationError
		if !errors.As(err, &ve) || ve.Field != "options.Providers" {
			t.Errorf("%s: %v, want a *ValidationError on options.Providers", name, err)
		}
	}
	_, err := users.New(users.NewMemoryStore(), &users.Options{Providers: []users.Provider{good, good}})
	if !errors.Is(err, users.ErrInvalidInput) {
		t.Errorf("a name twice: %v, want ErrInvalidInput", err)
	}
}

func TestProvider_AuditHoldsNoSecret(t *testing.T) {
	f := newProviderFixture(t, nil)
	r, err := f.M.BeginProviderSignIn(t.Context(), "test", "")
	if err != nil {
		t.Fatal(err)
	}
	q := authorize(t, f.op.Client(), r)
	res, err := f.M.FinishProvider(t.Context(), r.Binding, q)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.FinishProvider(t.Context(), r.Binding, q); !errors.Is(err, users.ErrProviderState) {
		t.Fatal(err)
	}
	es, err := f.Store.ListAudit(t.Context(), users.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(es)
	for what, secret := range map[string]string{"code": q.Get("code"), "state": q.Get("state"), "binding": r.Binding, "session token": res.Session.Token} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the audit log holds the %s", what)
		}
	}
	types := map[users.EventType]string{}
	for _, e := range es {
		types[e.Type] = e.Data["provider"] + "/" + e.Reason
	}
	for typ, want := range map[users.EventType]string{
		users.EventUserCreated: "test/", users.EventIdentityLinked: "test/", users.EventLoginSucceeded: "test/",
		users.EventLoginFailed: "/provider_state",
	} {
		if got := types[typ]; got != want {
			t.Errorf("%s entry: provider/reason %q, want %q", typ, got, want)
		}
	}
}

func TestProvider_EmailChangeAtProviderChangesNothing(t *testing.T) {
	f := newProviderFixture(t, nil)
	res, err := f.signIn(t)
	if err != nil {
		t.Fatal(err)
	}
	changed := alice
	changed.Email = "someone-else@example.com"
	f.op.SetAccounts(changed)
	again, err := f.signIn(t)
	if err != nil || again.Outcome != users.ProviderSignedIn || again.Session.UserID != res.Session.UserID {
		t.Fatalf("sign-in after the provider changed the email: %+v, %v; want the same user", again, err)
	}
	if u := f.MustGet(t, res.Session.UserID); u.Email != alice.Email {
		t.Errorf("the user's email became %q, want %q kept", u.Email, alice.Email)
	}
	if ids, _ := f.M.ListIdentities(t.Context(), res.Session.UserID); len(ids) != 1 || ids[0].Email != changed.Email {
		t.Errorf("identities %+v, want one recording the provider's new email", ids)
	}
}

func TestHTTPError_Provider(t *testing.T) {
	for err, want := range map[error]int{
		users.ErrProviderState: 401, users.ErrProviderDenied: 401, users.ErrProviderResponse: 401,
		users.ErrNoAccount: 403, users.ErrIdentityTaken: 409, users.ErrLastSignInMethod: 409, users.ErrUnknownProvider: 404,
	} {
		if got, code, _ := users.HTTPError(fmt.Errorf("wrapped: %w", err)); got != want || code == users.CodeInternal {
			t.Errorf("HTTPError(%v) = %d %s, want %d", err, got, code, want)
		}
	}
}

func TestProvider_StoredTokens(t *testing.T) {
	t.Run("NotByDefault", func(t *testing.T) {
		f := newProviderFixture(t, nil)
		res, err := f.signIn(t)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.M.ProviderTokens(t.Context(), res.Session.UserID, res.Identity.ID); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("ProviderTokens without StoreTokens: %v, want ErrNotFound", err)
		}
		c, err := f.Store.GetCredential(t.Context(), users.CredentialOIDC, res.Identity.ID)
		if err != nil || strings.Contains(string(c.Data), "token") {
			t.Errorf("the identity's data %q (%v) holds tokens", c.Data, err)
		}
	})
	t.Run("Sealed", func(t *testing.T) {
		f := newProviderFixture(t, func(p *users.Provider) { p.StoreTokens = true })
		res, err := f.signIn(t)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := f.M.ProviderTokens(t.Context(), res.Session.UserID, res.Identity.ID)
		if err != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
			t.Fatalf("ProviderTokens: %+v, %v; want the access and refresh tokens", tok, err)
		}
		c, err := f.Store.GetCredential(t.Context(), users.CredentialOIDC, res.Identity.ID)
		if err != nil {
			t.Fatal(err)
		}
		var stored struct{ Tokens []byte }
		if err := json.Unmarshal(c.Data, &stored); err != nil || len(stored.Tokens) == 0 {
			t.Fatalf("the stored identity %q (%v) has no sealed tokens", c.Data, err)
		}
		for _, secret := range []string{tok.AccessToken, tok.RefreshToken} {
			if strings.Contains(string(c.Data), secret) || strings.Contains(string(stored.Tokens), secret) {
				t.Errorf("the stored identity holds a provider token in clear")
			}
		}
		// Sealed for this user and identity: another user's ID does not open it.
		if _, err := f.M.ProviderTokens(t.Context(), "someone-else", res.Identity.ID); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("ProviderTokens for another user: %v, want ErrNotFound", err)
		}
		f.Clock.Advance(time.Minute)
		again, err := f.signIn(t)
		if err != nil {
			t.Fatal(err)
		}
		if tok2, err := f.M.ProviderTokens(t.Context(), again.Session.UserID, again.Identity.ID); err != nil || tok2.AccessToken == tok.AccessToken {
			t.Errorf("after another sign-in: %+v, %v; want the new tokens", tok2, err)
		}
	})
}

func TestProvider_SessionsEndLikeOthers(t *testing.T) {
	f := newProviderFixture(t, nil)
	res, err := f.signIn(t)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.M.LogoutAll(t.Context(), res.Session.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.ValidateToken(t.Context(), res.Session.Token); !errors.Is(err, users.ErrInvalidToken) {
		t.Errorf("a provider session after LogoutAll: %v, want ErrInvalidToken", err)
	}
	again, err := f.signIn(t)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.M.Remove(t.Context(), again.Session.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.ValidateToken(t.Context(), again.Session.Token); !errors.Is(err, users.ErrInvalidToken) {
		t.Errorf("a provider session after its user's removal: %v, want ErrInvalidToken", err)
	}
	// The identity went with its user: the next sign-in makes a new one.
	next, err := f.signIn(t)
	if err != nil || next.Outcome != users.ProviderSignedUp || next.Session.UserID == again.Session.UserID {
		t.Errorf("sign-in after the removal: %+v, %v; want a new user", next, err)
	}
}
