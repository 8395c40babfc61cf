package users_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/userkit/users"
)

// boltAudit returns an audit entry of type t about userID at time at, whose ID
// is a ULID of at as the Manager makes them.
func boltAudit(t users.EventType, userID string, at time.Time, seq int) *users.AuditEntry {
	id := ulid.ULID{}
	if err := id.SetTime(ulid.Timestamp(at)); err != nil {
		panic(err)
	}
	copy(id[6:], fmt.Sprintf("%010d", seq))
	return &users.AuditEntry{ID: id.String(), Time: at, Type: t, UserID: userID}
}

// boltAuditAll lists every entry of s, newest first.
func boltAuditAll(tb testing.TB, s users.Store) []*users.AuditEntry {
	tb.Helper()
	es, err := s.ListAudit(tb.Context(), users.AuditQuery{Limit: 1 << 20})
	must(tb, err)
	return es
}

func boltAuditIDs(es []*users.AuditEntry) []string {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	return ids
}

// TestBoltStore_AuditAtomic checks that each mutator writes its entries exactly
// when it writes its change, and fills in what the contract says it fills in.
func TestBoltStore_AuditAtomic(t *testing.T) {
	s, _ := mustOpenBolt(t, nil)
	ctx := t.Context()
	at := boltT0
	seq := 0
	entry := func(typ users.EventType, userID string) *users.AuditEntry {
		seq++
		at = at.Add(time.Second)
		return boltAudit(typ, userID, at, seq)
	}
	var want []string // IDs that must be stored
	u1, u2 := boltUser(1), boltUser(2)

	e := entry(users.EventUserCreated, u1.ID)
	must(t, s.CreateUser(ctx, u1, e))
	want = append(want, e.ID)
	dup := boltUser(3)
	dup.Email = u1.Email
	if err := s.CreateUser(ctx, dup, entry(users.EventUserCreated, dup.ID)); err != users.ErrDuplicateEmail {
		t.Fatalf("CreateUser(duplicate) = %v", err)
	}

	errs, err := s.CreateUsers(ctx, []*users.UserRecord{u2, dup}, entry(users.EventUserCreated, u2.ID), entry(users.EventUserCreated, dup.ID))
	must(t, err)
	if errs[0] != nil || errs[1] != users.ErrDuplicateEmail {
		t.Fatalf("CreateUsers: %v", errs)
	}
	want = append(want, boltAuditAll(t, s)[0].ID)

	// UpdateUser: fn fills in the entries; one left without a Type is left out.
	filled, unused := &users.AuditEntry{}, &users.AuditEntry{}
	_, err = s.UpdateUser(ctx, u1.ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.FirstName = "Changed"
		*filled = *entry(users.EventUserUpdated, r.ID)
		filled.Fields = []string{"first_name"}
		return users.Revoke{}, nil
	}, filled, unused)
	must(t, err)
	want = append(want, filled.ID)
	refused := entry(users.EventUserUpdated, u1.ID)
	boom := errors.New("refused")
	if _, err := s.UpdateUser(ctx, u1.ID, func(*users.UserRecord) (users.Revoke, error) { return users.Revoke{}, boom }, refused); err != boom {
		t.Fatalf("UpdateUser(fn fails) = %v", err)
	}

	// UpdateLoginAttempts: entries written with the change, also when the change
	// leaves nothing stored, and not when fn refuses.
	e = entry(users.EventLoginFailed, "")
	_, err = s.UpdateLoginAttempts(ctx, "k", func(a *users.LoginAttempts) error { a.Failures = 1; return nil }, e)
	must(t, err)
	want = append(want, e.ID)
	e = entry(users.EventLoginSucceeded, u1.ID)
	_, err = s.UpdateLoginAttempts(ctx, "k2", func(a *users.LoginAttempts) error { return nil }, e)
	must(t, err)
	want = append(want, e.ID)
	if _, err := s.UpdateLoginAttempts(ctx, "k", func(*users.LoginAttempts) error { return boom }, entry(users.EventAccountLocked, "")); err != boom {
		t.Fatalf("UpdateLoginAttempts(fn fails) = %v", err)
	}

	// Sessions: DeleteSession fills in the subject and the session.
	for i := range 3 {
		sr := boltSession(u1.ID, fmt.Sprintf("01SESSION%017d", i), 0, boltT0.Add(time.Hour))
		e := entry(users.EventLoginSucceeded, u1.ID)
		must(t, s.CreateSession(ctx, sr, e))
		want = append(want, e.ID)
	}
	if err := s.CreateSession(ctx, boltSession(u1.ID, "01SESSIONSTALE", 7, boltT0.Add(time.Hour)), entry(users.EventLoginSucceeded, u1.ID)); err != users.ErrConflict {
		t.Fatalf("CreateSession(stale generation) = %v", err)
	}
	logout := entry(users.EventLogout, "")
	must(t, s.DeleteSession(ctx, boltHash("s-01SESSION00000000000000000"), logout))
	if logout.UserID != u1.ID || logout.SessionID != "01SESSION00000000000000000" {
		t.Errorf("DeleteSession filled in UserID %q, SessionID %q", logout.UserID, logout.SessionID)
	}
	want = append(want, logout.ID)
	if err := s.DeleteSession(ctx, boltHash("nothing"), entry(users.EventLogout, "")); err != users.ErrNotFound {
		t.Fatalf("DeleteSession(missing) = %v", err)
	}
	e = entry(users.EventSessionsRevoked, u1.ID)
	n, err := s.DeleteOtherSessions(ctx, u1.ID, "01SESSION00000000000000001", e)
	must(t, err)
	if n != 1 {
		t.Errorf("DeleteOtherSessions deleted %d, want 1", n)
	}
	want = append(want, e.ID)
	left, err := s.ListSessions(ctx, u1.ID)
	must(t, err)
	if len(left) != 1 || left[0].ID != "01SESSION00000000000000001" {
		t.Errorf("sessions after DeleteOtherSessions: %v", left)
	}
	if _, err := s.DeleteOtherSessions(ctx, "nobody", "", entry(users.EventSessionsRevoked, "nobody")); err != users.ErrNotFound {
		t.Fatalf("DeleteOtherSessions(no user) = %v", err)
	}

	// Tokens: ConsumeToken fills in the subject.
	tok := boltToken(u2.ID, "a", users.PurposeMagicLink, boltT0.Add(time.Hour))
	e = entry(users.EventTokenIssued, u2.ID)
	must(t, s.CreateToken(ctx, tok, true, e))
	want = append(want, e.ID)
	redeemed := entry(users.EventTokenRedeemed, "")
	if _, err := s.ConsumeToken(ctx, tok.Hash, users.PurposeVerifyEmail, redeemed); err != users.ErrNotFound {
		t.Fatalf("ConsumeToken(other purpose) = %v", err)
	}
	_, err = s.ConsumeToken(ctx, tok.Hash, users.PurposeMagicLink, redeemed)
	must(t, err)
	if redeemed.UserID != u2.ID {
		t.Errorf("ConsumeToken filled in UserID %q", redeemed.UserID)
	}
	want = append(want, redeemed.ID)

	e = entry(users.EventSessionsRevoked, u1.ID)
	must(t, s.DeleteUserSessions(ctx, u1.ID, e))
	want = append(want, e.ID)
	e = entry(users.EventUserRemoved, u2.ID)
	must(t, s.DeleteUser(ctx, u2.ID, e))
	want = append(want, e.ID)
	if err := s.DeleteUser(ctx, u2.ID, entry(users.EventUserRemoved, u2.ID)); err != users.ErrNotFound {
		t.Fatalf("DeleteUser(again) = %v", err)
	}

	got := boltAuditIDs(boltAuditAll(t, s))
	slices.Reverse(want)
	if !slices.Equal(got, want) {
		t.Errorf("audit log:\n got %v\nwant %v", got, want)
	}
	// Entries outlive their user.
	es, err := s.ListAudit(ctx, users.AuditQuery{UserID: u2.ID, Limit: 10})
	must(t, err)
	if len(es) != 4 {
		t.Errorf("entries of the removed user: %d, want 4", len(es))
	}
	must(t, s.Check(ctx))
}

