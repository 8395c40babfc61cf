// Command scalebench measures how the Manager's queries grow with the number
// of users, on each store: it imports users through Manager.Import into a new
// store of each size, times every query, and prints a table with each query's
// median time at each size and the ratio of the largest size to the smallest.
//
//	go run ./internal/scalebench                          # 10k, 100k and 1M users; memory, bolt, postgres
//	go run ./internal/scalebench -sizes 1000,5000 -stores memory,bolt
//
// For PostgreSQL it needs a database where it may create and drop schemas, in
// USERS_POSTGRES_DSN (or -dsn); .ci/postgres.sh starts a throwaway server and
// runs a command with it set, from the postgres directory:
//
//	bash .ci/postgres.sh go run ./internal/scalebench -sizes 10000,100000,1000000
//
// The users: every 100th is an admin, every 50 share an account, ten of them
// (at any size) have the last name "Quagmire", which the search looks for, and
// all have one imported bcrypt hash. After the import the PostgreSQL tables are
// vacuumed and analyzed, as autovacuum would do after a bulk load. Each query
// is timed alone, one call at a time, repeated until it has run for -time (at
// least -min-reps and at most -max-reps times); the table shows the median.
package main

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
)

// rareName is the last name of about rareCount users at every size.
const (
	rareName  = "Quagmire"
	rareTerm  = "quagmire"
	rareCount = 10
	password  = "correct horse battery staple"
	// passwordHash is a bcrypt hash of password at cost 4, as another system
	// might have made it, for Import.
	passwordHash = "$2a$04$AabzHtBErydNGRR9Tcvg0.1mhKvgD9qMqY9mfn2z/axl/cElww2zC"
	pageLimit    = 20
)

// queries are the measured questions, in the table's order.
var queries = []string{
	"first page", "filtered first page", "deep offset", "count", "filtered count",
	"search", "dormant first page", "active first page", "GetByEmail", "ValidateToken", "GetMany 100",
}

type config struct {
	sizes            []int
	stores           []string
	dsn              string
	minTime          time.Duration
	minReps, maxReps int
	importChunk      int
	dir              string
	warm             bool
}

func main() {
	var cfg config
	sizes := flag.String("sizes", "10000,100000,1000000", "comma-separated numbers of users")
	stores := flag.String("stores", "memory,bolt,postgres", "comma-separated stores: memory, bolt, postgres")
	flag.StringVar(&cfg.dsn, "dsn", os.Getenv("USERS_POSTGRES_DSN"), "PostgreSQL connection string (default $USERS_POSTGRES_DSN)")
	flag.DurationVar(&cfg.minTime, "time", 300*time.Millisecond, "how long to repeat each query")
	flag.IntVar(&cfg.minReps, "min-reps", 5, "fewest repetitions of each query")
	flag.IntVar(&cfg.maxReps, "max-reps", 2000, "most repetitions of each query")
	flag.IntVar(&cfg.importChunk, "import-chunk", users.ImportBatch, "rows per Manager.Import call")
	flag.BoolVar(&cfg.warm, "warm", false, "before timing, read every bbolt file once through its map (BoltStore.Check), as a server that has run a while has")
	flag.StringVar(&cfg.dir, "dir", "", "directory for the bolt files (default: a new temporary directory)")
	flag.Parse()
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1000 {
			fatalf("-sizes: %q is not a number of users of at least 1000", s)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	for _, s := range strings.Split(*stores, ",") {
		s = strings.TrimSpace(s)
		if s != "memory" && s != "bolt" && s != "postgres" {
			fatalf("-stores: unknown store %q", s)
		}
		cfg.stores = append(cfg.stores, s)
	}
	if slices.Contains(cfg.stores, "postgres") && cfg.dsn == "" {
		fatalf("the postgres store needs USERS_POSTGRES_DSN or -dsn; or run: bash .ci/postgres.sh go run ./internal/scalebench")
	}
	if err := run(context.Background(), cfg); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "scalebench: "+format+"\n", args...)
	os.Exit(1)
}

// result is one store's measurements: per query, per size, the median.
type result struct {
	store       string
	times       map[string][]time.Duration // query -> one per size
	importTimes []time.Duration            // total import time per size
}

