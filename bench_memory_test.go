package users_test

// Benchmarks of the memory store at scale: each query at 10k and at 1M users in
// one run, so the ratio of the two is what counts, and the store's heap per user.
//
//	go test -run '^$' -bench 'MemoryScale|MemoryFootprint' -benchmem .
//
// USERS_BENCH_SIZES (say "10000,100000") replaces the sizes.

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// benchSizes are the store sizes of the scale benchmarks.
func benchSizes(b *testing.B) []int {
	env := os.Getenv("USERS_BENCH_SIZES")
	if env == "" {
		return []int{10_000, 1_000_000}
	}
	var out []int
	for _, f := range strings.Split(env, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 100 {
			b.Fatalf("USERS_BENCH_SIZES: %q is not a size of at least 100", f)
		}
		out = append(out, n)
	}
	return out
}

func sizeName(n int) string {
	switch {
	case n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

var (
	benchFirstNames = []string{"James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
		"David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
		"Carlos", "Karen", "Ali", "Nancy", "Wei", "Lisa", "Olga", "Betty", "Kenji", "Helen", "Ana", "Sandra"}
	benchSyllables = []string{"ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "be", "do", "fa", "gu", "ha", "jo", "pe", "ri"}
)

// Two rare last names. benchRareLastName is that of 20 users among the first
// 10,000, so a search for it finds 20 users at every size: the ratio of its
// times is what the index costs as the store grows. benchGrowingLastName is that
// of one user in 50,000: 1 at 10k, 20 at 1M, so its time also grows with the
// users it returns.
const (
	benchRareLastName    = "Zyzzyva"
	benchGrowingLastName = "Quokka"
)

// benchRow is user i of the scale benchmarks: every 100th an admin, every user
// in one of 1,000 accounts, a last name shared by about one user in 4,096 (or,
// for a few, a rare one), an imported bcrypt hash.
func benchRow(i int, hash string) users.NewUser {
	x := i * 7919 % 4096
	last := strings.ToUpper(benchSyllables[x%16][:1]) + benchSyllables[x%16][1:] + benchSyllables[x/16%16] + benchSyllables[x/256]
	switch {
	case i < 10_000 && i%500 == 7:
		last = benchRareLastName
	case i%50_000 == 11:
		last = benchGrowingLastName
	}
	role := users.RoleUser
	if i%100 == 0 {
		role = users.RoleAdmin
	}
	return users.NewUser{
		Email:        fmt.Sprintf("user%07d@example.com", i),
		FirstName:    benchFirstNames[i%len(benchFirstNames)],
		LastName:     last,
		Role:         role,
		AccountID:    fmt.Sprintf("acct-%03d", i%1000),
		PasswordHash: hash,
	}
}

// benchImport fills m with users 0 to n-1 through Import, a batch at a time.
func benchImport(b *testing.B, m *users.Manager, n int) {
	b.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(storetest.Password), bcrypt.MinCost)
	if err != nil {
		b.Fatal(err)
	}
	rows := make([]users.NewUser, 0, 10*users.MaxBatch)
	for start := 0; start < n; start += cap(rows) {
		rows = rows[:0]
		for i := start; i < min(n, start+cap(rows)); i++ {
			rows = append(rows, benchRow(i, string(h)))
		}
		res, err := m.Import(b.Context(), rows)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
}

type scaleEnv struct {
	m        *users.Manager
	n        int
	token    string
	emails   []string // 100 emails spread over the users, for GetManyByEmail
	fullName string   // a search for "first las" that matches some users
}

var (
	scaleMu   sync.Mutex
	scaleEnvs = map[int]*scaleEnv{}
)

// memoryScale returns a Manager over a memory store of n users, built once per
// run of the test binary.
func memoryScale(b *testing.B, n int) *scaleEnv {
	scaleMu.Lock()
	defer scaleMu.Unlock()
	if e := scaleEnvs[n]; e != nil {
		return e
	}
	m, err := users.New(users.NewMemoryStore(), &users.Options{BcryptCost: bcrypt.MinCost, InsecureLowBcryptCostForTests: true})
	if err != nil {
		b.Fatal(err)
	}
	benchImport(b, m, n)
	s, err := m.Login(b.Context(), "user0000042@example.com", storetest.Password)
	if err != nil {
		b.Fatal(err)
	}
	e := &scaleEnv{m: m, n: n, token: s.Token}
	for i := range 100 {
		e.emails = append(e.emails, benchRow(i*(n/100), "").Email)
	}
	r := benchRow(4321, "")
	e.fullName = strings.ToLower(r.FirstName + " " + r.LastName[:4])
	scaleEnvs[n] = e
	return e
}

// BenchmarkMemoryScale runs the queries of issue 10's scale table on the memory
// store at each size. Compare each query's ns/op across sizes.
func BenchmarkMemoryScale(b *testing.B) {
	ctx := b.Context()
	queries := []struct {
		name string
		run  func(e *scaleEnv) error
	}{
		{"Count", func(e *scaleEnv) error { _, err := e.m.Count(ctx, users.Filter{}); return err }},
		{"CountAdmin", func(e *scaleEnv) error { _, err := e.m.Count(ctx, users.Filter{Role: users.RoleAdmin}); return err }},
		{"CountAccountAdminActive", func(e *scaleEnv) error {
			_, err := e.m.Count(ctx, users.Filter{AccountID: "acct-000", Role: users.RoleAdmin, Status: users.StatusActive})
			return err
		}},
		{"FindFirstPage", func(e *scaleEnv) error { _, err := e.m.Find(ctx, users.Filter{}); return err }},
		{"FindAdmin", func(e *scaleEnv) error { _, err := e.m.Find(ctx, users.Filter{Role: users.RoleAdmin}); return err }},
		{"FindAccountActive", func(e *scaleEnv) error {
			_, err := e.m.Find(ctx, users.Filter{AccountID: "acct-007", Status: users.StatusActive})
			return err
		}},
		{"FindOffsetHalf", func(e *scaleEnv) error { _, err := e.m.Find(ctx, users.Filter{Offset: e.n / 2}); return err }},
		{"FindAdminOffsetHalf", func(e *scaleEnv) error {
			_, err := e.m.Find(ctx, users.Filter{Role: users.RoleAdmin, Offset: e.n / 200})
			return err
		}},
		{"SearchRare", func(e *scaleEnv) error {
			p, err := e.m.Find(ctx, users.Filter{Search: benchRareLastName})
			if err == nil && len(p.Users) != 20 {
				err = fmt.Errorf("search found %d users, want 20", len(p.Users))
			}
			return err
		}},
		{"CountSearchRare", func(e *scaleEnv) error { _, err := e.m.Count(ctx, users.Filter{Search: benchRareLastName}); return err }},
		{"SearchGrowing", func(e *scaleEnv) error {
			_, err := e.m.Find(ctx, users.Filter{Search: benchGrowingLastName})
			return err
		}},
		{"SearchFullName", func(e *scaleEnv) error {
			p, err := e.m.Find(ctx, users.Filter{Search: e.fullName})
			if err == nil && len(p.Users) == 0 {
				err = fmt.Errorf("search %q found nobody", e.fullName)
			}
			return err
		}},
		{"GetByEmail", func(e *scaleEnv) error { _, err := e.m.GetByEmail(ctx, "user0000077@example.com"); return err }},
		{"GetManyByEmail100", func(e *scaleEnv) error { _, err := e.m.GetManyByEmail(ctx, e.emails); return err }},
		{"ValidateToken", func(e *scaleEnv) error { _, err := e.m.ValidateToken(ctx, e.token); return err }},
	}
	for _, n := range benchSizes(b) {
		for _, q := range queries {
			b.Run(sizeName(n)+"/"+q.name, func(b *testing.B) {
				e := memoryScale(b, n)
				b.ResetTimer()
				for b.Loop() {
					if err := q.run(e); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkMemoryFootprint reports the heap a memory store takes per user, with
// all its indexes, after a GC: users made through Import with imported bcrypt
// hashes, every 100th an admin. Run it with -benchtime 1x.
func BenchmarkMemoryFootprint(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(sizeName(n), func(b *testing.B) {
			for b.Loop() {
				before := heapInUse()
				s := users.NewMemoryStore()
				m, err := users.New(s, &users.Options{BcryptCost: bcrypt.MinCost, InsecureLowBcryptCostForTests: true})
				if err != nil {
					b.Fatal(err)
				}
				benchImport(b, m, n)
				after := heapInUse()
				b.ReportMetric(float64(after-before)/float64(n), "B/user")
				runtime.KeepAlive(s)
			}
		})
	}
}

// heapInUse returns the bytes of live heap objects after a full GC.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
