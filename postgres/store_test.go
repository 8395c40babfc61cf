package postgres_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"
	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
	"github.com/userkit/users/storetest"
)

// dsnEnv names the environment variable with the server the tests use.
const dsnEnv = "USERS_POSTGRES_DSN"

// poolConns is the size of the tests' pools: enough for the conformance
// suite's races to run on many connections at once.
const poolConns = 16

// testDB is a database the tests create schemas in.
type testDB struct {
	dsn   string
	admin *pgxpool.Pool
}

// openTestDB connects to the database named by USERS_POSTGRES_DSN. Without it
// the test fails: a PostgreSQL store that was never run against PostgreSQL is
// not tested.
func openTestDB(t testing.TB) *testDB {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		t.Fatalf(`%s is not set: the PostgreSQL store's tests need a PostgreSQL server.
Run them with a throwaway server started for them, from the repository root:

	bash .ci/postgres.sh

or point them at a database where they may create and drop schemas:

	%s='postgres://user:password@127.0.0.1:5432/dbname?sslmode=disable' go test -race ./...   (in postgres/)`, dsnEnv, dsnEnv)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("%s: %v", dsnEnv, err)
	}
	cfg.MaxConns = 4
	admin, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("connect to %s: %v", dsnEnv, err)
	}
	t.Cleanup(admin.Close)
	if err := admin.Ping(t.Context()); err != nil {
		t.Fatalf("connect to %s: %v", dsnEnv, err)
	}
	// The store creates pg_trgm in its own schema when the database has none.
	// The tests' schemas are dropped when each test ends, which would drop the
	// extension and every other schema's search index with it: so they get it
	// from public, where it stays.
	if _, err := admin.Exec(t.Context(), `CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public`); err != nil {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23505" { // another test binary made it just now
			t.Fatalf("create extension pg_trgm: %v", err)
		}
	}
	return &testDB{dsn: dsn, admin: admin}
}

