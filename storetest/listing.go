package storetest

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/userkit/users"
)

// ---- ListUsers and CountUsers ----

// wantList reports a broken rule unless ListUsers(q) returns want, in order. all
// names the users in messages: u0, u1, … by their index in all.
func wantList(t testing.TB, s users.Store, q users.ListQuery, all []*users.UserRecord, want []*users.UserRecord, rule string) {
	t.Helper()
	got, err := s.ListUsers(t.Context(), q)
	if err != nil {
		t.Errorf("%s: ListUsers: %v", rule, err)
		return
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = sameUser(got[i], want[i])
	}
	if !ok {
		t.Errorf("%s:\nquery %s\n  got %s\n want %s", rule, showQuery(q, all), showIDs(got, all), showIDs(want, all))
	}
}

func showIDs(rs []*users.UserRecord, all []*users.UserRecord) string {
	var b strings.Builder
	b.WriteString("[")
	for i, r := range rs {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(nameOf(r.ID, all))
	}
	b.WriteString("]")
	return b.String()
}

func nameOf(id string, all []*users.UserRecord) string {
	for i, r := range all {
		if r.ID == id {
			return fmt.Sprintf("u%d", i)
		}
	}
	return id
}

func showQuery(q users.ListQuery, all []*users.UserRecord) string {
	s := fmt.Sprintf("{Match:%+v Limit:%d Offset:%d", q.Match, q.Limit, q.Offset)
	if q.After != "" {
		s += " After:" + nameOf(q.After, all)
	}
	if q.Before != "" {
		s += " Before:" + nameOf(q.Before, all)
	}
	return s + "}"
}

func testListUsersOrder(t *testing.T, s users.Store, _ string) {
	all := addUsers(t, s, 12, nil)
	wantList(t, s, users.ListQuery{Limit: 100}, all, all, "ListUsers must return users in ascending ID order, whatever order they were created in")
}

func testListUsersLimit(t *testing.T, s users.Store, _ string) {
	all := addUsers(t, s, 10, nil)
	wantList(t, s, users.ListQuery{Limit: 4}, all, all[:4], "ListUsers must return at most Limit users, the first ones")
	wantList(t, s, users.ListQuery{Limit: 1}, all, all[:1], "ListUsers must return at most Limit users, the first ones")
	wantList(t, s, users.ListQuery{Limit: 10}, all, all, "ListUsers with Limit equal to the number of users must return them all")
}

func testListUsersAfter(t *testing.T, s users.Store, _ string) {
	all := addUsers(t, s, 10, nil)
	wantList(t, s, users.ListQuery{After: all[3].ID, Limit: 3}, all, all[4:7], "ListUsers with After must start with the first user after it (After is exclusive)")
	wantList(t, s, users.ListQuery{After: all[7].ID, Limit: 5}, all, all[8:], "ListUsers with After near the end must return the remaining users")
	wantList(t, s, users.ListQuery{After: all[9].ID, Limit: 5}, all, nil, "ListUsers with After the last user must return no users")
}

