package postgres_test

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
)

// TestStore_CreateUsersLikeMemory checks that CreateUsers judges a batch as
// the memory store, the reference, does: in order, as CreateUser one after
// the other would, with keys taken before the batch and by earlier records of
// it, and a refused record taking no key from a later one.
func TestStore_CreateUsersLikeMemory(t *testing.T) {
	db := openTestDB(t)
	stores := map[string]users.Store{"memory": users.NewMemoryStore(), "postgres": db.newStore(t)}
	old := newUser("old@example.com")
	old.Username = "old"
	rec := func(id, email, username string) *users.UserRecord {
		r := newUser(email)
		r.Username = username
		if id != "" {
			r.ID = id
		}
		return r
	}
	fresh := newUser("x@example.com").ID
	batch := []*users.UserRecord{
		rec("", "a@example.com", "a"),
		rec("", old.Email, "b"),                   // email taken before: ErrDuplicateEmail
		rec("", "c@example.com", old.Username),    // username taken before
		rec(old.ID, "d@example.com", "d"),         // ID taken before: ErrConflict
		rec(old.ID, old.Email, old.Username),      // all three: email wins
		rec("", "a@example.com", "e"),             // email of record 0
		rec("", "f@example.com", "a"),             // username of record 0
		rec("", "b2@example.com", "b"),            // username of refused record 1: free
		rec(fresh, "g@example.com", ""),           // no username
		rec(fresh, "h@example.com", "h"),          // ID of record 8
		rec("", "i@example.com", ""),              // a second empty username is fine
		rec("", "d@example.com", "d"),             // keys of refused record 3: free
		rec("", "j@example.com", "J-not-lowered"), // the store compares what it is given
	}
	want := []error{nil, users.ErrDuplicateEmail, users.ErrDuplicateUsername, users.ErrConflict,
		users.ErrDuplicateEmail, users.ErrDuplicateEmail, users.ErrDuplicateUsername, nil, nil,
		users.ErrConflict, nil, nil, nil}
	for name, s := range stores {
		if err := s.CreateUser(t.Context(), old.Clone()); err != nil {
			t.Fatal(err)
		}
		in := make([]*users.UserRecord, len(batch))
		for i, r := range batch {
			r.FirstName = fmt.Sprintf("record %d", i)
			r.Preferences = [](map[string]string){nil, {}, {"k": "v\x00"}}[i%3]
			in[i] = r.Clone()
		}
		errs, err := s.CreateUsers(t.Context(), in)
		if err != nil {
			t.Fatalf("%s: CreateUsers: %v", name, err)
		}
		if len(errs) != len(want) {
			t.Fatalf("%s: CreateUsers gave %d errors for %d records", name, len(errs), len(want))
		}
		for i := range want {
			if !errors.Is(errs[i], want[i]) || (want[i] == nil && errs[i] != nil) {
				t.Errorf("%s: record %d (%s, %s): got %v, want %v", name, i, batch[i].Email, batch[i].Username, errs[i], want[i])
			}
		}
		for i, r := range batch {
			got, err := s.GetUserByEmail(t.Context(), r.Email)
			switch {
			case want[i] == nil && (err != nil || got.ID != r.ID || got.Username != r.Username || got.FirstName != r.FirstName ||
				(got.Preferences == nil) != (r.Preferences == nil) || !maps.Equal(got.Preferences, r.Preferences)):
				t.Errorf("%s: record %d must be stored as given: %v, %v", name, i, got, err)
			case want[i] != nil && err == nil && got.FirstName == r.FirstName:
				t.Errorf("%s: refused record %d must not be stored", name, i)
			}
		}
		if n, err := s.CountUsers(t.Context(), users.Match{}); err != nil || n != 7 {
			t.Errorf("%s: CountUsers = %d, %v; want 7 (one old, six new)", name, n, err)
		}
	}
}