// TestBoltStore_AuditGroupCommit runs many writers with entries at once, so that
// they share transactions, some of them failing, and checks that exactly the
// entries of the writes that succeeded are stored.
func TestBoltStore_AuditGroupCommit(t *testing.T) {
	s, _ := mustOpenBolt(t, nil)
	ctx := t.Context()
	u := boltUser(1)
	must(t, s.CreateUser(ctx, u))
	const writers = 32
	var wg sync.WaitGroup
	ok := make([]bool, writers)
	entries := make([]*users.AuditEntry, writers)
	for i := range writers {
		entries[i] = boltAudit(users.EventUserUpdated, u.ID, boltT0.Add(time.Duration(i)*time.Millisecond), i)
		wg.Go(func() {
			_, err := s.UpdateUser(ctx, u.ID, func(r *users.UserRecord) (users.Revoke, error) {
				if i%3 == 0 {
					return users.Revoke{}, errors.New("refused")
				}
				r.LastName = fmt.Sprint(i)
				return users.Revoke{}, nil
			}, entries[i])
			ok[i] = err == nil
		})
	}
	wg.Wait()
	var want []string
	for i := writers - 1; i >= 0; i-- {
		if ok[i] {
			want = append(want, entries[i].ID)
		}
	}
	if got := boltAuditIDs(boltAuditAll(t, s)); !slices.Equal(got, want) {
		t.Errorf("audit log:\n got %v\nwant %v", got, want)
	}
}

