package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	mathrand "math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/userkit/users"
)

// Rules for the audit log: every mutating method writes its entries in the
// same atomic step as its change and none when it changes nothing; ListAudit
// selects what AuditQuery.Matches selects, newest first, in pages;
// DeleteAuditBefore purges by time; and entries outlive their user.

// auditRules are the rules of this file, each with its explanation.
var auditRules = []rule[users.Store]{
	{"EveryMutatorWritesItsEntries", "every method that changes state (CreateUser, CreateUsers, UpdateUser, DeleteUser, CreateSession, DeleteSession, DeleteSessionByID, DeleteUserSessions, DeleteOtherSessions, UpdateLoginAttempts, CreateToken, ConsumeToken) and AppendAudit must write the audit entries it is given, exactly as given, so that ListAudit finds them", testAuditEveryMutator},
	{"NoChangeNoEntry", "a method that writes nothing (fn returning an error, a duplicate email, username or ID, a generation conflict, a missing user, session or token, fn changing the ID) must write none of its audit entries either, and a change that happens writes them: the entry is atomic with its change", testAuditNoChangeNoEntry},
	{"CreateUsersEntryPerStoredRecord", "CreateUsers must write audit[i] if and only if it stores rs[i]", testAuditCreateUsers},
	{"FnFillsEntries", "UpdateUser's and UpdateLoginAttempts's fn may fill in or change the entries (they are pointers): the store writes them as fn's last call left them and leaves out those whose Type is empty", testAuditFnFills},
	{"DeleteFillsSubject", "DeleteSession must give an entry with an empty UserID or SessionID the deleted session's; ConsumeToken an entry with an empty UserID the token's user", testAuditDeleteFills},
	{"QueryAgreesWithMatches", "ListAudit must return exactly the entries AuditQuery.Matches selects, newest (greatest ID) first, at most Limit of them, below Before; walking pages by passing the last ID as Before must yield every selected entry once", testAuditQuery},
	{"PurgeByTime", "DeleteAuditBefore(t) must delete exactly the entries whose Time is before t (one at t stays), return how many, and leave queries by user, actor and time agreeing with Matches over what is left", testAuditPurge},
	{"OutlivesItsUser", "audit entries must be kept after DeleteUser removes their user", testAuditOutlivesUser},
	{"ReturnsAndKeepsCopies", "the store must keep copies of the entries it is given and return copies: changing either never changes what is stored", testAuditCopies},
	{"NewIDIsWrittenBack", "a store may give an entry with a UserID a new ID after every stored entry of its user (and a later Time of the new ID's millisecond) to keep the user's entries in commit order, but the entry it was given must then hold the ID and Time stored, so the caller and the event hook see what the log holds", testAuditNewIDWrittenBack},
	{"ConcurrentWritersKeepOrder", "of concurrent UpdateUser calls on one user whose fn numbers its write and its entry (with an ID made inside fn), every entry must be written with its change, and the entries by ID must follow the writes' order", testAuditConcurrentOrder},
}

// sessionRules are the rules for DeleteOtherSessions and for the last activity
// TouchSession records.
var sessionRules = []rule[users.Store]{
	{"DeleteOtherSessionsKeepsOne", "DeleteOtherSessions must delete every session of the user but keepID, return how many it deleted, leave the user's Generation and other users' sessions alone, and return ErrNotFound for a missing user", testDeleteOtherSessions},
	{"TouchSessionMovesLastActiveAt", "TouchSession must move the user's LastActiveAt with the session's LastSeenAt, forward only, in one step", testTouchSessionActivity},
	{"ActivityFiltersAgreeWithMatches", "ListUsers and CountUsers with ActiveSince and InactiveSince (alone, together and with role, status and account) must select exactly the users Match.Matches selects", testActivityFilters},
}

// entryClock gives entries increasing times, a few microseconds apart, so that
// many entries fall in one millisecond as under load.
type entryClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *entryClock) next() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Duration(1+mathrand.IntN(700)) * time.Microsecond)
	return c.now
}

// entryIDs makes the IDs of newEntry: monotonic within a millisecond, as
// the Manager's are.
var entryIDs = struct {
	sync.Mutex
	entropy *ulid.MonotonicEntropy
}{entropy: ulid.Monotonic(rand.Reader, 0)}

