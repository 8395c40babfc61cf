// Command failover tests the PostgreSQL store through the loss of its primary.
// Run it under .ci/postgres-replica.sh, which starts a primary and a
// synchronous standby and tells it how to kill the one and promote the other:
//
//	bash .ci/postgres-replica.sh go run ./internal/failover
//
// It starts two worker processes (this program again, with -worker), each a
// Manager over a Store with a session cache on a pool whose connection string
// names both servers with target_session_attrs=read-write. Each worker loops
// over new users: create, log in, validate a session of an earlier user,
// redeem an email-verification token, guess the password wrong twice, and log
// out every third user, writing a line of JSON for every acknowledged
// operation. Meanwhile the coordinator SIGKILLs the primary, promotes the
// standby, and lets the workers go on. The workers do nothing but retry: the
// Store reconnects by itself.
//
// Then it checks, against the new primary, that every acknowledged write is
// there (0 lost), that no user was created twice, that sessions issued before
// the kill still validate and logged-out ones do not, that the lockout counted
// every acknowledged wrong guess, and that each operation whose outcome was
// unknown at the kill was retried to a known outcome; and it reports the time
// from the kill to the first acknowledged write after it. It exits with status
// 1 if a check fails.
//
// How each operation's retry behaves after an error whose outcome is unknown
// (the connection broke before the commit was acknowledged):
//
//   - Create is at most once: the email is unique, so a retry either creates
//     the user or fails with ErrDuplicateEmail, which means the first try
//     committed (the worker then reads the user by email).
//   - Login is not idempotent but safe to retry: a retry makes another
//     session; one the first try made unseen is never handed out and expires.
//   - ValidateToken is a read: retrying is always safe.
//   - VerifyEmail consumes its token once: a retry after a committed first
//     try fails with ErrInvalidToken, and the user's EmailVerified says it
//     was done; otherwise a new token is requested.
//   - A wrong-password guess counts a failure each time it reaches the
//     store: a retried guess may count twice, never zero times, so the
//     lockout errs on the side of locking.
//   - Logout is idempotent: a retry after a committed first try gives
//     ErrInvalidToken, which means the session is gone.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
)

const password = "correct horse battery staple"

// event is one line a worker writes: an acknowledged operation, or one whose
// first try failed with an unknown outcome (Unknown) before a retry settled it.
type event struct {
	Worker  int    `json:"worker"`
	Op      string `json:"op"` // create, login, verify, guess, logout, validate
	Email   string `json:"email,omitempty"`
	UserID  string `json:"user_id,omitempty"`
	Token   string `json:"token,omitempty"`
	Start   int64  `json:"start"` // first try began at, Unix nanoseconds
	At      int64  `json:"at"`    // acknowledged at, Unix nanoseconds
	Unknown int    `json:"unknown,omitempty"`
	Settled string `json:"settled,omitempty"` // how a retry found the first try's outcome
	Invalid bool   `json:"invalid,omitempty"` // validate: a session that should validate did not
}

