package storetest

import (
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
	"github.com/userkit/users"
)

// Rules for the answers a store gives from its indexes: counts, filtered pages
// and search must say what a full scan with Match.Matches says, also after many
// concurrent changes to the fields the indexes are built from.

// indexRules are the rules of this file, each with its explanation.
var indexRules = []rule[users.Store]{
	{"CountsAndListsAgreeWithScan", "after random concurrent creates, updates (role, status, account, names, email, username) and removes, CountUsers and ListUsers (both directions, with cursors and offsets) must select exactly the users Match.Matches selects among those GetUser finds", testIndexesAgreeWithScan},
	{"SearchIsSubstringMatch", "ListUsers and CountUsers with a Search term must select exactly the users one of whose SearchFields contains the term, for terms of every length (one-byte and two-byte ones included), terms spanning the space of the full name, and non-ASCII names", testSearchAgreesWithScan},
}

// indexNames are first and last names for random users: ASCII, accented,
// non-Latin, one whose lower-case form is longer than itself (İ), and some
// sharing substrings.
var indexNames = []string{
	"Ada", "Lovelace", "Grace", "Hopper", "Zoë", "Ångström", "Łukasz", "İnce",
	"Émile", "Noël", "Анна", "Ivanova", "李", "小龍", "Ann", "Anne", "Hanna",
	"de la Cruz", "O'Brien", "",
}

var (
	indexRoles    = []users.Role{users.RoleAdmin, users.RoleUser, users.RoleViewer}
	indexStatuses = []users.Status{users.StatusActive, users.StatusInactive, users.StatusSuspended, users.StatusInvited}
	// "big" gets enough users for a store to index it as a large account.
	indexAccounts = []string{"", "", "acme", "globex", "big", "big", "big", "big"}
)

// randomUser returns a new user with random names, role, status and account.
func randomUser(rnd *mathrand.Rand) *users.UserRecord {
	r := newUser()
	r.FirstName = indexNames[rnd.IntN(len(indexNames))]
	r.LastName = indexNames[rnd.IntN(len(indexNames))]
	r.Role = indexRoles[rnd.IntN(len(indexRoles))]
	r.Status = indexStatuses[rnd.IntN(len(indexStatuses))]
	r.AccountID = indexAccounts[rnd.IntN(len(indexAccounts))]
	switch rnd.IntN(3) {
	case 0:
		r.Username = ""
	case 1:
		r.Username = "x_" + strings.ToLower(r.ID[20:])
	}
	return r
}

// churn creates users, then changes and removes them at random from several
// goroutines at once, and returns every user that exists afterwards, found with
// GetUser (in ascending ID order).
func churn(t *testing.T, s users.Store, seed uint64) []*users.UserRecord {
	t.Helper()
	ctx := t.Context()
	rnd := mathrand.New(mathrand.NewPCG(seed, 1))
	var ids []string
	for range 150 {
		r := randomUser(rnd)
		mustCreateUser(t, s, r)
		ids = append(ids, r.ID)
	}
	const workers = 4
	created := make([][]string, workers)
	var mu sync.Mutex
	var failure error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if failure == nil {
			failure = err
		}
	}
	start(workers, func(w int) {
		rnd := mathrand.New(mathrand.NewPCG(seed, uint64(w+2)))
		for range 60 {
			id := ids[rnd.IntN(len(ids))]
			var err error
			switch op := rnd.IntN(10); op {
			case 0, 1:
				r := randomUser(rnd)
				if err = s.CreateUser(ctx, r); err == nil {
					created[w] = append(created[w], r.ID)
				}
			case 2:
				err = s.DeleteUser(ctx, id)
			default:
				n := randomUser(rnd)
				_, err = s.UpdateUser(ctx, id, func(r *users.UserRecord) (users.Revoke, error) {
					switch op {
					case 3:
						r.Role = n.Role
					case 4:
						r.Status = n.Status
					case 5:
						r.AccountID = n.AccountID
					case 6:
						r.FirstName, r.LastName = n.FirstName, n.LastName
					case 7:
						r.Email = n.Email
					case 8:
						r.Username = n.Username
					default:
						r.Role, r.Status, r.AccountID, r.LastName, r.Email = n.Role, n.Status, n.AccountID, n.LastName, n.Email
					}
					return users.Revoke{}, nil
				})
			}
			if err != nil && !errors.Is(err, users.ErrNotFound) {
				fail(err)
			}
		}
	})
	if failure != nil {
		t.Fatalf("setup: a random change failed: %v", failure)
	}
	for _, c := range created {
		ids = append(ids, c...)
	}
	var all []*users.UserRecord
	for _, id := range ids {
		r, err := s.GetUser(ctx, id)
		switch {
		case errors.Is(err, users.ErrNotFound):
		case err != nil:
			t.Fatalf("GetUser(%s): %v", id, err)
		default:
			all = append(all, r)
		}
	}
	slices.SortFunc(all, func(a, b *users.UserRecord) int { return strings.Compare(a.ID, b.ID) })
	return all
}

