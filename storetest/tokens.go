package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/userkit/users"
)

// ---- Tokens ----

func testCreateTokenRoundTrip(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	tok := newToken(r, users.PurposeInvitation)
	want := tok.Clone()
	if err := s.CreateToken(t.Context(), tok, true); err != nil {
		t.Fatalf("CreateToken must store a token for an existing user: %v", err)
	}
	wantToken(t, s, want, "GetToken must return every field CreateToken stored")
	got, err := s.ConsumeToken(t.Context(), tok.Hash, tok.Purpose)
	if err != nil {
		t.Fatalf("ConsumeToken: %v", err)
	}
	if !sameToken(got, want) {
		t.Errorf("ConsumeToken must return every field CreateToken stored:\n got %s\nwant %s", showToken(got), showToken(want))
	}
}

func testCreateTokenUserNotFound(t *testing.T, s users.Store, _ string) {
	tok := newToken(newUser(), users.PurposePasswordReset)
	wantErr(t, s.CreateToken(t.Context(), tok, true), users.ErrNotFound, "CreateToken must return ErrNotFound for a missing user")
	wantNoToken(t, s, tok, "CreateToken refused for a missing user must store nothing")
}

func testCreateTokenDuplicateHash(t *testing.T, s users.Store, _ string) {
	a, b := addUser(t, s), addUser(t, s)
	first := addToken(t, s, a, users.PurposePasswordReset)
	for _, dup := range []*users.TokenRecord{
		newToken(b, users.PurposeVerifyEmail),
		newToken(a, users.PurposeVerifyEmail),
	} {
		dup.Hash = slices.Clone(first.Hash)
		wantErr(t, s.CreateToken(t.Context(), dup, false), users.ErrConflict, "CreateToken must refuse a hash another token has (ErrConflict)")
		wantToken(t, s, first, "CreateToken refused for a taken hash must leave the existing token as it was")
		wantNoToken(t, s, dup, "CreateToken refused for a taken hash must store nothing")
	}
}

func testCreateTokenReplace(t *testing.T, s users.Store, _ string) {
	r, other := addUser(t, s), addUser(t, s)
	old1 := addToken(t, s, r, users.PurposePasswordReset)
	old2 := addToken(t, s, r, users.PurposePasswordReset)
	verify := addToken(t, s, r, users.PurposeVerifyEmail)
	otherReset := addToken(t, s, other, users.PurposePasswordReset)
	tok := newToken(r, users.PurposePasswordReset)
	if err := s.CreateToken(t.Context(), tok, true); err != nil {
		t.Fatalf("CreateToken with replace: %v", err)
	}
	wantToken(t, s, tok, "CreateToken with replace must store the new token")
	wantNoToken(t, s, old1, "CreateToken with replace must delete the user's other tokens of that purpose")
	wantNoToken(t, s, old2, "CreateToken with replace must delete the user's other tokens of that purpose")
	wantToken(t, s, verify, "CreateToken with replace must keep the user's tokens of other purposes")
	wantToken(t, s, otherReset, "CreateToken with replace must keep other users' tokens")
}

func testCreateTokenNoReplace(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	old := addToken(t, s, r, users.PurposeMagicLink)
	tok := addToken(t, s, r, users.PurposeMagicLink)
	wantToken(t, s, old, "CreateToken without replace must keep the user's other tokens of that purpose")
	wantToken(t, s, tok, "CreateToken without replace must store the new token")
}

func testCreateTokenCopiesInput(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	tok := newToken(r, users.PurposeVerifyEmail)
	want := tok.Clone()
	mustCreateToken(t, s, tok)
	tok.Hash[0] ^= 0xff
	tok.Email = "changed@example.com"
	wantToken(t, s, want, "CreateToken must keep a copy: changing the record or its Hash after the call must not change the stored token")
}

func testGetTokenDoesNotConsume(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	tok := addToken(t, s, r, users.PurposePasswordReset)
	wantToken(t, s, tok, "GetToken must return a stored token of that purpose")
	wantToken(t, s, tok, "GetToken must not consume the token")
	if _, err := s.ConsumeToken(t.Context(), tok.Hash, tok.Purpose); err != nil {
		t.Errorf("GetToken must not consume the token: ConsumeToken afterwards: %v", err)
	}
}

func testGetTokenWrongPurpose(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	tok := addToken(t, s, r, users.PurposePasswordReset)
	_, err := s.GetToken(t.Context(), tok.Hash, users.PurposeMagicLink)
	wantErr(t, err, users.ErrNotFound, "GetToken must return ErrNotFound for a token of another purpose")
	wantToken(t, s, tok, "GetToken must not delete a token of another purpose")
}

func testGetTokenWhateverExpiry(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	tok := newToken(r, users.PurposePasswordReset)
	tok.CreatedAt, tok.ExpiresAt = base.Add(-48*time.Hour), base.Add(-24*time.Hour)
	mustCreateToken(t, s, tok)
	wantToken(t, s, tok, "GetToken must return a token whatever its ExpiresAt: expiry is the Manager's to decide")
}

func testGetTokenNotFound(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	addToken(t, s, r, users.PurposePasswordReset)
	_, err := s.GetToken(t.Context(), randomHash(), users.PurposePasswordReset)
	wantErr(t, err, users.ErrNotFound, "GetToken must return ErrNotFound for an unknown hash")
}

func testGetTokenReturnsCopy(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	tok := addToken(t, s, r, users.PurposePasswordReset)
	got, err := s.GetToken(t.Context(), tok.Hash, tok.Purpose)
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	got.Hash[0] ^= 0xff
	got.Email = "changed@example.com"
	wantToken(t, s, tok, "GetToken must return a copy: changing it or its Hash must not change the stored token")
}