// newEntry returns an entry made at t (now, if t is zero), with an ID as the
// Manager makes it: a ULID whose time is t's millisecond. Entries made now
// have increasing IDs.
func newEntry(t time.Time, typ users.EventType, userID, actorID string) *users.AuditEntry {
	entryIDs.Lock()
	if t.IsZero() {
		t = time.Now().UTC().Truncate(time.Microsecond)
	}
	id := ulid.MustNew(ulid.Timestamp(t), entryIDs.entropy).String()
	entryIDs.Unlock()
	return &users.AuditEntry{
		ID: id, Time: t, Type: typ, UserID: userID, ActorID: actorID,
		SessionID: "S" + id[10:], IP: "192.0.2.7", UserAgent: "storetest/1",
		Reason: "why", Purpose: users.PurposeMagicLink,
		Fields: []string{"role"}, Data: map[string]string{"from": "user", "to": "admin"},
	}
}

// entryFor returns a new entry about u, made now, with the type typ.
func entryFor(u *users.UserRecord, typ users.EventType) *users.AuditEntry {
	return newEntry(time.Time{}, typ, u.ID, "")
}

func normEntry(e *users.AuditEntry) users.AuditEntry {
	c := *e.Clone()
	c.Time = c.Time.UTC()
	if len(c.Fields) == 0 {
		c.Fields = nil
	}
	if len(c.Data) == 0 {
		c.Data = nil
	}
	return c
}

func sameEntry(a, b *users.AuditEntry) bool {
	return reflect.DeepEqual(normEntry(a), normEntry(b))
}

// allEntries returns every stored entry, newest first.
func allEntries(t testing.TB, s users.Store) []*users.AuditEntry {
	t.Helper()
	out, err := s.ListAudit(t.Context(), users.AuditQuery{Limit: 1 << 20})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	return out
}

// wantEntries reports a broken rule unless the store holds exactly want (in
// any order of the argument; the store's newest first).
func wantEntries(t testing.TB, s users.Store, want []*users.AuditEntry, rule string) {
	t.Helper()
	got := allEntries(t, s)
	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b *users.AuditEntry) int { return strings.Compare(b.ID, a.ID) })
	if len(got) != len(want) {
		t.Errorf("%s: the store holds %d entries %s, want %d %s", rule, len(got), showEntries(got), len(want), showEntries(want))
		return
	}
	for i := range got {
		if !sameEntry(got[i], want[i]) {
			t.Errorf("%s: entry %d is %+v, want %+v", rule, i, normEntry(got[i]), normEntry(want[i]))
		}
	}
}

func showEntries(es []*users.AuditEntry) string {
	var b strings.Builder
	b.WriteString("[")
	for i, e := range es {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s:%s", e.Type, e.UserID)
	}
	return b.String() + "]"
}

func testAuditEveryMutator(t *testing.T, s users.Store, rule string) {
	ctx := t.Context()
	var want []*users.AuditEntry
	entry := func(u *users.UserRecord, typ users.EventType) *users.AuditEntry {
		e := entryFor(u, typ)
		want = append(want, e)
		return e
	}
	u := newUser()
	must(t, s.CreateUser(ctx, u, entry(u, users.EventUserCreated)))
	v, w := newUser(), newUser()
	errs, err := s.CreateUsers(ctx, []*users.UserRecord{v, w}, entry(v, users.EventUserCreated), entry(w, users.EventUserCreated))
	must(t, err)
	must(t, errs[0])
	must(t, errs[1])
	_, err = s.UpdateUser(ctx, u.ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.FirstName = "Grace"
		return users.Revoke{}, nil
	}, entry(u, users.EventUserUpdated))
	must(t, err)
	sess := newSession(mustGetUser(t, s, u.ID))
	must(t, s.CreateSession(ctx, sess, entry(u, users.EventLoginSucceeded)))
	must(t, s.DeleteSession(ctx, sess.TokenHash, entry(u, users.EventLogout)))
	sess = addSession(t, s, u.ID)
	must(t, s.DeleteSessionByID(ctx, u.ID, sess.ID, entry(u, users.EventSessionRevoked)))
	addSession(t, s, u.ID)
	keep := addSession(t, s, u.ID)
	n, err := s.DeleteOtherSessions(ctx, u.ID, keep.ID, entry(u, users.EventSessionsRevoked))
	must(t, err)
	if n != 1 {
		t.Errorf("%s: DeleteOtherSessions deleted %d, want 1", rule, n)
	}
	must(t, s.DeleteUserSessions(ctx, u.ID, entry(u, users.EventSessionsRevoked)))
	_, err = s.UpdateLoginAttempts(ctx, users.UserThrottleKey(u.ID), func(a *users.LoginAttempts) error {
		a.Failures, a.Consecutive, a.ExpiresAt = 1, 1, base.Add(time.Hour)
		return nil
	}, entry(u, users.EventAccountLocked))
	must(t, err)
	tok := newToken(u, users.PurposeVerifyEmail)
	must(t, s.CreateToken(ctx, tok, true, entry(u, users.EventTokenIssued)))
	_, err = s.ConsumeToken(ctx, tok.Hash, tok.Purpose, entry(u, users.EventTokenRedeemed))
	must(t, err)
	must(t, s.AppendAudit(ctx, entry(u, users.EventLoginFailed), entry(v, users.EventLoginFailed)))
	must(t, s.DeleteUser(ctx, w.ID, entry(w, users.EventUserRemoved)))
	wantEntries(t, s, want, rule)
}