// checkMatch checks CountUsers and ListUsers for m against the users in all
// that m.Matches selects: one listing of all of them, and when deep, pages in
// both directions from several cursors with several offsets.
func checkMatch(t *testing.T, s users.Store, all []*users.UserRecord, m users.Match, deep bool, rule string) {
	t.Helper()
	want := matching(all, m)
	n, err := s.CountUsers(t.Context(), m)
	if err != nil {
		t.Errorf("%s: CountUsers(%+v): %v", rule, m, err)
	} else if n != len(want) {
		t.Errorf("%s: CountUsers(%+v) = %d, want %d", rule, m, n, len(want))
	}
	wantList(t, s, users.ListQuery{Match: m, Limit: len(all) + 1}, all, want, rule)
	if !deep {
		return
	}
	// Cursors at a matching user, at a user that does not match, and past the end.
	var cursors []string
	if len(want) > 0 {
		cursors = append(cursors, want[len(want)/2].ID)
	}
	if len(all) > 0 {
		cursors = append(cursors, all[len(all)/3].ID)
	}
	cursors = append(cursors, "", ulid.Make().String())
	for _, off := range []int{0, 3, len(want) / 2, len(want) + 2} {
		for _, c := range cursors {
			var after, before []*users.UserRecord
			for _, r := range want {
				if c == "" || r.ID > c {
					after = append(after, r)
				}
				if c == "" || r.ID < c {
					before = append(before, r)
				}
			}
			const limit = 5
			fwd := after[min(off, len(after)):]
			fwd = fwd[:min(limit, len(fwd))]
			wantList(t, s, users.ListQuery{Match: m, After: c, Offset: off, Limit: limit}, all, fwd, rule)
			if c == "" {
				continue // a page before nothing is the forward page
			}
			end := max(len(before)-off, 0)
			wantList(t, s, users.ListQuery{Match: m, Before: c, Offset: off, Limit: limit}, all, before[max(end-limit, 0):end], rule)
		}
	}
}

func testIndexesAgreeWithScan(t *testing.T, s users.Store, rule string) {
	all := churn(t, s, 1)
	for _, role := range append([]users.Role{""}, indexRoles...) {
		for _, status := range append([]users.Status{""}, indexStatuses...) {
			for _, acct := range []string{"", "big", "acme", "nobody"} {
				checkMatch(t, s, all, users.Match{Role: role, Status: status, AccountID: acct}, acct != "acme", rule)
			}
		}
	}
	// Exact keys, alone and with the other fields.
	if len(all) > 0 {
		r := all[len(all)/2]
		checkMatch(t, s, all, users.Match{Email: r.Email}, true, rule)
		checkMatch(t, s, all, users.Match{Email: r.Email, Role: r.Role, Status: r.Status}, false, rule)
		checkMatch(t, s, all, users.Match{Email: r.Email, Role: "nobody"}, false, rule)
		if r.Username != "" {
			checkMatch(t, s, all, users.Match{Username: r.Username, AccountID: r.AccountID}, false, rule)
		}
	}
	if t.Failed() {
		t.Logf("rule: %s", rule)
	}
}

// searchTerms returns terms to search for in all: substrings of its users'
// search fields of every length up to seven characters (whole characters,
// so the terms are valid UTF-8), the full names and pieces spanning their space,
// and terms that match nobody.
func searchTerms(all []*users.UserRecord, rnd *mathrand.Rand) []string {
	terms := []string{"a", "ö", "ë", "ł", "и", "小", "an", "i̇", "zz", "_", "x_", "e ", " l", "@", ".com", "qqqq", "ada lovelace", "zoë ångström", "o'b", "de la"}
	for range 25 {
		r := all[rnd.IntN(len(all))]
		fields := users.SearchFields(&r.User)
		f := []rune(fields[rnd.IntN(len(fields))])
		n := 1 + rnd.IntN(min(7, len(f)))
		i := rnd.IntN(len(f) - n + 1)
		terms = append(terms, string(f[i:i+n]))
		if first, last := strings.ToLower(r.FirstName), strings.ToLower(r.LastName); first != "" && last != "" {
			fr, lr := []rune(first), []rune(last)
			a, b := rnd.IntN(len(fr)), 1+rnd.IntN(len(lr))
			terms = append(terms, string(fr[a:])+" "+string(lr[:b]), first+" "+last)
		}
	}
	slices.Sort(terms)
	return slices.Compact(terms)
}

func testSearchAgreesWithScan(t *testing.T, s users.Store, rule string) {
	all := churn(t, s, 2)
	if len(all) == 0 {
		t.Fatal("setup: no users left")
	}
	rnd := mathrand.New(mathrand.NewPCG(3, 3))
	for i, term := range searchTerms(all, rnd) {
		if !utf8.ValidString(term) {
			panic(fmt.Sprintf("storetest: invalid search term %q", term))
		}
		checkMatch(t, s, all, users.Match{Search: term}, i%4 == 0, rule)
		checkMatch(t, s, all, users.Match{Search: term, Role: users.RoleUser}, false, rule)
		checkMatch(t, s, all, users.Match{Search: term, Status: users.StatusActive, AccountID: "big"}, i%4 == 1, rule)
		if t.Failed() {
			t.Logf("rule: %s", rule)
			return
		}
	}
}