func testConsumeToken(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	tok := addToken(t, s, r, users.PurposeVerifyEmail)
	other := addToken(t, s, r, users.PurposeVerifyEmail)
	got, err := s.ConsumeToken(t.Context(), tok.Hash, tok.Purpose)
	if err != nil {
		t.Fatalf("ConsumeToken must return a stored token of that purpose: %v", err)
	}
	if !sameToken(got, tok) {
		t.Errorf("ConsumeToken must return the token:\n got %s\nwant %s", showToken(got), showToken(tok))
	}
	wantNoToken(t, s, tok, "ConsumeToken must delete the token")
	_, err = s.ConsumeToken(t.Context(), tok.Hash, tok.Purpose)
	wantErr(t, err, users.ErrNotFound, "ConsumeToken must return ErrNotFound for a token already consumed")
	wantToken(t, s, other, "ConsumeToken must delete only that token")
}

func testConsumeTokenWrongPurpose(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	tok := addToken(t, s, r, users.PurposePasswordReset)
	_, err := s.ConsumeToken(t.Context(), tok.Hash, users.PurposeInvitation)
	wantErr(t, err, users.ErrNotFound, "ConsumeToken must return ErrNotFound for a token of another purpose")
	wantToken(t, s, tok, "ConsumeToken must not delete a token of another purpose")
	if _, err := s.ConsumeToken(t.Context(), tok.Hash, tok.Purpose); err != nil {
		t.Errorf("ConsumeToken with the wrong purpose must leave the token redeemable: %v", err)
	}
}

func testConsumeTokenWhateverExpiry(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	tok := newToken(r, users.PurposeMagicLink)
	tok.CreatedAt, tok.ExpiresAt = base.Add(-48*time.Hour), base.Add(-24*time.Hour)
	mustCreateToken(t, s, tok)
	got, err := s.ConsumeToken(t.Context(), tok.Hash, tok.Purpose)
	if err != nil || !sameToken(got, tok) {
		t.Errorf("ConsumeToken must return a token whatever its ExpiresAt (expiry is the Manager's to decide): got %s, %v; want %s", showToken(got), err, showToken(tok))
	}
	wantNoToken(t, s, tok, "ConsumeToken must delete the token it returns, expired or not")
}

func testConsumeTokenNotFound(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	addToken(t, s, r, users.PurposePasswordReset)
	_, err := s.ConsumeToken(t.Context(), randomHash(), users.PurposePasswordReset)
	wantErr(t, err, users.ErrNotFound, "ConsumeToken must return ErrNotFound for an unknown hash")
}

func testConsumeTokenConcurrent(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	const n = 16
	rounds(2000, 300*time.Millisecond, func() {
		tok := addToken(t, s, r, users.PurposePasswordReset)
		errs := make([]error, n)
		start(n, func(i int) {
			_, errs[i] = s.ConsumeToken(t.Context(), tok.Hash, tok.Purpose)
		})
		if !ExactlyOne(t, errs, users.ErrNotFound, "of concurrent ConsumeToken calls for one token exactly one must get it, the others ErrNotFound") {
			t.FailNow()
		}
	})
}

// testCreateTokenDecoy: CreateTokenDecoy keeps nothing, for a user who exists
// and for an ID that names nobody, and leaves alone a token that had its hash
// and an audit entry that had its entry's ID.
func testCreateTokenDecoy(t *testing.T, s users.Store, _ string) {
	ctx := t.Context()
	u := addUser(t, s)
	kept := addToken(t, s, u, users.PurposePasswordReset)
	old := newEntry(base, users.EventUserCreated, u.ID, "")
	must(t, s.AppendAudit(ctx, old))
	before, err := s.ListAudit(ctx, users.AuditQuery{Limit: 100})
	must(t, err)

	clash := kept.Clone()
	clash.Purpose, clash.Email = users.PurposeMagicLink, "other@example.com"
	clashEntry := newEntry(base, users.EventTokenIssued, "someone else", "")
	clashEntry.ID = old.ID
	for _, c := range []struct {
		name string
		tok  *users.TokenRecord
		e    *users.AuditEntry
	}{
		{"a user's", newToken(u, users.PurposePasswordReset), newEntry(base.Add(time.Minute), users.EventTokenIssued, u.ID, "")},
		{"nobody's", newToken(newUser(), users.PurposeMagicLink), newEntry(base.Add(time.Minute), users.EventTokenIssued, newUser().ID, "")},
		{"a stored hash and entry ID", clash, clashEntry},
	} {
		if err := s.CreateTokenDecoy(ctx, c.tok, c.e); err != nil {
			t.Fatalf("CreateTokenDecoy (%s) must succeed: %v", c.name, err)
		}
		if c.tok != clash {
			wantNoToken(t, s, c.tok, "CreateTokenDecoy must keep no token ("+c.name+")")
		}
	}
	wantToken(t, s, kept, "CreateTokenDecoy must leave alone a token that had its hash, and the user's tokens")
	wantNoToken(t, s, clash, "CreateTokenDecoy must not store its token under a hash that was taken")
	after, err := s.ListAudit(ctx, users.AuditQuery{Limit: 100})
	must(t, err)
	if len(after) != len(before) || len(after) != 1 || !sameEntry(after[0], old) {
		t.Errorf("CreateTokenDecoy must add no audit entry and leave a stored one with its entry's ID alone: before %d entries, after %d (%+v)", len(before), len(after), after)
	}
	if n, err := s.DeleteExpired(ctx, base.Add(1000*time.Hour)); err != nil || n != 1 {
		t.Errorf("DeleteExpired after CreateTokenDecoy = %d, %v; want 1 (the one real token): the decoy must leave no expiry entry", n, err)
	}
}