func testAuditNoChangeNoEntry(t *testing.T, s users.Store, rule string) {
	ctx := t.Context()
	u, other := addUser(t, s), addUser(t, s)
	e := func() *users.AuditEntry { return entryFor(u, users.EventUserUpdated) }
	refused := []struct {
		what string
		call func(a *users.AuditEntry) error
	}{
		{"CreateUser with a taken email", func(a *users.AuditEntry) error {
			r := newUser()
			r.Email = u.Email
			return s.CreateUser(ctx, r, a)
		}},
		{"CreateUser with a taken username", func(a *users.AuditEntry) error {
			r := newUser()
			r.Username = u.Username
			return s.CreateUser(ctx, r, a)
		}},
		{"CreateUser with a taken ID", func(a *users.AuditEntry) error {
			r := newUser()
			r.ID = u.ID
			return s.CreateUser(ctx, r, a)
		}},
		{"UpdateUser whose fn fails", func(a *users.AuditEntry) error {
			_, err := s.UpdateUser(ctx, u.ID, func(r *users.UserRecord) (users.Revoke, error) {
				r.FirstName = "Changed"
				return users.Revoke{Sessions: true}, errSentinel
			}, a)
			return err
		}},
		{"UpdateUser to a taken email", func(a *users.AuditEntry) error {
			_, err := s.UpdateUser(ctx, u.ID, func(r *users.UserRecord) (users.Revoke, error) {
				r.Email = other.Email
				return users.Revoke{}, nil
			}, a)
			return err
		}},
		{"UpdateUser to a taken username", func(a *users.AuditEntry) error {
			_, err := s.UpdateUser(ctx, u.ID, func(r *users.UserRecord) (users.Revoke, error) {
				r.Username = other.Username
				return users.Revoke{}, nil
			}, a)
			return err
		}},
		{"UpdateUser whose fn changes the Generation", func(a *users.AuditEntry) error {
			_, err := s.UpdateUser(ctx, u.ID, func(r *users.UserRecord) (users.Revoke, error) {
				r.Generation++
				return users.Revoke{}, nil
			}, a)
			return err
		}},
		{"UpdateUser of a missing user", func(a *users.AuditEntry) error {
			_, err := s.UpdateUser(ctx, ulid.Make().String(), func(r *users.UserRecord) (users.Revoke, error) {
				return users.Revoke{}, nil
			}, a)
			return err
		}},
		{"DeleteUser of a missing user", func(a *users.AuditEntry) error {
			return s.DeleteUser(ctx, ulid.Make().String(), a)
		}},
		{"CreateSession for a missing user", func(a *users.AuditEntry) error {
			gone := newUser()
			return s.CreateSession(ctx, newSession(gone), a)
		}},
		{"CreateSession under a stale generation", func(a *users.AuditEntry) error {
			sess := newSession(mustGetUser(t, s, u.ID))
			sess.UserGeneration--
			return s.CreateSession(ctx, sess, a)
		}},
		{"CreateSession with a taken token hash", func(a *users.AuditEntry) error {
			old := addSession(t, s, u.ID)
			sess := newSession(mustGetUser(t, s, u.ID))
			sess.TokenHash = old.TokenHash
			return s.CreateSession(ctx, sess, a)
		}},
		{"DeleteSession of a missing session", func(a *users.AuditEntry) error {
			return s.DeleteSession(ctx, randomHash(), a)
		}},
		{"DeleteSessionByID of another user's session", func(a *users.AuditEntry) error {
			sess := addSession(t, s, other.ID)
			return s.DeleteSessionByID(ctx, u.ID, sess.ID, a)
		}},
		{"DeleteUserSessions of a missing user", func(a *users.AuditEntry) error {
			return s.DeleteUserSessions(ctx, ulid.Make().String(), a)
		}},
		{"DeleteOtherSessions of a missing user", func(a *users.AuditEntry) error {
			_, err := s.DeleteOtherSessions(ctx, ulid.Make().String(), "", a)
			return err
		}},
		{"UpdateLoginAttempts whose fn fails", func(a *users.AuditEntry) error {
			_, err := s.UpdateLoginAttempts(ctx, users.UserThrottleKey(u.ID), func(la *users.LoginAttempts) error {
				la.Failures = 3
				return errSentinel
			}, a)
			return err
		}},
		{"CreateToken for a missing user", func(a *users.AuditEntry) error {
			return s.CreateToken(ctx, newToken(newUser(), users.PurposeMagicLink), false, a)
		}},
		{"CreateToken with a taken hash", func(a *users.AuditEntry) error {
			old := addToken(t, s, u, users.PurposeMagicLink)
			tok := newToken(u, users.PurposeMagicLink)
			tok.Hash = old.Hash
			return s.CreateToken(ctx, tok, false, a)
		}},
		{"ConsumeToken of another purpose", func(a *users.AuditEntry) error {
			tok := addToken(t, s, u, users.PurposeMagicLink)
			_, err := s.ConsumeToken(ctx, tok.Hash, users.PurposePasswordReset, a)
			return err
		}},
		{"ConsumeToken of a missing token", func(a *users.AuditEntry) error {
			_, err := s.ConsumeToken(ctx, randomHash(), users.PurposeMagicLink, a)
			return err
		}},
	}
	before := mustGetUser(t, s, u.ID)
	for _, c := range refused {
		a := e()
		if err := c.call(a); err == nil {
			t.Errorf("%s: %s succeeded; the rule needs it refused", rule, c.what)
		}
		if got := allEntries(t, s); len(got) != 0 {
			t.Fatalf("%s: after a refused %s the store holds entries %s, want none", rule, c.what, showEntries(got))
		}
	}
	if got := mustGetUser(t, s, u.ID); got.FirstName != before.FirstName || got.Generation != before.Generation {
		t.Errorf("%s: a refused UpdateUser changed the user: %s, was %s", rule, showUser(got), showUser(before))
	}
	// And the same calls when they change something do write their entry.
	a := e()
	_, err := s.UpdateUser(ctx, u.ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.FirstName = "Changed"
		return users.Revoke{}, nil
	}, a)
	must(t, err)
	wantEntries(t, s, []*users.AuditEntry{a}, rule)
}