func run(ctx context.Context, cfg config) error {
	fmt.Printf("scalebench: %s %s/%s, %d CPUs (%s)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel())
	fmt.Printf("command: go run ./internal/scalebench %s   (in postgres/)\n", strings.Join(os.Args[1:], " "))
	if slices.Contains(cfg.stores, "postgres") {
		v, err := serverVersion(ctx, cfg.dsn)
		if err != nil {
			return err
		}
		fmt.Printf("postgres: %s\n", v)
	}
	hash := passwordHash
	dir := cfg.dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "scalebench-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	var results []result
	for _, store := range cfg.stores {
		res, err := measure(ctx, cfg, store, hash, dir)
		if err != nil {
			return fmt.Errorf("%s: %w", store, err)
		}
		results = append(results, res)
	}
	printTable(cfg, results)
	return nil
}

// measure builds a store of each size, all open at once, and times every
// query on them, the sizes in turn (see timeIt).
func measure(ctx context.Context, cfg config, store, hash, dir string) (result, error) {
	res := result{store: store, times: map[string][]time.Duration{}}
	var fs []*fixture
	defer func() {
		for _, f := range fs {
			f.close()
		}
	}()
	for _, n := range cfg.sizes {
		f, err := build(ctx, cfg, store, n, hash, dir)
		if err != nil {
			return res, fmt.Errorf("%d users: %w", n, err)
		}
		fs = append(fs, f)
		res.importTimes = append(res.importTimes, f.imported)
	}
	for _, q := range queries {
		calls := make([]func() error, len(fs))
		for i, f := range fs {
			calls[i] = f.calls[q]
		}
		faults := minorFaults()
		ds, reps, err := timeIt(cfg, calls)
		if err != nil {
			return res, fmt.Errorf("%s: %w", q, err)
		}
		faults = minorFaults() - faults
		res.times[q] = ds
		progress("%s: %-20s %v (medians of %d; %.2f page faults a call)", store, q, ds, reps, float64(faults)/float64(reps*len(fs)))
	}
	return res, nil
}

// fixture is a store of n users, with the calls that time each query on it.
type fixture struct {
	calls    map[string]func() error
	imported time.Duration // how long the import took
	close    func()
}

// build makes a store of n users through Manager.Import.
func build(ctx context.Context, cfg config, store string, n int, hash, dir string) (_ *fixture, err error) {
	s, closeStore, err := openStore(ctx, cfg, store, n, dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			closeStore()
		}
	}()
	m, err := users.New(s, &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true})
	if err != nil {
		return nil, err
	}

	progress("%s: importing %d users", store, n)
	ids := make([]string, 0, n)
	emails := make([]string, 0, n)
	start := time.Now()
	for from := 0; from < n; from += cfg.importChunk {
		rows := make([]users.NewUser, 0, min(cfg.importChunk, n-from))
		for i := from; i < from+cap(rows); i++ {
			rows = append(rows, newUser(i, n, hash))
		}
		out, err := m.Import(ctx, rows)
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		for i, r := range out {
			if r.Err != nil {
				return nil, fmt.Errorf("import row %d: %w", from+i, r.Err)
			}
			ids = append(ids, r.User.ID)
			emails = append(emails, r.User.Email)
		}
	}
	took := time.Since(start)
	progress("%s: imported %d users in %v (%.1f µs per user)", store, n, took.Round(time.Millisecond), float64(took.Microseconds())/float64(n))
	if bs, ok := s.(*users.BoltStore); ok && cfg.warm {
		start, faults := time.Now(), minorFaults()
		if err := bs.Check(ctx); err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		progress("%s: read the file once (Check) in %v, %d page faults", store, time.Since(start).Round(time.Millisecond), minorFaults()-faults)
	}
	if ps, ok := s.(*pgStore); ok {
		start := time.Now()
		if _, err := ps.pool.Exec(ctx, `VACUUM ANALYZE userkit_users`); err != nil {
			return nil, fmt.Errorf("vacuum analyze: %w", err)
		}
		progress("%s: VACUUM ANALYZE in %v", store, time.Since(start).Round(time.Millisecond))
	}

	beforeLogin := time.Now()
	sess, err := m.Login(ctx, emails[n/3], password)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	rnd := rand.New(rand.NewPCG(uint64(n), 1))
	rare := 0
	for i := range n {
		if newUser(i, n, hash).LastName == rareName {
			rare++
		}
	}
	batch := make([]string, 100)
	check := func(what string, got, want int) error {
		if got != want {
			return fmt.Errorf("%s gave %d, want %d: the store does not select what the benchmark built", what, got, want)
		}
		return nil
	}
	calls := map[string]func() error{
		"first page": func() error {
			p, err := m.Find(ctx, users.Filter{Limit: pageLimit})
			if err == nil {
				err = check("first page", len(p.Users), pageLimit)
			}
			return err
		},
		"filtered first page": func() error {
			p, err := m.Find(ctx, users.Filter{Role: users.RoleAdmin, Limit: pageLimit})
			if err == nil {
				err = check("admins' first page", len(p.Users), min(pageLimit, admins(n)))
			}
			return err
		},
		"deep offset": func() error {
			p, err := m.Find(ctx, users.Filter{Offset: n / 2, Limit: pageLimit})
			if err == nil {
				err = check("page at offset n/2", len(p.Users), pageLimit)
			}
			return err
		},
		"count": func() error {
			c, err := m.Count(ctx, users.Filter{})
			if err == nil {
				err = check("count", c, n)
			}
			return err
		},
		"filtered count": func() error {
			c, err := m.Count(ctx, users.Filter{Role: users.RoleAdmin})
			if err == nil {
				err = check("count of admins", c, admins(n))
			}
			return err
		},
		"search": func() error {
			p, err := m.Find(ctx, users.Filter{Search: rareTerm, Limit: pageLimit})
			if err == nil {
				err = check("search", len(p.Users), rare)
			}
			return err
		},
		"dormant first page": func() error {
			p, err := m.Find(ctx, users.Filter{InactiveSince: beforeLogin, Limit: pageLimit})
			if err == nil {
				err = check("dormant users' first page", len(p.Users), pageLimit)
			}
			return err
		},
		"active first page": func() error {
			p, err := m.Find(ctx, users.Filter{ActiveSince: beforeLogin, Limit: pageLimit})
			if err == nil {
				err = check("active users' first page", len(p.Users), 1)
			}
			return err
		},
		"GetByEmail": func() error {
			_, err := m.GetByEmail(ctx, emails[rnd.IntN(n)])
			return err
		},
		"ValidateToken": func() error {
			_, err := m.ValidateToken(ctx, sess.Token)
			return err
		},
		"GetMany 100": func() error {
			for i := range batch {
				batch[i] = ids[rnd.IntN(n)]
			}
			us, err := m.GetMany(ctx, batch)
			if err == nil {
				for i, u := range us {
					if u == nil || u.ID != batch[i] {
						return errors.New("GetMany did not return the users asked for, in order")
					}
				}
			}
			return err
		},
	}
	return &fixture{calls: calls, imported: took, close: closeStore}, nil
}

