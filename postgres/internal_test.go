package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestRetry(t *testing.T) {
	for _, c := range []struct {
		name  string
		err   error
		calls int
	}{
		{"SerializationFailure", &pgconn.PgError{Code: "40001"}, maxAttempts},
		{"Deadlock", fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "40P01"}), maxAttempts},
		{"UniqueViolation", &pgconn.PgError{Code: "23505"}, 1},
		{"Other", errors.New("boom"), 1},
		{"FnError", &fnError{&pgconn.PgError{Code: "40001"}}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			err := retry(t.Context(), func() error { calls++; return c.err })
			if err != c.err || calls != c.calls {
				t.Errorf("retry = %v after %d calls; want %v after %d", err, calls, c.err, c.calls)
			}
		})
	}
	t.Run("SucceedsLater", func(t *testing.T) {
		calls := 0
		err := retry(t.Context(), func() error {
			if calls++; calls < 3 {
				return &pgconn.PgError{Code: "40P01"}
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Errorf("retry = %v after %d calls; want nil after 3", err, calls)
		}
	})
	t.Run("CanceledWhileWaiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		err := retry(ctx, func() error { cancel(); return &pgconn.PgError{Code: "40001"} })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("retry with ctx canceled between tries = %v, want context.Canceled", err)
		}
	})
}

func TestTimeEncoding(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Unix(0, -1),
		time.Unix(0, math.MaxInt64),
		time.Unix(0, math.MinInt64+1),
		time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.FixedZone("Y", -7*3600)),
	} {
		var err error
		n := encodeTime(tm, &err)
		if err != nil {
			t.Errorf("encodeTime(%v): %v", tm, err)
			continue
		}
		if got := decodeTime(n); !got.Equal(tm) || got.IsZero() != tm.IsZero() {
			t.Errorf("decodeTime(encodeTime(%v)) = %v", tm, got)
		}
		if b := encodeBound(tm); b != n {
			t.Errorf("encodeBound(%v) = %d, want %d", tm, b, n)
		}
	}
	for _, c := range []struct {
		tm    time.Time
		bound int64
	}{
		{time.Unix(0, math.MinInt64), zeroTime},
		{time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), zeroTime},
		{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), math.MaxInt64},
		{time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), math.MaxInt64},
	} {
		var err error
		encodeTime(c.tm, &err)
		if !errors.Is(err, ErrTimeRange) {
			t.Errorf("encodeTime(%v) must fail with ErrTimeRange: %v", c.tm, err)
		}
		if b := encodeBound(c.tm); b != c.bound {
			t.Errorf("encodeBound(%v) = %d, want %d", c.tm, b, c.bound)
		}
	}
	// Order is kept: the zero time first.
	var err error
	times := []time.Time{{}, time.Unix(0, math.MinInt64+1), time.Unix(-1, 0), time.Unix(0, 0), time.Unix(0, math.MaxInt64)}
	for i := 1; i < len(times); i++ {
		if encodeTime(times[i-1], &err) >= encodeTime(times[i], &err) {
			t.Errorf("encodeTime must keep order: %v, %v", times[i-1], times[i])
		}
	}
	if err != nil {
		t.Error(err)
	}
}

func TestEscapeLike(t *testing.T) {
	if got, want := escapeLike(`a%b_c!d\e`), `a\%b\_c!d\\e`; got != want {
		t.Errorf("escapeLike = %q, want %q", got, want)
	}
}