func testAuditCreateUsers(t *testing.T, s users.Store, rule string) {
	old := addUser(t, s)
	ok1, dup, ok2 := newUser(), newUser(), newUser()
	dup.Email = old.Email
	es := []*users.AuditEntry{entryFor(ok1, users.EventUserCreated), entryFor(dup, users.EventUserCreated), entryFor(ok2, users.EventUserCreated)}
	errs, err := s.CreateUsers(t.Context(), []*users.UserRecord{ok1, dup, ok2}, es...)
	must(t, err)
	if errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Fatalf("%s: CreateUsers errors %v, want nil, ErrDuplicateEmail, nil", rule, errs)
	}
	wantEntries(t, s, []*users.AuditEntry{es[0], es[2]}, rule)
}

func testAuditFnFills(t *testing.T, s users.Store, rule string) {
	ctx := t.Context()
	u := addUser(t, s)
	filled, empty := entryFor(u, ""), entryFor(u, "")
	_, err := s.UpdateUser(ctx, u.ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.Role = users.RoleAdmin
		filled.Type, filled.Fields = users.EventRoleChanged, []string{"role"}
		filled.Data = map[string]string{"to": "admin"}
		return users.Revoke{}, nil
	}, filled, empty)
	must(t, err)
	locked := entryFor(u, "")
	notLocked := entryFor(u, "")
	_, err = s.UpdateLoginAttempts(ctx, users.UserThrottleKey(u.ID), func(a *users.LoginAttempts) error {
		a.Failures, a.Consecutive, a.ExpiresAt = 10, 10, base.Add(time.Hour)
		locked.Type, locked.Reason = users.EventAccountLocked, "too_many_failures"
		return nil
	}, locked, notLocked)
	must(t, err)
	wantEntries(t, s, []*users.AuditEntry{filled, locked}, rule)
}

