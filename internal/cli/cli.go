// Package cli is the users admin command (cmd/users, and
// postgres/cmd/users with PostgreSQL too): its commands run over any
// users.Store, with the store's own extras (a check, a bbolt file's backup and
// statistics) where the store has them. The package comment of cmd/users is
// its manual.
package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/userkit/users"
)

// Exit codes; see the package comment.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitInUse    = 3
	exitNotFound = 4
	exitCorrupt  = 5
	exitRefused  = 6
)

// command is one subcommand. setup registers the command's own flags on fs and
// returns the function that runs it with the arguments left after the flags.
type command struct {
	name    string
	args    string // the synopsis after "users name [flags]"
	summary string
	help    string // what -h prints below the synopsis, before the flags
	setup   func(fs *flag.FlagSet, x *cli) func(ctx context.Context, args []string) error
}

// commands lists the subcommands in the order help shows them. Add one by
// adding an entry here.
var commands = []*command{
	createAdminCmd,
	listCmd,
	findCmd,
	getCmd,
	setRoleCmd,
	suspendCmd,
	activateCmd,
	unlockCmd,
	removeCmd,
	resetPasswordCmd,
	sessionsCmd,
	importCmd,
	exportCmd,
	checkCmd,
	backupCmd,
	statsCmd,
}

// cli is one run of the command: its streams, environment and common flags.
type cli struct {
	stdin          *os.File
	stdout, stderr io.Writer
	stderrTTY      bool          // draw progress bars
	progressEvery  time.Duration // import's progress lines without a terminal
	stdoutTTY      bool          // refuse to print a binary file on it
	getenv         func(string) string

	ctx     context.Context // the run's, for opening a store
	openDSN OpenDSN         // nil: a build without PostgreSQL
	db      string
	dbSet   bool // -db was given
	dsn     string
	timeout time.Duration
}

// Main runs the command line of the process (os.Args) and exits with its exit
// code. openDSN opens the store a -dsn names (PostgreSQL); nil makes -dsn a
// usage error, in a build without a driver.
func Main(openDSN OpenDSN) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], &cli{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv,
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		openDSN:   openDSN,
	})
	stop()
	os.Exit(code)
}

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, x *cli) int {
	if len(args) == 0 {
		x.usage(x.stderr)
		return exitUsage
	}
	x.ctx = ctx
	name, args := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		x.usage(x.stdout)
		return exitOK
	case "help":
		if len(args) == 0 {
			x.usage(x.stdout)
			return exitOK
		}
		if c := lookup(args[0]); c != nil {
			fs := x.flags(c)
			c.setup(fs, x) // registers the command's own flags
			fs.SetOutput(x.stdout)
			fs.Usage()
			return exitOK
		}
		name = args[0]
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(x.stderr, "users: unknown command %q; run 'users help' for the list\n", name)
		return exitUsage
	}
	fs := x.flags(c)
	runCmd := c.setup(fs, x)
	args, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage // the flag package has printed the error and the usage
	}
	err = runCmd(ctx, args)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(x.stderr, "users %s: %v\n", c.name, err)
	return exitCode(err)
}

// parseInterspersed parses flags before, between and after the arguments
// ("users get ada -json"), and returns the arguments. Everything after "--" is
// an argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

func lookup(name string) *command {
	i := slices.IndexFunc(commands, func(c *command) bool { return c.name == name })
	if i < 0 {
		return nil
	}
	return commands[i]
}

// flags returns the flag set of c with the flags every command has.
func (x *cli) flags(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet("users "+c.name, flag.ContinueOnError)
	fs.SetOutput(x.stderr)
	x.db = "users.db"
	fs.Func("db", "the bbolt `file` (default users.db)", func(v string) error { x.db, x.dbSet = v, true; return nil })
	if x.openDSN != nil {
		fs.StringVar(&x.dsn, "dsn", "", "a PostgreSQL `connection string` instead of -db (default $USERS_DSN; give its password in $PGPASSWORD or ~/.pgpass, not here)")
	}
	fs.DurationVar(&x.timeout, "timeout", time.Second, "how long to wait for a file another process holds")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: %s\n\n%s\n\nFlags:\n", strings.TrimSpace("users "+c.name+" [flags] "+c.args), strings.TrimSpace(c.help))
		fs.PrintDefaults()
	}
	return fs
}

func (x *cli) usage(w io.Writer) {
	if x.openDSN != nil {
		fmt.Fprint(w, "Users administers the users of a github.com/userkit/users bbolt file or PostgreSQL database.\n\n")
	} else {
		fmt.Fprint(w, "Users administers the users of a github.com/userkit/users bbolt file.\n\n")
	}
	fmt.Fprint(w, "usage: users <command> [flags] [arguments]\n\nThe commands are:\n\n")
	for _, c := range commands {
		fmt.Fprintf(w, "\t%-15s %s\n", c.name, c.summary)
	}
	if x.openDSN != nil {
		fmt.Fprint(w, "\nEvery command takes -db file (default users.db) or -dsn (default $USERS_DSN),\nand -timeout (default 1s).\n")
	} else {
		fmt.Fprint(w, "\nEvery command takes -db file (default users.db) and -timeout (default 1s).\n")
	}
	fmt.Fprint(w, "Run 'users help <command>' or 'users <command> -h' for its flags.\n\n")
	fmt.Fprint(w, "Exit codes: 0 success, 1 failure, 2 usage, 3 file in use by another process,\n")
	fmt.Fprint(w, "4 not found, 5 check found the file inconsistent, 6 import refused some rows.\n")
}

