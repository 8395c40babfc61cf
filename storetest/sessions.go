package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/userkit/users"
)

// ---- Sessions ----

func testCreateSessionRoundTrip(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	sess := newSession(r)
	sess.LastSeenAt = base.Add(time.Minute)
	sess.AuthenticatedAt = base.Add(2 * time.Minute)
	want := sess.Clone()
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession must store a session for an existing user under its Generation: %v", err)
	}
	got, u, err := getSession(t.Context(), s, sess.TokenHash)
	if err != nil {
		t.Fatalf("GetSession must find a stored session: %v", err)
	}
	if !sameSession(got, want) {
		t.Errorf("GetSession must return every field CreateSession stored:\n got %s\nwant %s", showSession(got), showSession(want))
	}
	if !sameUser(u, r) {
		t.Errorf("GetSession must return the session's user:\n got %s\nwant %s", showUser(u), showUser(r))
	}
}

func testCreateSessionUserNotFound(t *testing.T, s users.Store, _ string) {
	ghost := newUser()
	sess := newSession(ghost)
	wantErr(t, s.CreateSession(t.Context(), sess), users.ErrNotFound, "CreateSession must return ErrNotFound for a missing user")
	wantNoSession(t, s, sess.TokenHash, "CreateSession refused for a missing user must store nothing")
	wantSessions(t, s, ghost.ID, nil, "CreateSession refused for a missing user must store nothing")
}

func testCreateSessionStaleGeneration(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	if err := s.DeleteUserSessions(t.Context(), r.ID); err != nil { // Generation 0 → 1
		t.Fatalf("DeleteUserSessions: %v", err)
	}
	stale := newSession(r) // Generation 0
	wantErr(t, s.CreateSession(t.Context(), stale), users.ErrConflict, "CreateSession must refuse a UserGeneration older than the user's Generation (ErrConflict)")
	wantNoSession(t, s, stale.TokenHash, "CreateSession refused for a stale generation must store nothing")
	future := newSession(r)
	future.UserGeneration = 7
	wantErr(t, s.CreateSession(t.Context(), future), users.ErrConflict, "CreateSession must refuse a UserGeneration different from the user's Generation (ErrConflict)")
	wantNoSession(t, s, future.TokenHash, "CreateSession refused for a wrong generation must store nothing")
	wantSessions(t, s, r.ID, nil, "CreateSession refused for a wrong generation must store nothing")
	current := newSession(r)
	current.UserGeneration = 1
	if err := s.CreateSession(t.Context(), current); err != nil {
		t.Errorf("CreateSession must accept the user's current Generation: %v", err)
	}
}

func testCreateSessionDuplicateHash(t *testing.T, s users.Store, _ string) {
	a, b := addUser(t, s), addUser(t, s)
	first := addSession(t, s, a.ID)
	dup := newSession(b)
	dup.TokenHash = slices.Clone(first.TokenHash)
	wantErr(t, s.CreateSession(t.Context(), dup), users.ErrConflict, "CreateSession must refuse a token hash another session has (ErrConflict)")
	wantSession(t, s, first, "CreateSession refused for a taken token hash must leave the existing session as it was")
	if _, u, err := getSession(t.Context(), s, first.TokenHash); err == nil && u.ID != a.ID {
		t.Errorf("CreateSession refused for a taken token hash must leave the session to its user: GetSession gives user %s, want %s", u.ID, a.ID)
	}
	wantSessions(t, s, b.ID, nil, "CreateSession refused for a taken token hash must store nothing")
	wantErr(t, s.DeleteSessionByID(t.Context(), b.ID, dup.ID), users.ErrNotFound, "CreateSession refused for a taken token hash must not index its session ID")
}

func testCreateSessionDuplicateID(t *testing.T, s users.Store, _ string) {
	a, b := addUser(t, s), addUser(t, s)
	first := addSession(t, s, a.ID)
	dup := newSession(b)
	dup.ID = first.ID
	wantErr(t, s.CreateSession(t.Context(), dup), users.ErrConflict, "CreateSession must refuse a session ID another session has (ErrConflict)")
	wantNoSession(t, s, dup.TokenHash, "CreateSession refused for a taken session ID must store nothing")
	wantSessions(t, s, b.ID, nil, "CreateSession refused for a taken session ID must store nothing")
	wantSession(t, s, first, "CreateSession refused for a taken session ID must leave the existing session as it was")
}

