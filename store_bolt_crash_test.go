package users_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	mathrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/internal/soak"
)

var boltCrashRounds = flag.Int("crash.rounds", 0,
	"rounds of TestBoltStore_CrashSafety and TestBoltStore_CrashSafetyGrouped, each ending in a SIGKILL; 0 means 5, or 20 with -tags soak")

// boltCrashRoundsN is how many rounds each crash test runs. Five kills already
// land at random moments of every kind of write; the soak's twenty let damage
// accumulate longer on the one file.
func boltCrashRoundsN() int {
	switch {
	case *boltCrashRounds > 0:
		return *boltCrashRounds
	case soak.On:
		return 20
	}
	return 5
}

const boltCrashEnv = "USERS_BOLT_CRASH_CHILD"

// The child creates records that expire either long ago or far ahead, and purges
// at a time in between, so that what a purge deletes does not depend on when it runs.
var (
	boltCrashPast   = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	boltCrashPurge  = time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)
	boltCrashFuture = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// TestBoltStore_CrashSafety kills a process writing to a store with SIGKILL at
// random moments, and checks after each kill that the file opens, that Check
// (bbolt's own check and the store's indexes) finds nothing, and that the store
// holds exactly what the child was told it wrote: every acknowledged operation,
// nothing unacknowledged except possibly the one in flight.
//
// The child (this test binary, run again with USERS_BOLT_CRASH_CHILD set) prints
// "begin <op>" before each operation and "ack <op>" after it returned. All rounds
// use one file, so that damage would accumulate. -crash.rounds sets the number
// of rounds (default 5, or 20 with -tags soak).
func TestBoltStore_CrashSafety(t *testing.T) {
	if path := os.Getenv(boltCrashEnv); path != "" {
		boltCrashChild(path)
		return
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users.db")
	ctx := t.Context()
	model := newBoltCrashState()
	ever := newBoltCrashEver()
	start := time.Now()
	var acks, inFlight, committed int
	for round := range boltCrashRoundsN() {
		delay := time.Duration(20+mathrand.IntN(280)) * time.Millisecond
		ops, pending := boltCrashRound(t, path, delay)
		for _, op := range ops {
			model.apply(op)
		}
		acks += len(ops)
		if pending != nil {
			inFlight++
			ever.add(*pending)
		}
		for _, op := range ops {
			ever.add(op)
		}

		s, err := users.OpenBoltStore(path, &users.BoltOptions{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("round %d: reopening after the kill: %v", round, err)
		}
		if err := s.Check(ctx); err != nil {
			s.Close()
			t.Fatalf("round %d: Check after the kill: %v", round, err)
		}
		got, err := boltCrashSnapshot(ctx, s, ever)
		must(t, s.Close())
		must(t, err)

		with := model.clone()
		if pending != nil {
			with.apply(*pending)
		}
		switch {
		case reflect.DeepEqual(got, model):
		case pending != nil && reflect.DeepEqual(got, with):
			committed++
		default:
			msg := fmt.Sprintf("round %d: after %d acknowledged operations the store differs from them:\n%s",
				round, len(ops), model.diff(got))
			if pending != nil {
				msg += fmt.Sprintf("\nand, with the operation in flight (%+v) applied:\n%s", *pending, with.diff(got))
			}
			t.Fatal(msg)
		}
		model = got
	}
	t.Logf("%d rounds, %d acknowledged operations, %d kills during an operation (%d of those operations had committed), %d users at the end, in %v",
		boltCrashRoundsN(), acks, inFlight, committed, len(model.Users), time.Since(start).Round(time.Millisecond))
	if acks == 0 {
		t.Fatal("the child acknowledged no operation")
	}
}

// boltCrashRound runs the child on path, kills it delay after it is ready, and
// returns the operations it acknowledged and the one it began and did not
// acknowledge, if any.
func boltCrashRound(t *testing.T, path string, delay time.Duration) (acked []boltCrashOp, pending *boltCrashOp) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBoltStore_CrashSafety$")
	cmd.Env = append(os.Environ(), boltCrashEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())

	lines := make(chan string)
	done := make(chan error, 1)
	go func() {
		r := bufio.NewReader(out)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				// A line without its newline was cut by the kill: the
				// child writes each line with one write, so this does
				// not happen, and such a line is ignored if it does.
				if err == io.EOF {
					err = nil
				}
				close(lines)
				done <- err
				return
			}
			lines <- strings.TrimSuffix(line, "\n")
		}
	}()

	var timer <-chan time.Time
	hung := time.After(30 * time.Second)
	killed := false
	for lines != nil || !killed {
		select {
		case line, ok := <-lines:
			if !ok {
				lines = nil
				if !killed {
					_ = cmd.Wait()
					t.Fatalf("the child exited before it was killed: %s", stderr.String())
				}
				continue
			}
			verb, arg, _ := strings.Cut(line, " ")
			switch verb {
			case "ready":
				timer = time.After(delay)
			case "begin", "ack":
				var op boltCrashOp
				if err := json.Unmarshal([]byte(arg), &op); err != nil {
					t.Fatalf("child line %q: %v", line, err)
				}
				if verb == "begin" {
					if pending != nil {
						t.Fatalf("child began %q before acknowledging %+v", line, *pending)
					}
					pending = &op
				} else {
					if pending == nil || !reflect.DeepEqual(op, *pending) {
						t.Fatalf("child acknowledged %q, which it did not begin", line)
					}
					acked = append(acked, op)
					pending = nil
				}
			default:
				// The testing package's own output, if any.
			}
		case <-timer:
			must(t, cmd.Process.Kill()) // SIGKILL
			killed, timer = true, nil
		case <-hung:
			_ = cmd.Process.Kill()
			t.Fatalf("the child was not ready or did not exit within 30 s: %s", stderr.String())
		}
	}
	must(t, <-done)
	_ = cmd.Wait() // "signal: killed"
	return acked, pending
}

