package users_test

// Benchmarks of the Manager, each beside the baseline it is compared with, so one
// run gives the ratio the README reports:
//
//	go test -run '^$' -bench 'Login|BcryptCompare|ValidateToken|RawBoltGet' -benchtime 2s .
//
// BenchmarkValidateTokenParallel gives the scaling from one core to two, and
// bench_memory_test.go the memory store's queries at 10k and 1M users.

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// benchCost is the bcrypt cost of the login pair: the library's minimum real cost,
// so a run stays short; the ratio does not depend on it.
const benchCost = 10

func benchManager(b *testing.B, s users.Store) *users.Manager {
	b.Helper()
	m, err := users.New(s, &users.Options{BcryptCost: benchCost})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Create(b.Context(), users.NewUser{Email: "bench@example.com", Password: storetest.Password}); err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkLogin is a whole successful login: lookup, one bcrypt comparison at
// cost 10, the throttle check, LastLoginAt and a new session. Compare with
// BenchmarkBcryptCompare.
func BenchmarkLogin(b *testing.B) {
	for _, st := range benchStores(b) {
		b.Run(st.name, func(b *testing.B) {
			m := benchManager(b, st.open(b))
			ctx := b.Context()
			b.ResetTimer()
			for b.Loop() {
				if _, err := m.Login(ctx, "bench@example.com", storetest.Password); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBcryptCompare is the baseline of BenchmarkLogin: one raw bcrypt
// comparison at the same cost.
func BenchmarkBcryptCompare(b *testing.B) {
	h, err := bcrypt.GenerateFromPassword([]byte(storetest.Password), benchCost)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := bcrypt.CompareHashAndPassword(h, []byte(storetest.Password)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateToken is the hot path of every authenticated request. On the
// bbolt store compare it with BenchmarkRawBoltGet.
//
// floor, its baseline, is what every ValidateToken does whatever the store: the
// token's SHA-256, one reading of the clock, and one allocation of the Session
// and User the caller gets to own, as large as the library's stores make it.
// The rest of ValidateToken's time is the store's lookup and copies.
//
// wrapped/name is the same store embedded in a type the Manager does not
// know, as a third party's store or a wrapper that counts calls would be: it
// must validate as fast, since every Store gets the same path.
func BenchmarkValidateToken(b *testing.B) {
	b.Run("floor", benchFloor)
	for _, st := range benchStores(b) {
		b.Run(st.name, func(b *testing.B) { benchValidate(b, st) })
		wrapped := benchStore{"wrapped/" + st.name, func(b *testing.B) users.Store { return unknownStore{st.open(b)} }}
		b.Run(wrapped.name, func(b *testing.B) { benchValidate(b, wrapped) })
	}
	// With 64 MB of live heap, as a server has, the collector runs every 64 MB
	// allocated rather than every few MB (see BenchmarkValidateTokenParallel).
	ballast := make([]byte, 64<<20) // never touched: it costs no RSS
	runtime.GC()
	b.Run("floor/heap=64MB", benchFloor)
	for _, st := range benchStores(b) {
		b.Run(st.name+"/heap=64MB", func(b *testing.B) { benchValidate(b, st) })
	}
	runtime.KeepAlive(ballast)
}

// unknownStore is a Store of a type the Manager does not know.
type unknownStore struct{ users.Store }

// floorResult is what ValidateToken allocates on the library's stores, but for
// the few words of the stored record it keeps there: a Session, its User and
// room for two methods, 560 bytes and the same 576-byte size class.
type floorResult struct {
	users.Session
	user users.User
	_    [2]users.AuthMethod // the methods' room
}

// floorSink keeps the last floorResult of a run, so that every one is
// allocated on the heap, as ValidateToken's results are.
var floorSink *floorResult

// benchFloor hashes a token, reads the clock and allocates a result that holds
// both, each time round. Feeding the hash back into the token keeps the
// compiler from hoisting the hash out of the loop.
func benchFloor(b *testing.B) {
	var token [43]byte
	for b.Loop() {
		sum := sha256.Sum256(token[:])
		token[0] = sum[0]
		r := &floorResult{}
		r.LastSeenAt = time.Now()
		r.Session.User = &r.user
		floorSink = r
	}
}

func benchValidate(b *testing.B, st benchStore) {
	m := benchManager(b, st.open(b))
	ctx := b.Context()
	s, err := m.Login(ctx, "bench@example.com", storetest.Password)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu := processCPU()
	for b.Loop() {
		if _, err := m.ValidateToken(ctx, s.Token); err != nil {
			b.Fatal(err)
		}
	}
	// The work done, whatever else the machine runs (see
	// BenchmarkValidateTokenParallel).
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkValidateTokenParallel is BenchmarkValidateToken from every CPU at
// once, each goroutine with its own sessions, as requests of different users
// come. It runs with GOMAXPROCS 1 and 2 in one run: the ratio of their ns/op is
// how throughput scales from one core to two (the target is 1.8 or more).
// ceiling, the baseline, is what the machine itself gives: SHA-256 of a token,
// no memory shared and nothing allocated. rawbolt, bbolt's own, is RawBoltGet
// (two gets in one read transaction) from every goroutine: every bbolt read
// transaction takes a mutex shared by all of them twice.
//
// Each runs twice, with two sizes of heap. heap=small is the test binary's own,
// a few MB, so the garbage collector runs every few thousand calls, and with
// two cores a cycle costs more than the second core gives: a loop of a SHA-256
// and one 576-byte allocation is no faster on two cores than on one. heap=64MB
// adds 64 MB of live, pointer-free memory, as a server's heap holds, so that
// the collector runs every 64 MB allocated, as it would there.
//
// On a busy machine the second core may not be there to have: cpu-ns/op, the
// process's CPU time per call, then tells what two cores would give,
// 2 × cpu-ns/op(procs=1) ÷ cpu-ns/op(procs=2), since contention between the
// cores shows up as extra CPU time per call.
func BenchmarkValidateTokenParallel(b *testing.B) {
	for _, heap := range []struct {
		name  string
		bytes int
	}{{"small", 0}, {"64MB", 64 << 20}} {
		ballast := make([]byte, heap.bytes) // never touched: it costs no RSS
		runtime.GC()
		for _, procs := range []int{1, 2} {
			b.Run(fmt.Sprintf("ceiling/heap=%s/procs=%d", heap.name, procs), func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				var sink atomic.Int32
				b.RunParallel(func(pb *testing.PB) {
					var token [43]byte
					for pb.Next() {
						sum := sha256.Sum256(token[:])
						token[0] = sum[0]
					}
					sink.Add(int32(token[0]))
				})
			})
		}
		for _, procs := range []int{1, 2} {
			b.Run(fmt.Sprintf("rawbolt/heap=%s/procs=%d", heap.name, procs), func(b *testing.B) {
				get := rawBoltGet(b)
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						get()
					}
				})
			})
		}
		for _, st := range benchStores(b) {
			for _, procs := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/heap=%s/procs=%d", st.name, heap.name, procs), func(b *testing.B) {
					benchValidateParallel(b, st, procs)
				})
			}
		}
		runtime.KeepAlive(ballast)
	}
}

func benchValidateParallel(b *testing.B, st benchStore, procs int) {
	m := benchManager(b, st.open(b))
	ctx := b.Context()
	const perGoroutine = 4 // sessions each goroutine takes turns with
	var tokens []string
	for range procs * perGoroutine {
		s, err := m.Login(ctx, "bench@example.com", storetest.Password)
		if err != nil {
			b.Fatal(err)
		}
		tokens = append(tokens, s.Token)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	var next atomic.Int32
	b.ResetTimer()
	cpu := processCPU()
	defer func() {
		b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		g := int(next.Add(1) - 1)
		mine := tokens[g*perGoroutine%len(tokens):][:perGoroutine]
		for i := 0; pb.Next(); i++ {
			if _, err := m.ValidateToken(ctx, mine[i%perGoroutine]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRawBoltGet is the baseline of BenchmarkValidateToken/bolt: two reads
// (a session and its user, about the size of ours) in one bbolt read transaction.
func BenchmarkRawBoltGet(b *testing.B) {
	get := rawBoltGet(b)
	for b.Loop() {
		get()
	}
}

// rawBoltGet returns BenchmarkRawBoltGet's operation on a new file.
func rawBoltGet(b *testing.B) func() {
	// The options OpenBoltStore uses, so that the two compare like for like.
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bbolt.Options{NoStatistics: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	val := make([]byte, 300)
	err = db.Update(func(tx *bbolt.Tx) error {
		bk, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		if err := bk.Put([]byte("session-key-0123456789abcdef0123"), val); err != nil {
			return err
		}
		return bk.Put([]byte("user-key-01ARZ3NDEKTSV4RRFFQ69G5FAV"), val)
	})
	if err != nil {
		b.Fatal(err)
	}
	return func() {
		err := db.View(func(tx *bbolt.Tx) error {
			bk := tx.Bucket([]byte("b"))
			s := append([]byte(nil), bk.Get([]byte("session-key-0123456789abcdef0123"))...)
			u := append([]byte(nil), bk.Get([]byte("user-key-01ARZ3NDEKTSV4RRFFQ69G5FAV"))...)
			_, _ = s, u
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateTokenVsRawBolt runs BenchmarkValidateToken/bolt and
// BenchmarkRawBoltGet in turns of 10,000 calls, so that on a shared machine
// both see the same load, and reports each one's time per call and their ratio
// (the target is 2 at most). A turn is long enough for a dozen garbage
// collections, so each side pays, but for the edges of a turn, for its own
// garbage:
//
//	go test -run '^$' -bench ValidateTokenVsRawBolt -benchtime 20x .
func BenchmarkValidateTokenVsRawBolt(b *testing.B) {
	m := benchManager(b, benchStores(b)[1].open(b))
	ctx := b.Context()
	s, err := m.Login(ctx, "bench@example.com", storetest.Password)
	if err != nil {
		b.Fatal(err)
	}
	raw := rawBoltGet(b)
	const turn = 10_000
	var validate, baseline time.Duration
	for b.Loop() {
		t0 := time.Now()
		for range turn {
			if _, err := m.ValidateToken(ctx, s.Token); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for range turn {
			raw()
		}
		validate, baseline = validate+t1.Sub(t0), baseline+time.Since(t1)
	}
	calls := float64(b.N * turn)
	b.ReportMetric(float64(validate.Nanoseconds())/calls, "validate-ns/call")
	b.ReportMetric(float64(baseline.Nanoseconds())/calls, "rawbolt-ns/call")
	b.ReportMetric(float64(validate)/float64(baseline), "ratio")
}

type benchStore struct {
	name string
	open func(b *testing.B) users.Store // a new, empty store
}

// benchStores gives the stores to run a benchmark on. Each sub-benchmark opens
// its own, so that -count runs each on a fresh store.
func benchStores(b *testing.B) []benchStore {
	return []benchStore{
		{"memory", func(*testing.B) users.Store { return users.NewMemoryStore() }},
		{"bolt", func(b *testing.B) users.Store {
			bs, err := users.OpenBoltStore(filepath.Join(b.TempDir(), "users.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { bs.Close() })
			return bs
		}},
	}
}
