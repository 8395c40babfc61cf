package users_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/userkit/users"
)

// TestBoltStore_GroupCommit starts 32 session-creating writers at once and
// checks that they shared transactions (fewer commits than writes: each commit
// is an fsync) and that every acknowledged session is there.
func TestBoltStore_GroupCommit(t *testing.T) {
	db := boltRaw(t, filepath.Join(t.TempDir(), "users.db"))
	defer db.Close()
	s, err := users.NewBoltStore(db)
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	u := boltUser(0)
	must(t, s.CreateUser(ctx, u))
	txid := func() int {
		var id int
		must(t, db.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }))
		return id
	}

	const writers = 32
	before := txid()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			<-start
			if err := s.CreateSession(ctx, boltSession(u.ID, fmt.Sprintf("s%02d", i), 0, boltT0)); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if commits := txid() - before; commits >= writers {
		t.Errorf("%d concurrent writes took %d commits, want fewer: no group commit", writers, commits)
	}
	ss, err := s.ListSessions(ctx, u.ID)
	must(t, err)
	if len(ss) != writers {
		t.Errorf("%d sessions stored, want %d", len(ss), writers)
	}
	must(t, s.Check(ctx))
}

// TestBoltStore_GroupCommitIsolation runs concurrent UpdateUser calls of which
// some fail (fn returns an error) and some panic, many times, so that failures
// share groups with successes. A failure must change nothing, a panic must reach
// its own caller and no other, and every write that succeeded must be stored.
func TestBoltStore_GroupCommitIsolation(t *testing.T) {
	s, _ := mustOpenBolt(t, nil)
	ctx := context.Background()
	const writers, rounds = 12, 15
	for i := range writers {
		must(t, s.CreateUser(ctx, boltUser(i)))
	}
	errNo := errors.New("no")
	for round := range rounds {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range writers {
			wg.Go(func() {
				<-start
				name := fmt.Sprintf("round%d", round)
				kind := (i + round) % 4 // 0 panics, 1 fails, else succeeds
				defer func() {
					p := recover()
					if kind == 0 && p != "boom" {
						t.Errorf("writer %d: recovered %v, want its own panic", i, p)
					}
					if kind != 0 && p != nil {
						t.Errorf("writer %d: panicked with %v, which was another writer's", i, p)
					}
				}()
				_, err := s.UpdateUser(ctx, boltUser(i).ID, func(r *users.UserRecord) (users.Revoke, error) {
					r.FirstName = name
					switch kind {
					case 0:
						panic("boom")
					case 1:
						return users.Revoke{}, errNo
					}
					return users.Revoke{}, nil
				})
				if kind == 1 && err != errNo {
					t.Errorf("writer %d: UpdateUser = %v, want fn's error", i, err)
				}
				if kind > 1 && err != nil {
					t.Errorf("writer %d: %v", i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		for i := range writers {
			got, err := s.GetUser(ctx, boltUser(i).ID)
			must(t, err)
			kind := (i + round) % 4
			if changed := got.FirstName == fmt.Sprintf("round%d", round); changed != (kind > 1) {
				t.Fatalf("round %d, writer %d (kind %d): FirstName is %q", round, i, kind, got.FirstName)
			}
		}
	}
}