// admins is how many of n users newUser makes admins.
func admins(n int) int { return (n + 99) / 100 }

// timeIt times the calls fs (one query on stores of each size): it calls each
// once to warm up, then each in turn, one call at a time, until each has run
// for cfg.minTime (within cfg.minReps and cfg.maxReps calls), and returns the
// median duration of each. Taking turns, the sizes share whatever else the
// machine is doing, so their ratio holds even when the machine is busy.
func timeIt(cfg config, fs []func() error) ([]time.Duration, int, error) {
	for _, f := range fs {
		if err := f(); err != nil {
			return nil, 0, err
		}
	}
	ds := make([][]time.Duration, len(fs))
	totals := make([]time.Duration, len(fs))
	done := func() bool {
		reps := len(ds[0])
		if reps < cfg.minReps {
			return false
		}
		if reps >= cfg.maxReps {
			return true
		}
		return slices.Min(totals) >= cfg.minTime
	}
	for !done() {
		for i, f := range fs {
			start := time.Now()
			if err := f(); err != nil {
				return nil, 0, err
			}
			d := time.Since(start)
			ds[i] = append(ds[i], d)
			totals[i] += d
		}
	}
	medians := make([]time.Duration, len(fs))
	for i := range ds {
		slices.Sort(ds[i])
		medians[i] = ds[i][len(ds[i])/2]
	}
	return medians, len(ds[0]), nil
}

var firstNames = []string{
	"Ada", "Alan", "Barbara", "Claude", "Donald", "Edsger", "Frances", "Grace", "Hedy", "Ivan",
	"Jean", "Ken", "Leslie", "Margaret", "Niklaus", "Ole", "Peter", "Radia", "Sophie", "Tim",
}

var syllables = []string{
	"ba", "ker", "son", "mil", "ler", "ton", "wood", "ham", "ford", "ley",
	"ros", "tein", "berg", "man", "ric", "del", "vo", "nat", "sha", "kow",
}

