package storetest

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/userkit/users"
)

// The rate-limit rules drive Manager.Limit over the store: a limit holds
// across concurrent requests, and across instances sharing a store, only if
// UpdateLoginAttempts admits exactly as many concurrent counts as the window
// allows; and a window's entry must go with PurgeExpired once it has ended.

// rateAction is the application's own action the rules limit, so that no
// flow of the Manager's counts under it.
const rateAction users.RateAction = "storetest"

// rateLimit is the limit of rateAction in the rules.
var rateLimit = users.RateLimit{PerClient: 10, PerIdentifier: 4, Window: time.Minute}

// rateFixture is a Fixture over s whose Options limit rateAction to rateLimit.
func rateFixture(t *testing.T, s users.Store) *Fixture {
	return NewFixture(t, s, func(o *users.Options) {
		o.RateLimits = map[users.RateAction]users.RateLimit{rateAction: rateLimit}
	})
}

// fromClient returns the test's context carrying a Client with the address ip.
func fromClient(t *testing.T, ip string) context.Context {
	return users.WithClient(t.Context(), users.Client{IP: ip})
}

// wantLimited fails the test unless err is a rate-limit refusal that says to
// retry after exactly retry.
func wantLimited(t *testing.T, err error, retry time.Duration, what string) {
	t.Helper()
	var le *users.LimitError
	switch {
	case !errors.Is(err, users.ErrRateLimited) || !errors.As(err, &le):
		t.Errorf("%s: %v, want a *LimitError matching ErrRateLimited", what, err)
	case le.RetryAfter != retry || le.Action != rateAction:
		t.Errorf("%s: RetryAfter %v, Action %q; want %v and %q (the end of the window, which began with its first attempt)", what, le.RetryAfter, le.Action, retry, rateAction)
	}
}

func testRateLimitConcurrent(t *testing.T, s users.Store, _ string) {
	f := rateFixture(t, s)
	const n = 200
	errs := make([]error, n)
	ctx := fromClient(t, "192.0.2.1")
	start(n, func(i int) { errs[i] = f.M.Limit(ctx, rateAction, "") })
	admitted := 0
	for _, err := range errs {
		switch {
		case err == nil:
			admitted++
		case !errors.Is(err, users.ErrRateLimited):
			t.Errorf("a concurrent attempt over the limit: %v, want ErrRateLimited", err)
		}
	}
	if admitted != rateLimit.PerClient {
		t.Errorf("%d concurrent attempts from one client over a limit of %d: %d admitted, want exactly %d (each count must be read and written in one step)",
			n, rateLimit.PerClient, admitted, rateLimit.PerClient)
	}
	// Per identifier too, from clients that are all different.
	for i := range n {
		errs[i] = nil
	}
	start(n, func(i int) {
		errs[i] = f.M.Limit(fromClient(t, "198.51.100."+strconv.Itoa(i)), rateAction, "victim@example.com")
	})
	admitted = 0
	for _, err := range errs {
		if err == nil {
			admitted++
		}
	}
	if admitted != rateLimit.PerIdentifier {
		t.Errorf("%d concurrent attempts for one identifier from many clients over a limit of %d: %d admitted, want exactly %d",
			n, rateLimit.PerIdentifier, admitted, rateLimit.PerIdentifier)
	}
}

func testRateLimitWindow(t *testing.T, s users.Store, _ string) {
	f := rateFixture(t, s)
	ctx := fromClient(t, "192.0.2.1")
	for i := range rateLimit.PerClient {
		if err := f.M.Limit(ctx, rateAction, ""); err != nil {
			t.Fatalf("attempt %d of %d in one window: %v", i+1, rateLimit.PerClient, err)
		}
		f.Clock.Advance(time.Second)
	}
	elapsed := time.Duration(rateLimit.PerClient) * time.Second
	wantLimited(t, f.M.Limit(ctx, rateAction, ""), rateLimit.Window-elapsed, "the attempt after a full window")
	if err := f.M.Limit(fromClient(t, "192.0.2.2"), rateAction, ""); err != nil {
		t.Errorf("another client in the same window: %v, want it admitted (one key per client)", err)
	}
	f.Clock.Advance(rateLimit.Window - elapsed - time.Nanosecond)
	wantLimited(t, f.M.Limit(ctx, rateAction, ""), time.Nanosecond, "the attempt just before the window ends")
	f.Clock.Advance(time.Nanosecond)
	for i := range rateLimit.PerClient {
		if err := f.M.Limit(ctx, rateAction, ""); err != nil {
			t.Fatalf("attempt %d of the next window: %v, want a full window again (the count starts over when the window ends)", i+1, err)
		}
	}
	wantLimited(t, f.M.Limit(ctx, rateAction, ""), rateLimit.Window, "the attempt after the next window filled at once")
}

func testRateLimitExpiry(t *testing.T, s users.Store, _ string) {
	f := rateFixture(t, s)
	ctx := fromClient(t, "192.0.2.1")
	for range rateLimit.PerIdentifier {
		must(t, f.M.Limit(ctx, rateAction, "someone@example.com"))
	}
	client := users.RateLimitKey(rateAction, "client", "192.0.2.1")
	id := users.RateLimitKey(rateAction, "identifier", "someone@example.com")
	for _, k := range []users.ThrottleKey{client, id} {
		a, err := s.GetLoginAttempts(t.Context(), k)
		if err != nil || !a.ExpiresAt.Equal(f.Clock.Now().Add(rateLimit.Window)) {
			t.Fatalf("the entry %s after a window's attempts: %+v, %v; want one that expires when the window ends", k, a, err)
		}
	}
	f.Clock.Advance(rateLimit.Window - time.Nanosecond)
	if n, err := f.M.PurgeExpired(t.Context()); err != nil || n != 0 {
		t.Errorf("PurgeExpired before the window ends: %d, %v; want 0 deleted", n, err)
	}
	wantLimited(t, f.M.Limit(ctx, rateAction, "someone@example.com"), time.Nanosecond, "the identifier's attempt before the window ends")
	f.Clock.Advance(time.Nanosecond)
	if n, err := f.M.PurgeExpired(t.Context()); err != nil || n != 2 {
		t.Errorf("PurgeExpired when the window ends: %d, %v; want the client's and the identifier's entries deleted (2)", n, err)
	}
	for _, k := range []users.ThrottleKey{client, id} {
		if a, err := s.GetLoginAttempts(t.Context(), k); err != nil || !a.IsZero() {
			t.Errorf("the entry %s after PurgeExpired: %+v, %v; want none", k, a, err)
		}
	}
	if err := f.M.Limit(ctx, rateAction, "someone@example.com"); err != nil {
		t.Errorf("an attempt after the purge: %v, want it admitted", err)
	}
}
