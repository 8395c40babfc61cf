package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
)

// countMatches are the filters whose counts userkit_user_counts keeps: none,
// and every combination of role, status and account, with values that some
// users have and values that none has.
func countMatches() []users.Match {
	var ms []users.Match
	for _, role := range []users.Role{"", users.RoleUser, users.RoleAdmin, "nobody"} {
		for _, status := range []users.Status{"", users.StatusActive, users.StatusSuspended} {
			for _, account := range []string{"", "acct0", "acct1", "acct9"} {
				ms = append(ms, users.Match{Role: role, Status: status, AccountID: account})
			}
		}
	}
	return ms
}

// checkCounts compares CountUsers with a count of the rows themselves for
// every filter of countMatches.
func checkCounts(t *testing.T, s *postgres.Store, pool *pgxpool.Pool, when string) {
	t.Helper()
	ctx := t.Context()
	for _, m := range countMatches() {
		var want int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM userkit_users
			WHERE ($1 = '' OR role = $1) AND ($2 = '' OR status = $2) AND ($3 = '' OR account_id = $3)`,
			string(m.Role), string(m.Status), m.AccountID).Scan(&want)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.CountUsers(ctx, m); err != nil || got != want {
			t.Errorf("%s: CountUsers(role %q, status %q, account %q) = %d, %v; the table holds %d",
				when, m.Role, m.Status, m.AccountID, got, err, want)
		}
	}
}

// countDeltas returns how many rows userkit_user_count_deltas holds.
func countDeltas(t *testing.T, pool *pgxpool.Pool) (n int) {
	t.Helper()
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM userkit_user_count_deltas`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// createAndMove creates a user of acct0 with the email on s and moves it to
// admin of acct1.
func createAndMove(t *testing.T, s *postgres.Store, email string) {
	t.Helper()
	r := newUser(email)
	r.AccountID = "acct0"
	if err := s.CreateUser(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateUser(t.Context(), r.ID, func(r *users.UserRecord) (users.Revoke, error) {
		r.Role, r.AccountID = users.RoleAdmin, "acct1"
		return users.Revoke{}, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// createInAccount0 creates n users of account acct0 on s, with emails that
// start with prefix, and returns their IDs.
func createInAccount0(t *testing.T, s *postgres.Store, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		r := newUser(fmt.Sprintf("%s%02d@example.com", prefix, i))
		r.AccountID = "acct0"
		if err := s.CreateUser(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

// TestStore_KeptCounts checks that the counts CountUsers sums stay exact
// through concurrent creates on two pools (as two processes), an import,
// updates that move users between roles, statuses and accounts, updates that
// change none of them, and removals.
func TestStore_KeptCounts(t *testing.T) {
	db := openTestDB(t)
	schema := db.schema(t)
	pa, pb := db.pool(t, schema), db.pool(t, schema)
	a, b := mustNew(t, pa), mustNew(t, pb)
	ctx := t.Context()

	user := func(i int) *users.UserRecord {
		r := newUser(fmt.Sprintf("count%03d@example.com", i))
		r.Role = []users.Role{users.RoleUser, users.RoleAdmin}[i%2]
		r.Status = []users.Status{users.StatusActive, users.StatusSuspended}[i%3%2]
		r.AccountID = fmt.Sprintf("acct%d", i%3)
		return r
	}
	var wg sync.WaitGroup
	created := make([]*users.UserRecord, 64)
	for g := range 8 {
		wg.Go(func() {
			s := []*postgres.Store{a, b}[g%2]
			for i := g; i < len(created); i += 8 {
				r := user(i)
				if err := s.CreateUser(ctx, r); err != nil {
					t.Errorf("CreateUser: %v", err)
				}
				created[i] = r
			}
		})
	}
	wg.Wait()
	checkCounts(t, a, pa, "after concurrent creates")

	var batch []*users.UserRecord
	for i := 100; i < 140; i++ {
		batch = append(batch, user(i))
	}
	batch = append(batch, user(3)) // taken: not imported, not counted
	if _, err := b.CreateUsers(ctx, batch); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, a, pa, "after an import")

	for i, r := range created[:30] {
		s := []*postgres.Store{a, b}[i%2]
		_, err := s.UpdateUser(ctx, r.ID, func(r *users.UserRecord) (users.Revoke, error) {
			switch i % 3 {
			case 0:
				r.Role = users.RoleAdmin
			case 1:
				r.Status, r.AccountID = users.StatusSuspended, "acct1"
			case 2:
				r.FirstName = "Unchanged counts"
			}
			return users.Revoke{}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	checkCounts(t, a, pa, "after updates")

	for i, r := range created[20:40] {
		if err := []*postgres.Store{a, b}[i%2].DeleteUser(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	checkCounts(t, a, pa, "after removals")
}

// TestStore_KeptCountsConcurrentMoves races updates that move users between
// roles and statuses against creates and removals on two pools, then checks
// every count: a lost or doubled delta under concurrency shows here.
func TestStore_KeptCountsConcurrentMoves(t *testing.T) {
	db := openTestDB(t)
	schema := db.schema(t)
	pa, pb := db.pool(t, schema), db.pool(t, schema)
	a, b := mustNew(t, pa), mustNew(t, pb)
	ctx := t.Context()
	ids := createInAccount0(t, a, "move", 16)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			s := []*postgres.Store{a, b}[g%2]
			for j := range 10 {
				id := ids[(g+j)%len(ids)]
				_, err := s.UpdateUser(context.WithoutCancel(ctx), id, func(r *users.UserRecord) (users.Revoke, error) {
					if r.Role == users.RoleAdmin {
						r.Role, r.Status = users.RoleUser, users.StatusActive
					} else {
						r.Role, r.Status = users.RoleAdmin, users.StatusSuspended
					}
					return users.Revoke{}, nil
				})
				if err != nil {
					t.Errorf("UpdateUser: %v", err)
				}
				r := newUser(fmt.Sprintf("move-new-%d-%d@example.com", g, j))
				r.AccountID = "acct1"
				if err := s.CreateUser(ctx, r); err != nil {
					t.Errorf("CreateUser: %v", err)
				}
				if j%2 == 0 {
					if err := s.DeleteUser(ctx, r.ID); err != nil {
						t.Errorf("DeleteUser: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	checkCounts(t, b, pb, "after concurrent moves")
}

// TestStore_KeptCountsFoldRace races creates, moves between roles, statuses
// and accounts (of users folded long ago and of users just created), and
// removals on two pools against counts that fold on every call, as several
// processes would. Viewers are only ever created, so every count of them
// must lie between the creates acknowledged before it began and those begun
// before it returned: a count that read the counters and the deltas at
// different moments, across a fold, misses the deltas that fold moved, and
// a fold that counted a create still under way, or ended the epoch after a
// create had read it, counts it twice or never. After the race, every count
// must equal a count of the rows: a fold that lost or doubled a change shows
// there.
func TestStore_KeptCountsFoldRace(t *testing.T) {
	db := openTestDB(t)
	schema := db.schema(t)
	pa, pb := db.pool(t, schema), db.pool(t, schema)
	a, b := mustNew(t, pa), mustNew(t, pb)
	stores := []*postgres.Store{a, b}
	for _, s := range stores {
		postgres.SetCountFoldAt(s, 0)
	}
	ctx := t.Context()
	movers := createInAccount0(t, a, "fold-mover", 12)

	var begun, acked atomic.Int64 // viewers
	var writers, counters sync.WaitGroup
	done := make(chan struct{})
	for g := range 9 {
		writers.Go(func() {
			s := stores[g%2]
			for j := range 30 {
				switch g % 3 {
				case 0: // a viewer, never changed
					r := newUser(fmt.Sprintf("fold-viewer-%d-%d@example.com", g, j))
					r.Role = users.RoleViewer
					begun.Add(1)
					if err := s.CreateUser(ctx, r); err != nil {
						t.Errorf("CreateUser: %v", err)
						return
					}
					acked.Add(1)
				case 1: // a move between roles, statuses and accounts
					_, err := s.UpdateUser(ctx, movers[(g+j)%len(movers)], func(r *users.UserRecord) (users.Revoke, error) {
						if r.Role == users.RoleAdmin {
							r.Role, r.Status, r.AccountID = users.RoleUser, users.StatusActive, "acct0"
						} else {
							r.Role, r.Status, r.AccountID = users.RoleAdmin, users.StatusSuspended, "acct1"
						}
						return users.Revoke{}, nil
					})
					if err != nil {
						t.Errorf("UpdateUser: %v", err)
						return
					}
				case 2: // a user that comes, moves at once and, every other time, goes
					r := newUser(fmt.Sprintf("fold-temp-%d-%d@example.com", g, j))
					r.AccountID = "acct1"
					if err := s.CreateUser(ctx, r); err != nil {
						t.Errorf("CreateUser: %v", err)
						return
					}
					// Moved before or after a fold counted it: the move
					// appends deltas only in the second case.
					if _, err := s.UpdateUser(ctx, r.ID, func(r *users.UserRecord) (users.Revoke, error) {
						r.Role, r.AccountID = users.RoleAdmin, "acct0"
						return users.Revoke{}, nil
					}); err != nil {
						t.Errorf("UpdateUser: %v", err)
						return
					}
					if j%2 == 0 {
						if err := s.DeleteUser(ctx, r.ID); err != nil {
							t.Errorf("DeleteUser: %v", err)
							return
						}
					}
				}
			}
		})
	}
	for g := range 6 {
		counters.Go(func() {
			s := stores[g%2]
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				lo := acked.Load()
				n, err := s.CountUsers(ctx, users.Match{Role: users.RoleViewer})
				hi := begun.Load()
				if err != nil || int64(n) < lo || int64(n) > hi {
					t.Errorf("CountUsers(viewers) during the race = %d, %v; between %d acknowledged and %d begun", n, err, lo, hi)
					return
				}
				ms := countMatches()
				if _, err := s.CountUsers(ctx, ms[i%len(ms)]); err != nil {
					t.Errorf("CountUsers: %v", err)
					return
				}
			}
		})
	}
	writers.Wait()
	close(done)
	counters.Wait()
	checkCounts(t, a, pa, "after the race")
	checkCounts(t, b, pb, "after the race and the folds of the first check")
	if n, err := a.CountUsers(ctx, users.Match{Role: users.RoleViewer}); err != nil || n != 90 {
		t.Errorf("CountUsers(viewers) = %d, %v; want the 90 created", n, err)
	}
}

// TestStore_DeleteExpiredFoldsCounts checks that DeleteExpired folds the
// count deltas and the users created since the last fold, so that they do
// not pile up in an application that never counts, and that the counts stay
// exact.
func TestStore_DeleteExpiredFoldsCounts(t *testing.T) {
	db := openTestDB(t)
	pool := db.pool(t, db.schema(t))
	s := mustNew(t, pool)
	ctx := t.Context()
	ids := createInAccount0(t, s, "sweep", 5)
	if err := s.DeleteUser(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteExpired(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := countDeltas(t, pool); n != 0 {
		t.Errorf("%d deltas after DeleteExpired; want 0", n)
	}
	var unfolded int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM userkit_users WHERE count_epoch > userkit_user_count_folded()`).Scan(&unfolded); err != nil || unfolded != 0 {
		t.Errorf("%d users created since the last fold after DeleteExpired, %v; want 0", unfolded, err)
	}
	checkCounts(t, s, pool, "after DeleteExpired")
}

// TestStore_FoldWhileAWriteIsOpen checks that a count whose fold cannot
// have the lock on userkit_users, because a transaction writing it stays
// open, does not wait for that transaction: within the fold's lock timeout
// it folds the deltas alone, which need no lock, leaves the users created
// since the last fold to the index, and still counts exactly.
func TestStore_FoldWhileAWriteIsOpen(t *testing.T) {
	db := openTestDB(t)
	pool := db.pool(t, db.schema(t))
	s := mustNew(t, pool)
	postgres.SetCountFoldAt(s, 0)
	ctx := t.Context()
	ids := createInAccount0(t, s, "open", 3)
	if _, err := s.CountUsers(ctx, users.Match{}); err != nil { // folds the three
		t.Fatal(err)
	}
	if _, err := s.UpdateUser(ctx, ids[0], func(r *users.UserRecord) (users.Revoke, error) {
		r.Role = users.RoleAdmin
		return users.Revoke{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, newUser("open-new@example.com")); err != nil {
		t.Fatal(err)
	}
	folded := func() (epoch int64) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT epoch FROM userkit_user_count_folded`).Scan(&epoch); err != nil {
			t.Fatal(err)
		}
		return epoch
	}
	before := folded()

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `UPDATE userkit_users SET first_name = 'Open' WHERE id = $1`, ids[1]); err != nil {
		t.Fatal(err)
	}
	// A fold that waited for tx would wait for ever: the deadline, far
	// beyond the lock timeout, turns that into a failure.
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if n, err := s.CountUsers(wait, users.Match{}); err != nil || n != 4 {
		t.Fatalf("CountUsers while a write is open = %d, %v; want 4", n, err)
	}
	if n := countDeltas(t, pool); n != 0 {
		t.Errorf("%d deltas after a count whose fold could not lock the users; want 0: the deltas fold without the lock", n)
	}
	if got := folded(); got != before {
		t.Errorf("folded epoch %d after a fold without the lock; want %d, as before", got, before)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, s, pool, "after the write was rolled back")
	if got := folded(); got == before {
		t.Errorf("folded epoch %d after counts with the lock free; want it moved", got)
	}
}