func main() {
	worker := flag.Int("worker", 0, "run as worker N (internal)")
	before := flag.Duration("before", 3*time.Second, "how long the workers run before the primary is killed")
	after := flag.Duration("after", 5*time.Second, "how long the workers run after the standby is promoted")
	promoteAfter := flag.Duration("promote-after", 500*time.Millisecond, "how long after the kill the standby is promoted, as a failure detector would take")
	flag.Parse()
	dsn := os.Getenv("USERS_POSTGRES_DSN")
	if dsn == "" {
		fmt.Fprintln(os.Stderr, "failover: USERS_POSTGRES_DSN is not set: run under .ci/postgres-replica.sh")
		os.Exit(2)
	}
	if *worker > 0 {
		if err := runWorker(*worker, dsn); err != nil {
			fmt.Fprintln(os.Stderr, "failover: worker:", err)
			os.Exit(1)
		}
		return
	}
	ok, err := coordinate(dsn, *before, *promoteAfter, *after)
	if err != nil {
		fmt.Fprintln(os.Stderr, "failover:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

// open returns a Manager over a Store with a session cache on a pool for dsn.
func open(ctx context.Context, dsn string) (*users.Manager, *postgres.Store, *pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	store, err := postgres.NewWithOptions(ctx, pool, &postgres.Options{SessionCache: true})
	if err != nil {
		pool.Close()
		return nil, nil, nil, err
	}
	m, err := users.New(store, &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true})
	if err != nil {
		store.Close()
		pool.Close()
		return nil, nil, nil, err
	}
	return m, store, pool, nil
}

// ---- Worker ----

// contractErr reports whether err is an answer of the Manager's contract
// rather than a failure to reach the store.
func contractErr(err error) bool {
	for _, e := range []error{users.ErrDuplicateEmail, users.ErrInvalidToken, users.ErrInvalidCredentials,
		users.ErrAccountLocked, users.ErrNotFound, users.ErrInvalidInput, users.ErrAccountDisabled} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// worker runs rounds of operations until stdin closes, writing events to out.
type worker struct {
	id  int
	m   *users.Manager
	out *json.Encoder
	mu  sync.Mutex
}

func (w *worker) emit(start time.Time, e event) {
	e.Worker, e.Start, e.At = w.id, start.UnixNano(), time.Now().UnixNano()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.out.Encode(e); err != nil {
		fmt.Fprintln(os.Stderr, "failover: write event:", err)
		os.Exit(1)
	}
}

// try calls fn until it returns nil or a contract error, and returns that and
// how many tries failed otherwise (outcomes unknown). It gives up after a
// minute.
func try(ctx context.Context, fn func() error) (unknown int, err error) {
	deadline := time.Now().Add(time.Minute)
	for {
		err = fn()
		if err == nil || contractErr(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return unknown, err
		}
		unknown++
		time.Sleep(20 * time.Millisecond)
	}
}

func runWorker(id int, dsn string) error {
	ctx := context.Background()
	// The coordinator closes stdin to stop the worker, which finishes its
	// round first: an operation cut off in flight would have an outcome
	// that no failover made unknown.
	var stop atomic.Bool
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		stop.Store(true)
	}()
	m, store, pool, err := open(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	defer store.Close()
	stdout := bufio.NewWriter(os.Stdout)
	w := &worker{id: id, m: m, out: json.NewEncoder(lineFlusher{stdout})}

	var live []string // tokens of sessions not logged out
	for i := 0; !stop.Load(); i++ {
		if err := w.round(ctx, i, &live); err != nil {
			return err
		}
	}
	return nil
}

// lineFlusher flushes its writer after every write: each event is a line
// written once acknowledged.
type lineFlusher struct{ w *bufio.Writer }

func (l lineFlusher) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if err == nil {
		err = l.w.Flush()
	}
	return n, err
}

// round runs one new user's operations.
func (w *worker) round(ctx context.Context, i int, live *[]string) error {
	email := fmt.Sprintf("w%d-%d@example.com", w.id, i)
	start := time.Now()
	var u *users.User
	unknown, err := try(ctx, func() (err error) {
		u, err = w.m.Create(ctx, users.NewUser{Email: email, Password: password})
		return err
	})
	settled := ""
	if errors.Is(err, users.ErrDuplicateEmail) && unknown > 0 {
		// The first try committed: the user is there, created once.
		settled = "duplicate email on retry: created by the first try"
		_, err = try(ctx, func() (err error) { u, err = w.m.GetByEmail(ctx, email); return err })
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", email, err)
	}
	w.emit(start, event{Op: "create", Email: email, UserID: u.ID, Unknown: unknown, Settled: settled})

	var s *users.Session
	start = time.Now()
	unknown, err = try(ctx, func() (err error) { s, err = w.m.Login(ctx, email, password); return err })
	if err != nil {
		return fmt.Errorf("login %s: %w", email, err)
	}
	w.emit(start, event{Op: "login", UserID: u.ID, Token: s.Token, Unknown: unknown})
	*live = append(*live, s.Token)

	if n := len(*live); n > 1 {
		tok := (*live)[i%(n-1)]
		start := time.Now()
		_, err := try(ctx, func() error { _, err := w.m.ValidateToken(ctx, tok); return err })
		if err != nil && !errors.Is(err, users.ErrInvalidToken) {
			return fmt.Errorf("validate: %w", err)
		}
		w.emit(start, event{Op: "validate", Token: tok, Invalid: err != nil})
	}

	start = time.Now()
	unknown, settled, err = w.verify(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("verify %s: %w", email, err)
	}
	w.emit(start, event{Op: "verify", UserID: u.ID, Unknown: unknown, Settled: settled})

	for range 2 {
		start := time.Now()
		unknown, err := try(ctx, func() error {
			_, err := w.m.Login(ctx, email, "wrong "+password)
			return err
		})
		if !errors.Is(err, users.ErrInvalidCredentials) {
			return fmt.Errorf("wrong guess for %s: %v", email, err)
		}
		w.emit(start, event{Op: "guess", UserID: u.ID, Unknown: unknown})
	}

	if i%3 == 0 {
		start := time.Now()
		unknown, err := try(ctx, func() error { return w.m.Logout(ctx, s.Token) })
		settled := ""
		if errors.Is(err, users.ErrInvalidToken) && unknown > 0 {
			settled, err = "invalid token on retry: logged out by the first try", nil
		}
		if err != nil {
			return fmt.Errorf("logout %s: %w", email, err)
		}
		w.emit(start, event{Op: "logout", UserID: u.ID, Token: s.Token, Unknown: unknown, Settled: settled})
		*live = slices.DeleteFunc(*live, func(t string) bool { return t == s.Token })
	}
	return nil
}

// verify requests an email-verification token and redeems it, settling an
// unknown outcome by reading the user.
func (w *worker) verify(ctx context.Context, id string) (unknown int, settled string, err error) {
	for attempt := 0; attempt < 10; attempt++ {
		var d *users.Delivery
		n, err := try(ctx, func() (err error) { d, err = w.m.RequestEmailVerification(ctx, id); return err })
		unknown += n
		if err != nil {
			return unknown, "", err
		}
		n, err = try(ctx, func() error { _, err := w.m.VerifyEmail(ctx, d.Token); return err })
		unknown += n
		if err == nil {
			return unknown, settled, nil
		}
		if !errors.Is(err, users.ErrInvalidToken) {
			return unknown, "", err
		}
		var u *users.User
		if _, err := try(ctx, func() (err error) { u, err = w.m.Get(ctx, id); return err }); err != nil {
			return unknown, "", err
		}
		if u.EmailVerified {
			return unknown, "invalid token on retry: redeemed by the first try", nil
		}
		settled = "token lost with its unknown write: requested again"
	}
	return unknown, "", errors.New("could not verify in 10 tries")
}

// ---- Coordinator ----

type proc struct {
	cmd    *exec.Cmd
	stdin  interface{ Close() error }
	events []event
	done   chan error
}

func startWorker(id int) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-worker", fmt.Sprint(id))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				p.done <- fmt.Errorf("worker %d: bad event %q: %v", id, sc.Text(), err)
				return
			}
			p.events = append(p.events, e)
		}
		p.done <- cmd.Wait()
	}()
	return p, nil
}