// schema creates a schema with a fresh name, dropped with everything in it when
// the test ends, and returns its name.
func (db *testDB) schema(t testing.TB) string {
	t.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	name := "userkit_test_" + hex.EncodeToString(b)
	if _, err := db.admin.Exec(t.Context(), "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.admin.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// pool opens a pool of its own whose connections use the schema, closed when
// the test ends (before the schema is dropped). Two pools are as independent as
// two processes: they share no connection.
func (db *testDB) pool(t testing.TB, schema string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(db.dsn)
	if err != nil {
		t.Fatalf("%s: %v", dsnEnv, err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = poolConns
	p, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// newStore returns a Store over a fresh, empty schema.
func (db *testDB) newStore(t *testing.T) users.Store {
	t.Helper()
	return mustNew(t, db.pool(t, db.schema(t)))
}

func mustNew(t testing.TB, pool *pgxpool.Pool) *postgres.Store {
	t.Helper()
	s, err := postgres.New(t.Context(), pool)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestStore(t *testing.T) {
	db := openTestDB(t)
	storetest.Run(t, db.newStore)
}

func newUser(email string) *users.UserRecord {
	id := ulid.Make().String()
	base := time.Now().UTC().Truncate(time.Second)
	return &users.UserRecord{
		User: users.User{
			ID: id, Email: email, Username: "u" + strings.ToLower(id),
			Role: users.RoleUser, Status: users.StatusActive,
			CreatedAt: base, UpdatedAt: base,
		},
		PasswordHash: "$2a$04$postgres-test",
	}
}

// TestStore_TwoPools runs the contract's races between two Stores over one
// schema, each with its own pool: as two processes of one application would.
func TestStore_TwoPools(t *testing.T) {
	db := openTestDB(t)
	open := func(t *testing.T) [2]*postgres.Store {
		schema := db.schema(t)
		pools := [2]*pgxpool.Pool{db.pool(t, schema), db.pool(t, schema)}
		var stores [2]*postgres.Store
		var errs [2]error
		var wg sync.WaitGroup
		for i := range stores {
			wg.Go(func() { stores[i], errs[i] = postgres.New(t.Context(), pools[i]) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("New, called by two pools at once on an empty schema: %v", err)
			}
		}
		return stores
	}

	t.Run("CreateUserSameEmail", func(t *testing.T) {
		stores := open(t)
		const n = 32
		errs := make([]error, n)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-gate
				errs[i] = stores[i%2].CreateUser(t.Context(), newUser("same@example.com"))
			})
		}
		close(gate)
		wg.Wait()
		storetest.ExactlyOne(t, errs, users.ErrDuplicateEmail, "of CreateUser calls with one email, through two pools, exactly one must succeed, the others with ErrDuplicateEmail")
		for i, s := range stores {
			if n, err := s.CountUsers(t.Context(), users.Match{Email: "same@example.com"}); err != nil || n != 1 {
				t.Errorf("store %d: CountUsers(email) = %d, %v; want 1", i, n, err)
			}
		}
	})

	t.Run("UpdateUserReadModifyWrite", func(t *testing.T) {
		stores := open(t)
		r := newUser("rmw@example.com")
		if err := stores[0].CreateUser(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		const n = 32
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, err := stores[i%2].UpdateUser(t.Context(), r.ID, func(u *users.UserRecord) (users.Revoke, error) {
					if u.Preferences == nil {
						u.Preferences = map[string]string{}
					}
					u.Preferences[fmt.Sprintf("k%02d", i)] = "v"
					return users.Revoke{}, nil
				})
				if err != nil {
					t.Errorf("UpdateUser: %v", err)
				}
			})
		}
		wg.Wait()
		got, err := stores[1].GetUser(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Preferences) != n {
			t.Errorf("%d read-modify-writes through two pools must all survive: %d did", n, len(got.Preferences))
		}
	})

	t.Run("UpdateLoginAttempts", func(t *testing.T) {
		stores := open(t)
		const n = 100
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, err := stores[i%2].UpdateLoginAttempts(t.Context(), "id:hot", func(a *users.LoginAttempts) error {
					a.Failures++
					a.ExpiresAt = time.Now().Add(time.Hour)
					return nil
				})
				if err != nil {
					t.Errorf("UpdateLoginAttempts: %v", err)
				}
			})
		}
		wg.Wait()
		if a, err := stores[0].GetLoginAttempts(t.Context(), "id:hot"); err != nil || a.Failures != n {
			t.Errorf("%d increments through two pools gave Failures = %d, %v", n, a.Failures, err)
		}
	})

	t.Run("ConcurrentGuesses", func(t *testing.T) {
		// Two Managers, as two processes would have, each over its own pool:
		// of 10 x MaxFailedLogins concurrent wrong guesses, exactly
		// MaxFailedLogins are compared (ErrInvalidCredentials comes only from
		// a comparison) and the rest are refused as locked.
		stores := open(t)
		const limit, n = 5, 50
		var ms [2]*users.Manager
		for i, s := range stores {
			m, err := users.New(s, &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true, MaxFailedLogins: limit, MaxConcurrentHashes: n})
			if err != nil {
				t.Fatal(err)
			}
			ms[i] = m
		}
		u, err := ms[0].Create(t.Context(), users.NewUser{Email: "guessed@example.com", Password: "correct horse battery staple"})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		wrong, locked := 0, 0
		gate := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-gate
				var err error
				if i%4 < 2 {
					_, err = ms[i%2].Login(t.Context(), u.Email, "a wrong password, guessed")
				} else {
					err = ms[i%2].UpdatePassword(t.Context(), u.ID, "a wrong password, guessed", "a brand new password here")
				}
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, users.ErrInvalidCredentials):
					wrong++
				case errors.Is(err, users.ErrAccountLocked):
					locked++
				default:
					t.Errorf("a concurrent guess: %v", err)
				}
			})
		}
		close(gate)
		wg.Wait()
		if wrong != limit || locked != n-limit {
			t.Errorf("%d concurrent guesses through two pools with MaxFailedLogins %d: %d compared, %d refused as locked; want %d and %d",
				n, limit, wrong, locked, limit, n-limit)
		}
		if _, err := ms[1].Login(t.Context(), u.Email, "correct horse battery staple"); !errors.Is(err, users.ErrAccountLocked) {
			t.Errorf("the right password after the guesses: %v, want ErrAccountLocked", err)
		}
	})
}