// exitError carries an exit code other than the one exitCode derives.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is an error in the command line: exit code 2.
func usageError(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, args...)}
}

func exitCode(err error) int {
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, users.ErrFileInUse):
		return exitInUse
	case errors.Is(err, users.ErrNotFound):
		return exitNotFound
	case errors.Is(err, users.ErrCorrupt):
		return exitCorrupt
	}
	return exitFailure
}

// nargs checks the number of positional arguments.
func nargs(args []string, n int, what string) error {
	if len(args) != n {
		return usageError("want %s, got %d argument(s); see -h", what, len(args))
	}
	return nil
}

// openStore opens the store: the PostgreSQL database of -dsn, the bbolt file
// of -db, the database of $USERS_DSN, or else the file users.db. Unless create
// is set, a missing file is an error rather than a new empty file named after
// a typo.
func (x *cli) openStore(create bool) (*Backend, error) {
	if x.dsn != "" && x.dbSet {
		return nil, usageError("give -db (a bbolt file) or -dsn (PostgreSQL), not both")
	}
	dsn := x.dsn
	if dsn == "" && !x.dbSet {
		dsn = x.getenv("USERS_DSN")
	}
	if dsn != "" {
		if x.openDSN == nil {
			return nil, usageError("this build of users knows bbolt files only; for -dsn (PostgreSQL) install github.com/userkit/users/postgres/cmd/users")
		}
		return x.openDSN(x.ctx, dsn)
	}
	if !create {
		if _, err := os.Stat(x.db); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist (give the file with -db; 'users create-admin' creates one)", x.db)
		}
	}
	if x.timeout <= 0 {
		return nil, usageError("-timeout must be positive")
	}
	s, err := users.OpenBoltStore(x.db, &users.BoltOptions{Timeout: x.timeout})
	if errors.Is(err, users.ErrFileInUse) {
		return nil, &exitError{exitInUse, fmt.Errorf("%s is in use by another process (the application?): "+
			"gave up after -timeout %v. Stop that process and retry, or back up through the "+
			"application itself (BoltStore.Backup); a bbolt file can be open in one process at a time", x.db, x.timeout)}
	}
	if err != nil {
		return nil, err
	}
	return boltBackend(x.db, s), nil
}

// roles returns the roles of $USERS_ROLES, or the library's default roles.
func (x *cli) roles() []users.Role {
	v := x.getenv("USERS_ROLES")
	if v == "" {
		return []users.Role{users.RoleAdmin, users.RoleUser, users.RoleViewer}
	}
	var roles []users.Role
	for r := range strings.SplitSeq(v, ",") {
		roles = append(roles, users.Role(strings.TrimSpace(r)))
	}
	return roles
}

// firebase returns the Firebase project's hash parameters from
// $USERS_FIREBASE_SIGNER_KEY, $USERS_FIREBASE_SALT_SEPARATOR (base64, as the
// console shows them), $USERS_FIREBASE_ROUNDS and $USERS_FIREBASE_MEM_COST,
// or nil when no signer key is set.
func (x *cli) firebase() (*users.FirebaseScrypt, error) {
	key := x.getenv("USERS_FIREBASE_SIGNER_KEY")
	if key == "" {
		return nil, nil
	}
	fb := &users.FirebaseScrypt{}
	var err error
	if fb.SignerKey, err = base64.StdEncoding.DecodeString(key); err != nil {
		return nil, usageError("USERS_FIREBASE_SIGNER_KEY: want base64 (base64_signer_key): %v", err)
	}
	if fb.SaltSeparator, err = base64.StdEncoding.DecodeString(x.getenv("USERS_FIREBASE_SALT_SEPARATOR")); err != nil {
		return nil, usageError("USERS_FIREBASE_SALT_SEPARATOR: want base64 (base64_salt_separator): %v", err)
	}
	for _, v := range []struct {
		name string
		to   *int
	}{{"USERS_FIREBASE_ROUNDS", &fb.Rounds}, {"USERS_FIREBASE_MEM_COST", &fb.MemCost}} {
		n, err := strconv.Atoi(x.getenv(v.name))
		if err != nil {
			return nil, usageError("%s=%q: want the number of the project's hash parameters", v.name, x.getenv(v.name))
		}
		*v.to = n
	}
	return fb, nil
}

// resetTTL is how long the reset tokens of reset-password are valid.
const resetTTL = time.Hour

// openManager opens the store and a Manager over it, configured from the
// environment (USERS_BCRYPT_COST, USERS_ROLES). Close the store when done.
func (x *cli) openManager(create bool) (*Backend, *users.Manager, error) {
	o := users.Options{PasswordResetTTL: resetTTL}
	if v := x.getenv("USERS_BCRYPT_COST"); v != "" {
		cost, err := strconv.Atoi(v)
		if err != nil || cost < 10 || cost > 31 {
			return nil, nil, usageError("USERS_BCRYPT_COST=%q: want a number from 10 to 31", v)
		}
		o.BcryptCost = cost
	}
	o.Roles = x.roles()
	fb, err := x.firebase()
	if err != nil {
		return nil, nil, err
	}
	o.FirebaseScrypt = fb
	s, err := x.openStore(create)
	if err != nil {
		return nil, nil, err
	}
	m, err := users.New(s.Store, &o)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, m, nil
}
