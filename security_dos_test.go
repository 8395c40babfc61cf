package users_test

// Denial of service: bcrypt work is bounded, waits honour ctx, and validating a
// session never waits behind it.

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// Item 8: bcrypt work is bounded, waits honour ctx, and ValidateToken never waits for it.
func TestSecurity_HashConcurrencyBound(t *testing.T) {
	bg := t.Context()
	t.Run("AtMostMaxConcurrentHashes", func(t *testing.T) {
		for _, limit := range []int{1, 2, 0} {
			want := limit
			if want == 0 {
				want = runtime.GOMAXPROCS(0)
			}
			f := newFixture(t, func(o *users.Options) { o.MaxConcurrentHashes = limit })
			f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
			var cur, peak atomic.Int64
			// The hook runs inside the hashing slot: while it sleeps it holds one.
			users.SetCompareHook(f.M, func() {
				n := cur.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(2 * time.Millisecond)
				cur.Add(-1)
			})
			var wg sync.WaitGroup
			for range 8 * want {
				wg.Go(func() {
					if _, err := f.M.Login(bg, "alice@example.com", storetest.Password); err != nil {
						t.Errorf("Login: %v", err)
					}
				})
			}
			wg.Wait()
			if got := peak.Load(); got > int64(want) {
				t.Errorf("MaxConcurrentHashes %d: %d comparisons ran at once, want at most %d", limit, got, want)
			}
			t.Logf("MaxConcurrentHashes %d: at most %d comparisons at once", limit, peak.Load())
		}
	})
	t.Run("WaitHonoursContext", func(t *testing.T) {
		f := newFixture(t, func(o *users.Options) { o.MaxConcurrentHashes = 1 })
		u := f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
		entered, release := make(chan struct{}), make(chan struct{})
		var first sync.Once
		users.SetCompareHook(f.M, func() {
			f.Compares.Add(1)
			first.Do(func() {
				close(entered)
				<-release
			})
		})
		done := make(chan error)
		go func() {
			_, err := f.M.Login(bg, "alice@example.com", storetest.Password)
			done <- err
		}()
		<-entered // the only slot is taken
		for _, op := range []struct {
			name string
			run  func(ctx context.Context) error
		}{
			{"Login", func(ctx context.Context) error {
				_, err := f.M.Login(ctx, "alice@example.com", storetest.Password)
				return err
			}},
			{"Create", func(ctx context.Context) error {
				_, err := f.M.Create(ctx, users.NewUser{Email: "bob@example.com", Password: storetest.Password})
				return err
			}},
			{"UpdatePassword", func(ctx context.Context) error {
				return f.M.UpdatePassword(ctx, u.ID, storetest.Password, "a brand new password")
			}},
		} {
			ctx, cancel := context.WithTimeout(bg, 30*time.Millisecond)
			start := time.Now()
			err := op.run(ctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s while the only hashing slot is held: got %v, want context.DeadlineExceeded", op.name, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%s returned %v after its deadline", op.name, d)
			}
		}
		if n := f.Compares.Load(); n != 1 {
			t.Errorf("%d comparisons, want only the one holding the slot", n)
		}
		if _, err := f.M.GetByEmail(bg, "bob@example.com"); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("a Create that gave up waiting stored a user: %v", err)
		}
		// The login holding the slot has reserved its attempt (counted until
		// its password proves right); the ones that gave up reserved nothing.
		if a, _ := f.Store.GetLoginAttempts(bg, users.UserThrottleKey(u.ID)); a.Failures != 1 {
			t.Errorf("%d attempts counted while one login holds the slot and others gave up waiting, want 1", a.Failures)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("the login holding the slot: %v", err)
		}
		if a, _ := f.Store.GetLoginAttempts(bg, users.UserThrottleKey(u.ID)); !a.IsZero() {
			t.Errorf("after the right password the throttle entry is %+v, want none", a)
		}
		f.MustLogin(t, "alice@example.com", storetest.Password) // the password did not change
	})
	t.Run("ValidateTokenWhileLoginsQueue", func(t *testing.T) {
		// A real cost (bcrypt dominates) and the default bound (GOMAXPROCS).
		// Only bob's logins hash: alice has no password and signs in by
		// email link, so that the setup costs one hash at this cost, not three.
		f := newFixture(t, func(o *users.Options) { o.BcryptCost = 10 })
		if _, err := f.M.Create(bg, users.NewUser{Email: "alice@example.com", NoPassword: true}); err != nil {
			t.Fatal(err)
		}
		f.mustCreate(t, users.NewUser{Email: "bob@example.com"})
		link, err := f.M.RequestMagicLink(bg, "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		s, err := f.M.LoginWithMagicLink(bg, link.Token)
		if err != nil {
			t.Fatal(err)
		}

		measure := func(n int) []time.Duration {
			lat := make([]time.Duration, 0, n)
			for range n {
				start := time.Now()
				_, err := f.M.ValidateToken(bg, s.Token)
				lat = append(lat, time.Since(start))
				if err != nil {
					t.Fatalf("ValidateToken: %v", err)
				}
			}
			slices.Sort(lat)
			return lat
		}
		idle := measure(200)

		f.Compares.Store(0)
		qctx, cancel := context.WithCancel(bg)
		defer cancel()
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				_, err := f.M.Login(qctx, "bob@example.com", storetest.Password)
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("queued Login: %v", err)
				}
			})
		}
		for f.Compares.Load() == 0 { // the first comparisons have started
			time.Sleep(100 * time.Microsecond)
		}
		// Requests arriving one a millisecond for at least 300ms: several
		// bcrypts finish and start meanwhile.
		var busy []time.Duration
		for start := time.Now(); time.Since(start) < 300*time.Millisecond || len(busy) < 100; {
			time.Sleep(time.Millisecond)
			busy = append(busy, measure(1)...)
		}
		slices.Sort(busy)
		doneAtEnd := f.Compares.Load()
		cancel() // the queued logins give up; those hashing finish
		wg.Wait()
		if doneAtEnd >= 100 {
			t.Fatalf("all 100 logins had started comparing before the measurement ended: no queue was measured")
		}
		pct := func(l []time.Duration, p int) time.Duration { return l[(len(l)-1)*p/100] }
		t.Logf("ValidateToken, no load:               median %v, p90 %v, max %v",
			pct(idle, 50), pct(idle, 90), idle[len(idle)-1])
		t.Logf("ValidateToken, 100 logins at cost 10: median %v, p90 %v, max %v over %d calls (GOMAXPROCS %d; %d of the 100 comparisons had started at the end)",
			pct(busy, 50), pct(busy, 90), busy[len(busy)-1], len(busy), runtime.GOMAXPROCS(0), doneAtEnd)
		if med := pct(busy, 50); med > 10*time.Millisecond {
			t.Errorf("median ValidateToken latency %v while logins queue, want well under one bcrypt (< 10ms)", med)
		}
	})
}
