package users_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/internal/passkeytest"
	"github.com/userkit/users/storetest"
)

// Passkeys' security properties (SECURITY.md, "Passkeys"): clone
// detection, origin binding, single-use ceremonies bound to their purpose
// and user, credential IDs kept from other users, the last way to sign in,
// recent authentication, and no ceremony blob in the audit log.

func TestPasskey_CounterNotIncreasedIsRefused(t *testing.T) {
	f, u := newPasskeyFixture(t)
	a := storetest.NewAuthenticator()
	p := f.MustRegisterPasskey(t, u.ID, "key", a)
	if _, err := passkeyLogin(t, f, a); err != nil { // counter 1
		t.Fatal(err)
	}
	clone := a.Clone()                               // at 1 too
	if _, err := passkeyLogin(t, f, a); err != nil { // counter 2
		t.Fatal(err)
	}
	_, err := passkeyLogin(t, f, clone) // says 2 again
	if !errors.Is(err, users.ErrPasskeyCloned) || !errors.Is(err, users.ErrPasskeyRefused) {
		t.Fatalf("sign-in with a counter that did not increase: %v, want ErrPasskeyCloned (matching ErrPasskeyRefused)", err)
	}
	page, err := f.M.Audit(t.Context(), users.AuditFilter{UserID: u.ID, Types: []users.EventType{users.EventPasskeyRefused}})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Reason != "counter_not_increased" || page.Entries[0].Data["passkey"] != p.ID {
		t.Errorf("passkey.refused entries = %+v, %v; want one, reason counter_not_increased, naming the passkey", page, err)
	}
	if n := storedSessions(t, f, u.ID); n != 2 {
		t.Errorf("the store holds %d sessions, want the 2 of the genuine sign-ins", n)
	}
	if _, err := passkeyLogin(t, f, a); err != nil { // 3: the genuine one goes on
		t.Errorf("the genuine authenticator after the clone was refused: %v", err)
	}
}

func TestPasskey_ZeroCounterIsFine(t *testing.T) {
	f, u := newPasskeyFixture(t)
	a := storetest.NewAuthenticator()
	a.ZeroCounter = true
	f.MustRegisterPasskey(t, u.ID, "synced", a)
	for i := range 3 {
		if _, err := passkeyLogin(t, f, a); err != nil {
			t.Fatalf("sign-in %d with an authenticator that always says 0: %v", i, err)
		}
	}
}

