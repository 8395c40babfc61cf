package users_test

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/userkit/users"
)

// BenchmarkMemoryListAudit reads one page of 50 entries from memory stores
// holding 10,000 and 1,000,000 entries, by user, by actor and by a time range
// (ten entries a second across 100 users): the page should cost the same
// whatever the store holds. Compare the sizes of one run:
//
//	GOGC=off go test -run '^$' -bench MemoryListAudit -benchtime=20000x -benchmem .
//
// (with the collector on, a million live entries make each collection, and so
// each page, dearer, whatever the store does).
func BenchmarkMemoryListAudit(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		s := users.NewMemoryStore()
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		entropy := ulid.Monotonic(rand.Reader, 0)
		batch := make([]*users.AuditEntry, 0, 1000)
		for i := range n {
			at := start.Add(time.Duration(i) * 100 * time.Millisecond)
			batch = append(batch, &users.AuditEntry{
				ID: ulid.MustNew(ulid.Timestamp(at), entropy).String(), Time: at, Type: users.EventLoginSucceeded,
				UserID: fmt.Sprintf("user%03d", i%100), ActorID: fmt.Sprintf("actor%03d", i%37),
			})
			if len(batch) == cap(batch) || i == n-1 {
				if err := s.AppendAudit(b.Context(), batch...); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		mid := start.Add(time.Duration(n/2) * 100 * time.Millisecond)
		for _, q := range []struct {
			name string
			q    users.AuditQuery
		}{
			{"user", users.AuditQuery{UserID: "user042", Limit: 50}},
			{"actor", users.AuditQuery{ActorID: "actor007", Limit: 50}},
			{"time", users.AuditQuery{Since: mid, Until: mid.Add(time.Minute), Limit: 50}},
		} {
			b.Run(fmt.Sprintf("%s/n=%d", q.name, n), func(b *testing.B) {
				for b.Loop() {
					es, err := s.ListAudit(b.Context(), q.q)
					if err != nil || len(es) != 50 {
						b.Fatalf("ListAudit: %d entries, %v", len(es), err)
					}
				}
			})
		}
	}
}
