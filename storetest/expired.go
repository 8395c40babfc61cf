package storetest

import (
	"testing"
	"time"

	"github.com/userkit/users"
)

// ---- DeleteExpired ----

func testDeleteExpiredBoundary(t *testing.T, s users.Store, _ string) {
	now := base
	r := addUser(t, s)
	var sess [3]*users.SessionRecord
	var toks [3]*users.TokenRecord
	var att [3]users.LoginAttempts
	keys := [3]users.ThrottleKey{"k-before", "k-at", "k-after"}
	for i, exp := range []time.Time{now.Add(-time.Second), now, now.Add(time.Second)} {
		sess[i] = newSession(r)
		sess[i].ExpiresAt = exp
		if err := s.CreateSession(t.Context(), sess[i]); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		toks[i] = newToken(r, users.PurposePasswordReset)
		toks[i].ExpiresAt = exp
		mustCreateToken(t, s, toks[i])
		att[i] = users.LoginAttempts{Failures: 1, WindowStart: now.Add(-time.Hour), ExpiresAt: exp}
		mustUpdateAttempts(t, s, keys[i], att[i])
	}

	n, err := s.DeleteExpired(t.Context(), now)
	if err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	if n != 6 {
		t.Errorf("DeleteExpired must return how many records it deleted: got %d, want 6 (2 sessions, 2 tokens, 2 throttle entries expiring at or before now)", n)
	}
	for i, rule := range []string{"before now must be deleted", "exactly at now must be deleted"} {
		wantNoSession(t, s, sess[i].TokenHash, "DeleteExpired: a session expiring "+rule)
		wantNoToken(t, s, toks[i], "DeleteExpired: a token expiring "+rule)
		wantAttempts(t, s, keys[i], users.LoginAttempts{}, "DeleteExpired: a throttle entry expiring "+rule)
	}
	wantSession(t, s, sess[2], "DeleteExpired must keep a session expiring after now")
	wantSessions(t, s, r.ID, sess[2:], "DeleteExpired must keep only the sessions expiring after now")
	if got, err := s.GetToken(t.Context(), toks[2].Hash, toks[2].Purpose); err != nil || !sameToken(got, toks[2]) {
		t.Errorf("DeleteExpired must keep a token expiring after now: GetToken = %s, %v", showToken(got), err)
	}
	wantAttempts(t, s, keys[2], att[2], "DeleteExpired must keep a throttle entry expiring after now")
	wantUser(t, s, r, "DeleteExpired must not touch users")

	if n, err := s.DeleteExpired(t.Context(), now); err != nil || n != 0 {
		t.Errorf("DeleteExpired run again at the same time must delete nothing: got %d, %v", n, err)
	}
}

func testDeleteExpiredFrees(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	sess := newSession(r)
	sess.ExpiresAt = base
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	tok := newToken(r, users.PurposePasswordReset)
	tok.ExpiresAt = base
	mustCreateToken(t, s, tok)
	if n, err := s.DeleteExpired(t.Context(), base); err != nil || n != 2 {
		t.Fatalf("DeleteExpired = %d, %v; want 2", n, err)
	}
	wantErr(t, s.DeleteSessionByID(t.Context(), r.ID, sess.ID), users.ErrNotFound, "DeleteExpired must delete an expired session's ID too")
	wantSessions(t, s, r.ID, nil, "DeleteExpired must delete expired sessions from the user's list")
	sess.ExpiresAt = base.Add(time.Hour)
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Errorf("DeleteExpired must free an expired session's token hash and ID: CreateSession with them again: %v", err)
	}
	tok.ExpiresAt = base.Add(time.Hour)
	if err := s.CreateToken(t.Context(), tok, false); err != nil {
		t.Errorf("DeleteExpired must free an expired token's hash: CreateToken with it again: %v", err)
	}
}