func TestPasskey_OriginIsChecked(t *testing.T) {
	f, u := newPasskeyFixture(t)
	ctx := t.Context()
	evil := passkeytest.New("https://evil.example")
	c, err := f.M.BeginPasskeyRegistration(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := evil.Register(c.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.FinishPasskeyRegistration(ctx, u.ID, "key", resp); !errors.Is(err, users.ErrPasskeyRefused) {
		t.Errorf("registration from another origin: %v, want ErrPasskeyRefused", err)
	}
	// The refused answer used the ceremony up: the right origin is too late.
	evil.Origin = storetest.PasskeyOrigin
	resp, err = evil.Register(c.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.FinishPasskeyRegistration(ctx, u.ID, "key", resp); !errors.Is(err, users.ErrInvalidToken) {
		t.Errorf("a second answer to a refused registration: %v, want ErrInvalidToken", err)
	}
	if ps, _ := f.M.Passkeys(ctx, u.ID); len(ps) != 0 {
		t.Errorf("Passkeys = %+v, want none", ps)
	}

	a := storetest.NewAuthenticator()
	f.MustRegisterPasskey(t, u.ID, "key", a)
	a.Origin = "https://example.com.evil.example"
	if _, err := passkeyLogin(t, f, a); !errors.Is(err, users.ErrPasskeyRefused) {
		t.Errorf("sign-in from another origin: %v, want ErrPasskeyRefused", err)
	}
	a.Origin = "http://example.com"
	if _, err := passkeyLogin(t, f, a); !errors.Is(err, users.ErrPasskeyRefused) {
		t.Errorf("sign-in from the http origin: %v, want ErrPasskeyRefused", err)
	}
}

func TestPasskey_CeremonyIsSingleUseAndExpires(t *testing.T) {
	f, u := newPasskeyFixture(t)
	ctx := t.Context()
	a := storetest.NewAuthenticator()
	a.ZeroCounter = true // only the ceremony can stop a replay
	f.MustRegisterPasskey(t, u.ID, "key", a)

	answer := f.MustPasskeyAnswer(t, a)
	if _, err := f.M.FinishPasskeyLogin(ctx, answer); err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.FinishPasskeyLogin(ctx, answer); !errors.Is(err, users.ErrInvalidToken) {
		t.Errorf("the same answer again: %v, want ErrInvalidToken", err)
	}

	answer = f.MustPasskeyAnswer(t, a)
	f.Clock.Advance(users.DefaultPasskeyTimeout)
	if _, err := f.M.FinishPasskeyLogin(ctx, answer); !errors.Is(err, users.ErrInvalidToken) {
		t.Errorf("an answer after the timeout: %v, want ErrInvalidToken", err)
	}
	f.Clock.Advance(-time.Second) // just inside the timeout: the one above was refused for its age only
	if _, err := f.M.FinishPasskeyLogin(ctx, f.MustPasskeyAnswer(t, a)); err != nil {
		t.Errorf("an answer within the timeout: %v", err)
	}
}

func TestPasskey_CeremonyIsBoundToPurposeAndUser(t *testing.T) {
	f, u := newPasskeyFixture(t)
	ctx := t.Context()
	other := f.MustCreate(t, users.NewUser{Email: f.Email()})
	a := storetest.NewAuthenticator()
	f.MustRegisterPasskey(t, u.ID, "key", a)

	// A registration's challenge answered as a sign-in.
	c, err := f.M.BeginPasskeyRegistration(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	asLogin := assertAny(t, a, c)
	if _, err := f.M.FinishPasskeyLogin(ctx, asLogin); !errors.Is(err, users.ErrInvalidToken) {
		t.Errorf("a registration's challenge answered as a sign-in: %v, want ErrInvalidToken", err)
	}

	// A step-up ceremony of one user finished for another.
	s := f.MustLogin(t, u.Email, storetest.Password)
	c, err = f.M.BeginPasskeyStepUp(ctx, s.Token)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Assert(c.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	os := f.MustLogin(t, other.Email, storetest.Password)
	if _, err := f.M.StepUp(ctx, os.Token, string(resp)); !errors.Is(err, users.ErrPasskeyRefused) {
		t.Errorf("another user's step-up answer: %v, want ErrPasskeyRefused", err)
	}

	// A registration begun for one user finished for another.
	c, err = f.M.BeginPasskeyRegistration(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = storetest.NewAuthenticator().Register(c.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.FinishPasskeyRegistration(ctx, other.ID, "key", resp); !errors.Is(err, users.ErrInvalidToken) {
		t.Errorf("a registration begun for another user: %v, want ErrInvalidToken", err)
	}
	if ps, _ := f.M.Passkeys(ctx, other.ID); len(ps) != 0 {
		t.Errorf("the other user has %d passkeys, want none", len(ps))
	}
}

func TestPasskey_OtherUsersPasskeysAreNotFound(t *testing.T) {
	f, u := newPasskeyFixture(t)
	ctx := t.Context()
	other := f.MustCreate(t, users.NewUser{Email: f.Email()})
	a := storetest.NewAuthenticator()
	p := f.MustRegisterPasskey(t, u.ID, "mine", a)
	if ps, err := f.M.Passkeys(ctx, other.ID); err != nil || len(ps) != 0 {
		t.Errorf("Passkeys(other) = %+v, %v; want none of u's", ps, err)
	}
	if _, err := f.M.RenamePasskey(ctx, other.ID, p.ID, "theirs"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("RenamePasskey of another user's passkey: %v, want ErrNotFound", err)
	}
	if err := f.M.RemovePasskey(ctx, other.ID, p.ID, false); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("RemovePasskey of another user's passkey: %v, want ErrNotFound", err)
	}
	if ps, _ := f.M.Passkeys(ctx, u.ID); len(ps) != 1 || ps[0].Name != "mine" {
		t.Errorf("u's passkeys after the other user's attempts = %+v", ps)
	}
	// u's passkey does not pass for the other user's second factor either.
	f.MustEnrolTOTP(t, other.ID)
	f.MustRegisterPasskey(t, other.ID, "theirs", storetest.NewAuthenticator())
	ch := f.MustChallenge(t, other.Email)
	c, err := f.M.BeginPasskeySecondFactor(ctx, ch.Token)
	if err != nil {
		t.Fatal(err)
	}
	resp := assertAny(t, a, c)
	if _, err := f.M.CompleteLogin(ctx, ch.Token, string(resp)); !errors.Is(err, users.ErrPasskeyRefused) {
		t.Errorf("CompleteLogin with another user's passkey: %v, want ErrPasskeyRefused", err)
	}
}

func TestPasskey_LastWayToSignInStays(t *testing.T) {
	f, u := newPasskeyFixture(t)
	ctx := t.Context()
	p1 := f.MustRegisterPasskey(t, u.ID, "one", storetest.NewAuthenticator())
	if _, err := f.Store.RemovePassword(ctx, u.ID, f.Clock.Now(), nil); err != nil {
		t.Fatal(err)
	}
	// A trusted device is a credential too, but it signs nobody in: it must
	// not count as a way left.
	if err := f.Store.CreateCredential(ctx, &users.CredentialRecord{Kind: users.CredentialTrustedDevice,
		ID: "device", UserID: u.ID, CreatedAt: f.Clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := f.M.RemovePasskey(ctx, u.ID, p1.ID, false); !errors.Is(err, users.ErrLastSignInMethod) {
		t.Errorf("RemovePasskey of the only way to sign in (a trusted device left): %v, want ErrLastSignInMethod", err)
	}
	p2 := f.MustRegisterPasskey(t, u.ID, "two", storetest.NewAuthenticator())
	errs := make([]error, 2)
	done := make(chan struct{})
	for i, id := range []string{p1.ID, p2.ID} {
		go func() { errs[i] = f.M.RemovePasskey(ctx, u.ID, id, false); done <- struct{}{} }()
	}
	<-done
	<-done
	storetest.ExactlyOne(t, errs, users.ErrLastSignInMethod, "of two passkeys of a user without a password removed at once, one must stay")
	if ps, _ := f.M.Passkeys(ctx, u.ID); len(ps) != 1 {
		t.Errorf("the user keeps %d passkeys, want 1", len(ps))
	}
}

func TestPasskey_NeedsRecentAuthentication(t *testing.T) {
	f, u := newPasskeyFixture(t)
	a := storetest.NewAuthenticator()
	p := f.MustRegisterPasskey(t, u.ID, "key", a)
	s := f.MustLogin(t, u.Email, storetest.Password)
	c, err := f.M.BeginPasskeyRegistration(users.NewContext(t.Context(), s), u.ID)
	if err != nil {
		t.Fatalf("BeginPasskeyRegistration right after login: %v", err)
	}
	resp, err := storetest.NewAuthenticator().Register(c.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(users.DefaultReauthWindow + time.Second)
	stale := users.NewContext(t.Context(), s)
	if _, err := f.M.FinishPasskeyRegistration(stale, u.ID, "late", resp); !errors.Is(err, users.ErrReauthRequired) {
		t.Errorf("FinishPasskeyRegistration with a stale session: %v, want ErrReauthRequired", err)
	}
	if _, err := f.M.BeginPasskeyRegistration(stale, u.ID); !errors.Is(err, users.ErrReauthRequired) {
		t.Errorf("BeginPasskeyRegistration with a stale session: %v, want ErrReauthRequired", err)
	}
	if err := f.M.RemovePasskey(stale, u.ID, p.ID, false); !errors.Is(err, users.ErrReauthRequired) {
		t.Errorf("RemovePasskey with a stale session: %v, want ErrReauthRequired", err)
	}
	if ps, _ := f.M.Passkeys(t.Context(), u.ID); len(ps) != 1 {
		t.Errorf("the user has %d passkeys, want the 1 registered first", len(ps))
	}
	// A passkey sign-in is a fresh proof: it allows the change at once.
	ps, err := passkeyLogin(t, f, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.M.BeginPasskeyRegistration(users.NewContext(t.Context(), ps), u.ID); err != nil {
		t.Errorf("BeginPasskeyRegistration from a fresh passkey session: %v", err)
	}
}

// TestPasskey_NoCeremonyBlobInAudit runs every passkey flow and checks that
// no audit entry holds a challenge, a client data, an attestation, an
// authenticator data or a signature, in any field, as sent or decoded.
func TestPasskey_NoCeremonyBlobInAudit(t *testing.T) {
	f, u := newPasskeyFixture(t)
	ctx := t.Context()
	var blobs []string
	keep := func(options, answer []byte) {
		var o struct{ Challenge string }
		_ = json.Unmarshal(options, &o)
		blobs = append(blobs, o.Challenge)
		var r struct {
			Response map[string]any `json:"response"`
		}
		if err := json.Unmarshal(answer, &r); err != nil {
			t.Fatal(err)
		}
		for k, v := range r.Response {
			// The user handle is the user's ID, which entries name.
			if s, ok := v.(string); ok && k != "userHandle" {
				blobs = append(blobs, s)
				if raw, err := base64.RawURLEncoding.DecodeString(s); err == nil {
					blobs = append(blobs, string(raw), base64.StdEncoding.EncodeToString(raw))
				}
			}
		}
	}
	a := storetest.NewAuthenticator()
	c, err := f.M.BeginPasskeyRegistration(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Register(c.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keep(c.PublicKey, resp)
	p, err := f.M.FinishPasskeyRegistration(ctx, u.ID, "key", resp)
	if err != nil {
		t.Fatal(err)
	}
	c, err = f.M.BeginPasskeyLogin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = a.Assert(c.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keep(c.PublicKey, resp)
	if _, err := f.M.FinishPasskeyLogin(ctx, resp); err != nil {
		t.Fatal(err)
	}
	f.MustEnrolTOTP(t, u.ID)
	ch := f.MustChallenge(t, u.Email)
	c, err = f.M.BeginPasskeySecondFactor(ctx, ch.Token)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = a.Assert(c.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keep(c.PublicKey, resp)
	if _, err := f.M.CompleteLogin(ctx, ch.Token, string(resp)); err != nil {
		t.Fatal(err)
	}
	// A refused one too: another origin.
	c, err = f.M.BeginPasskeyLogin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.Origin = "https://evil.example"
	resp, err = a.Assert(c.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keep(c.PublicKey, resp)
	if _, err := f.M.FinishPasskeyLogin(ctx, resp); !errors.Is(err, users.ErrPasskeyRefused) {
		t.Fatalf("sign-in from another origin: %v", err)
	}
	if _, err := f.M.RenamePasskey(ctx, u.ID, p.ID, "renamed"); err != nil {
		t.Fatal(err)
	}

	page, err := f.M.Audit(ctx, users.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) < 6 {
		t.Fatalf("only %d audit entries: the flows above must have written more", len(page.Entries))
	}
	for _, e := range page.Entries {
		j, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blobs {
			if len(b) >= 16 && strings.Contains(string(j), b) {
				t.Errorf("audit entry %s holds a ceremony blob %q: %s", e.Type, b, j)
			}
		}
	}
}

func storedSessions(t *testing.T, f *storetest.Fixture, userID string) int {
	t.Helper()
	ss, err := f.Store.ListSessions(t.Context(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return len(ss)
}

// assertAny has a sign the challenge of c with the oldest passkey it holds,
// whatever passkeys c allows or whatever ceremony it is.
func assertAny(t *testing.T, a *passkeytest.Authenticator, c *users.PasskeyCeremony) []byte {
	t.Helper()
	var o struct{ Challenge string }
	if err := json.Unmarshal(c.PublicKey, &o); err != nil {
		t.Fatal(err)
	}
	resp, err := a.Assert([]byte(mustJSON(t, map[string]any{"challenge": o.Challenge, "rpId": storetest.PasskeyRPID})))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
