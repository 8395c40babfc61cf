package storetest

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/internal/oidctest"
)

// The Manager's rules of sign-in with a provider, against the loopback
// provider of internal/oidctest.
var mgrIdentityRules = []rule[*mgrSuite]{
	{"ConcurrentFirstSignIns", "32 concurrent first sign-ins with one new identity must create exactly one user, linked to the identity, and sign every one of them in as that user", testMgrConcurrentFirstSignIns},
	{"OneIdentityOneUser", "an identity linked to one user must sign in that user, and linking it to another user must be refused with ErrIdentityTaken", testMgrOneIdentityOneUser},
	{"UnlinkRacesRemovePassword", "of an UnlinkIdentity of a user's only identity and a RemovePassword of that user racing, each refusing to leave the user no way to sign in, exactly one must succeed", testMgrUnlinkRacesRemovePassword},
}

var identityAccount = oidctest.Account{Subject: "subject-1", Email: "identity@example.com", EmailVerified: true, Name: "Ida"}

// providerFixture returns a Fixture with the loopback provider "test", which
// approves identityAccount at once, and allows sign-up.
func (s *mgrSuite) providerFixture(t *testing.T) (*Fixture, *oidctest.Server) {
	t.Helper()
	return s.providerFixtureOver(t, s.newStore(t))
}

// providerFixtureOver is providerFixture over the store st.
func (s *mgrSuite) providerFixtureOver(t *testing.T, st users.Store) (*Fixture, *oidctest.Server) {
	t.Helper()
	op := oidctest.New(t, identityAccount)
	op.SetAutoApprove(identityAccount.Subject)
	f := NewFixture(t, st, func(o *users.Options) {
		o.Providers = []users.Provider{{Name: "test", Issuer: op.URL, ClientID: op.ClientID, ClientSecret: op.ClientSecret,
			RedirectURL: "http://app.example/callback", AllowSignUp: true, HTTPClient: op.Client()}}
	})
	op.SetNow(f.Clock.Now)
	return f, op
}

