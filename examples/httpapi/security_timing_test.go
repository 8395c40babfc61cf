//go:build soak

package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/userkit/users"
)

// The timing measurement runs with the soak tag (.ci/run does): thousands of
// requests, tens of seconds under -race. By default TestRecoveryAnswersBeforeLookup
// checks, without a clock, what makes the timing equal.

// TestRecoveryTiming: the reset and magic-link endpoints answer a known and an
// unknown email in the same time, and a request right after one of each is
// answered in the same time too (the token write of a known email happens in
// the mail worker, away from the answers). Ratios of medians over interleaved
// requests, on a bbolt store whose writes are real. The band is narrow (0.95 to
// 1.05) because the leak it guards against was small: 1.10 to 1.17 here before
// the worker queue (1.25 to 1.41 when first reported).
func TestRecoveryTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test skipped in -short mode")
	}
	store, err := users.OpenBoltStore(filepath.Join(t.TempDir(), "users.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	// The limits off: thousands of requests from one client, and the
	// limiter's work comes before the email is looked up, the same for any.
	off := users.RateLimit{PerClient: -1, PerIdentifier: -1}
	e := newEnvOpts(t, store, users.Options{RateLimits: map[users.RateAction]users.RateLimit{
		users.ActionPasswordReset: off, users.ActionMagicLink: off,
	}})
	admin := e.login(adminEmail, adminPassword)
	e.create(admin, `{"name":"Kim","email":"kim@example.com","password":"correct horse battery staple"}`)

	post := func(path, email string) time.Duration {
		req, _ := http.NewRequest("POST", e.ts.URL+path, strings.NewReader(`{"email":"`+email+`"}`))
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		res, err := e.ts.Client().Do(req)
		d := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 202 {
			t.Fatalf("POST %s: %d", path, res.StatusCode)
		}
		return d
	}
	median := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	for _, path := range []string{"/v1/auth/password-reset", "/v1/auth/magic-link"} {
		t.Run(strings.TrimPrefix(path, "/v1/auth/"), func(t *testing.T) {
			// Pass in any of several attempts: load on a shared machine moves a
			// ratio of medians by a few percent for seconds at a time, while the
			// defect this guards against (1.10-1.17 on the code before issue 9)
			// is off in every attempt.
			const samples, attempts = 600, 6
			for a := range attempts {
				var answer, next [2][]time.Duration // [known, unknown]
				for i := range samples {
					for k := range 2 {
						c := (i + k) % 2 // alternate which goes first
						email := "kim@example.com"
						if c == 1 {
							email = fmt.Sprintf("nobody%d@example.com", i)
						}
						answer[c] = append(answer[c], post(path, email))
						next[c] = append(next[c], post(path, "follow-up@example.com"))
					}
				}
				e.mail() // wait for the worker
				ra := float64(median(answer[0])) / float64(median(answer[1]))
				rn := float64(median(next[0])) / float64(median(next[1]))
				t.Logf("attempt %d: known/unknown answer %.3f (medians %v, %v), follow-up %.3f (%v, %v), %d samples each",
					a+1, ra, median(answer[0]), median(answer[1]), rn, median(next[0]), median(next[1]), samples)
				if ra >= 0.95 && ra <= 1.05 && rn >= 0.95 && rn <= 1.05 {
					return
				}
				if a == attempts-1 {
					t.Errorf("known vs unknown email: answer ratio %.3f, follow-up ratio %.3f; want both within 0.95-1.05 (in any of %d attempts)", ra, rn, attempts)
				}
			}
		})
	}
}