func testAuditDeleteFills(t *testing.T, s users.Store, rule string) {
	ctx := t.Context()
	u := addUser(t, s)
	sess := addSession(t, s, u.ID)
	logout := newEntry(time.Time{}, users.EventLogout, "", "")
	logout.SessionID = ""
	must(t, s.DeleteSession(ctx, sess.TokenHash, logout))
	tok := addToken(t, s, u, users.PurposePasswordReset)
	redeem := newEntry(time.Time{}, users.EventTokenRedeemed, "", "")
	_, err := s.ConsumeToken(ctx, tok.Hash, tok.Purpose, redeem)
	must(t, err)
	got := allEntries(t, s)
	if len(got) != 2 {
		t.Fatalf("%s: %d entries, want 2", rule, len(got))
	}
	for _, e := range got {
		switch e.Type {
		case users.EventLogout:
			if e.UserID != u.ID || e.SessionID != sess.ID {
				t.Errorf("%s: DeleteSession's entry has UserID %q SessionID %q, want %q %q", rule, e.UserID, e.SessionID, u.ID, sess.ID)
			}
		case users.EventTokenRedeemed:
			if e.UserID != u.ID {
				t.Errorf("%s: ConsumeToken's entry has UserID %q, want %q", rule, e.UserID, u.ID)
			}
		}
	}
}

// randomEntries appends n entries about a few users, by a few actors, of a
// few types, at increasing times, some of them in one AppendAudit call, and
// returns them.
func randomEntries(t testing.TB, s users.Store, rnd *mathrand.Rand, n int, clock *entryClock) []*users.AuditEntry {
	t.Helper()
	ids := []string{"", ulid.Make().String(), ulid.Make().String(), ulid.Make().String(), ulid.Make().String()}
	types := []users.EventType{users.EventLoginSucceeded, users.EventLoginFailed, users.EventUserUpdated, users.EventAccountLocked}
	var all []*users.AuditEntry
	for len(all) < n {
		batch := make([]*users.AuditEntry, 1+rnd.IntN(3))
		for i := range batch {
			batch[i] = newEntry(clock.next(), types[rnd.IntN(len(types))], ids[rnd.IntN(len(ids))], ids[rnd.IntN(len(ids))])
		}
		must(t, s.AppendAudit(t.Context(), batch...))
		all = append(all, batch...)
	}
	return all
}

// wantAuditQuery checks ListAudit for q (without Before and Limit) against the
// entries of all that q.Matches selects: one listing of them all, and a walk
// by pages of the given size.
func wantAuditQuery(t testing.TB, s users.Store, all []*users.AuditEntry, q users.AuditQuery, page int, rule string) {
	t.Helper()
	var want []*users.AuditEntry
	for _, e := range all {
		if q.Matches(e) {
			want = append(want, e)
		}
	}
	slices.SortFunc(want, func(a, b *users.AuditEntry) int { return strings.Compare(b.ID, a.ID) })
	q.Limit = len(all) + 1
	got, err := s.ListAudit(t.Context(), q)
	if err != nil {
		t.Fatalf("%s: ListAudit(%+v): %v", rule, q, err)
	}
	sameList := func(what string, got, want []*users.AuditEntry) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %s for %+v: %d entries, want %d", rule, what, q, len(got), len(want))
			return
		}
		for i := range got {
			if !sameEntry(got[i], want[i]) {
				t.Errorf("%s: %s for %+v: entry %d is %+v, want %+v", rule, what, q, i, normEntry(got[i]), normEntry(want[i]))
				return
			}
		}
	}
	sameList("ListAudit", got, want)
	var walked []*users.AuditEntry
	q.Limit = page
	for range len(all) + 2 {
		p, err := s.ListAudit(t.Context(), q)
		if err != nil {
			t.Fatalf("%s: ListAudit(%+v): %v", rule, q, err)
		}
		if len(p) > page {
			t.Fatalf("%s: ListAudit(%+v) returned %d entries, more than Limit", rule, q, len(p))
		}
		walked = append(walked, p...)
		if len(p) < page {
			break
		}
		q.Before = p[len(p)-1].ID
	}
	sameList("a walk by pages", walked, want)
}

func testAuditQuery(t *testing.T, s users.Store, rule string) {
	rnd := mathrand.New(mathrand.NewPCG(1, 2))
	clock := &entryClock{now: base}
	all := randomEntries(t, s, rnd, 300, clock)
	mid := all[len(all)/2].Time
	q1 := all[len(all)/4].Time
	queries := []users.AuditQuery{
		{},
		{UserID: all[0].UserID},
		{UserID: all[1].UserID, ActorID: all[2].ActorID},
		{ActorID: all[3].ActorID},
		{UserID: ulid.Make().String()},
		{Types: []users.EventType{users.EventLoginFailed}},
		{Types: []users.EventType{users.EventLoginFailed, users.EventAccountLocked}, UserID: all[4].UserID},
		{Since: mid},
		{Until: mid},
		{Since: q1, Until: mid},
		{Since: q1, Until: mid, ActorID: all[5].ActorID, Types: []users.EventType{users.EventUserUpdated}},
		{Since: mid.Add(time.Microsecond), Until: mid.Add(2 * time.Microsecond)},
		{Since: base.Add(-time.Hour), Until: base},
	}
	for _, q := range queries {
		for _, page := range []int{1, 7, 50} {
			wantAuditQuery(t, s, all, q, page, rule)
		}
	}
	// Before at an ID that is not stored, and Limit zero.
	q := users.AuditQuery{Before: all[100].ID[:25] + "0", Limit: 1000}
	got, err := s.ListAudit(t.Context(), q)
	must(t, err)
	for _, e := range got {
		if e.ID >= q.Before {
			t.Errorf("%s: ListAudit with Before %s returned %s", rule, q.Before, e.ID)
		}
	}
	if got, err := s.ListAudit(t.Context(), users.AuditQuery{Limit: 0}); err != nil || len(got) != 0 {
		t.Errorf("%s: ListAudit with Limit 0 = %d entries, %v; want none", rule, len(got), err)
	}
}

