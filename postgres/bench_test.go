package postgres_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
// connections at once, on four versions of the tables, in one run (see
// createVariants): "uncounted", as before schema version 5, the create path
// the counts must not slow down; "counted-v10", whose insert trigger upserts
// a counter row; "counted-v11", whose rule appends a delta row; and
// "counted", the tables New makes now, where a create only reads the count
// epoch. Besides the time per create it reports the CPU time the server's
// processes used per create, which the load of a shared machine moves less.
// -count runs each variant's repetitions in a row; on a busy machine,
// compile the test binary and run it with -test.count 1 several times
// instead, so that the variants take turns while the load moves (from the
// repository's root), or run BenchmarkCreateUserConcurrentPaired:
//
//	(cd postgres && go test -c) && bash .ci/postgres.sh bash -c 'for i in 1 2 3 4 5; do ./postgres.test -test.run "^$" -test.bench "CreateUserConcurrent$" -test.count 1; done'
//
// Two runs of that loop with 12 rounds each, load average 2 to 11, gave
// medians of the rounds' own ratios to "uncounted" of 1.45× and 1.42× for
// "counted-v10", 1.07× and 1.01× for "counted-v11" and 0.99× and 0.96× for
// "counted" (server CPU 1.55× and 1.61×, 1.08× and 1.05×, 0.96× and
// 0.98×); ten runs of the paired benchmark gave medians of 1.04× for
// "counted" (1.01× to 1.12×) and 1.06× for "counted-v11" (1.04× to 1.07×)
// (postgres/README.md).
func BenchmarkCreateUserConcurrent(b *testing.B) {
	db := openTestDB(b)
	for _, c := range createVariants(b) {
		b.Run(c.name, func(b *testing.B) {
			pool := createPool(b, db, c)
			s := mustNew(b, pool)
			var n atomic.Int64
			cpu := backendCPU(b, pool)
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
			b.StopTimer()
			if used, ok := cpu(); ok {
				b.ReportMetric(float64(used.Microseconds())/float64(b.N), "server-µs/op")
			}
		})
	}
}

