package postgres_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
	"github.com/userkit/users/storetest"
)

// TestStore_AuditOrderTwoPools checks that one user's audit entries are
// listed in the order their changes committed when two Managers, each with
// its own pool, clock and ULIDs (as two processes), change that user at once
// over one schema (SECURITY.md, issue 20 item 7): 2×4 goroutines × 25
// UpdateRole, read back oldest first, each entry's role_from the role_to of
// the one before. With one clock the Managers stamp IDs of one millisecond
// whose random parts need not follow the commits; with one clock a second
// ahead of the other, every entry the slower one writes after one of the
// faster one's must be given a later ID and Time. The event hooks must see
// the IDs that were stored, and every entry's ID must stay a ULID of its Time.
func TestStore_AuditOrderTwoPools(t *testing.T) {
	db := openTestDB(t)
	for _, skew := range []time.Duration{0, time.Second} {
		t.Run(fmt.Sprintf("skew=%v", skew), func(t *testing.T) {
			schema := db.schema(t)
			const managers, writers, calls = 2, 4, 25
			roles := []users.Role{users.RoleUser, users.RoleAdmin}
			for i := range writers {
				roles = append(roles, users.Role(fmt.Sprintf("r%02d", i)))
			}
			var hookMu sync.Mutex
			hooked := map[string]bool{}
			var fs [managers]*storetest.Fixture
			for i := range fs {
				store, err := postgres.New(t.Context(), db.pool(t, schema))
				if err != nil {
					t.Fatal(err)
				}
				fs[i] = storetest.NewFixture(t, store, func(o *users.Options) {
					o.Roles = roles
					o.OnEvent = func(_ context.Context, e users.AuditEntry) {
						if e.Type == users.EventRoleChanged {
							hookMu.Lock()
							hooked[e.ID] = true
							hookMu.Unlock()
						}
					}
				})
			}
			fs[1].Clock.Advance(skew)
			u := fs[0].MustCreate(t, users.NewUser{Email: fs[0].Email()})

			errs := make([]error, managers*writers)
			var wg sync.WaitGroup
			gate := make(chan struct{})
			for i := range errs {
				wg.Go(func() {
					<-gate
					m := fs[i%managers].M
					for j := range calls {
						if _, err := m.UpdateRole(context.Background(), u.ID, roles[(i+j)%len(roles)]); err != nil {
							errs[i] = err
							return
						}
					}
				})
			}
			close(gate)
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatalf("UpdateRole: %v", err)
				}
			}
			storetest.WantRoleLogInCommitOrder(t, fs[0].M, u.ID, users.RoleUser)

			for _, f := range fs {
				if err := f.M.FlushEvents(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			entries, err := fs[0].Store.ListAudit(t.Context(), users.AuditQuery{UserID: u.ID, Limit: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			slices.Reverse(entries) // oldest first
			stored := map[string]bool{}
			var last time.Time
			for _, e := range entries {
				id, err := ulid.ParseStrict(e.ID)
				if err != nil {
					t.Fatalf("entry %s: the ID is not a ULID: %v", e.ID, err)
				}
				if got, want := int64(id.Time()), e.Time.UnixMilli(); got != want {
					t.Errorf("entry %s: the ID's millisecond is %d, its Time's %d", e.ID, got, want)
				}
				if e.Time.Before(last) {
					t.Errorf("entry %s: Time %v is before the Time %v of the entry listed before it", e.ID, e.Time, last)
				}
				last = e.Time
				if e.Type == users.EventRoleChanged {
					stored[e.ID] = true
				}
			}
			for id := range hooked {
				if !stored[id] {
					t.Errorf("the hook saw role change %s, which the log does not hold: the store gave it another ID and did not say so", id)
				}
			}
			if len(hooked) != len(stored) {
				t.Errorf("the hooks saw %d role changes, the log holds %d", len(hooked), len(stored))
			}
		})
	}
}

// TestStore_AuditLockTwoPools checks the per-user lock of the audit log where
// no user row is locked (AppendAudit): while another connection, as another
// process, holds the user's lock and has written a later entry of the user,
// AppendAudit of an entry stamped before it must wait for that commit and then
// write its entry after it. Without the lock it would write its entry at once,
// not seeing the uncommitted one, and the log would list the entry that
// committed last first.
func TestStore_AuditLockTwoPools(t *testing.T) {
	db := openTestDB(t)
	schema := db.schema(t)
	s, err := postgres.New(t.Context(), db.pool(t, schema))
	if err != nil {
		t.Fatal(err)
	}
	other := db.pool(t, schema)
	ctx := t.Context()
	r := newUser("lock@example.com")
	if err := s.CreateUser(ctx, r); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	entropy := ulid.Monotonic(rand.Reader, 0)
	e := &users.AuditEntry{ID: ulid.MustNew(ulid.Timestamp(now), entropy).String(), Time: now, Type: users.EventLoginFailed, UserID: r.ID}
	theirs := ulid.MustNew(ulid.Timestamp(now), entropy).String() // stamped after e

	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	class, key := postgres.AuditLock(r.ID)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1::int, $2::int)`, class, key); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO userkit_audit (id, time, type, user_id, actor_id, session_id, ip, user_agent, reason, purpose)
		VALUES ($1, $2, 'login.failed', $3, '', '', '', '', '', '')`, theirs, now.UnixNano(), r.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.AppendAudit(ctx, e) }()
	for waiting := false; !waiting; {
		select {
		case err := <-done:
			t.Fatalf("AppendAudit returned (%v) while another transaction held the user's audit lock: it must wait for it", err)
		default:
		}
		err := other.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND classid::int8 = $1 AND objid::int8 = $2 AND objsubid = 2)`, int64(uint32(class)), int64(uint32(key))).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	if e.ID <= theirs {
		t.Errorf("AppendAudit committed after the entry %s but kept the ID %s, which sorts before it", theirs, e.ID)
	}
	got, err := s.ListAudit(ctx, users.AuditQuery{UserID: r.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != e.ID || got[1].ID != theirs {
		t.Errorf("ListAudit, newest first, gives %d entries starting %v; want %s (AppendAudit's) then %s", len(got), got, e.ID, theirs)
	}
}