func testAuditPurge(t *testing.T, s users.Store, rule string) {
	rnd := mathrand.New(mathrand.NewPCG(3, 4))
	clock := &entryClock{now: base}
	all := randomEntries(t, s, rnd, 200, clock)
	cut := all[120].Time // entry 120 stays: it is at the cut, not before it
	want := 0
	var kept []*users.AuditEntry
	for _, e := range all {
		if e.Time.Before(cut) {
			want++
		} else {
			kept = append(kept, e)
		}
	}
	n, err := s.DeleteAuditBefore(t.Context(), cut)
	must(t, err)
	if n != want {
		t.Errorf("%s: DeleteAuditBefore deleted %d, want %d", rule, n, want)
	}
	if n, err := s.DeleteAuditBefore(t.Context(), cut); err != nil || n != 0 {
		t.Errorf("%s: a second DeleteAuditBefore(t) = %d, %v; want 0", rule, n, err)
	}
	for _, q := range []users.AuditQuery{
		{}, {UserID: all[0].UserID}, {ActorID: all[1].ActorID}, {Since: base}, {Until: cut.Add(time.Millisecond)},
	} {
		wantAuditQuery(t, s, kept, q, 9, rule)
	}
	// New entries after a purge are found with the old ones.
	more := randomEntries(t, s, rnd, 20, clock)
	wantAuditQuery(t, s, append(kept, more...), users.AuditQuery{UserID: all[0].UserID}, 4, rule)
	n, err = s.DeleteAuditBefore(t.Context(), clock.next())
	must(t, err)
	if n != len(kept)+len(more) {
		t.Errorf("%s: DeleteAuditBefore(after everything) deleted %d, want %d", rule, n, len(kept)+len(more))
	}
	wantEntries(t, s, nil, rule)
}

func testAuditOutlivesUser(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	created := entryFor(u, users.EventUserUpdated)
	_, err := s.UpdateUser(t.Context(), u.ID, func(r *users.UserRecord) (users.Revoke, error) { return users.Revoke{}, nil }, created)
	must(t, err)
	removed := entryFor(u, users.EventUserRemoved)
	must(t, s.DeleteUser(t.Context(), u.ID, removed))
	got, err := s.ListAudit(t.Context(), users.AuditQuery{UserID: u.ID, Limit: 10})
	must(t, err)
	if len(got) != 2 || !sameEntry(got[0], removed) || !sameEntry(got[1], created) {
		t.Errorf("%s: the removed user's entries are %s, want [user.removed user.updated]", rule, showEntries(got))
	}
}

func testAuditCopies(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	e := entryFor(u, users.EventLoginFailed)
	keep := e.Clone()
	must(t, s.AppendAudit(t.Context(), e))
	e.Fields[0], e.Data["to"], e.Reason = "changed", "changed", "changed"
	got := allEntries(t, s)
	if len(got) != 1 || !sameEntry(got[0], keep) {
		t.Fatalf("%s: changing an entry after AppendAudit changed the stored one: %+v", rule, got)
	}
	got[0].Fields[0], got[0].Data["to"] = "changed", "changed"
	if again := allEntries(t, s); !sameEntry(again[0], keep) {
		t.Errorf("%s: changing a returned entry changed the stored one: %+v", rule, normEntry(again[0]))
	}
}