func run(script string) error {
	cmd := exec.Command("bash", script)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func coordinate(dsn string, before, promoteAfter, after time.Duration) (bool, error) {
	kill, promote := os.Getenv("USERS_PG_KILL_PRIMARY"), os.Getenv("USERS_PG_PROMOTE")
	if kill == "" || promote == "" {
		return false, errors.New("USERS_PG_KILL_PRIMARY and USERS_PG_PROMOTE are not set: run under .ci/postgres-replica.sh")
	}
	ctx := context.Background()
	// Migrate once before the workers start.
	_, store, pool, err := open(ctx, dsn)
	if err != nil {
		return false, err
	}
	store.Close()
	pool.Close()

	var procs []*proc
	for id := 1; id <= 2; id++ {
		p, err := startWorker(id)
		if err != nil {
			return false, err
		}
		procs = append(procs, p)
	}
	time.Sleep(before)
	if err := run(kill); err != nil {
		return false, fmt.Errorf("kill the primary: %w", err)
	}
	// Once the script returns the primary is gone: an operation begun after
	// this can only be acknowledged by the new primary.
	killedAt := time.Now()
	fmt.Printf("primary killed (SIGKILL)\n")
	time.Sleep(promoteAfter)
	if err := run(promote); err != nil {
		return false, fmt.Errorf("promote the standby: %w", err)
	}
	promotedAt := time.Now()
	fmt.Printf("standby promoted %v after the kill\n", promotedAt.Sub(killedAt).Round(time.Millisecond))
	time.Sleep(after)
	for _, p := range procs {
		p.stdin.Close()
	}
	var events []event
	for i, p := range procs {
		if err := <-p.done; err != nil {
			return false, fmt.Errorf("worker %d: %w", i+1, err)
		}
		events = append(events, p.events...)
	}
	return check(ctx, dsn, events, killedAt, promotedAt)
}

// check verifies the acknowledged events against the new primary and prints
// the report.
func check(ctx context.Context, dsn string, events []event, killedAt, promotedAt time.Time) (bool, error) {
	m, store, pool, err := open(ctx, dsn)
	if err != nil {
		return false, err
	}
	defer pool.Close()
	defer store.Close()
	ok := true
	fail := func(format string, args ...any) {
		ok = false
		fmt.Printf("FAIL: "+format+"\n", args...)
	}

	sort.Slice(events, func(i, j int) bool { return events[i].At < events[j].At })
	var (
		created                  = map[string]string{} // email → ID
		verified                 = map[string]bool{}
		guesses, guessUnknown    = map[string]int{}, map[string]int{}
		loggedOut                = map[string]bool{}
		logins                   []event
		counts                   = map[string]int{}
		unknowns                 = map[string]int{}
		settled                  = map[string]int{}
		firstWrite               time.Time
		beforeKill, invalidValid int
	)
	for _, e := range events {
		counts[e.Op]++
		unknowns[e.Op] += e.Unknown
		if e.Settled != "" {
			settled[e.Op+": "+e.Settled]++
		}
		at := time.Unix(0, e.At)
		if e.Op != "validate" && time.Unix(0, e.Start).After(killedAt) && (firstWrite.IsZero() || at.Before(firstWrite)) {
			firstWrite = at
		}
		if at.Before(killedAt) {
			beforeKill++
		}
		switch e.Op {
		case "create":
			if id, dup := created[e.Email]; dup {
				fail("%s acknowledged as created twice (%s and %s)", e.Email, id, e.UserID)
			}
			created[e.Email] = e.UserID
		case "login":
			logins = append(logins, e)
		case "verify":
			verified[e.UserID] = true
		case "guess":
			guesses[e.UserID]++
			guessUnknown[e.UserID] += e.Unknown
		case "logout":
			loggedOut[e.Token] = true
		case "validate":
			if e.Invalid && !loggedOut[e.Token] {
				invalidValid++
			}
		}
	}
	if invalidValid > 0 {
		fail("%d validations of live sessions were refused during the run", invalidValid)
	}
	if beforeKill == 0 || firstWrite.IsZero() {
		fail("the workers must acknowledge writes both before the kill and after the promotion (before: %d, first after: %v)", beforeKill, firstWrite)
	}

	// Every acknowledged user is there, once, with the ID acknowledged.
	for email, id := range created {
		u, err := m.GetByEmail(ctx, email)
		switch {
		case err != nil:
			fail("acknowledged user %s lost: %v", email, err)
		case u.ID != id:
			fail("user %s is %s on the new primary; %s was acknowledged", email, u.ID, id)
		case verified[id] && !u.EmailVerified:
			fail("acknowledged email verification of %s lost", email)
		}
	}
	total, err := m.Count(ctx, users.Filter{})
	if err != nil {
		return false, err
	}
	if total != len(created) {
		fail("the new primary has %d users; %d distinct emails were created (a user created twice, or one never acknowledged)", total, len(created))
	}
	// Sessions issued before validate, unless logged out; logged-out ones do not.
	stillValid, refused := 0, 0
	for _, e := range logins {
		_, err := m.ValidateToken(ctx, e.Token)
		switch {
		case loggedOut[e.Token] && !errors.Is(err, users.ErrInvalidToken):
			fail("logged-out session of %s validates after the failover: %v", e.UserID, err)
		case !loggedOut[e.Token] && err != nil:
			fail("session of %s issued at %v does not validate after the failover: %v", e.UserID, time.Unix(0, e.At).Sub(killedAt), err)
		case loggedOut[e.Token]:
			refused++
		default:
			stillValid++
		}
	}
	// The lockout counted every acknowledged wrong guess; a guess whose first
	// try's outcome was unknown may have counted twice.
	for id, n := range guesses {
		st, err := m.LockState(ctx, id)
		if err != nil {
			return false, err
		}
		if st.ConsecutiveFailures < n || st.ConsecutiveFailures > n+guessUnknown[id] {
			fail("user %s: lockout counts %d failures; %d were acknowledged (%d with unknown first tries)",
				id, st.ConsecutiveFailures, n, guessUnknown[id])
		}
	}

	fmt.Printf("acknowledged operations: %v\n", fmtCounts(counts))
	fmt.Printf("tries whose outcome was unknown, retried: %v\n", fmtCounts(unknowns))
	for k, n := range settled {
		fmt.Printf("  settled on retry: %s (%d)\n", k, n)
	}
	fmt.Printf("users: %d acknowledged, %d on the new primary; sessions: %d still valid, %d logged out and refused\n",
		len(created), total, stillValid, refused)
	if !firstWrite.IsZero() {
		fmt.Printf("kill to the first write acknowledged by the new primary: %v (promotion returned %v after the kill, the write %v after that)\n",
			firstWrite.Sub(killedAt).Round(time.Millisecond), promotedAt.Sub(killedAt).Round(time.Millisecond),
			firstWrite.Sub(promotedAt).Round(time.Millisecond))
	}
	if ok {
		fmt.Println("PASS: 0 acknowledged writes lost")
	}
	return ok, nil
}

func fmtCounts(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