// providerCallback follows the provider's URL of r up to the redirect to the
// application, and returns the callback's query.
func providerCallback(t *testing.T, op *oidctest.Server, r *users.ProviderRedirect) url.Values {
	t.Helper()
	c := *op.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(r.URL)
	if err != nil {
		t.Fatalf("setup: authorization: %v", err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("setup: authorization: %s %q", resp.Status, resp.Header.Get("Location"))
	}
	return loc.Query()
}

// lookupBarrier is a Store whose first n GetCredential calls all read, then
// wait until the n'th has read: n concurrent first sign-ins then all find no identity and
// all try to create it, so every loser takes the path of a lost race.
type lookupBarrier struct {
	users.Store
	n    int32
	seen atomic.Int32
	gate chan struct{}
}

func (b *lookupBarrier) GetCredential(ctx context.Context, kind users.CredentialKind, id string) (*users.CredentialRecord, error) {
	c, err := b.Store.GetCredential(ctx, kind, id) // read before the gate, so all n read the same
	if n := b.seen.Add(1); n <= b.n {
		if n == b.n {
			close(b.gate)
		}
		<-b.gate
	}
	return c, err
}

func testMgrConcurrentFirstSignIns(t *testing.T, s *mgrSuite, rule string) {
	barrier := &lookupBarrier{Store: s.newStore(t), n: 32, gate: make(chan struct{})}
	f, op := s.providerFixtureOver(t, barrier)
	type flow struct {
		binding string
		q       url.Values
	}
	flows := make([]flow, 32)
	for i := range flows {
		r, err := f.M.BeginProviderSignIn(t.Context(), "test", "")
		if err != nil {
			t.Fatalf("setup: BeginProviderSignIn: %v", err)
		}
		flows[i] = flow{r.Binding, providerCallback(t, op, r)}
	}
	results := make([]*users.ProviderResult, len(flows))
	errs := make([]error, len(flows))
	start(len(flows), func(i int) { results[i], errs[i] = f.M.FinishProvider(t.Context(), flows[i].binding, flows[i].q) })
	signedUp, userID := 0, ""
	for i, err := range errs {
		if err != nil || results[i].Session == nil {
			t.Fatalf("%s: sign-in %d: %+v, %v; want a session", rule, i, results[i], err)
		}
		if results[i].Outcome == users.ProviderSignedUp {
			signedUp++
		}
		if userID == "" {
			userID = results[i].Session.UserID
		}
		if results[i].Session.UserID != userID {
			t.Fatalf("%s: sign-ins ended as users %s and %s", rule, userID, results[i].Session.UserID)
		}
	}
	if n, err := f.M.Count(t.Context(), users.Filter{}); err != nil || n != 1 || signedUp != 1 {
		t.Fatalf("%s: %d users (%v), %d sign-ups; want 1 and 1", rule, n, err, signedUp)
	}
	if ids, err := f.M.ListIdentities(t.Context(), userID); err != nil || len(ids) != 1 {
		t.Fatalf("%s: identities %+v, %v; want one", rule, ids, err)
	}
}

func testMgrOneIdentityOneUser(t *testing.T, s *mgrSuite, rule string) {
	f, op := s.providerFixture(t)
	r, err := f.M.BeginProviderSignIn(t.Context(), "test", "")
	if err != nil {
		t.Fatal(err)
	}
	first, err := f.M.FinishProvider(t.Context(), r.Binding, providerCallback(t, op, r))
	if err != nil {
		t.Fatalf("%s: first sign-in: %v", rule, err)
	}
	other := f.user(t)
	sess := f.MustLogin(t, other.Email, Password)
	ctx := users.NewContext(t.Context(), sess)
	r, err = f.M.BeginProviderLink(ctx, other.ID, "test", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.FinishProvider(ctx, r.Binding, providerCallback(t, op, r)); !errors.Is(err, users.ErrIdentityTaken) {
		t.Fatalf("%s: linking another user's identity: %v, want ErrIdentityTaken", rule, err)
	}
	r, err = f.M.BeginProviderSignIn(t.Context(), "test", "")
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.M.FinishProvider(t.Context(), r.Binding, providerCallback(t, op, r))
	if err != nil || again.Session.UserID != first.Session.UserID {
		t.Fatalf("%s: sign-in after the refused link: %+v, %v; want user %s", rule, again, err, first.Session.UserID)
	}
}

func testMgrUnlinkRacesRemovePassword(t *testing.T, s *mgrSuite, rule string) {
	f := s.fixture(t, nil)
	// RemovePassword's guard: the password goes, so a credential must stay.
	keep := func(_ *users.UserRecord, creds []*users.CredentialRecord) error {
		if len(creds) == 0 {
			return errSentinel
		}
		return nil
	}
	rounds(20, 2*time.Second, func() {
		u := f.user(t)
		c := newCredential(u.ID, users.CredentialOIDC)
		c.Data = []byte(`{"provider":"test","issuer":"https://id.example","subject":"s"}`)
		addCredential(t, f.Store, c)
		errs := make([]error, 2)
		start(2, func(i int) {
			if i == 0 {
				errs[0] = f.M.UnlinkIdentity(t.Context(), u.ID, c.ID)
			} else {
				_, errs[1] = f.Store.RemovePassword(t.Context(), u.ID, f.Clock.Now(), keep)
			}
		})
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("%s: UnlinkIdentity = %v, RemovePassword = %v; want exactly one to succeed", rule, errs[0], errs[1])
		}
		if errs[0] != nil && !errors.Is(errs[0], users.ErrLastSignInMethod) {
			t.Fatalf("%s: UnlinkIdentity lost with %v, want ErrLastSignInMethod", rule, errs[0])
		}
		if errs[1] != nil && !errors.Is(errs[1], errSentinel) {
			t.Fatalf("%s: RemovePassword lost with %v, want its guard's error", rule, errs[1])
		}
	})
}