// boltCrashOp is one operation of the child, as printed.
type boltCrashOp struct {
	Op             string `json:"op"`
	User           string `json:"user,omitempty"`
	Email          string `json:"email,omitempty"`
	Username       string `json:"username,omitempty"`
	First          string `json:"first,omitempty"`
	Hash           string `json:"hash,omitempty"` // hex, of a session or token
	Purpose        string `json:"purpose,omitempty"`
	Replace        bool   `json:"replace,omitempty"`
	RevokeSessions bool   `json:"revoke_sessions,omitempty"`
	RevokeTokens   string `json:"revoke_tokens,omitempty"`
	Expired        bool   `json:"expired,omitempty"`
}

type boltCrashUser struct {
	Email, Username, First string
	Generation             int64
}

type boltCrashSession struct {
	User    string
	Expired bool
}

type boltCrashToken struct {
	User, Purpose string
	Expired       bool
}

// boltCrashState is what the store should hold.
type boltCrashState struct {
	Users    map[string]boltCrashUser
	Sessions map[string]boltCrashSession // by hex token hash
	Tokens   map[string]boltCrashToken   // by hex hash
	Attempts map[string]int              // failures by key
}

func newBoltCrashState() *boltCrashState {
	return &boltCrashState{
		Users:    map[string]boltCrashUser{},
		Sessions: map[string]boltCrashSession{},
		Tokens:   map[string]boltCrashToken{},
		Attempts: map[string]int{},
	}
}

func (st *boltCrashState) clone() *boltCrashState {
	return &boltCrashState{
		Users:    maps.Clone(st.Users),
		Sessions: maps.Clone(st.Sessions),
		Tokens:   maps.Clone(st.Tokens),
		Attempts: maps.Clone(st.Attempts),
	}
}

