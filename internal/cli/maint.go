package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/userkit/users"
)

// withStore opens the store (a file must exist), runs fn and closes the store.
func (x *cli) withStore(fn func(s *Backend) error) (err error) {
	s, err := x.openStore(false)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(); err == nil {
			err = cerr
		}
	}()
	return fn(s)
}

// createOutput creates the file name for writing, refusing to overwrite one,
// or returns standard output for "-". The file is written under a temporary
// name and gets its name only when commit is called, so a failed run leaves
// no half-written file.
func (x *cli) createOutput(name string) (w io.Writer, commit func() error, abort func(), err error) {
	if name == "-" {
		return x.stdout, func() error { return nil }, func() {}, nil
	}
	if _, err := os.Lstat(name); err == nil {
		return nil, nil, nil, fmt.Errorf("%s exists; remove it or choose another name", name)
	}
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return nil, nil, nil, err
	}
	abort = func() { f.Close(); os.Remove(f.Name()) }
	commit = func() error {
		if err := f.Sync(); err != nil {
			abort()
			return err
		}
		if err := f.Close(); err != nil {
			os.Remove(f.Name())
			return err
		}
		if _, err := os.Lstat(name); err == nil {
			os.Remove(f.Name())
			return fmt.Errorf("%s appeared while writing it; the output is lost", name)
		}
		return os.Rename(f.Name(), name)
	}
	return f, commit, abort, nil // CreateTemp makes it 0600: it may hold password hashes
}

var exportCmd = &command{
	name: "export", args: "", summary: "write every user as JSON lines",
	help: `Export writes every user, in creation order, as one JSON object per line
(the fields of users.User, snake_case) to standard output or to -o FILE, which
must not exist and is created readable by its owner only. Password hashes are
left out unless -with-hashes is given.

Export reads a page of users at a time, so the size of the file does not
matter; users created or removed while it runs may or may not be in it.
import reads what it writes.`,
	setup: func(fs *flag.FlagSet, x *cli) func(context.Context, []string) error {
		out := fs.String("o", "-", "write to `file` instead of standard output")
		withHashes := fs.Bool("with-hashes", false, "include the password hashes (handle the output like the database)")
		return func(ctx context.Context, args []string) error {
			if err := nargs(args, 0, "no arguments"); err != nil {
				return err
			}
			return x.withStore(func(s *Backend) error {
				w, commit, abort, err := x.createOutput(*out)
				if err != nil {
					return err
				}
				n, err := exportUsers(ctx, s.Store, w, *withHashes)
				if err != nil {
					abort()
					return err
				}
				if err := commit(); err != nil {
					return err
				}
				fmt.Fprintf(x.stderr, "exported %d users\n", n)
				return nil
			})
		}
	},
}

// exportRow is one line of export.
type exportRow struct {
	*users.User
	PasswordHash string `json:"password_hash,omitempty"`
}

// exportUsers writes the users page by page: at most exportPage records are in
// memory at once.
func exportUsers(ctx context.Context, s users.Store, w io.Writer, withHashes bool) (int, error) {
	const exportPage = 1000
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	n, after := 0, ""
	for {
		rs, err := s.ListUsers(ctx, users.ListQuery{After: after, Limit: exportPage})
		if err != nil {
			return n, err
		}
		for _, r := range rs {
			row := exportRow{User: &r.User}
			if withHashes {
				row.PasswordHash = r.PasswordHash
			}
			if err := enc.Encode(row); err != nil {
				return n, err
			}
			n++
		}
		if len(rs) < exportPage {
			return n, bw.Flush()
		}
		after = rs[len(rs)-1].ID
	}
}

var checkCmd = &command{
	name: "check", args: "", summary: "verify the file's records and indexes",
	help: `Check runs BoltStore.Check: bbolt's own page check, then every record and
index of the users, sessions and tokens against each other. It prints "ok" and
exits 0, or lists the first 100 problems and exits 5. On PostgreSQL, whose
constraints keep the keys and the references, it compares the user counts the
store keeps with the users.`,
	setup: func(fs *flag.FlagSet, x *cli) func(context.Context, []string) error {
		return func(ctx context.Context, args []string) error {
			if err := nargs(args, 0, "no arguments"); err != nil {
				return err
			}
			return x.withStore(func(s *Backend) error {
				if s.Check == nil {
					return usageError("check verifies a bbolt file; %s has no check here", s.Name)
				}
				if err := s.Check(ctx); err != nil {
					return err
				}
				st, err := s.Stats(ctx, time.Now())
				if err != nil {
					return err
				}
				n, err := s.Store.CountUsers(ctx, users.Match{})
				if err != nil {
					return err
				}
				fmt.Fprintf(x.stdout, "ok: %s is consistent (%d users, %d sessions, %d tokens)\n", s.Name, n, st.Sessions, st.Tokens)
				return nil
			})
		}
	},
}