// TestBoltStore_ListAudit compares ListAudit, page by page, with AuditQuery.Matches
// over every entry, for many queries, on a log of regular entries (IDs are
// ULIDs of their Time) and again after irregular ones were added.
func TestBoltStore_ListAudit(t *testing.T) {
	s, _ := mustOpenBolt(t, nil)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	userIDs := []string{"", "u1", "u2", "u3"}
	types := []users.EventType{users.EventLoginFailed, users.EventLoginSucceeded, users.EventUserUpdated, users.EventLogout}
	var all []*users.AuditEntry
	add := func(n int, irregular bool) {
		var batch []*users.AuditEntry
		for i := range n {
			at := boltT0.Add(time.Duration(rng.IntN(5000)) * time.Millisecond).Add(time.Duration(rng.IntN(1000)))
			e := boltAudit(types[rng.IntN(len(types))], userIDs[rng.IntN(len(userIDs))], at, len(all)+i)
			e.ActorID = userIDs[rng.IntN(len(userIDs))]
			if irregular {
				e.ID = fmt.Sprintf("zz-%04d", len(all)+i) // not a ULID: sorts after every ULID
			}
			batch = append(batch, e)
		}
		must(t, s.AppendAudit(ctx, batch...))
		all = append(all, batch...)
	}
	check := func(name string) {
		t.Helper()
		sorted := slices.Clone(all)
		slices.SortFunc(sorted, func(a, b *users.AuditEntry) int { return strings.Compare(b.ID, a.ID) })
		tm := func(ms int) time.Time { return boltT0.Add(time.Duration(ms) * time.Millisecond) }
		var queries []users.AuditQuery
		for _, uid := range userIDs {
			for _, actor := range []string{"", "u2"} {
				for _, ts := range [][]users.EventType{nil, types[:1], types[1:3]} {
					for _, r := range [][2]time.Time{{}, {tm(1000), {}}, {{}, tm(2500)}, {tm(1200), tm(1300).Add(500)}} {
						queries = append(queries, users.AuditQuery{UserID: uid, ActorID: actor, Types: ts, Since: r[0], Until: r[1]})
					}
				}
			}
		}
		for _, q := range queries {
			var want []string
			for _, e := range sorted {
				if q.Matches(e) {
					want = append(want, e.ID)
				}
			}
			var got []string
			for q.Limit = 7; ; {
				page, err := s.ListAudit(ctx, q)
				must(t, err)
				got = append(got, boltAuditIDs(page)...)
				if len(page) < q.Limit {
					break
				}
				q.Before = page[len(page)-1].ID
			}
			if !slices.Equal(got, want) {
				q.Before = ""
				t.Fatalf("%s: ListAudit(%+v):\n got %v\nwant %v", name, q, got, want)
			}
		}
	}
	add(300, false)
	check("regular")
	add(20, true)
	check("irregular")
	got := boltAuditAll(t, s)
	for _, e := range got {
		i := slices.IndexFunc(all, func(x *users.AuditEntry) bool { return x.ID == e.ID })
		if !reflect.DeepEqual(e, all[i]) {
			t.Fatalf("entry read back as %+v, want %+v", e, all[i])
		}
	}
	must(t, s.Check(ctx))
}