// TestStore_CreateUsersAtomic checks that a batch refused whole (here for a
// time the store cannot keep, in its last record) stores nothing.
func TestStore_CreateUsersAtomic(t *testing.T) {
	db := openTestDB(t)
	s := db.newStore(t)
	batch := []*users.UserRecord{newUser("a@example.com"), newUser("b@example.com")}
	batch[1].LastLoginAt = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.CreateUsers(t.Context(), batch); !errors.Is(err, postgres.ErrTimeRange) {
		t.Errorf("CreateUsers with a time out of range must fail with ErrTimeRange: %v", err)
	}
	if n, err := s.CountUsers(t.Context(), users.Match{}); err != nil || n != 0 {
		t.Errorf("a refused batch must store nothing: %d users, %v", n, err)
	}
	if errs, err := s.CreateUsers(t.Context(), nil); err != nil || len(errs) != 0 {
		t.Errorf("CreateUsers(empty) = %v, %v; want no errors", errs, err)
	}
}

// TestStore_CreateUsersRace races batches against single creates for the same
// emails, through two pools: every email ends with exactly one user, and
// every call's answers agree with what was stored.
func TestStore_CreateUsersRace(t *testing.T) {
	db := openTestDB(t)
	schema := db.schema(t)
	a := mustNew(t, db.pool(t, schema))
	b := mustNew(t, db.pool(t, schema))
	const emails, batches = 50, 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := map[string][]string{} // email -> IDs whose create said nil
	gate := make(chan struct{})
	for k := range batches {
		wg.Go(func() {
			rs := make([]*users.UserRecord, emails)
			for i := range rs {
				rs[i] = newUser(fmt.Sprintf("race%d@example.com", (i+k)%emails))
			}
			<-gate
			errs, err := a.CreateUsers(t.Context(), rs)
			if err != nil {
				t.Errorf("CreateUsers: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for i, err := range errs {
				switch {
				case err == nil:
					stored[rs[i].Email] = append(stored[rs[i].Email], rs[i].ID)
				case !errors.Is(err, users.ErrDuplicateEmail):
					t.Errorf("a batch losing an email must get ErrDuplicateEmail: %v", err)
				}
			}
		})
		wg.Go(func() {
			r := newUser(fmt.Sprintf("race%d@example.com", k))
			<-gate
			err := b.CreateUser(t.Context(), r)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				stored[r.Email] = append(stored[r.Email], r.ID)
			case !errors.Is(err, users.ErrDuplicateEmail):
				t.Errorf("CreateUser losing an email must get ErrDuplicateEmail: %v", err)
			}
		})
	}
	close(gate)
	wg.Wait()
	for i := range emails {
		email := fmt.Sprintf("race%d@example.com", i)
		got, err := a.GetUserByEmail(t.Context(), email)
		if len(stored[email]) != 1 || err != nil || got.ID != stored[email][0] {
			t.Errorf("%s: creates that succeeded %v, stored %v (%v): exactly one must win, and be the one stored", email, stored[email], got, err)
		}
	}
	if n, err := a.CountUsers(t.Context(), users.Match{}); err != nil || n != emails {
		t.Errorf("CountUsers = %d, %v; want %d", n, err, emails)
	}
}

func TestStore_GetUsers(t *testing.T) {
	db := openTestDB(t)
	s := db.newStore(t)
	a, b := newUser("a@example.com"), newUser("b@example.com")
	for _, r := range []*users.UserRecord{a, b} {
		if err := s.CreateUser(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	ids := []string{b.ID, "missing", a.ID, b.ID, "", "nul\x00"}
	got, err := s.GetUsers(t.Context(), ids)
	if err != nil {
		t.Fatal(err)
	}
	wantIDs := []string{b.ID, "", a.ID, b.ID, "", ""}
	check := func(name string, got []*users.UserRecord, err error) {
		t.Helper()
		if err != nil || len(got) != len(wantIDs) {
			t.Fatalf("%s: %d results, %v; want %d", name, len(got), err, len(wantIDs))
		}
		for i, w := range wantIDs {
			if (got[i] == nil) != (w == "") || (got[i] != nil && got[i].ID != w) {
				t.Errorf("%s: entry %d = %v, want ID %q", name, i, got[i], w)
			}
		}
		if got[0] == got[3] {
			t.Errorf("%s: an ID given twice must give two copies", name)
		}
	}
	check("GetUsers", got, err)
	got, err = s.GetUsersByEmail(t.Context(), []string{b.Email, "missing@example.com", a.Email, b.Email, "", "nul\x00"})
	check("GetUsersByEmail", got, err)
}