// apply changes st as op changes the store.
func (st *boltCrashState) apply(op boltCrashOp) {
	dropSessions := func(user string) {
		maps.DeleteFunc(st.Sessions, func(_ string, s boltCrashSession) bool { return s.User == user })
	}
	dropTokens := func(user, purpose string) {
		maps.DeleteFunc(st.Tokens, func(_ string, t boltCrashToken) bool {
			return t.User == user && (purpose == "" || t.Purpose == purpose)
		})
	}
	switch op.Op {
	case "create":
		st.Users[op.User] = boltCrashUser{Email: op.Email, Username: op.Username, First: op.First}
	case "update":
		u := st.Users[op.User]
		u.Email, u.Username, u.First = op.Email, op.Username, op.First
		if op.RevokeSessions {
			u.Generation++
			dropSessions(op.User)
		}
		if op.RevokeTokens != "" {
			dropTokens(op.User, op.RevokeTokens)
		}
		st.Users[op.User] = u
	case "delete":
		delete(st.Users, op.User)
		dropSessions(op.User)
		dropTokens(op.User, "")
		delete(st.Attempts, "user:"+op.User)
	case "session":
		st.Sessions[op.Hash] = boltCrashSession{User: op.User, Expired: op.Expired}
	case "logout":
		delete(st.Sessions, op.Hash)
	case "revoke":
		u := st.Users[op.User]
		u.Generation++
		st.Users[op.User] = u
		dropSessions(op.User)
	case "token":
		if op.Replace {
			dropTokens(op.User, op.Purpose)
		}
		st.Tokens[op.Hash] = boltCrashToken{User: op.User, Purpose: op.Purpose, Expired: op.Expired}
	case "consume":
		delete(st.Tokens, op.Hash)
	case "attempt":
		st.Attempts["user:"+op.User]++
	case "purge":
		maps.DeleteFunc(st.Sessions, func(_ string, s boltCrashSession) bool { return s.Expired })
		maps.DeleteFunc(st.Tokens, func(_ string, t boltCrashToken) bool { return t.Expired })
	default:
		panic("unknown op " + op.Op)
	}
}

// diff describes how got differs from st.
func (st *boltCrashState) diff(got *boltCrashState) string {
	var b strings.Builder
	diffMaps(&b, "user", st.Users, got.Users)
	diffMaps(&b, "session", st.Sessions, got.Sessions)
	diffMaps(&b, "token", st.Tokens, got.Tokens)
	diffMaps(&b, "login attempts", st.Attempts, got.Attempts)
	return b.String()
}

func diffMaps[V comparable](b *strings.Builder, what string, want, got map[string]V) {
	keys := slices.Sorted(maps.Keys(want))
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		w, wok := want[k]
		g, gok := got[k]
		switch {
		case !gok:
			fmt.Fprintf(b, "  %s %s is missing; want %+v\n", what, k, w)
		case !wok:
			fmt.Fprintf(b, "  %s %s should not exist; got %+v\n", what, k, g)
		case w != g:
			fmt.Fprintf(b, "  %s %s: got %+v, want %+v\n", what, k, g, w)
		}
	}
}

// boltCrashEver is every session, token and throttle key ever named, so that the
// snapshot can look for them whether or not they should exist.
type boltCrashEver struct {
	sessions map[string]bool
	tokens   map[string]string // hash → purpose
	attempts map[string]bool
}

func newBoltCrashEver() *boltCrashEver {
	return &boltCrashEver{sessions: map[string]bool{}, tokens: map[string]string{}, attempts: map[string]bool{}}
}

func (e *boltCrashEver) add(op boltCrashOp) {
	switch op.Op {
	case "session":
		e.sessions[op.Hash] = true
	case "token":
		e.tokens[op.Hash] = op.Purpose
	case "attempt":
		e.attempts["user:"+op.User] = true
	}
}