func testAuditConcurrentOrder(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	const writers = 40
	errs := make([]error, writers)
	start(writers, func(i int) {
		e := entryFor(u, users.EventUserUpdated)
		_, errs[i] = s.UpdateUser(context.Background(), u.ID, func(r *users.UserRecord) (users.Revoke, error) {
			n := len(r.Preferences["seq"])
			r.Preferences = map[string]string{"seq": r.Preferences["seq"] + "x"}
			made := entryFor(u, users.EventUserUpdated) // an ID made inside fn
			e.ID, e.Time = made.ID, made.Time
			e.Data = map[string]string{"seq": fmt.Sprint(n + 1)}
			return users.Revoke{}, nil
		}, e)
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: writer %d: %v", rule, i, err)
		}
	}
	got, err := s.ListAudit(t.Context(), users.AuditQuery{UserID: u.ID, Limit: 2 * writers})
	must(t, err)
	if len(got) != writers {
		t.Fatalf("%s: %d entries for %d writes", rule, len(got), writers)
	}
	for i, e := range got { // newest first: writer number writers-i
		if want := fmt.Sprint(writers - i); e.Data["seq"] != want {
			t.Fatalf("%s: entry %d (newest first) records write %s, want %s: entries are out of the writes' order %s", rule, i, e.Data["seq"], want, e.ID)
		}
	}
	if r := mustGetUser(t, s, u.ID); len(r.Preferences["seq"]) != writers {
		t.Errorf("%s: the user records %d writes, want %d", rule, len(r.Preferences["seq"]), writers)
	}
}

func testDeleteOtherSessions(t *testing.T, s users.Store, rule string) {
	ctx := t.Context()
	u, other := addUser(t, s), addUser(t, s)
	var mine []*users.SessionRecord
	for range 4 {
		mine = append(mine, addSession(t, s, u.ID))
	}
	theirs := addSession(t, s, other.ID)
	gen := mustGetUser(t, s, u.ID).Generation
	n, err := s.DeleteOtherSessions(ctx, u.ID, mine[2].ID)
	must(t, err)
	if n != 3 {
		t.Errorf("%s: DeleteOtherSessions = %d, want 3", rule, n)
	}
	wantSessions(t, s, u.ID, []*users.SessionRecord{mine[2]}, rule)
	wantSession(t, s, theirs, rule)
	if g := mustGetUser(t, s, u.ID).Generation; g != gen {
		t.Errorf("%s: Generation %d after DeleteOtherSessions, want %d", rule, g, gen)
	}
	// keepID naming another user's session keeps nothing of this user's.
	n, err = s.DeleteOtherSessions(ctx, u.ID, theirs.ID)
	must(t, err)
	if n != 1 {
		t.Errorf("%s: DeleteOtherSessions with another user's keepID = %d, want 1", rule, n)
	}
	wantSessions(t, s, u.ID, nil, rule)
	wantSession(t, s, theirs, rule)
	if n, err := s.DeleteOtherSessions(ctx, u.ID, ""); err != nil || n != 0 {
		t.Errorf("%s: DeleteOtherSessions without sessions = %d, %v; want 0, nil", rule, n, err)
	}
	_, err = s.DeleteOtherSessions(ctx, ulid.Make().String(), "")
	wantErr(t, err, users.ErrNotFound, rule)
}

func testTouchSessionActivity(t *testing.T, s users.Store, rule string) {
	ctx := t.Context()
	u := addUser(t, s)
	sess := addSession(t, s, u.ID)
	at := base.Add(time.Hour)
	must(t, s.TouchSession(ctx, sess.TokenHash, at))
	if got := mustGetUser(t, s, u.ID).LastActiveAt; !got.Equal(at) {
		t.Errorf("%s: LastActiveAt %v after TouchSession(%v)", rule, got, at)
	}
	must(t, s.TouchSession(ctx, sess.TokenHash, base.Add(time.Minute)))
	if got := mustGetUser(t, s, u.ID).LastActiveAt; !got.Equal(at) {
		t.Errorf("%s: an earlier TouchSession moved LastActiveAt back to %v, want %v", rule, got, at)
	}
	// The user's LastActiveAt is the user's: another session's touch moves it
	// only forward.
	other := addSession(t, s, u.ID)
	must(t, s.TouchSession(ctx, other.TokenHash, base.Add(30*time.Minute)))
	if got := mustGetUser(t, s, u.ID).LastActiveAt; !got.Equal(at) {
		t.Errorf("%s: a touch of another session moved LastActiveAt back to %v, want %v", rule, got, at)
	}
	n, err := s.CountUsers(ctx, users.Match{ActiveSince: at})
	if err != nil || n != 1 {
		t.Errorf("%s: CountUsers(ActiveSince %v) = %d, %v after the touch; want 1", rule, at, n, err)
	}
}