// BenchmarkCreateUserConcurrentPaired is BenchmarkCreateUserConcurrent's
// variants, and those of countingVariants, which count while they create,
// taking turns every few hundred creates within one process: each
// of b.N rounds runs createsPerTurn creates from 32 goroutines on each
// variant, in an order that rotates, and the benchmark reports, for each
// variant, the median over the rounds of its time and its server CPU per
// create divided by those of "uncounted" in the same round. Turns this
// short compare each variant with the baseline under nearly the same load,
// which on a shared machine moves more between runs than the variants
// differ:
//
//	bash .ci/postgres.sh go test -run '^$' -bench CreateUserConcurrentPaired -benchtime 250x .
func BenchmarkCreateUserConcurrentPaired(b *testing.B) {
	const createsPerTurn = 400
	db := openTestDB(b)
	type variant struct {
		name     string
		counting bool
		s        *postgres.Store
		cpu      func() (time.Duration, bool)
		n        atomic.Int64
	}
	var vs []*variant
	for _, c := range append(createVariants(b), countingVariants(b)...) {
		pool := createPool(b, db, c)
		vs = append(vs, &variant{name: c.name, counting: c.counting, s: mustNew(b, pool), cpu: backendCPU(b, pool)})
	}
	// turn returns the time and the server's CPU time per create of one turn.
	turn := func(v *variant) (wall, cpu float64) {
		before, _ := v.cpu()
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for next.Add(1) <= createsPerTurn {
					i := v.n.Add(1)
					r := newUser(fmt.Sprintf("c%d@example.com", i))
					r.Role = []users.Role{users.RoleUser, users.RoleAdmin}[i%2]
					if err := v.s.CreateUser(b.Context(), r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		stop := make(chan struct{})
		var counter sync.WaitGroup
		if v.counting {
			counter.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := v.s.CountUsers(b.Context(), users.Match{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(stop)
		counter.Wait()
		elapsed := time.Since(start)
		after, _ := v.cpu()
		return float64(elapsed) / createsPerTurn, float64(after-before) / createsPerTurn
	}
	wall, cpu := make(map[string][]float64), make(map[string][]float64)
	b.ResetTimer()
	for i := range b.N {
		w, c := make(map[string]float64), make(map[string]float64)
		for j := range vs {
			v := vs[(i+j)%len(vs)]
			w[v.name], c[v.name] = turn(v)
		}
		for _, v := range vs[1:] {
			wall[v.name] = append(wall[v.name], w[v.name]/w[vs[0].name])
			cpu[v.name] = append(cpu[v.name], c[v.name]/c[vs[0].name])
		}
	}
	b.StopTimer()
	median := func(xs []float64) float64 {
		slices.Sort(xs)
		return (xs[(len(xs)-1)/2] + xs[len(xs)/2]) / 2
	}
	for _, v := range vs[1:] {
		b.ReportMetric(median(wall[v.name]), v.name+"/"+vs[0].name)
		b.ReportMetric(median(cpu[v.name]), v.name+"-cpu/"+vs[0].name)
	}
}

// createVariant is a version of the tables that BenchmarkCreateUserConcurrent
// compares: the statements that turn the tables New makes into it, and
// whether a goroutine counts the users without pause while they are created.
type createVariant struct {
	name     string
	undo     []string
	counting bool
}

// createVariants returns the versions of the tables that
// BenchmarkCreateUserConcurrent compares, "uncounted" first. "uncounted" has
// nothing that counts: no triggers, no count_epoch column (and so neither
// its default, which reads the epoch sequence, nor its index). The others
// have what the version they are named for adds to a create, on the tables
// of now: "counted-v10" the insert trigger of versions 5 to 10 and
// "counted-v11" the rule of version 11, both without count_epoch.
func createVariants(b *testing.B) []createVariant {
	uncounted := []string{
		`DROP TRIGGER userkit_count_users_update ON userkit_users`,
		`DROP TRIGGER userkit_count_users_delete ON userkit_users`,
		`ALTER TABLE userkit_users DROP COLUMN count_epoch`,
	}
	v10 := slices.Clone(uncounted)
	for _, stmt := range postgres.Migration(5) { // its count functions and insert trigger
		if rest, ok := strings.CutPrefix(stmt, "CREATE FUNCTION userkit_count_users_"); ok {
			v10 = append(v10, "CREATE OR REPLACE FUNCTION userkit_count_users_"+rest)
		} else if strings.HasPrefix(stmt, "CREATE TRIGGER userkit_count_users_insert ") {
			v10 = append(v10, stmt)
		}
	}
	if len(v10) != len(uncounted)+4 {
		b.Fatalf("found %d of version 5's count functions and insert trigger, want 4", len(v10)-len(uncounted))
	}
	return []createVariant{
		{"uncounted", uncounted, false},
		{"counted-v10", v10, false},
		{"counted-v11", append(slices.Clone(uncounted), ruleOfVersion11(b)), false},
		{"counted", nil, false},
	}
}

// countingVariants returns the versions of the tables that
// BenchmarkCreateUserConcurrentPaired also compares, each with a goroutine
// that counts the users without pause while they are created, so that a
// fold follows every 64 creates: "counting", the tables New makes now,
// whose folds hold off the creates while they run, and "counting-v11", with
// the rule of version 11 and every user's count_epoch 0 (always folded), so
// that its folds move only deltas and take no lock, as version 11's did.
func countingVariants(b *testing.B) []createVariant {
	return []createVariant{
		{"counting", nil, true},
		{"counting-v11", []string{`ALTER TABLE userkit_users ALTER COLUMN count_epoch SET DEFAULT 0`, ruleOfVersion11(b)}, true},
	}
}

// ruleOfVersion11 returns the statement of migration 11 that creates the
// rule appending a delta with every create.
func ruleOfVersion11(b *testing.B) string {
	for _, stmt := range postgres.Migration(11) {
		if strings.HasPrefix(stmt, "CREATE RULE userkit_count_users_insert ") {
			return stmt
		}
	}
	b.Fatal("found no rule in version 11")
	return ""
}

// createPool returns a pool of 32 connections, all open, to a new schema
// with the tables New makes turned into c's.
func createPool(b *testing.B, db *testDB, c createVariant) *pgxpool.Pool {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(db.dsn)
	if err != nil {
		b.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = db.schema(b)
	cfg.MaxConns, cfg.MinConns = 32, 32
	pool, err := pgxpool.NewWithConfig(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	mustNew(b, pool)
	for _, stmt := range c.undo {
		if _, err := pool.Exec(b.Context(), stmt); err != nil {
			b.Fatal(err)
		}
	}
	return pool
}

// BenchmarkCountUsersDeltas compares CountUsers with no filter and by role
// when every change has been folded into the counters ("folded") with the
// same counts when 256 users created since the last fold wait to be read
// through the count-epoch index, the most a count reads without folding
// them ("created"), in the same run:
//
//	bash .ci/postgres.sh go test -run '^$' -bench CountUsersDeltas -count 5 .
func BenchmarkCountUsersDeltas(b *testing.B) {
	db := openTestDB(b)
	pool := db.pool(b, db.schema(b))
	s := mustNew(b, pool)
	for i := range 1000 {
		r := newUser(fmt.Sprintf("count%04d@example.com", i))
		r.Role = []users.Role{users.RoleUser, users.RoleAdmin}[i%2]
		if err := s.CreateUser(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
	pending := func() (n int) {
		if err := pool.QueryRow(b.Context(), `SELECT count(*) FROM userkit_users
			WHERE count_epoch > userkit_user_count_folded()`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	for _, c := range []struct {
		name    string
		pending int
	}{{"folded", 0}, {"created", postgres.CountFoldCreatedAt}} {
		// The first count folds the 1000 creates above; the second has none to fold.
		if _, err := s.CountUsers(b.Context(), users.Match{}); err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(b.Context(), `VACUUM ANALYZE userkit_users`); err != nil {
			b.Fatal(err)
		}
		for i := range c.pending - pending() {
			if err := s.CreateUser(b.Context(), newUser(fmt.Sprintf("%s%04d@example.com", c.name, i))); err != nil {
				b.Fatal(err)
			}
		}
		if got := pending(); got != c.pending {
			b.Fatalf("%d users wait to be folded, want %d", got, c.pending)
		}
		for _, m := range []users.Match{{}, {Role: users.RoleAdmin}} {
			name := c.name + "/all"
			if m.Role != "" {
				name = c.name + "/role"
			}
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					if _, err := s.CountUsers(b.Context(), m); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// backendCPU returns a function that reports how much CPU time the server
// processes of pool's connections have used since backendCPU was called, as
// the kernel accounts it (/proc/PID/schedstat): on a machine whose cores other
// work shares, this moves less with the load than the time per operation
// does. It opens all of pool's MaxConns connections first, so that it knows
// every process the operations run on. It reports false when the processes
// cannot be read, as when the server runs on another machine.
func backendCPU(b *testing.B, pool *pgxpool.Pool) func() (time.Duration, bool) {
	b.Helper()
	var pids []uint32
	var conns []*pgxpool.Conn
	for range pool.Config().MaxConns {
		c, err := pool.Acquire(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		pids = append(pids, c.Conn().PgConn().PID())
	}
	for _, c := range conns {
		c.Release()
	}
	read := func() (time.Duration, bool) {
		var total time.Duration
		for _, pid := range pids {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
			if err != nil {
				return 0, false
			}
			ns, err := strconv.ParseInt(strings.Fields(string(stat))[0], 10, 64)
			if err != nil {
				return 0, false
			}
			total += time.Duration(ns)
		}
		return total, true
	}
	start, ok := read()
	return func() (time.Duration, bool) {
		end, ok2 := read()
		return end - start, ok && ok2
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