// boltCrashSnapshot reads what s holds: every user and its sessions, and the
// sessions, tokens and throttle entries named in ever (nil: none).
func boltCrashSnapshot(ctx context.Context, s users.Store, ever *boltCrashEver) (*boltCrashState, error) {
	st := newBoltCrashState()
	for after := ""; ; {
		page, err := s.ListUsers(ctx, users.ListQuery{After: after, Limit: 100})
		if err != nil {
			return nil, err
		}
		for _, u := range page {
			st.Users[u.ID] = boltCrashUser{Email: u.Email, Username: u.Username, First: u.FirstName, Generation: u.Generation}
			ss, err := s.ListSessions(ctx, u.ID)
			if err != nil {
				return nil, err
			}
			for _, sr := range ss {
				st.Sessions[hex.EncodeToString(sr.TokenHash)] = boltCrashSession{User: sr.UserID, Expired: sr.ExpiresAt.Before(boltCrashPurge)}
			}
		}
		if len(page) < 100 {
			break
		}
		after = page[len(page)-1].ID
	}
	if ever == nil {
		return st, nil
	}
	for h := range ever.sessions {
		hash, _ := hex.DecodeString(h)
		sr, _, err := getSession(ctx, s, hash)
		switch {
		case errors.Is(err, users.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			// Found by hash but not listed for its user: the diff shows it.
			if _, ok := st.Sessions[h]; !ok {
				st.Sessions[h] = boltCrashSession{User: "unlisted:" + sr.UserID}
			}
		}
	}
	for h, purpose := range ever.tokens {
		hash, _ := hex.DecodeString(h)
		t, err := s.GetToken(ctx, hash, users.Purpose(purpose))
		switch {
		case errors.Is(err, users.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			st.Tokens[h] = boltCrashToken{User: t.UserID, Purpose: string(t.Purpose), Expired: t.ExpiresAt.Before(boltCrashPurge)}
		}
	}
	for k := range ever.attempts {
		a, err := s.GetLoginAttempts(ctx, users.ThrottleKey(k))
		if err != nil {
			return nil, err
		}
		if a.Failures > 0 {
			st.Attempts[k] = a.Failures
		}
	}
	return st, nil
}

// boltCrashChild runs operations on the store at path until it is killed,
// printing each before and after it runs. It never returns.
func boltCrashChild(path string) {
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "crash child: "+format+"\n", args...)
		os.Exit(3)
	}
	s, err := users.OpenBoltStore(path, &users.BoltOptions{Timeout: 5 * time.Second})
	if err != nil {
		fail("%v", err)
	}
	ctx := context.Background()
	st, err := boltCrashSnapshot(ctx, s, nil) // tokens from earlier rounds stay unknown
	if err != nil {
		fail("%v", err)
	}
	rng := mathrand.New(mathrand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
	run := fmt.Sprintf("%08x", rng.Uint32()) // makes this run's IDs unique
	fmt.Println("ready")

	for i := 0; i < 1_000_000; i++ {
		op, do := boltCrashNext(s, st, rng, fmt.Sprintf("%s-%06d", run, i))
		if do == nil {
			continue
		}
		line, err := json.Marshal(op)
		if err != nil {
			fail("%v", err)
		}
		fmt.Printf("begin %s\n", line)
		if err := do(ctx); err != nil {
			fail("%s: %v", line, err)
		}
		fmt.Printf("ack %s\n", line)
		st.apply(op)
	}
	os.Exit(0)
}

// boltCrashNext picks the child's next operation on st, naming new things after
// name. A nil func means there was nothing to do this time.
func boltCrashNext(s users.Store, st *boltCrashState, rng *mathrand.Rand, name string) (boltCrashOp, func(context.Context) error) {
	purposes := users.Purposes()
	pick := func(keys []string) string { return keys[rng.IntN(len(keys))] }
	userIDs := slices.Sorted(maps.Keys(st.Users))
	hash := func() ([]byte, string) {
		h := make([]byte, 32)
		_, _ = rand.Read(h)
		return h, hex.EncodeToString(h)
	}
	expiry := func() (time.Time, bool) {
		if rng.IntN(5) == 0 {
			return boltCrashPast, true
		}
		return boltCrashFuture, false
	}
	r := rng.IntN(100)
	if len(userIDs) == 0 {
		r = 0
	}
	switch {
	case r < 30:
		op := boltCrashOp{Op: "create", User: name, Email: name + "@example.com", First: "F" + name}
		if rng.IntN(2) == 0 {
			op.Username = "u" + name
		}
		rec := &users.UserRecord{User: users.User{
			ID: op.User, Email: op.Email, Username: op.Username, FirstName: op.First,
			Role: users.RoleUser, Status: users.StatusActive, CreatedAt: boltT0, UpdatedAt: boltT0,
		}, PasswordHash: "$test$" + name}
		return op, func(ctx context.Context) error { return s.CreateUser(ctx, rec) }

	case r < 50:
		id := pick(userIDs)
		u := st.Users[id]
		op := boltCrashOp{Op: "update", User: id, Email: u.Email, Username: u.Username, First: "G" + name}
		if rng.IntN(3) == 0 {
			op.Email = "e" + name + "@example.com"
		}
		switch rng.IntN(5) {
		case 0:
			op.Username = "n" + name
		case 1:
			op.Username = ""
		}
		op.RevokeSessions = rng.IntN(10) == 0
		if rng.IntN(10) == 0 {
			op.RevokeTokens = string(purposes[rng.IntN(len(purposes))])
		}
		return op, func(ctx context.Context) error {
			_, err := s.UpdateUser(ctx, id, func(r *users.UserRecord) (users.Revoke, error) {
				r.Email, r.Username, r.FirstName = op.Email, op.Username, op.First
				rv := users.Revoke{Sessions: op.RevokeSessions}
				if op.RevokeTokens != "" {
					rv.Tokens = []users.Purpose{users.Purpose(op.RevokeTokens)}
				}
				return rv, nil
			})
			return err
		}

	case r < 58:
		id := pick(userIDs)
		return boltCrashOp{Op: "delete", User: id}, func(ctx context.Context) error { return s.DeleteUser(ctx, id) }

	case r < 78:
		id := pick(userIDs)
		h, hx := hash()
		exp, expired := expiry()
		sr := &users.SessionRecord{
			ID: "s" + name, TokenHash: h, UserID: id, UserGeneration: st.Users[id].Generation,
			CreatedAt: boltT0, ExpiresAt: exp, LastSeenAt: boltT0,
		}
		return boltCrashOp{Op: "session", User: id, Hash: hx, Expired: expired},
			func(ctx context.Context) error { return s.CreateSession(ctx, sr) }

	case r < 83:
		if len(st.Sessions) == 0 {
			return boltCrashOp{}, nil
		}
		hx := pick(slices.Sorted(maps.Keys(st.Sessions)))
		h, _ := hex.DecodeString(hx)
		return boltCrashOp{Op: "logout", Hash: hx}, func(ctx context.Context) error { return s.DeleteSession(ctx, h) }

	case r < 87:
		id := pick(userIDs)
		return boltCrashOp{Op: "revoke", User: id}, func(ctx context.Context) error { return s.DeleteUserSessions(ctx, id) }

	case r < 93:
		id := pick(userIDs)
		h, hx := hash()
		exp, expired := expiry()
		p := purposes[rng.IntN(len(purposes))]
		t := &users.TokenRecord{Hash: h, UserID: id, Purpose: p, Email: st.Users[id].Email, CreatedAt: boltT0, ExpiresAt: exp}
		op := boltCrashOp{Op: "token", User: id, Hash: hx, Purpose: string(p), Replace: rng.IntN(2) == 0, Expired: expired}
		return op, func(ctx context.Context) error { return s.CreateToken(ctx, t, op.Replace) }

	case r < 96:
		var live []string
		for hx, t := range st.Tokens {
			if !t.Expired {
				live = append(live, hx)
			}
		}
		if len(live) == 0 {
			return boltCrashOp{}, nil
		}
		slices.Sort(live)
		hx := pick(live)
		h, _ := hex.DecodeString(hx)
		p := users.Purpose(st.Tokens[hx].Purpose)
		return boltCrashOp{Op: "consume", Hash: hx}, func(ctx context.Context) error {
			_, err := s.ConsumeToken(ctx, h, p)
			return err
		}

	case r < 98:
		id := pick(userIDs)
		return boltCrashOp{Op: "attempt", User: id}, func(ctx context.Context) error {
			_, err := s.UpdateLoginAttempts(ctx, users.UserThrottleKey(id), func(a *users.LoginAttempts) error {
				a.Failures++
				a.WindowStart = boltT0
				a.ExpiresAt = boltCrashFuture
				return nil
			})
			return err
		}

	default:
		return boltCrashOp{Op: "purge"}, func(ctx context.Context) error {
			_, err := s.DeleteExpired(ctx, boltCrashPurge)
			return err
		}
	}
}
