package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/internal/cli/clitest"
)

// The tests build the command once and run it as a user would, asserting its
// output and exit codes.

// The exit codes the package comment documents, which the tests hold the
// binary to.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitInUse    = 3
	exitNotFound = 4
	exitCorrupt  = 5
	exitRefused  = 6
)

// usersBin is the binary built by TestMain.
var usersBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "users-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	usersBin = filepath.Join(dir, "users")
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "building cmd/users needs the go command on PATH:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	build := exec.Command(goTool, "build", "-o", usersBin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// adminPassword passes the library's password policy.
const adminPassword = "a long admin password"

// result is what one run of the command gave.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cmdEnv is the environment of one run: the test's, without USERS_*, plus env.
// Passwords set here are hashed at cost 10, the lowest the command accepts.
func cmdEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "USERS_") {
			out = append(out, kv)
		}
	}
	return append(append(out, "USERS_BCRYPT_COST=10"), env...)
}

// runUsers runs the command with stdin as its standard input (see clitest.Run).
func runUsers(tb testing.TB, env []string, stdin string, args ...string) result {
	tb.Helper()
	r := clitest.Run(tb, usersBin, cmdEnv(env...), stdin, args...)
	return result{code: r.Code, stdout: r.Stdout, stderr: r.Stderr}
}

// must runs the command and fails the test unless it exits with want.
func must(tb testing.TB, want int, env []string, stdin string, args ...string) result {
	tb.Helper()
	r := runUsers(tb, env, stdin, args...)
	if r.code != want {
		tb.Fatalf("users %s: want exit %d, got %v", strings.Join(args, " "), want, r)
	}
	return r
}

// fastDir is a directory for database files, removed when tb ends: on
// /dev/shm when there is one, so that thousands of synced writes cost little.
func fastDir(tb testing.TB) string {
	tb.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "users-cmd-"); err == nil {
			tb.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return tb.TempDir()
}

// templateDB is a file made by create-admin once, copied by newDB: the bcrypt
// work of create-admin is paid once per test run.
var templateDB = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "users-cmd-template-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "users.db")
	cmd := exec.Command(usersBin, "create-admin", "-db", db, "admin@example.com")
	cmd.Env = cmdEnv("USERS_PASSWORD=" + adminPassword)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("create-admin: %v: %s", err, out)
	}
	return os.ReadFile(db)
})

// newDB returns the path of a new file holding one user, the admin
// admin@example.com with adminPassword, made by create-admin.
func newDB(tb testing.TB) string {
	tb.Helper()
	b, err := templateDB()
	if err != nil {
		tb.Fatal(err)
	}
	db := filepath.Join(fastDir(tb), "users.db")
	if err := os.WriteFile(db, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return db
}

// openDB opens the file in the test process, with a Manager over it; both are
// closed when tb ends or when close is called, whichever comes first.
func openDB(tb testing.TB, path string) (m *users.Manager, s *users.BoltStore, close func()) {
	tb.Helper()
	s, err := users.OpenBoltStore(path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	m, err = users.New(s, &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true})
	if err != nil {
		tb.Fatal(err)
	}
	return m, s, func() {
		if err := s.Close(); err != nil {
			tb.Fatal(err)
		}
	}
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}
