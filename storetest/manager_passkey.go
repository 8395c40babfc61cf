package storetest

import (
	"encoding/base64"
	"testing"

	"github.com/userkit/users"
)

// mgrPasskeyRules drive passkeys (internal/passkeytest's software
// authenticator) through a Manager over the store: the races that the
// credential and ceremony contracts must settle.
var mgrPasskeyRules = []rule[*mgrSuite]{
	{"RegistrationRaceOneWinner", "of 32 concurrent FinishPasskeyRegistration calls, each finishing its own user's ceremony with one credential ID, exactly one must succeed and the others get ErrConflict; only the winner lists the passkey", func(t *testing.T, s *mgrSuite, rule string) {
		f := s.fixture(t, WithPasskeys)
		ctx := t.Context()
		a := NewAuthenticator()
		a.ReuseCredential = true
		ids := make([]string, 32)
		answers := make([][]byte, len(ids))
		for i := range ids {
			ids[i] = f.user(t).ID
			c, err := f.M.BeginPasskeyRegistration(ctx, ids[i])
			must(t, err)
			answers[i], err = a.Register(c.PublicKey)
			must(t, err)
		}
		errs := make([]error, len(ids))
		start(len(ids), func(i int) {
			_, errs[i] = f.M.FinishPasskeyRegistration(ctx, ids[i], "key", answers[i])
		})
		if !ExactlyOne(t, errs, users.ErrConflict, rule) {
			return
		}
		for i, id := range ids {
			ps, err := f.M.Passkeys(ctx, id)
			must(t, err)
			if got, want := len(ps), map[bool]int{true: 1, false: 0}[errs[i] == nil]; got != want {
				t.Errorf("%s: user %d lists %d passkeys, want %d", rule, i, got, want)
			}
		}
	}},
	{"CounterRaceOneSession", "of 32 concurrent FinishPasskeyLogin calls with assertions of one signature counter value (clones of one authenticator, each answering its own ceremony), exactly one must get a session and the others ErrPasskeyCloned; the counter advances once", func(t *testing.T, s *mgrSuite, rule string) {
		f := s.fixture(t, WithPasskeys)
		ctx := t.Context()
		u := f.user(t)
		a := NewAuthenticator()
		p := f.MustRegisterPasskey(t, u.ID, "key", a)
		answers := make([][]byte, 32)
		for i := range answers {
			answers[i] = f.MustPasskeyAnswer(t, a.Clone())
		}
		errs := make([]error, len(answers))
		start(len(answers), func(i int) {
			_, errs[i] = f.M.FinishPasskeyLogin(ctx, answers[i])
		})
		if !ExactlyOne(t, errs, users.ErrPasskeyCloned, rule) {
			return
		}
		if n := f.storedSessions(t, u.ID); n != 1 {
			t.Errorf("%s: the store holds %d sessions, want 1", rule, n)
		}
		c, err := f.Store.GetCredential(ctx, users.CredentialPasskey, mustPasskeyKey(t, p.ID))
		must(t, err)
		if c.Counter != 1 {
			t.Errorf("%s: counter %d after the race, want 1", rule, c.Counter)
		}
	}},
	{"AnswerOnce", "of 32 concurrent FinishPasskeyLogin calls with one answer, exactly one must get a session and the others ErrInvalidToken: a ceremony is answered once", func(t *testing.T, s *mgrSuite, rule string) {
		f := s.fixture(t, WithPasskeys)
		ctx := t.Context()
		u := f.user(t)
		a := NewAuthenticator()
		a.ZeroCounter = true // so that only the ceremony stops the replays
		f.MustRegisterPasskey(t, u.ID, "key", a)
		answer := f.MustPasskeyAnswer(t, a)
		errs := make([]error, 32)
		start(len(errs), func(i int) {
			_, errs[i] = f.M.FinishPasskeyLogin(ctx, answer)
		})
		ExactlyOne(t, errs, users.ErrInvalidToken, rule)
		if n := f.storedSessions(t, u.ID); n != 1 {
			t.Errorf("%s: the store holds %d sessions, want 1", rule, n)
		}
	}},
}

// mustPasskeyKey returns the credential ID (the store's key) of a Passkey.ID.
func mustPasskeyKey(t testing.TB, id string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(id)
	must(t, err)
	return string(raw)
}
