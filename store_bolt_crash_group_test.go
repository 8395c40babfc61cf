package users_test

import (
	"bufio"
	"context"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/userkit/users"
)

const boltGroupCrashEnv = "USERS_BOLT_GROUP_CRASH_CHILD"

// TestBoltStore_CrashSafetyGrouped is the crash test for group commit: a child
// process writes from 16 goroutines at once (users, and sessions for them), so
// that writes share transactions, and prints "ack <kind> <id>" after each write
// returns; it is killed with SIGKILL at a random moment. After each kill the
// file must open and pass Check, and every acknowledged user and session must be
// there. Rounds: -crash.rounds (default 5, or 20 with -tags soak), all on one file.
func TestBoltStore_CrashSafetyGrouped(t *testing.T) {
	if path := os.Getenv(boltGroupCrashEnv); path != "" {
		boltGroupCrashChild(path)
		return
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users.db")
	ctx := context.Background()
	acked := map[string]string{} // "user <id>" or "session <hash>" -> its user ID
	for round := range boltCrashRoundsN() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBoltStore_CrashSafetyGrouped$")
		cmd.Env = append(os.Environ(), boltGroupCrashEnv+"="+path+"|"+fmt.Sprint(round))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		must(t, err)
		must(t, cmd.Start())
		r := bufio.NewReader(out)
		ready, err := r.ReadString('\n')
		if err != nil || ready != "ready\n" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("round %d: child did not start: %q %v\n%s", round, ready, err, stderr.String())
		}
		time.AfterFunc(time.Duration(20+mathrand.IntN(200))*time.Millisecond, func() {
			_ = cmd.Process.Signal(syscall.SIGKILL)
		})
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break // a line cut by the kill has no newline and is ignored
			}
			kind, rest, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
			key, userID, _ := strings.Cut(rest, " ")
			if kind != "ack" {
				t.Fatalf("round %d: child said %q", round, line)
			}
			acked[key] = userID
		}
		_ = cmd.Wait()

		s, err := users.OpenBoltStore(path, &users.BoltOptions{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("round %d: reopening after the kill: %v", round, err)
		}
		if err := s.Check(ctx); err != nil {
			s.Close()
			t.Fatalf("round %d: Check after the kill: %v", round, err)
		}
		for key, userID := range acked {
			kind, id, _ := strings.Cut(key, ":")
			switch kind {
			case "user":
				if _, err := s.GetUser(ctx, id); err != nil {
					t.Errorf("round %d: acknowledged user %s: %v", round, id, err)
				}
			case "session":
				if _, u, err := getSession(ctx, s, boltHash(id)); err != nil || u.ID != userID {
					t.Errorf("round %d: acknowledged session %s: %v", round, id, err)
				}
			}
		}
		must(t, s.Close())
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("%d rounds, %d acknowledged writes, all there after each kill", boltCrashRoundsN(), len(acked))
	if len(acked) == 0 {
		t.Fatal("the child acknowledged no write")
	}
}

func boltGroupCrashChild(arg string) {
	path, round, _ := strings.Cut(arg, "|")
	s, err := users.OpenBoltStore(path, &users.BoltOptions{Timeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	ctx := context.Background()
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", args...) // one write per line
	}
	say("ready")
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				n := fmt.Sprintf("r%s-g%02d-%06d", round, g, i)
				u := &users.UserRecord{User: users.User{
					ID: "01GRP" + n, Email: n + "@example.com", FirstName: "G", LastName: n,
					Role: users.RoleUser, Status: users.StatusActive, CreatedAt: boltT0, UpdatedAt: boltT0,
				}}
				if err := s.CreateUser(ctx, u); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				say("ack user:%s %s", u.ID, u.ID)
				sess := boltSession(u.ID, "s"+n, 0, boltT0.Add(time.Hour))
				sess.TokenHash = boltHash(n)
				if err := s.CreateSession(ctx, sess); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				say("ack session:%s %s", n, u.ID)
			}
		})
	}
	wg.Wait()
}