func testCreateSessionCopiesInput(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	sess := newSession(r)
	want := sess.Clone()
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	sess.TokenHash[0] ^= 0xff
	sess.LastSeenAt = base.Add(time.Hour)
	wantSession(t, s, want, "CreateSession must keep a copy: changing the record or its TokenHash after the call must not change the stored session")
}

func testCreateSessionRacesDeleteUser(t *testing.T, s users.Store, _ string) {
	const creators = 8
	rounds(500, 300*time.Millisecond, func() {
		r := addUser(t, s)
		sessions := make([]*users.SessionRecord, creators)
		errs := make([]error, creators)
		var delErr error
		start(creators+1, func(i int) {
			if i == creators {
				delErr = s.DeleteUser(t.Context(), r.ID)
				return
			}
			sessions[i] = newSession(r)
			errs[i] = s.CreateSession(t.Context(), sessions[i])
		})
		if delErr != nil {
			t.Fatalf("DeleteUser racing CreateSession: %v", delErr)
		}
		for i, err := range errs {
			if err != nil && !errors.Is(err, users.ErrNotFound) {
				t.Errorf("CreateSession racing DeleteUser must succeed or return ErrNotFound: got %v", err)
			}
			wantNoSession(t, s, sessions[i].TokenHash, "CreateSession racing DeleteUser must never leave a session of a deleted user")
		}
		wantSessions(t, s, r.ID, nil, "CreateSession racing DeleteUser must never leave a session of a deleted user")
	})
}

func testCreateSessionRacesRevocation(t *testing.T, s users.Store, _ string) {
	const creators = 8
	rounds(500, 300*time.Millisecond, func() {
		r := addUser(t, s) // Generation 0
		errs := make([]error, creators)
		var revErr error
		start(creators+1, func(i int) {
			if i == creators {
				revErr = s.DeleteUserSessions(t.Context(), r.ID)
				return
			}
			errs[i] = s.CreateSession(t.Context(), newSession(r))
		})
		if revErr != nil {
			t.Fatalf("DeleteUserSessions racing CreateSession: %v", revErr)
		}
		for _, err := range errs {
			if err != nil && !errors.Is(err, users.ErrConflict) {
				t.Errorf("CreateSession racing DeleteUserSessions must succeed or return ErrConflict: got %v", err)
			}
		}
		list, err := s.ListSessions(t.Context(), r.ID)
		if err != nil {
			t.Fatalf("ListSessions: %v", err)
		}
		if len(list) > 0 {
			t.Errorf("CreateSession racing DeleteUserSessions must never leave a session created under the Generation from before the revocation: %d left", len(list))
		}
	})
}

func testGetSessionNotFound(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	addSession(t, s, r.ID)
	_, _, err := getSession(t.Context(), s, randomHash())
	wantErr(t, err, users.ErrNotFound, "GetSession must return ErrNotFound for an unknown token hash")
}

func testGetSessionReturnsExpired(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	sess := newSession(r)
	sess.CreatedAt = base.Add(-48 * time.Hour)
	sess.LastSeenAt = sess.CreatedAt
	sess.ExpiresAt = base.Add(-24 * time.Hour) // in the past by the wall clock too
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession must store a session whatever its expiry: %v", err)
	}
	wantSession(t, s, sess, "GetSession must return a session whatever its expiry (expiry is the Manager's call)")
	wantSessions(t, s, r.ID, []*users.SessionRecord{sess}, "ListSessions must return sessions whatever their expiry")
}