// TestBoltStore_DeleteAuditBefore checks that the purge deletes exactly the
// entries older than its bound, in several transactions when there are many.
func TestBoltStore_DeleteAuditBefore(t *testing.T) {
	s, _ := mustOpenBolt(t, nil)
	ctx := t.Context()
	var batch []*users.AuditEntry
	for i := range 2500 {
		batch = append(batch, boltAudit(users.EventLoginFailed, "u", boltT0.Add(time.Duration(i)*time.Second), i))
	}
	must(t, s.AppendAudit(ctx, batch...))
	n, err := s.DeleteAuditBefore(ctx, boltT0.Add(2100*time.Second))
	must(t, err)
	if n != 2100 {
		t.Errorf("DeleteAuditBefore deleted %d, want 2100", n)
	}
	left := boltAuditAll(t, s)
	if len(left) != 400 || !left[len(left)-1].Time.Equal(boltT0.Add(2100*time.Second)) {
		t.Errorf("%d entries left, the oldest at %v", len(left), left[len(left)-1].Time)
	}
	if n, err := s.DeleteAuditBefore(ctx, boltT0); n != 0 || err != nil {
		t.Errorf("DeleteAuditBefore(nothing older) = %d, %v", n, err)
	}
	must(t, s.Check(ctx))
}

// TestBoltStore_DeleteAuditBeforeIrregular purges a log that holds, beside
// regular entries, irregular ones of every kind: IDs that are not ULIDs
// (sorting before and after every ULID), and ULIDs of a millisecond other
// than their Time's, older and newer. The purge must delete exactly the
// entries whose Time is before the bound, whatever their IDs.
func TestBoltStore_DeleteAuditBeforeIrregular(t *testing.T) {
	s, _ := mustOpenBolt(t, nil)
	ctx := t.Context()
	at := func(sec int) time.Time { return boltT0.Add(time.Duration(sec) * time.Second) }
	var all []*users.AuditEntry
	for i := range 1500 { // regular, one a second
		all = append(all, boltAudit(users.EventLoginFailed, "u", at(i), i))
	}
	irregular := func(id string, sec int) {
		all = append(all, &users.AuditEntry{ID: id, Time: at(sec), Type: users.EventLogout, UserID: "v"})
	}
	for i := range 30 {
		irregular(fmt.Sprintf("zz-%04d", i), i*50)   // after every ULID, old and new
		irregular(fmt.Sprintf("00-%04d", i), i*50+1) // before every ULID, old and new
		id := boltAudit(users.EventLogout, "", at(2000+i), 5000+i).ID
		irregular(id, i*40) // a new ID, mostly an old Time
		id = boltAudit(users.EventLogout, "", at(i), 6000+i).ID
		irregular(id, 1100+i*20) // an old ID, a Time on both sides of the bound
	}
	must(t, s.AppendAudit(ctx, all...))
	bound := at(1200).Add(-time.Nanosecond)
	var want []string
	for _, e := range all {
		if !e.Time.Before(bound) {
			want = append(want, e.ID)
		}
	}
	n, err := s.DeleteAuditBefore(ctx, bound)
	must(t, err)
	if n != len(all)-len(want) {
		t.Errorf("DeleteAuditBefore deleted %d, want %d", n, len(all)-len(want))
	}
	got := boltAuditIDs(boltAuditAll(t, s))
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("left %d entries, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	if n, err := s.DeleteAuditBefore(ctx, bound); n != 0 || err != nil {
		t.Errorf("a second DeleteAuditBefore = %d, %v; want 0", n, err)
	}
	must(t, s.Check(ctx))
}