func testActivityFilters(t *testing.T, s users.Store, rule string) {
	rnd := mathrand.New(mathrand.NewPCG(5, 6))
	days := []time.Duration{0, 1, 2, 3, 10, 40, 400}
	all := addUsers(t, s, 150, func(i int, r *users.UserRecord) {
		r.Role = indexRoles[rnd.IntN(len(indexRoles))]
		r.Status = indexStatuses[rnd.IntN(len(indexStatuses))]
		r.AccountID = indexAccounts[rnd.IntN(len(indexAccounts))]
		if d := days[rnd.IntN(len(days))]; d != 0 {
			r.LastActiveAt = base.Add(-d*24*time.Hour + time.Duration(rnd.IntN(86400))*time.Second)
		}
	})
	// Some move by a session's touch, some by UpdateUser.
	for i := 0; i < len(all); i += 7 {
		sess := addSession(t, s, all[i].ID)
		must(t, s.TouchSession(t.Context(), sess.TokenHash, base.Add(time.Duration(i)*time.Second)))
	}
	for i := 3; i < len(all); i += 11 {
		_, err := s.UpdateUser(t.Context(), all[i].ID, func(r *users.UserRecord) (users.Revoke, error) {
			r.LastActiveAt = time.Time{}
			return users.Revoke{}, nil
		})
		must(t, err)
	}
	for i, r := range all {
		all[i] = mustGetUser(t, s, r.ID)
	}
	for _, since := range []time.Duration{0, 12 * time.Hour, 36 * time.Hour, 5 * 24 * time.Hour, 100 * 24 * time.Hour} {
		at := base.Add(-since)
		for _, m := range []users.Match{
			{ActiveSince: at},
			{InactiveSince: at},
			{ActiveSince: at.Add(-30 * 24 * time.Hour), InactiveSince: at},
			{ActiveSince: at, Role: users.RoleAdmin},
			{InactiveSince: at, Status: users.StatusActive},
			{ActiveSince: at, AccountID: "big"},
			{InactiveSince: at, AccountID: "big", Role: users.RoleUser},
		} {
			checkMatch(t, s, all, m, since == 36*time.Hour, rule)
		}
	}
}

func testAuditNewIDWrittenBack(t *testing.T, s users.Store, rule string) {
	u := addUser(t, s)
	newer := entryFor(u, users.EventLoginFailed)
	must(t, s.AppendAudit(t.Context(), newer))
	// Entries stamped an hour before the stored one, as by a Manager whose
	// clock is behind, written by AppendAudit and with a change.
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	appended := newEntry(at, users.EventRoleChanged, u.ID, "")
	updated := newEntry(at, users.EventRoleChanged, u.ID, "")
	given := []users.AuditEntry{*appended.Clone(), *updated.Clone()}
	must(t, s.AppendAudit(t.Context(), appended))
	_, err := s.UpdateUser(t.Context(), u.ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.Role = users.RoleAdmin
		return users.Revoke{}, nil
	}, updated)
	must(t, err)
	stored := map[string]*users.AuditEntry{}
	for _, e := range allEntries(t, s) {
		stored[e.ID] = e
	}
	if len(stored) != 3 {
		t.Fatalf("%s: the store holds %d entries, want 3", rule, len(stored))
	}
	before := newer.ID // the newest entry of the user before each call
	for i, c := range []struct {
		how string
		e   *users.AuditEntry
	}{{"AppendAudit", appended}, {"UpdateUser", updated}} {
		got, ok := stored[c.e.ID]
		if !ok {
			t.Errorf("%s: after %s the entry given has ID %s, which the store does not hold: a new ID must be written into it", rule, c.how, c.e.ID)
			continue
		}
		if !sameEntry(got, c.e) {
			t.Errorf("%s: after %s the entry given is %+v, the store holds %+v", rule, c.how, normEntry(c.e), normEntry(got))
		}
		if id, err := ulid.ParseStrict(c.e.ID); err != nil || int64(id.Time()) != c.e.Time.UnixMilli() {
			t.Errorf("%s: after %s the entry's ID %s is not a ULID of its Time %v", rule, c.how, c.e.ID, c.e.Time)
		}
		if c.e.ID != given[i].ID {
			if c.e.ID <= before || c.e.Time.Before(given[i].Time) {
				t.Errorf("%s: %s gave the entry ID %s and Time %v (given %s, %v): a new ID must sort after the user's newest entry %s, and the Time may only move forward", rule, c.how, c.e.ID, c.e.Time, given[i].ID, given[i].Time, before)
			}
			want := given[i]
			want.ID, want.Time = c.e.ID, c.e.Time
			if !sameEntry(&want, c.e) {
				t.Errorf("%s: %s changed more than the entry's ID and Time: %+v, given %+v", rule, c.how, normEntry(c.e), normEntry(&given[i]))
			}
		}
		before = max(before, c.e.ID)
	}
}
