package postgres_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
	"github.com/userkit/users/storetest"
)

// BenchmarkValidateToken compares Manager.ValidateToken on a Store without a
// session cache, one round trip to PostgreSQL each, with one on a Store with
// Options.SessionCache, served from memory once cached, in the same run:
//
//	bash .ci/postgres.sh go test -run '^$' -bench ValidateToken -count 5 .
func BenchmarkValidateToken(b *testing.B) {
	db := openTestDB(b)
	for _, c := range []struct {
		name string
		opts *postgres.Options
	}{
		{"uncached", nil},
		{"cached", &postgres.Options{SessionCache: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			s, err := postgres.NewWithOptions(b.Context(), db.pool(b, db.schema(b)), c.opts)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(s.Close)
			if c.opts != nil {
				waitOn(b, s, 0)
			}
			f := storetest.NewFixture(b, s, nil)
			f.MustCreate(b, users.NewUser{Email: "bench@example.com", Password: storetest.Password})
			token := f.MustLogin(b, "bench@example.com", storetest.Password).Token
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.M.ValidateToken(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCreateUserConcurrent runs CreateUser from 32 goroutines on 32
// connections at once, on tables with the counts of schema version 5 kept by
// their triggers ("counted") and on the same tables with those triggers
// dropped, as before version 5 ("uncounted"), in one run:
//
//	bash .ci/postgres.sh go test -run '^$' -bench CreateUserConcurrent -count 5 .
func BenchmarkCreateUserConcurrent(b *testing.B) {
	db := openTestDB(b)
	for _, counted := range []bool{false, true} {
		name := "uncounted"
		if counted {
			name = "counted"
		}
		b.Run(name, func(b *testing.B) {
			schema := db.schema(b)
			cfg, err := pgxpool.ParseConfig(db.dsn)
			if err != nil {
				b.Fatal(err)
			}
			cfg.ConnConfig.RuntimeParams["search_path"] = schema
			cfg.MaxConns, cfg.MinConns = 32, 32
			pool, err := pgxpool.NewWithConfig(b.Context(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(pool.Close)
			s := mustNew(b, pool)
			if !counted {
				for _, op := range []string{"insert", "update", "delete"} {
					if _, err := pool.Exec(b.Context(), `DROP TRIGGER userkit_count_users_`+op+` ON userkit_users`); err != nil {
						b.Fatal(err)
					}
				}
			}
			var n atomic.Int64
			b.SetParallelism((32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := newUser(fmt.Sprintf("c%d@example.com", n.Add(1)))
					r.Role = []users.Role{users.RoleUser, users.RoleAdmin}[n.Load()%2]
					if err := s.CreateUser(b.Context(), r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkAppendAudit compares writing one user's audit entry in commit order
// (the user's advisory lock and the check for a later stored entry, pipelined
// with the insert) with writing it as stamped, as CreateUsers does, in the
// same run, one user per goroutine:
//
//	bash .ci/postgres.sh go test -run '^$' -bench AppendAudit -count 5 .
func BenchmarkAppendAudit(b *testing.B) {
	db := openTestDB(b)
	s := mustNew(b, db.pool(b, db.schema(b)))
	write := map[string]func(ctx context.Context, e *users.AuditEntry) error{
		"ordered":   func(ctx context.Context, e *users.AuditEntry) error { return s.AppendAudit(ctx, e) },
		"unordered": func(ctx context.Context, e *users.AuditEntry) error { return postgres.AppendAuditUnordered(ctx, s, e) },
	}
	for _, name := range []string{"unordered", "ordered"} {
		b.Run(name, func(b *testing.B) {
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				user := fmt.Sprintf("user-%s-%d", name, n.Add(1))
				for pb.Next() {
					e := &users.AuditEntry{ID: ulid.Make().String(), Type: users.EventLoginSucceeded, UserID: user}
					id, _ := ulid.ParseStrict(e.ID)
					e.Time = ulid.Time(id.Time()).UTC()
					if err := write[name](b.Context(), e); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