// TestBoltStore_Activity checks TouchSession's move of LastActiveAt and the
// activity filters, alone and with the others, against Match.Matches, each
// way a listing by activity can go: the filter walk and the activity index in
// step (whichever is done first answers), the filter walk alone, and the
// activity index alone.
func TestBoltStore_Activity(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", "filter", "range"} {
		t.Run("path="+path, func(t *testing.T) {
			testBoltActivity(t, path)
		})
	}
}

func testBoltActivity(t *testing.T, path string) {
	s, _ := mustOpenBolt(t, nil)
	users.SetBoltActivityPath(s, path)
	ctx := t.Context()
	var all []*users.UserRecord
	for i := range 60 {
		u := boltUser(i)
		u.Role = []users.Role{users.RoleUser, users.RoleAdmin}[i%2]
		u.AccountID = []string{"", "acme"}[i/2%2]
		must(t, s.CreateUser(ctx, u))
		if i%4 != 3 { // every fourth user is never active
			sr := boltSession(u.ID, fmt.Sprintf("01SESS%020d", i), 0, boltT0.Add(time.Hour))
			must(t, s.CreateSession(ctx, sr))
			must(t, s.TouchSession(ctx, sr.TokenHash, boltT0.Add(time.Duration(i)*time.Minute)))
			must(t, s.TouchSession(ctx, sr.TokenHash, boltT0)) // earlier: changes nothing
		}
		got, err := s.GetUser(ctx, u.ID)
		must(t, err)
		all = append(all, got)
	}
	if got := all[5].LastActiveAt; !got.Equal(boltT0.Add(5 * time.Minute)) {
		t.Errorf("LastActiveAt after TouchSession = %v", got)
	}
	if !all[3].LastActiveAt.IsZero() {
		t.Errorf("LastActiveAt of a user never touched = %v", all[3].LastActiveAt)
	}
	at := func(min int) time.Time { return boltT0.Add(time.Duration(min) * time.Minute) }
	for _, m := range []users.Match{
		{ActiveSince: at(30)}, {InactiveSince: at(30)}, {ActiveSince: at(10), InactiveSince: at(20)},
		{ActiveSince: at(1), InactiveSince: at(50)}, {ActiveSince: at(20), InactiveSince: at(10)},
		{InactiveSince: at(30), Role: users.RoleAdmin}, {ActiveSince: at(7), AccountID: "acme"},
		{InactiveSince: at(50), AccountID: "acme", Role: users.RoleUser}, {ActiveSince: at(1), Search: "last1"},
		{InactiveSince: at(100), Email: all[7].Email},
	} {
		var want []string
		for _, u := range all {
			if m.Matches(&u.User) {
				want = append(want, u.ID)
			}
		}
		n, err := s.CountUsers(ctx, m)
		must(t, err)
		if n != len(want) {
			t.Errorf("CountUsers(%+v) = %d, want %d", m, n, len(want))
		}
		var got []string
		for after := ""; ; {
			page, err := s.ListUsers(ctx, users.ListQuery{Match: m, After: after, Limit: 4})
			must(t, err)
			for _, u := range page {
				got = append(got, u.ID)
			}
			if len(page) < 4 {
				break
			}
			after = page[len(page)-1].ID
		}
		if !slices.Equal(got, want) {
			t.Errorf("ListUsers(%+v):\n got %v\nwant %v", m, got, want)
		}
		if len(want) > 3 {
			page, err := s.ListUsers(ctx, users.ListQuery{Match: m, Before: want[len(want)-1], Offset: 1, Limit: 2})
			must(t, err)
			if g := []string{page[0].ID, page[1].ID}; !slices.Equal(g, want[len(want)-4:len(want)-2]) {
				t.Errorf("ListUsers(%+v, Before, Offset 1) = %v, want %v", m, g, want[len(want)-4:len(want)-2])
			}
		}
	}
	// An update that moves LastActiveAt (fn may) keeps the index in step.
	_, err := s.UpdateUser(ctx, all[3].ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.LastActiveAt = at(99)
		return users.Revoke{}, nil
	})
	must(t, err)
	if n, _ := s.CountUsers(ctx, users.Match{ActiveSince: at(99)}); n != 1 {
		t.Errorf("CountUsers(ActiveSince) after UpdateUser = %d, want 1", n)
	}
	must(t, s.Check(ctx))
}