// newUser returns row i of n: its email and username are unique, every 100th
// is an admin, 50 share an account, and ten rows spread over the range have
// the last name rareName; the other last names are made of three of 20
// syllables (8,000 names), which never spell rareName.
func newUser(i, n int, hash string) users.NewUser {
	role := users.RoleUser
	if i%100 == 0 {
		role = users.RoleAdmin
	}
	last := syllables[i%20] + syllables[(i/20)%20] + syllables[(i/400)%20]
	if i%(n/rareCount) == n/(2*rareCount) {
		last = rareName
	}
	return users.NewUser{
		Email:        fmt.Sprintf("user%08d@example.com", i),
		Username:     fmt.Sprintf("user%08d", i),
		FirstName:    firstNames[(i/7)%len(firstNames)],
		LastName:     strings.ToUpper(last[:1]) + last[1:],
		Role:         role,
		AccountID:    "acct" + strconv.Itoa(i/50),
		PasswordHash: hash,
	}
}

// pgStore is the PostgreSQL store with its pool, for VACUUM ANALYZE.
type pgStore struct {
	*postgres.Store
	pool *pgxpool.Pool
}

// openStore returns a new, empty store and a function that closes and
// deletes it.
func openStore(ctx context.Context, cfg config, store string, n int, dir string) (users.Store, func(), error) {
	switch store {
	case "memory":
		return users.NewMemoryStore(), func() {}, nil
	case "bolt":
		path := filepath.Join(dir, fmt.Sprintf("scalebench-%d.db", n))
		s, err := users.OpenBoltStore(path, nil)
		if err != nil {
			return nil, nil, err
		}
		return s, func() { s.Close(); os.Remove(path) }, nil
	}
	b := make([]byte, 6)
	crand.Read(b)
	schema := "scalebench_" + hex.EncodeToString(b)
	admin, err := pgx.Connect(ctx, cfg.dsn)
	if err != nil {
		return nil, nil, err
	}
	defer admin.Close(ctx)
	// pg_trgm outside the schema, which is dropped afterwards.
	if _, err := admin.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public; CREATE SCHEMA `+schema); err != nil {
		return nil, nil, err
	}
	drop := func() {
		conn, err := pgx.Connect(context.Background(), cfg.dsn)
		if err == nil {
			_, err = conn.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
			conn.Close(context.Background())
		}
		if err != nil {
			progress("drop schema %s: %v", schema, err)
		}
	}
	pc, err := pgxpool.ParseConfig(cfg.dsn)
	if err != nil {
		drop()
		return nil, nil, err
	}
	pc.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		drop()
		return nil, nil, err
	}
	s, err := postgres.New(ctx, pool)
	if err != nil {
		pool.Close()
		drop()
		return nil, nil, err
	}
	return &pgStore{s, pool}, func() { pool.Close(); drop() }, nil
}

func serverVersion(ctx context.Context, dsn string) (string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	var v string
	err = conn.QueryRow(ctx, `SHOW server_version`).Scan(&v)
	return "PostgreSQL " + v, err
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "scalebench: "+format+"\n", args...)
}

// printTable prints one row per store and query: the median at each size and
// the ratio of the last size's to the first's.
func printTable(cfg config, results []result) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"store", "query"}
	for _, n := range cfg.sizes {
		head = append(head, sizeName(n))
	}
	ratio := sizeName(cfg.sizes[len(cfg.sizes)-1]) + "/" + sizeName(cfg.sizes[0])
	fmt.Println()
	fmt.Fprintln(w, strings.Join(append(head, ratio), "\t")+"\t")
	for _, r := range results {
		row := []string{r.store, "import (per user)"}
		for i, d := range r.importTimes {
			row = append(row, fmt.Sprintf("%v (%.1fµs)", d.Round(time.Millisecond), float64(d.Nanoseconds())/1e3/float64(cfg.sizes[i])))
		}
		fmt.Fprintln(w, strings.Join(append(row, ""), "\t")+"\t")
		for _, q := range queries {
			ds := r.times[q]
			row := []string{r.store, q}
			for _, d := range ds {
				row = append(row, formatDuration(d))
			}
			row = append(row, fmt.Sprintf("%.2f", float64(ds[len(ds)-1])/float64(ds[0])))
			fmt.Fprintln(w, strings.Join(row, "\t")+"\t")
		}
	}
	w.Flush()
}

func sizeName(n int) string {
	switch {
	case n%1000000 == 0:
		return strconv.Itoa(n/1000000) + "M"
	case n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

// formatDuration prints d with three significant digits.
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.3gµs", float64(d.Nanoseconds())/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.3gms", float64(d.Nanoseconds())/1e6)
	}
	return fmt.Sprintf("%.3gs", d.Seconds())
}