var backupCmd = &command{
	name: "backup", args: "-o FILE", summary: "copy the file to a consistent snapshot",
	help: `Backup writes a consistent copy of the database (BoltStore.Backup) to FILE,
which must not exist; "-o -" writes it to standard output. The copy is a
bbolt file: check it with "users check -db FILE", restore it by putting it in
place of the database while the application is stopped.

A running application holds its file: backup then fails with exit code 3. Back
up a live application from inside it instead, for example with an admin-only
HTTP handler that calls BoltStore.Backup (see the README).`,
	setup: func(fs *flag.FlagSet, x *cli) func(context.Context, []string) error {
		out := fs.String("o", "", "write the snapshot to `file` (- for standard output)")
		return func(ctx context.Context, args []string) error {
			if err := nargs(args, 0, "no arguments (the output is -o FILE)"); err != nil {
				return err
			}
			switch {
			case *out == "":
				return usageError("want -o FILE")
			case *out == "-" && x.stdoutTTY:
				return usageError("-o - would write a binary file to the terminal; redirect standard output or give -o FILE")
			}
			return x.withStore(func(s *Backend) error {
				if s.Backup == nil {
					return usageError("backup copies a bbolt file; back up %s with the database's own tools (PostgreSQL: pg_dump)", s.Name)
				}
				w, commit, abort, err := x.createOutput(*out)
				if err != nil {
					return err
				}
				n, err := s.Backup(ctx, w)
				if err != nil {
					abort()
					return err
				}
				if err := commit(); err != nil {
					return err
				}
				fmt.Fprintf(x.stderr, "backup of %s: %d bytes written to %s\n", s.Name, n, *out)
				return nil
			})
		}
	},
}

// statsReport is what stats prints.
type statsReport struct {
	File            string         `json:"file"`
	FileSize        int64          `json:"file_size"`
	Users           int            `json:"users"`
	ByRole          map[string]int `json:"by_role"`
	ByStatus        map[string]int `json:"by_status"`
	Sessions        int            `json:"sessions"`
	ExpiredSessions int            `json:"expired_sessions"`
	Tokens          int            `json:"tokens"`
	ExpiredTokens   int            `json:"expired_tokens"`
	LoginThrottles  int            `json:"login_throttles"`
	AuditEntries    int            `json:"audit_entries"`
	Credentials     int            `json:"credentials"`
}

var statsCmd = &command{
	name: "stats", args: "", summary: "count users by role and status, sessions, tokens, audit entries and credentials",
	help: `Stats counts the users by role and by status (Manager.Count), the stored
sessions and one-time tokens (with how many have expired and wait to be
purged), the login-throttle entries, the audit entries and the credentials
(passkeys, linked identities), and gives the file's size. It reads every
user once per role and status: on a large file it takes a while.`,
	setup: func(fs *flag.FlagSet, x *cli) func(context.Context, []string) error {
		asJSON := fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, args []string) error {
			if err := nargs(args, 0, "no arguments"); err != nil {
				return err
			}
			return x.withManager(false, func(s *Backend, m *users.Manager) error {
				var st Stats
				var err error
				if s.Stats != nil {
					if st, err = s.Stats(ctx, time.Now()); err != nil {
						return err
					}
				}
				n, err := m.Count(ctx, users.Filter{})
				if err != nil {
					return err
				}
				r := statsReport{
					File: s.Name, FileSize: st.Size, Users: n,
					ByRole: map[string]int{}, ByStatus: map[string]int{},
					Sessions: st.Sessions, ExpiredSessions: st.ExpiredSessions,
					Tokens: st.Tokens, ExpiredTokens: st.ExpiredTokens, LoginThrottles: st.LoginThrottles,
					AuditEntries: st.AuditEntries, Credentials: st.Credentials,
				}
				roles := x.roles()
				for _, role := range roles {
					if r.ByRole[string(role)], err = m.Count(ctx, users.Filter{Role: role}); err != nil {
						return err
					}
				}
				statuses := []users.Status{users.StatusActive, users.StatusInactive, users.StatusSuspended, users.StatusInvited}
				for _, status := range statuses {
					if r.ByStatus[string(status)], err = m.Count(ctx, users.Filter{Status: status}); err != nil {
						return err
					}
				}
				if *asJSON {
					return json.NewEncoder(x.stdout).Encode(r)
				}
				counts := func(keys []string, n map[string]int) string {
					var b strings.Builder
					for i, k := range keys {
						if i > 0 {
							b.WriteString(", ")
						}
						fmt.Fprintf(&b, "%s %d", k, n[k])
					}
					return b.String()
				}
				var roleNames, statusNames []string
				for _, role := range roles {
					roleNames = append(roleNames, string(role))
				}
				for _, status := range statuses {
					statusNames = append(statusNames, string(status))
				}
				tw := tabwriter.NewWriter(x.stdout, 0, 0, 2, ' ', 0)
				if s.File {
					fmt.Fprintf(tw, "file\t%s (%d bytes)\n", r.File, r.FileSize)
				} else {
					fmt.Fprintf(tw, "store\t%s (%d bytes)\n", r.File, r.FileSize)
				}
				fmt.Fprintf(tw, "users\t%d\n", r.Users)
				fmt.Fprintf(tw, "by role\t%s\n", counts(roleNames, r.ByRole))
				fmt.Fprintf(tw, "by status\t%s\n", counts(statusNames, r.ByStatus))
				fmt.Fprintf(tw, "sessions\t%d (%d expired, not purged yet)\n", r.Sessions, r.ExpiredSessions)
				fmt.Fprintf(tw, "tokens\t%d (%d expired, not purged yet)\n", r.Tokens, r.ExpiredTokens)
				fmt.Fprintf(tw, "login throttles\t%d\n", r.LoginThrottles)
				fmt.Fprintf(tw, "audit entries\t%d\n", r.AuditEntries)
				fmt.Fprintf(tw, "credentials\t%d\n", r.Credentials)
				return tw.Flush()
			})
		}
	},
}
