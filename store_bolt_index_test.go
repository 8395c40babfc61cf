package users_test

import (
	"context"
	mathrand "math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/userkit/users"
)

// TestBoltStore_FilterIndexes changes users' role, status and account from
// several goroutines at once (creates, updates, deletes), and then checks every
// combination of the three against a full scan: CountUsers, pages walked forward
// with After and backward with Before, and offsets from either end. The filter
// indexes and counters must agree with the records in every case; the cleanup's
// Check verifies them too.
func TestBoltStore_FilterIndexes(t *testing.T) {
	s, _ := mustOpenBolt(t, nil)
	ctx := context.Background()
	roles := []users.Role{users.RoleAdmin, users.RoleUser, users.RoleViewer}
	statuses := []users.Status{users.StatusActive, users.StatusInactive, users.StatusSuspended, users.StatusInvited}
	accounts := []string{"", "acme", "globex", "initech"}
	randomize := func(rng *mathrand.Rand, r *users.UserRecord) {
		r.Role = roles[rng.IntN(len(roles))]
		r.Status = statuses[rng.IntN(len(statuses))]
		r.AccountID = accounts[rng.IntN(len(accounts))]
	}

	const workers, perWorker = 4, 80
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := mathrand.New(mathrand.NewPCG(uint64(w), 1))
			for i := range perWorker {
				r := boltUser(w*perWorker + i)
				randomize(rng, r)
				if err := s.CreateUser(ctx, r); err != nil {
					t.Error(err)
					return
				}
				switch rng.IntN(4) {
				case 0:
					_, err := s.UpdateUser(ctx, r.ID, func(r *users.UserRecord) (users.Revoke, error) {
						randomize(rng, r)
						return users.Revoke{}, nil
					})
					if err != nil {
						t.Error(err)
					}
				case 1:
					if i > 0 {
						if err := s.DeleteUser(ctx, boltUser(w*perWorker+i-1).ID); err != nil && err != users.ErrNotFound {
							t.Error(err)
						}
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	all, err := s.ListUsers(ctx, users.ListQuery{Limit: workers * perWorker})
	must(t, err)
	for _, role := range append([]users.Role{""}, roles...) {
		for _, status := range append([]users.Status{""}, statuses...) {
			for _, account := range accounts {
				m := users.Match{Role: role, Status: status, AccountID: account}
				var want []*users.UserRecord
				for _, u := range all {
					if m.Matches(&u.User) {
						want = append(want, u)
					}
				}
				checkBoltFilter(t, s, m, want)
			}
		}
	}
}

func checkBoltFilter(t *testing.T, s users.Store, m users.Match, want []*users.UserRecord) {
	t.Helper()
	ctx := context.Background()
	ids := func(us []*users.UserRecord) []string {
		out := []string{}
		for _, u := range us {
			out = append(out, u.ID)
		}
		return out
	}
	wantIDs := ids(want)
	if n, err := s.CountUsers(ctx, m); n != len(want) || err != nil {
		t.Errorf("CountUsers(%+v) = %d, %v; want %d", m, n, err, len(want))
	}
	var fwd, back []string
	for after := ""; ; {
		page, err := s.ListUsers(ctx, users.ListQuery{Match: m, After: after, Limit: 7})
		must(t, err)
		fwd = append(fwd, ids(page)...)
		if len(page) < 7 {
			break
		}
		after = page[len(page)-1].ID
	}
	for before := "\xff"; ; {
		page, err := s.ListUsers(ctx, users.ListQuery{Match: m, Before: before, Limit: 7})
		must(t, err)
		back = append(ids(page), back...)
		if len(page) < 7 {
			break
		}
		before = page[0].ID
	}
	if !slices.Equal(fwd, wantIDs) || !slices.Equal(back, wantIDs) {
		t.Errorf("%+v: walked forward %v and back %v, want %v", m, fwd, back, wantIDs)
	}
	for _, off := range []int{1, 5, len(want) - 1, len(want), len(want) + 3} {
		if off < 0 {
			continue
		}
		page, err := s.ListUsers(ctx, users.ListQuery{Match: m, Offset: off, Limit: 4})
		must(t, err)
		w := wantIDs[min(off, len(wantIDs)):]
		w = w[:min(4, len(w))]
		if got := ids(page); !slices.Equal(got, w) {
			t.Errorf("%+v, Offset %d: got %v, want %v", m, off, got, w)
		}
		page, err = s.ListUsers(ctx, users.ListQuery{Match: m, Before: "\xff", Offset: off, Limit: 4})
		must(t, err)
		end := max(len(wantIDs)-off, 0)
		w = wantIDs[max(end-4, 0):end]
		if got := ids(page); !slices.Equal(got, w) {
			t.Errorf("%+v, Before the end, Offset %d: got %v, want %v", m, off, got, w)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}