func testGetSessionCurrentUser(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	sess := addSession(t, s, r.ID)
	want, err := s.UpdateUser(t.Context(), r.ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.Status = users.StatusSuspended
		return users.Revoke{}, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	_, u, err := getSession(t.Context(), s, sess.TokenHash)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if !sameUser(u, want) {
		t.Errorf("GetSession must return the user as it is now:\n got %s\nwant %s", showUser(u), showUser(want))
	}
}

func testGetSessionReturnsCopies(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	sess := addSession(t, s, r.ID)
	got, u, err := getSession(t.Context(), s, sess.TokenHash)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	// Its Methods may be shared, not to be modified; the record itself is
	// the caller's.
	got.LastSeenAt = base.Add(time.Hour)
	got.IP = "changed"
	u.Preferences["lang"] = "changed"
	u.FirstName = "Changed"
	wantSession(t, s, sess, "GetSession must return the session by value: changing the record must not change the stored one")
	wantUser(t, s, r, "GetSession must return a copy of the user: changing it must not change the stored one")
}

// staleRecords returns a session and a user with every field set, as a
// caller's records are after an earlier read, with the room they hold.
func staleRecords() (*users.SessionRecord, *users.UserRecord) {
	at := base.Add(-time.Hour)
	s := &users.SessionRecord{
		ID: "stale", TokenHash: randomHash(), UserID: "stale", UserGeneration: 99,
		CreatedAt: at, ExpiresAt: at, LastSeenAt: at, IP: "203.0.113.9", UserAgent: "stale",
		Methods:        []users.AuthMethod{users.MethodPassword, users.MethodTOTP, users.MethodRecoveryCode},
		SecondFactorAt: at, AuthenticatedAt: at, IdleTimeout: time.Hour,
	}
	u := &users.UserRecord{
		User: users.User{
			ID: "stale", Email: "stale@example.com", EmailVerified: true, EmailVerifiedAt: at,
			Username: "stale", FirstName: "Stale", LastName: "Stale", Role: users.RoleAdmin,
			Status: users.StatusSuspended, AvatarURL: "https://example.com/stale.png", AccountID: "stale",
			Preferences: map[string]string{"stale": "yes"}, CreatedAt: at, UpdatedAt: at,
			LastLoginAt: at, LastActiveAt: at,
		},
		PasswordHash: "stale", Generation: 99,
	}
	return s, u
}

func testGetSessionSetsEveryField(t *testing.T, s users.Store, _ string) {
	// A user and a session with every optional field empty, the user read
	// into a record that holds another's: each field must come back as
	// stored, empty ones too.
	bare := newUser()
	bare.Username, bare.FirstName, bare.LastName, bare.Preferences = "", "", "", nil
	mustCreateUser(t, s, bare)
	sess := newSession(bare)
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	_, u := staleRecords()
	got, err := getSessionInto(t.Context(), s, sess.TokenHash, u)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if !sameSession(&got, sess) {
		t.Errorf("GetSession must return every field of the session, empty ones as their zero value:\n got %s\nwant %s", showSession(&got), showSession(sess))
	}
	if !sameUser(u, bare) {
		t.Errorf("GetSession must set every field of the user it is given, empty ones to their zero value:\n got %s\nwant %s", showUser(u), showUser(bare))
	}
}

func testGetSessionKeepsNothingGiven(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	sess := newSession(r)
	sess.IP, sess.UserAgent = "192.0.2.1", "storetest"
	sess.Methods = []users.AuthMethod{users.MethodPassword, users.MethodTOTP}
	sess.SecondFactorAt = base
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	_, u := staleRecords()
	got, err := getSessionInto(t.Context(), s, sess.TokenHash, u)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if !sameSession(&got, sess) || !sameUser(u, r) {
		t.Errorf("GetSession must return the session and fill the user it is given:\n got %s\nwant %s\n got %s\nwant %s", showSession(&got), showSession(sess), showUser(u), showUser(r))
	}
	// The user is not the store's once it returns.
	u.Preferences["lang"] = "changed"
	u.FirstName = "Changed"
	wantUser(t, s, r, "GetSession must keep nothing of the user it was given")
}

func testTouchSessionForward(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	sess := addSession(t, s, r.ID)
	want := sess.Clone()
	touch := func(seen time.Time) {
		t.Helper()
		if err := s.TouchSession(t.Context(), sess.TokenHash, seen); err != nil {
			t.Fatalf("TouchSession: %v", err)
		}
	}
	touch(base.Add(2 * time.Minute))
	want.LastSeenAt = base.Add(2 * time.Minute)
	wantSession(t, s, want, "TouchSession must set LastSeenAt to a later time and change nothing else")
	touch(base.Add(time.Minute))
	wantSession(t, s, want, "TouchSession must not move LastSeenAt back")
	touch(base.Add(2 * time.Minute))
	wantSession(t, s, want, "TouchSession with the same time must leave LastSeenAt as it is")
}

func testTouchSessionNotFound(t *testing.T, s users.Store, _ string) {
	addUser(t, s)
	hash := randomHash()
	wantErr(t, s.TouchSession(t.Context(), hash, base), users.ErrNotFound, "TouchSession must return ErrNotFound for an unknown token hash")
	wantNoSession(t, s, hash, "TouchSession must never create a session")
}

func testTouchSessionNeverRecreates(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	sess := addSession(t, s, r.ID)
	if err := s.DeleteSession(t.Context(), sess.TokenHash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	wantErr(t, s.TouchSession(t.Context(), sess.TokenHash, base.Add(time.Minute)), users.ErrNotFound, "TouchSession after the session was deleted must return ErrNotFound")
	wantNoSession(t, s, sess.TokenHash, "TouchSession must never recreate a deleted session")
	wantSessions(t, s, r.ID, nil, "TouchSession must never recreate a deleted session")
}

func testDeleteSession(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	gone, kept := addSession(t, s, r.ID), addSession(t, s, r.ID)
	if err := s.DeleteSession(t.Context(), gone.TokenHash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	wantNoSession(t, s, gone.TokenHash, "DeleteSession must delete the session")
	wantSessions(t, s, r.ID, []*users.SessionRecord{kept}, "DeleteSession must delete only that session")
	wantErr(t, s.DeleteSessionByID(t.Context(), r.ID, gone.ID), users.ErrNotFound, "DeleteSession must delete the session's ID too")
	wantUser(t, s, r, "DeleteSession must not change the user (nor its Generation)")
}

func testDeleteSessionNotFound(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	sess := addSession(t, s, r.ID)
	wantErr(t, s.DeleteSession(t.Context(), randomHash()), users.ErrNotFound, "DeleteSession must return ErrNotFound for an unknown token hash")
	if err := s.DeleteSession(t.Context(), sess.TokenHash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	wantErr(t, s.DeleteSession(t.Context(), sess.TokenHash), users.ErrNotFound, "DeleteSession must return ErrNotFound for a session already deleted")
}

func testDeleteSessionFrees(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	sess := addSession(t, s, r.ID)
	if err := s.DeleteSession(t.Context(), sess.TokenHash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	again := sess.Clone()
	again.CreatedAt = base.Add(time.Minute)
	if err := s.CreateSession(t.Context(), again); err != nil {
		t.Errorf("DeleteSession must free the token hash and session ID (no index left behind): CreateSession with them again: %v", err)
	}
}

func testDeleteSessionByID(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	gone, kept := addSession(t, s, r.ID), addSession(t, s, r.ID)
	if err := s.DeleteSessionByID(t.Context(), r.ID, gone.ID); err != nil {
		t.Fatalf("DeleteSessionByID must delete a session of the user: %v", err)
	}
	wantNoSession(t, s, gone.TokenHash, "DeleteSessionByID must delete the session")
	wantSessions(t, s, r.ID, []*users.SessionRecord{kept}, "DeleteSessionByID must delete only that session")
	wantErr(t, s.DeleteSessionByID(t.Context(), r.ID, gone.ID), users.ErrNotFound, "DeleteSessionByID must return ErrNotFound for a session already deleted")
}

func testDeleteSessionByIDWrongUser(t *testing.T, s users.Store, _ string) {
	a, b := addUser(t, s), addUser(t, s)
	sess := addSession(t, s, a.ID)
	wantErr(t, s.DeleteSessionByID(t.Context(), b.ID, sess.ID), users.ErrNotFound, "DeleteSessionByID must return ErrNotFound for a session of another user")
	wantSession(t, s, sess, "DeleteSessionByID must not delete another user's session")
}

func testDeleteSessionByIDNotFound(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	addSession(t, s, r.ID)
	wantErr(t, s.DeleteSessionByID(t.Context(), r.ID, ulid.Make().String()), users.ErrNotFound, "DeleteSessionByID must return ErrNotFound for an unknown session ID")
	wantErr(t, s.DeleteSessionByID(t.Context(), ulid.Make().String(), ulid.Make().String()), users.ErrNotFound, "DeleteSessionByID must return ErrNotFound for an unknown user")
}

func testDeleteUserSessions(t *testing.T, s users.Store, _ string) {
	r, other := addUser(t, s), addUser(t, s)
	s1, s2 := addSession(t, s, r.ID), addSession(t, s, r.ID)
	keep := addSession(t, s, other.ID)
	tok := addToken(t, s, r, users.PurposeMagicLink)
	if err := s.DeleteUserSessions(t.Context(), r.ID); err != nil {
		t.Fatalf("DeleteUserSessions: %v", err)
	}
	wantNoSession(t, s, s1.TokenHash, "DeleteUserSessions must delete every session of the user")
	wantNoSession(t, s, s2.TokenHash, "DeleteUserSessions must delete every session of the user")
	wantSessions(t, s, r.ID, nil, "DeleteUserSessions must delete every session of the user")
	want := r.Clone()
	want.Generation++
	wantUser(t, s, want, "DeleteUserSessions must increment the user's Generation and change nothing else")
	wantSession(t, s, keep, "DeleteUserSessions must keep other users' sessions")
	wantUser(t, s, other, "DeleteUserSessions must not change other users")
	wantToken(t, s, tok, "DeleteUserSessions must keep the user's one-time tokens")
}

func testDeleteUserSessionsNone(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	for range 2 {
		if err := s.DeleteUserSessions(t.Context(), r.ID); err != nil {
			t.Fatalf("DeleteUserSessions on a user without sessions: %v", err)
		}
	}
	want := r.Clone()
	want.Generation += 2
	wantUser(t, s, want, "DeleteUserSessions must increment the Generation every time, even without sessions")
}

func testDeleteUserSessionsNotFound(t *testing.T, s users.Store, _ string) {
	addUser(t, s)
	wantErr(t, s.DeleteUserSessions(t.Context(), ulid.Make().String()), users.ErrNotFound, "DeleteUserSessions must return ErrNotFound for a missing user")
}

func testListSessionsOrder(t *testing.T, s users.Store, _ string) {
	r, other := addUser(t, s), addUser(t, s)
	addSession(t, s, other.ID)
	mk := func(created time.Time) *users.SessionRecord {
		sess := newSession(r)
		sess.CreatedAt, sess.LastSeenAt = created, created
		return sess
	}
	// In the order ListSessions must return them: by CreatedAt, ties by ID.
	want := []*users.SessionRecord{
		mk(base.Add(-time.Hour)),
		mk(base),
		mk(base),
		mk(base),
		mk(base.Add(time.Hour)),
	}
	want[0].ExpiresAt = base.Add(-30 * time.Minute) // expired: listed all the same
	// Make the tie-break by ID disagree with the creation order below, even
	// read back in any rotation of it (the ties are created in descending ID order).
	ids := []string{ulid.Make().String(), ulid.Make().String(), ulid.Make().String()}
	slices.Sort(ids)
	want[1].ID, want[2].ID, want[3].ID = ids[0], ids[1], ids[2]
	for _, i := range []int{3, 4, 2, 0, 1} {
		if err := s.CreateSession(t.Context(), want[i]); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}
	wantSessions(t, s, r.ID, want, "ListSessions must return only the user's sessions, in ascending CreatedAt order, ties by ID")
}

func testListSessionsEmpty(t *testing.T, s users.Store, _ string) {
	r, other := addUser(t, s), addUser(t, s)
	addSession(t, s, other.ID)
	for _, id := range []string{r.ID, ulid.Make().String()} {
		got, err := s.ListSessions(t.Context(), id)
		if err != nil || len(got) != 0 {
			t.Errorf("ListSessions for a user without sessions, or no such user, must return an empty slice and no error: got %d sessions, %v", len(got), err)
		}
	}
}

func testListSessionsReturnsCopies(t *testing.T, s users.Store, _ string) {
	r := addUser(t, s)
	sess := addSession(t, s, r.ID)
	got, err := s.ListSessions(t.Context(), r.ID)
	if err != nil || len(got) != 1 {
		t.Fatalf("ListSessions: %d sessions, %v", len(got), err)
	}
	got[0].TokenHash[0] ^= 0xff
	got[0].LastSeenAt = base.Add(time.Hour)
	wantSession(t, s, sess, "ListSessions must return copies: changing them must not change the stored sessions")
}

func testSessionIdleTimeoutRoundTrip(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	sess := newSession(u)
	sess.IdleTimeout = 7*24*time.Hour + time.Nanosecond // kept to the nanosecond
	want := roundTripSession(t, s, sess, rule)
	stepped, err := s.StepUpSession(t.Context(), u.ID, sess.ID, users.MethodTOTP, base.Add(6*time.Minute))
	must(t, err)
	if stepped.IdleTimeout != sess.IdleTimeout {
		t.Errorf("%s: StepUpSession returned IdleTimeout %v, want %v kept", rule, stepped.IdleTimeout, sess.IdleTimeout)
	}
	want.Methods = append(want.Methods, users.MethodTOTP)
	want.SecondFactorAt, want.AuthenticatedAt = base.Add(6*time.Minute), base.Add(6*time.Minute)
	wantSession(t, s, want, rule+" (after StepUpSession)")

	putMFA(t, s, newMFARecord(u.ID))
	c := newChallenge(u)
	must(t, s.CreateChallenge(t.Context(), c))
	second := newSession(u)
	second.IdleTimeout = 15 * time.Minute
	must(t, s.CompleteChallenge(t.Context(), c.Hash, func(*users.MFARecord) error { return nil }, second))
	wantSession(t, s, second, rule+" (a session stored by CompleteChallenge)")
}