func TestNew(t *testing.T) {
	db := openTestDB(t)
	version := func(t *testing.T, p *pgxpool.Pool) int {
		t.Helper()
		var v int
		if err := p.QueryRow(t.Context(), `SELECT version FROM userkit_schema_version`).Scan(&v); err != nil {
			t.Fatalf("read schema version: %v", err)
		}
		return v
	}

	t.Run("ManyProcessesAtOnce", func(t *testing.T) {
		schema := db.schema(t)
		const n = 8
		pools := make([]*pgxpool.Pool, n)
		for i := range pools {
			pools[i] = db.pool(t, schema)
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-gate
				_, errs[i] = postgres.New(t.Context(), pools[i])
			})
		}
		close(gate)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Errorf("New, called by %d pools at once on an empty schema, must succeed for all: %v", n, err)
			}
		}
		if got, want := version(t, pools[0]), postgres.SchemaVersion(); got != want {
			t.Errorf("schema version = %d, want %d", got, want)
		}
		var rows int
		if err := pools[0].QueryRow(t.Context(), `SELECT count(*) FROM userkit_schema_version`).Scan(&rows); err != nil || rows != 1 {
			t.Errorf("userkit_schema_version must have one row: %d, %v", rows, err)
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		pool := db.pool(t, db.schema(t))
		s := mustNew(t, pool)
		r := newUser("kept@example.com")
		if err := s.CreateUser(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		s = mustNew(t, pool)
		if _, err := s.GetUser(t.Context(), r.ID); err != nil {
			t.Errorf("New on current tables must keep their data: GetUser: %v", err)
		}
	})

	t.Run("RefusesNewerSchema", func(t *testing.T) {
		pool := db.pool(t, db.schema(t))
		s := mustNew(t, pool)
		r := newUser("kept@example.com")
		if err := s.CreateUser(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		newer := postgres.SchemaVersion() + 1
		if _, err := pool.Exec(t.Context(), `UPDATE userkit_schema_version SET version = $1`, newer); err != nil {
			t.Fatal(err)
		}
		_, err := postgres.New(t.Context(), pool)
		if !errors.Is(err, postgres.ErrSchemaTooNew) {
			t.Errorf("New on tables of a newer version must fail with ErrSchemaTooNew: %v", err)
		}
		if got := version(t, pool); got != newer {
			t.Errorf("New refusing a newer schema must leave its version: got %d, want %d", got, newer)
		}
		if _, err := s.GetUser(t.Context(), r.ID); err != nil {
			t.Errorf("New refusing a newer schema must leave the data: GetUser: %v", err)
		}
	})

	t.Run("NilPool", func(t *testing.T) {
		if _, err := postgres.New(t.Context(), nil); err == nil {
			t.Error("New(nil pool) must fail")
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		pool := db.pool(t, db.schema(t))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := postgres.New(ctx, pool); !errors.Is(err, context.Canceled) {
			t.Errorf("New with a canceled context must return context.Canceled: %v", err)
		}
	})
}

// TestStore_ExactTimes checks that times keep every nanosecond and the zero
// time stays zero, and that a time the store cannot keep is refused, not
// rounded.
func TestStore_ExactTimes(t *testing.T) {
	db := openTestDB(t)
	s := db.newStore(t)
	ctx := t.Context()
	at := time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("X", 5*3600+1800))

	r := newUser("times@example.com")
	r.CreatedAt, r.UpdatedAt, r.EmailVerifiedAt, r.LastLoginAt = at, at.Add(1), time.Time{}, at.Add(-1)
	if err := s.CreateUser(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetUser(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want time.Time
	}{
		{"CreatedAt", got.CreatedAt, r.CreatedAt},
		{"UpdatedAt", got.UpdatedAt, r.UpdatedAt},
		{"LastLoginAt", got.LastLoginAt, r.LastLoginAt},
	} {
		if !c.got.Equal(c.want) {
			t.Errorf("%s = %v, want %v (to the nanosecond)", c.name, c.got, c.want)
		}
	}
	if !got.EmailVerifiedAt.IsZero() {
		t.Errorf("a zero EmailVerifiedAt must come back zero: %v", got.EmailVerifiedAt)
	}

	sess := &users.SessionRecord{
		ID: ulid.Make().String(), TokenHash: []byte("0123456789abcdef0123456789abcdef"), UserID: r.ID,
		CreatedAt: at, ExpiresAt: at.Add(time.Hour + 1), LastSeenAt: at.Add(7),
	}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchSession(ctx, sess.TokenHash, at.Add(8)); err != nil {
		t.Fatal(err)
	}
	gs, _, err := getSession(ctx, s, sess.TokenHash)
	if err != nil {
		t.Fatal(err)
	}
	if !gs.LastSeenAt.Equal(at.Add(8)) || !gs.ExpiresAt.Equal(sess.ExpiresAt) {
		t.Errorf("session times: LastSeenAt %v ExpiresAt %v; want %v, %v", gs.LastSeenAt, gs.ExpiresAt, at.Add(8), sess.ExpiresAt)
	}

	// One nanosecond decides expiry (in the Manager): it must survive the store.
	tok := &users.TokenRecord{Hash: []byte("tok"), UserID: r.ID, Purpose: users.PurposeMagicLink, CreatedAt: at, ExpiresAt: at.Add(1)}
	if err := s.CreateToken(ctx, tok, false); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetToken(ctx, tok.Hash, tok.Purpose); err != nil || !got.ExpiresAt.Equal(at.Add(1)) {
		t.Errorf("GetToken: %v, %v; want ExpiresAt %v to the nanosecond", got, err, at.Add(1))
	}

	// A zero ExpiresAt is before every now, so the entry is expired.
	if _, err := s.UpdateLoginAttempts(ctx, "k", func(a *users.LoginAttempts) error {
		a.Failures = 1
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteExpired(ctx, time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)); err != nil || n != 1 {
		t.Errorf("DeleteExpired just after the zero time must delete an entry expiring at the zero time: %d, %v", n, err)
	}

	for _, bad := range []time.Time{
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		r := newUser("range-" + bad.Format("2006") + "@example.com")
		r.LastLoginAt = bad
		if err := s.CreateUser(ctx, r); !errors.Is(err, postgres.ErrTimeRange) {
			t.Errorf("CreateUser with LastLoginAt %v must fail with ErrTimeRange: %v", bad, err)
		}
		if _, err := s.GetUser(ctx, r.ID); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("CreateUser refused for a time out of range must store nothing: %v", err)
		}
		if err := s.TouchSession(ctx, sess.TokenHash, bad); !errors.Is(err, postgres.ErrTimeRange) {
			t.Errorf("TouchSession with %v must fail with ErrTimeRange: %v", bad, err)
		}
		// As a bound, a time out of range still compares rightly: nothing
		// expired by 1600, the session and the token by 2300.
		if n, err := s.DeleteExpired(ctx, bad); err != nil || (bad.Year() < 2000) != (n == 0) {
			t.Errorf("DeleteExpired at %v: %d, %v", bad, n, err)
		}
	}
}

// TestStore_SearchMatchesMatches checks Search against Match.Matches on
// names with LIKE's metacharacters and letters whose lower case PostgreSQL's
// locale may not know.
func TestStore_SearchMatchesMatches(t *testing.T) {
	db := openTestDB(t)
	s := db.newStore(t)
	names := [][2]string{
		{"100%", "Pure"}, {"1000", "Pure"}, {"a_b", "Under"}, {"axb", "Under"},
		{"Bang!", "Esc"}, {`Back\slash`, "Esc"}, {"Élodie", "Ünal"}, {"ÉLODIE", "STRASSE"},
		{"Straße", "İstanbul"}, {"Ωmega", "Σίσυφος"}, {"plain", "name"},
	}
	var all []*users.UserRecord
	for i, n := range names {
		r := newUser(fmt.Sprintf("user%d@example.com", i))
		r.FirstName, r.LastName = n[0], n[1]
		if err := s.CreateUser(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	slices.SortFunc(all, func(a, b *users.UserRecord) int { return strings.Compare(a.ID, b.ID) })
	for _, q := range []string{
		"%", "_", "!", `\`, "0%", "a_b", "!%", "é", "élo", "ÉLO", "ü", "ß", "strasse",
		"i̇stanbul", "istanbul", "ω", "σίσυφος", "user1", "@", "plain name", "u",
	} {
		f := users.Match{Search: strings.ToLower(q)}
		var want []string
		for _, r := range all {
			if f.Matches(&r.User) {
				want = append(want, r.ID)
			}
		}
		rs, err := s.ListUsers(t.Context(), users.ListQuery{Match: f, Limit: 100})
		if err != nil {
			t.Fatalf("ListUsers(%q): %v", q, err)
		}
		var got []string
		for _, r := range rs {
			got = append(got, r.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Search %q must select what Match.Matches selects: got %d users %v, want %d %v", q, len(got), got, len(want), want)
		}
		if n, err := s.CountUsers(t.Context(), f); err != nil || n != len(want) {
			t.Errorf("CountUsers(Search %q) = %d, %v; want %d", q, n, err, len(want))
		}
	}
	// Terms PostgreSQL cannot take as text: pieces of "é" (C3 A9), a byte no
	// UTF-8 text has, a control character. The Manager never sends them; a
	// Store still selects what Match.Matches selects.
	for _, q := range []string{"\xa9", "\xc3", "\xa9lo", "lodie\xff", "\x00", "a\nb"} {
		f := users.Match{Search: q}
		var want []string
		for _, r := range all {
			if f.Matches(&r.User) {
				want = append(want, r.ID)
			}
		}
		for _, lq := range []users.ListQuery{{Match: f, Limit: 100}, {Match: f, Limit: 1, Offset: 1}, {Match: f, Limit: 1, Before: all[len(all)-1].ID}} {
			rs, err := s.ListUsers(t.Context(), lq)
			if err != nil {
				t.Fatalf("ListUsers(%q): %v", q, err)
			}
			var got []string
			for _, r := range rs {
				got = append(got, r.ID)
			}
			w := want
			switch {
			case lq.Offset == 1:
				w = want[min(1, len(w)):min(2, len(w))]
			case lq.Before != "":
				w = slices.DeleteFunc(slices.Clone(want), func(id string) bool { return id >= lq.Before })
				w = w[max(len(w)-1, 0):]
			}
			if !slices.Equal(got, w) {
				t.Errorf("ListUsers(%+v) = %v, want %v", lq, got, w)
			}
		}
		if n, err := s.CountUsers(t.Context(), f); err != nil || n != len(want) {
			t.Errorf("CountUsers(Search %q) = %d, %v; want %d", q, n, err, len(want))
		}
	}
	if rs, err := s.ListUsers(t.Context(), users.ListQuery{Match: users.Match{Email: "\xff"}, Limit: 5}); err != nil || len(rs) != 0 {
		t.Errorf("ListUsers(Email not UTF-8) = %v, %v; want nobody", rs, err)
	}
}

// TestStore_ConflictOrder checks that CreateUser and UpdateUser name the key
// that is taken in the contract's order (email, username, ID) as the memory
// store does, whichever constraint PostgreSQL checks first.
func TestStore_ConflictOrder(t *testing.T) {
	db := openTestDB(t)
	stores := map[string]users.Store{"memory": users.NewMemoryStore(), "postgres": db.newStore(t)}
	a, b, c := newUser("a@example.com"), newUser("b@example.com"), newUser("c@example.com")
	for name, s := range stores {
		for _, r := range []*users.UserRecord{a, b, c} {
			if err := s.CreateUser(t.Context(), r.Clone()); err != nil {
				t.Fatalf("%s: CreateUser: %v", name, err)
			}
		}
	}
	create := func(id, email, username string) func(users.Store) error {
		return func(s users.Store) error {
			r := newUser(email)
			r.Username = username
			if id != "" {
				r.ID = id
			}
			return s.CreateUser(t.Context(), r)
		}
	}
	update := func(email, username string) func(users.Store) error {
		return func(s users.Store) error {
			_, err := s.UpdateUser(t.Context(), b.ID, func(r *users.UserRecord) (users.Revoke, error) {
				r.Email, r.Username = email, username
				return users.Revoke{}, nil
			})
			return err
		}
	}
	for _, c := range []struct {
		name string
		call func(users.Store) error
		want error
	}{
		{"CreateIDAndEmailOfOneUser", create(a.ID, a.Email, "fresh1"), users.ErrDuplicateEmail},
		{"CreateIDAndUsernameOfTwoUsers", create(a.ID, "fresh2@example.com", b.Username), users.ErrDuplicateUsername},
		{"CreateIDAndUsernameOfOneUser", create(a.ID, "fresh3@example.com", a.Username), users.ErrDuplicateUsername},
		{"CreateIDOnly", create(a.ID, "fresh4@example.com", "fresh4"), users.ErrConflict},
		{"CreateEmailAndUsername", create("", a.Email, c.Username), users.ErrDuplicateEmail},
		{"UpdateEmailAndUsername", update(a.Email, c.Username), users.ErrDuplicateEmail},
		{"UpdateUsername", update(b.Email, a.Username), users.ErrDuplicateUsername},
		{"UpdateOwnKeys", update(b.Email, ""), nil},
	} {
		for name, s := range stores {
			if err := c.call(s); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Errorf("%s: %s: got %v, want %v", c.name, name, err, c.want)
			}
		}
	}
}

// TestStore_DeleteExpiredBatches checks that DeleteExpired, which deletes in
// batches, deletes and counts every expired record of a backlog larger than a
// batch, and nothing else.
func TestStore_DeleteExpiredBatches(t *testing.T) {
	db := openTestDB(t)
	schema := db.schema(t)
	pool := db.pool(t, schema)
	s := mustNew(t, pool)
	const expired, live = 2345, 7
	now := time.Unix(0, expired)
	// Expiry times are stored as nanoseconds since 1970: 1…expired are at or
	// before now, the rest after it.
	if _, err := pool.Exec(t.Context(), `INSERT INTO userkit_login_attempts (key, failures, window_start, locked_until, expires_at)
		SELECT 'k' || i, 1, 0, 0, i FROM generate_series(1, $1::bigint) AS i`, expired+live); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteExpired(t.Context(), now)
	if err != nil || n != expired {
		t.Errorf("DeleteExpired = %d, %v; want %d", n, err, expired)
	}
	var left int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM userkit_login_attempts`).Scan(&left); err != nil || left != live {
		t.Errorf("DeleteExpired left %d entries, %v; want %d", left, err, live)
	}
	if a, err := s.GetLoginAttempts(t.Context(), users.ThrottleKey(fmt.Sprintf("k%d", expired+1))); err != nil || !a.ExpiresAt.Equal(time.Unix(0, expired+1)) {
		t.Errorf("DeleteExpired must keep an entry expiring after now: %+v, %v", a, err)
	}
}

// TestStore_PreferencesExact checks that preferences come back exactly: a nil
// map as nil, an empty one as empty, and any valid string, U+0000 included.
func TestStore_PreferencesExact(t *testing.T) {
	db := openTestDB(t)
	s := db.newStore(t)
	for i, prefs := range []map[string]string{
		nil,
		{},
		{"nul": "a\x00b", "quote": `"\`, "unicode": "Σίσυφος 🙂", "empty": "", "html": "<a&b>"},
	} {
		r := newUser(fmt.Sprintf("prefs%d@example.com", i))
		r.Preferences = prefs
		if err := s.CreateUser(t.Context(), r); err != nil {
			t.Fatalf("CreateUser with preferences %q: %v", prefs, err)
		}
		got, err := s.GetUser(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if (got.Preferences == nil) != (prefs == nil) || !maps.Equal(got.Preferences, prefs) {
			t.Errorf("preferences %#v came back as %#v", prefs, got.Preferences)
		}
	}
}

// TestStore_LockedTiming is SECURITY.md's equal-work rule on PostgreSQL: a
// login for a locked account and one for a locked identifier that names nobody
// do the same store work (lookupUser reads a decoy row when it finds nobody),
// so their medians stay within 0.9-1.1 of each other.
func TestStore_LockedTiming(t *testing.T) {
	db := openTestDB(t)
	m, err := users.New(db.newStore(t), &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const password = "correct horse battery"
	if _, err := m.Create(ctx, users.NewUser{Email: "alice@example.com", Password: password, FirstName: "Alice",
		Preferences: map[string]string{"theme": "dark"}}); err != nil {
		t.Fatal(err)
	}
	others := make([]users.NewUser, 50) // so the decoy is one row among many
	for i := range others {
		others[i] = users.NewUser{Email: fmt.Sprintf("other%d@example.com", i), Password: "another long password"}
	}
	if res, err := m.Import(ctx, others); err != nil || res[0].Err != nil {
		t.Fatalf("Import: %v", err)
	}
	storetest.WantLockedTimingEqual(t, m, "alice@example.com", "nobody@example.com", password, 1000)
}

// TestStore_LookupDecoy checks that the decoy read never answers for a user who
// exists, nor makes one up: lookups by email and username find exactly their
// user, whichever user is first by ID, and find nobody on an empty store.
func TestStore_LookupDecoy(t *testing.T) {
	db := openTestDB(t)
	s := db.newStore(t)
	ctx := t.Context()
	if _, err := s.GetUserByEmail(ctx, "a@example.com"); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("GetUserByEmail on an empty store: %v, want ErrNotFound", err)
	}
	var all []*users.UserRecord
	for i := range 5 {
		r := newUser(fmt.Sprintf("user%d@example.com", i))
		if err := s.CreateUser(ctx, r); err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	for _, r := range all {
		if got, err := s.GetUserByEmail(ctx, r.Email); err != nil || got.ID != r.ID {
			t.Errorf("GetUserByEmail(%q) = %v, %v; want %s", r.Email, got, err, r.ID)
		}
		if got, err := s.GetUserByUsername(ctx, r.Username); err != nil || got.ID != r.ID {
			t.Errorf("GetUserByUsername(%q) = %v, %v; want %s", r.Username, got, err, r.ID)
		}
	}
	if got, err := s.GetUserByEmail(ctx, "nobody@example.com"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("GetUserByEmail(nobody) = %v, %v; want ErrNotFound", got, err)
	}
	if got, err := s.GetUserByUsername(ctx, "nobody"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("GetUserByUsername(nobody) = %v, %v; want ErrNotFound", got, err)
	}
}

// getSession is Store.GetSession into new records.
func getSession(ctx context.Context, s users.Store, hash []byte) (*users.SessionRecord, *users.UserRecord, error) {
	if len(hash) != sha256.Size {
		return nil, nil, fmt.Errorf("a token hash of %d bytes", len(hash))
	}
	var u users.UserRecord
	sr, err := s.GetSession(ctx, [sha256.Size]byte(hash), &u)
	if err != nil {
		return nil, nil, err
	}
	return &sr, &u, nil
}