func testListUsersAfterMissing(t *testing.T, s users.Store, _ string) {
	all := addUsers(t, s, 10, nil)
	if err := s.DeleteUser(t.Context(), all[4].ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	wantList(t, s, users.ListQuery{After: all[4].ID, Limit: 3}, all, all[5:8], "ListUsers with After the ID of a deleted user must continue after that ID")
	wantList(t, s, users.ListQuery{Before: all[4].ID, Limit: 2}, all, all[2:4], "ListUsers with Before the ID of a deleted user must return the users before that ID")
}

func testListUsersBefore(t *testing.T, s users.Store, _ string) {
	all := addUsers(t, s, 10, nil)
	wantList(t, s, users.ListQuery{Before: all[7].ID, Limit: 3}, all, all[4:7], "ListUsers with Before must return the last Limit users before it (exclusive), in ascending order")
	wantList(t, s, users.ListQuery{Before: all[0].ID, Limit: 3}, all, nil, "ListUsers with Before the first user must return no users")
}

func testListUsersBeforeFew(t *testing.T, s users.Store, _ string) {
	all := addUsers(t, s, 10, nil)
	wantList(t, s, users.ListQuery{Before: all[2].ID, Limit: 5}, all, all[:2], "ListUsers with Before and fewer than Limit users before it must return those users")
}

func testListUsersOffset(t *testing.T, s users.Store, _ string) {
	all := addUsers(t, s, 10, nil)
	wantList(t, s, users.ListQuery{Offset: 2, Limit: 3}, all, all[2:5], "ListUsers must skip Offset users counted from the start")
	wantList(t, s, users.ListQuery{Offset: 8, Limit: 5}, all, all[8:], "ListUsers must skip Offset users counted from the start")
	wantList(t, s, users.ListQuery{Offset: 10, Limit: 5}, all, nil, "ListUsers with Offset past the last user must return no users")
}

func testListUsersOffsetAfter(t *testing.T, s users.Store, _ string) {
	all := addUsers(t, s, 10, nil)
	wantList(t, s, users.ListQuery{After: all[1].ID, Offset: 2, Limit: 2}, all, all[4:6], "ListUsers with After must skip Offset users counted from After")
}

func testListUsersOffsetBefore(t *testing.T, s users.Store, _ string) {
	all := addUsers(t, s, 10, nil)
	wantList(t, s, users.ListQuery{Before: all[8].ID, Offset: 2, Limit: 3}, all, all[3:6],
		"ListUsers with Before must skip Offset users counted backwards from Before, then return the Limit users before those, in ascending order")
	wantList(t, s, users.ListQuery{Before: all[3].ID, Offset: 2, Limit: 3}, all, all[:1],
		"ListUsers with Before must skip Offset users counted backwards from Before")
}

// filterFixture stores users that differ in every field a Filter matches, and
// filters that select different sets of them.
func filterFixture(t testing.TB, s users.Store) ([]*users.UserRecord, []users.Match) {
	t.Helper()
	type person struct {
		first, last, email, username string
		role                         users.Role
		status                       users.Status
		account                      string
	}
	people := []person{
		{"Grace", "Hopper", "grace@example.com", "grace", users.RoleAdmin, users.StatusActive, "acme"},
		{"Alan", "Turing", "alan@example.com", "", users.RoleUser, users.StatusSuspended, "acme"},
		{"Ada", "Lovelace", "ada@example.org", "countess", users.RoleUser, users.StatusActive, "engines"},
		{"Edsger", "Dijkstra", "ewd@example.com", "ewd", users.RoleViewer, users.StatusInactive, ""},
		{"Barbara", "Liskov", "barbara@example.com", "bliskov", users.RoleUser, users.StatusActive, "acme"},
		{"Katherine", "Johnson", "kj@example.org", "orbit", users.RoleUser, users.StatusInvited, "engines"},
	}
	all := addUsers(t, s, len(people), func(i int, r *users.UserRecord) {
		p := people[i]
		r.FirstName, r.LastName, r.Email, r.Username = p.first, p.last, p.email, p.username
		r.Role, r.Status, r.AccountID = p.role, p.status, p.account
	})
	filters := []users.Match{
		{},
		{Role: users.RoleAdmin},
		{Role: users.RoleUser},
		{Status: users.StatusActive},
		{Status: users.StatusInvited},
		{AccountID: "acme"},
		{Email: "ada@example.org"},
		{Username: "ewd"},
		{Search: "hopp"},     // last name, case-insensitively
		{Search: "ada"},      // first name and email
		{Search: "countess"}, // username
		{Search: "example.org"},
		{Search: "LOVE"},
		{Role: users.RoleUser, Status: users.StatusActive},
		{Role: users.RoleUser, AccountID: "acme", Search: "li"},
		{Status: users.StatusActive, AccountID: "engines", Email: "ada@example.org", Username: "countess", Role: users.RoleUser, Search: "lace"},
		{Role: "nobody"},
		{Search: "zzz"},
	}
	return all, filters
}

// matching returns the users in all that f matches.
func matching(all []*users.UserRecord, f users.Match) []*users.UserRecord {
	var out []*users.UserRecord
	for _, r := range all {
		if f.Matches(&r.User) {
			out = append(out, r)
		}
	}
	return out
}

func testListUsersFilter(t *testing.T, s users.Store, _ string) {
	all, filters := filterFixture(t, s)
	for _, f := range filters {
		wantList(t, s, users.ListQuery{Match: f, Limit: 100}, all, matching(all, f), "ListUsers must return exactly the users Match.Matches selects")
	}
}

func testListUsersFilterPaging(t *testing.T, s users.Store, _ string) {
	all := addUsers(t, s, 20, func(i int, r *users.UserRecord) {
		r.AccountID = []string{"even", "odd"}[i%2]
	})
	even := matching(all, users.Match{AccountID: "even"}) // all[0], all[2], …
	f := users.Match{AccountID: "even"}
	wantList(t, s, users.ListQuery{Match: f, Offset: 2, Limit: 3}, all, even[2:5],
		"ListUsers must count Limit and Offset in matching users only")
	wantList(t, s, users.ListQuery{Match: f, After: all[5].ID, Limit: 2}, all, even[3:5],
		"ListUsers with a Filter and After must return the first matching users after it")
	wantList(t, s, users.ListQuery{Match: f, After: all[5].ID, Offset: 1, Limit: 2}, all, even[4:6],
		"ListUsers with a Filter, After and Offset must skip Offset matching users after After")
	wantList(t, s, users.ListQuery{Match: f, Before: all[15].ID, Offset: 1, Limit: 3}, all, even[4:7],
		"ListUsers with a Filter, Before and Offset must skip Offset matching users backwards from Before and return the Limit matching users before them")
}

func testListUsersEmpty(t *testing.T, s users.Store, _ string) {
	got, err := s.ListUsers(t.Context(), users.ListQuery{Limit: 10})
	if err != nil || len(got) != 0 {
		t.Errorf("ListUsers on an empty store must return an empty slice and no error: got %d users, %v", len(got), err)
	}
	addUsers(t, s, 3, nil)
	got, err = s.ListUsers(t.Context(), users.ListQuery{Match: users.Match{Role: "nobody"}, Limit: 10})
	if err != nil || len(got) != 0 {
		t.Errorf("ListUsers matching nobody must return an empty slice and no error: got %d users, %v", len(got), err)
	}
}

func testListUsersReturnsCopies(t *testing.T, s users.Store, _ string) {
	all := addUsers(t, s, 3, nil)
	got, err := s.ListUsers(t.Context(), users.ListQuery{Limit: 10})
	if err != nil || len(got) != 3 {
		t.Fatalf("ListUsers: %d users, %v", len(got), err)
	}
	for _, r := range got {
		r.Preferences["lang"] = "changed"
		r.FirstName = "Changed"
	}
	for _, r := range all {
		wantUser(t, s, r, "ListUsers must return copies: changing them must not change the stored users")
	}
}

func testListUsersWalkWhileChanging(t *testing.T, s users.Store, _ string) {
	// Users at even indexes exist throughout; those at odd indexes, interleaved
	// with them in ID order, are created and deleted while the walk goes on.
	const n = 400
	ids := make([]*users.UserRecord, n)
	for i := range ids {
		ids[i] = newUser()
	}
	slices.SortFunc(ids, func(a, b *users.UserRecord) int { return strings.Compare(a.ID, b.ID) })
	var stable, churn []*users.UserRecord
	for i, r := range ids {
		if i%2 == 0 {
			stable = append(stable, r)
		} else {
			churn = append(churn, r)
		}
	}
	for _, r := range stable {
		mustCreateUser(t, s, r)
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		created := make([]bool, len(churn))
		for round := 0; ; round++ {
			for i, r := range churn {
				select {
				case <-done:
					return
				default:
				}
				var err error
				if created[i] {
					err = s.DeleteUser(t.Context(), r.ID)
				} else {
					err = s.CreateUser(t.Context(), r.Clone())
				}
				if err != nil {
					t.Errorf("walk: churn: %v", err)
					return
				}
				created[i] = !created[i]
			}
		}
	})

	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatalf("ListUsers walk with After did not reach the end after %d pages", pages)
		}
		page, err := s.ListUsers(t.Context(), users.ListQuery{After: after, Limit: 7})
		if err != nil {
			t.Fatalf("ListUsers: %v", err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			got = append(got, r.ID)
		}
		after = page[len(page)-1].ID
		runtime.Gosched() // let the churn run between pages
	}
	close(done)
	wg.Wait()

	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("walking ListUsers pages with After while users are created and deleted must give strictly ascending IDs: %s then %s", got[i-1], got[i])
		}
	}
	seen := make(map[string]bool, len(got))
	for _, id := range got {
		seen[id] = true
	}
	missing := 0
	for _, r := range stable {
		if !seen[r.ID] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("walking ListUsers pages with After while other users are created and deleted must yield every user that existed throughout: %d of %d missing", missing, len(stable))
	}
}

func testCountUsersFilter(t *testing.T, s users.Store, _ string) {
	if n, err := s.CountUsers(t.Context(), users.Match{}); err != nil || n != 0 {
		t.Errorf("CountUsers on an empty store must return 0: got %d, %v", n, err)
	}
	all, filters := filterFixture(t, s)
	for _, f := range filters {
		want := len(matching(all, f))
		if got, err := s.CountUsers(t.Context(), f); err != nil || got != want {
			t.Errorf("CountUsers must count the users Match.Matches selects: CountUsers(%+v) = %d, %v; want %d", f, got, err, want)
		}
	}
}