func testDeleteExpiredCountsStored(t *testing.T, s users.Store, _ string) {
	now := base
	expiredSession := func(userID string) *users.SessionRecord {
		t.Helper()
		sess := newSession(mustGetUser(t, s, userID))
		sess.ExpiresAt = now.Add(-time.Minute)
		must(t, s.CreateSession(t.Context(), sess))
		return sess
	}
	expiredToken := func(u *users.UserRecord, p users.Purpose) *users.TokenRecord {
		t.Helper()
		tok := newToken(u, p)
		tok.ExpiresAt = now.Add(-time.Minute)
		mustCreateToken(t, s, tok)
		return tok
	}
	r, gone := addUser(t, s), addUser(t, s)

	// Expired sessions deleted by logout, by ID, and by both kinds of revocation.
	must(t, s.DeleteSession(t.Context(), expiredSession(r.ID).TokenHash))
	must(t, s.DeleteSessionByID(t.Context(), r.ID, expiredSession(r.ID).ID))
	expiredSession(r.ID)
	must(t, s.DeleteUserSessions(t.Context(), r.ID))
	expiredSession(r.ID)
	_, err := s.UpdateUser(t.Context(), r.ID, func(*users.UserRecord) (users.Revoke, error) {
		return users.Revoke{Sessions: true}, nil
	})
	must(t, err)

	// Expired tokens deleted by consumption, by replacement and by Revoke.Tokens.
	consumed := expiredToken(r, users.PurposePasswordReset)
	_, err = s.ConsumeToken(t.Context(), consumed.Hash, consumed.Purpose)
	must(t, err) // an expired token is consumed like any other: expiry is the Manager's
	expiredToken(r, users.PurposeInvitation)
	must(t, s.CreateToken(t.Context(), newToken(r, users.PurposeInvitation), true))
	expiredToken(r, users.PurposeMagicLink)
	_, err = s.UpdateUser(t.Context(), r.ID, func(*users.UserRecord) (users.Revoke, error) {
		return users.Revoke{Tokens: []users.Purpose{users.PurposeMagicLink}}, nil
	})
	must(t, err)

	// An expired throttle entry zeroed by UpdateLoginAttempts.
	mustUpdateAttempts(t, s, "zeroed", users.LoginAttempts{Failures: 1, ExpiresAt: now.Add(-time.Minute)})
	mustUpdateAttempts(t, s, "zeroed", users.LoginAttempts{})

	// An expired session, token and throttle entry deleted with their user.
	expiredSession(gone.ID)
	expiredToken(gone, users.PurposeVerifyEmail)
	mustUpdateAttempts(t, s, users.UserThrottleKey(gone.ID), users.LoginAttempts{Failures: 1, ExpiresAt: now.Add(-time.Minute)})
	must(t, s.DeleteUser(t.Context(), gone.ID))

	// One expired record still stored.
	live := expiredSession(r.ID)

	n, err := s.DeleteExpired(t.Context(), now)
	if err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	if n != 1 {
		t.Errorf("DeleteExpired must count only the records it deleted, not those already deleted by logout, revocation, consumption, replacement, zeroing or DeleteUser: got %d, want 1", n)
	}
	wantNoSession(t, s, live.TokenHash, "DeleteExpired must delete an expired session")
}

func testDeleteExpiredCurrentExpiry(t *testing.T, s users.Store, _ string) {
	now := base
	r := addUser(t, s)

	// A throttle entry whose ExpiresAt moves from before now to after it, stored
	// before a record that does expire.
	mustUpdateAttempts(t, s, "later", users.LoginAttempts{Failures: 1, ExpiresAt: now.Add(-time.Hour)})
	// One that moves from after now to before it, stored before records that
	// expire sooner than it did.
	mustUpdateAttempts(t, s, "sooner", users.LoginAttempts{Failures: 1, ExpiresAt: now.Add(3 * time.Hour)})
	expired := newSession(r)
	expired.ExpiresAt = now.Add(-30 * time.Minute)
	must(t, s.CreateSession(t.Context(), expired))

	// A session and a token deleted before their expiry and recreated under the
	// same hash with a later one.
	sess := newSession(r)
	sess.ExpiresAt = now.Add(-time.Hour)
	must(t, s.CreateSession(t.Context(), sess))
	must(t, s.DeleteSession(t.Context(), sess.TokenHash))
	again := sess.Clone()
	again.ExpiresAt = now.Add(time.Hour)
	must(t, s.CreateSession(t.Context(), again))
	tok := newToken(r, users.PurposeVerifyEmail)
	tok.ExpiresAt = now.Add(-time.Hour)
	mustCreateToken(t, s, tok)
	_, err := s.ConsumeToken(t.Context(), tok.Hash, tok.Purpose)
	must(t, err) // an expired token is consumed like any other: expiry is the Manager's
	tokAgain := tok.Clone()
	tokAgain.ExpiresAt = now.Add(time.Hour)
	mustCreateToken(t, s, tokAgain)

	later := users.LoginAttempts{Failures: 2, ExpiresAt: now.Add(time.Hour)}
	mustUpdateAttempts(t, s, "later", later)
	mustUpdateAttempts(t, s, "sooner", users.LoginAttempts{Failures: 2, ExpiresAt: now.Add(-time.Minute)})

	n, err := s.DeleteExpired(t.Context(), now)
	if err != nil || n != 2 {
		t.Errorf("DeleteExpired must go by each record's current ExpiresAt: deleted %d, %v; want 2 (an expired session and a throttle entry whose ExpiresAt was moved before now)", n, err)
	}
	wantNoSession(t, s, expired.TokenHash, "DeleteExpired must delete an expired session")
	wantAttempts(t, s, "sooner", users.LoginAttempts{}, "DeleteExpired must delete a throttle entry whose ExpiresAt was moved before now")
	wantAttempts(t, s, "later", later, "DeleteExpired must keep a throttle entry whose ExpiresAt was moved after now")
	wantSession(t, s, again, "DeleteExpired must keep a session recreated with the same hash and a later expiry")
	wantToken(t, s, tokAgain, "DeleteExpired must keep a token recreated with the same hash and a later expiry")
}
