package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/userkit/users"
)

// withManager opens the store and a Manager over it, runs fn and closes the store.
func (x *cli) withManager(create bool, fn func(s *Backend, m *users.Manager) error) (err error) {
	s, m, err := x.openManager(create)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(); err == nil {
			err = cerr
		}
	}()
	return fn(s, m)
}

// findUser finds the user ref names: "ext:" and an external ID (the user's ID
// in the system they came from), an email (it has an @), an ID (a ULID), or a
// username. The error matches users.ErrNotFound when nobody has it.
func findUser(ctx context.Context, m *users.Manager, ref string) (*users.User, error) {
	var u *users.User
	var err error
	switch {
	case strings.HasPrefix(ref, "ext:"):
		u, err = m.GetByExternalID(ctx, strings.TrimPrefix(ref, "ext:"))
	case strings.Contains(ref, "@"):
		u, err = m.GetByEmail(ctx, ref)
	default:
		if _, perr := ulid.ParseStrict(ref); perr == nil {
			if u, err = m.Get(ctx, strings.ToUpper(ref)); !errors.Is(err, users.ErrNotFound) {
				break
			}
		}
		u, err = m.GetByUsername(ctx, ref)
	}
	if errors.Is(err, users.ErrNotFound) {
		return nil, fmt.Errorf("no user %q: %w", ref, err)
	}
	return u, err
}

// userCmd is the shape of the commands that act on one user named by their
// only argument.
func userCmd(name, summary, help string, act func(ctx context.Context, x *cli, m *users.Manager, u *users.User) error) *command {
	return &command{
		name: name, args: "USER", summary: summary,
		help: help + "\n\nUSER is an ID, an email, a username, or ext:ID for the user's ID in the\nsystem they came from (external_id).",
		setup: func(fs *flag.FlagSet, x *cli) func(context.Context, []string) error {
			return func(ctx context.Context, args []string) error {
				if err := nargs(args, 1, "one USER"); err != nil {
					return err
				}
				return x.withManager(false, func(_ *Backend, m *users.Manager) error {
					u, err := findUser(ctx, m, args[0])
					if err != nil {
						return err
					}
					return act(ctx, x, m, u)
				})
			}
		},
	}
}

var createAdminCmd = &command{
	name: "create-admin", args: "EMAIL", summary: "create an administrator (the first one on a new server)",
	help: `Create-admin creates an active user with the admin role and a verified email
(you vouch for it), creating the file if it does not exist. This is how a new
server gets its first administrator.

The password comes from $USERS_PASSWORD, or else from a prompt on the terminal
(asked twice, not echoed); never from a flag. It must pass the password policy
of the library (8 to 128 characters, not a common password, not the email).`,
	setup: func(fs *flag.FlagSet, x *cli) func(context.Context, []string) error {
		username := fs.String("username", "", "the admin's username (optional)")
		first := fs.String("first", "", "first name")
		last := fs.String("last", "", "last name")
		account := fs.String("account", "", "owning account ID (optional)")
		return func(ctx context.Context, args []string) error {
			if err := nargs(args, 1, "one EMAIL"); err != nil {
				return err
			}
			return x.withManager(true, func(_ *Backend, m *users.Manager) error {
				if u, err := m.GetByEmail(ctx, args[0]); err == nil {
					return fmt.Errorf("%s already has an account (ID %s, role %s); to make it an admin: users set-role %s admin",
						u.Email, u.ID, u.Role, u.Email)
				}
				pw, err := x.readPassword("Password for "+args[0]+": ", true)
				if err != nil {
					return err
				}
				u, err := m.Create(ctx, users.NewUser{
					Email: args[0], Username: *username, Password: pw,
					FirstName: *first, LastName: *last, AccountID: *account,
					Role: users.RoleAdmin, Status: users.StatusActive,
				})
				if err != nil {
					return err
				}
				d, err := m.RequestEmailVerification(ctx, u.ID)
				if err == nil {
					_, err = m.VerifyEmail(ctx, d.Token)
				}
				if err != nil {
					return fmt.Errorf("created %s but could not mark the email verified: %w", u.Email, err)
				}
				fmt.Fprintf(x.stdout, "created admin %s (ID %s)\n", u.Email, u.ID)
				return nil
			})
		}
	},
}

var getCmd = &command{
	name: "get", args: "USER", summary: "show one user, by ID, email or username",
	help: `Get shows one user and how many live sessions they have.
USER is an ID, an email, a username or ext:ID (external_id). Exit code 4 if there is no such user.`,
	setup: func(fs *flag.FlagSet, x *cli) func(context.Context, []string) error {
		asJSON := fs.Bool("json", false, "print the user as JSON")
		return func(ctx context.Context, args []string) error {
			if err := nargs(args, 1, "one USER"); err != nil {
				return err
			}
			return x.withManager(false, func(_ *Backend, m *users.Manager) error {
				u, err := findUser(ctx, m, args[0])
				if err != nil {
					return err
				}
				if *asJSON {
					return json.NewEncoder(x.stdout).Encode(u)
				}
				ss, err := m.Sessions(ctx, u.ID)
				if err != nil {
					return err
				}
				verified := "not verified"
				if u.EmailVerified {
					verified = "verified " + when(u.EmailVerifiedAt)
				}
				tw := tabwriter.NewWriter(x.stdout, 0, 0, 2, ' ', 0)
				for _, row := range [][2]string{
					{"id", u.ID},
					{"external id", u.ExternalID},
					{"email", u.Email + " (" + verified + ")"},
					{"username", u.Username},
					{"name", strings.TrimSpace(u.FirstName + " " + u.LastName)},
					{"role", string(u.Role)},
					{"status", string(u.Status)},
					{"account", u.AccountID},
					{"created", when(u.CreatedAt)},
					{"updated", when(u.UpdatedAt)},
					{"last login", when(u.LastLoginAt)},
					{"sessions", fmt.Sprint(len(ss), " live")},
				} {
					fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
				}
				return tw.Flush()
			})
		}
	},
}

// when formats a time for tables: UTC to the second, or "never".
func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.DateTime)
}

var setRoleCmd = &command{
	name: "set-role", args: "USER ROLE", summary: "change a user's role",
	help: `Set-role gives the user the role, which must be one of the application's
roles (admin, user, viewer, or $USERS_ROLES). The change is seen by the next
request of every session. USER is an ID, an email, a username or ext:ID (external_id).`,
	setup: func(fs *flag.FlagSet, x *cli) func(context.Context, []string) error {
		return func(ctx context.Context, args []string) error {
			if err := nargs(args, 2, "USER and ROLE"); err != nil {
				return err
			}
			return x.withManager(false, func(_ *Backend, m *users.Manager) error {
				u, err := findUser(ctx, m, args[0])
				if err != nil {
					return err
				}
				if u, err = m.UpdateRole(ctx, u.ID, users.Role(args[1])); err != nil {
					return err
				}
				fmt.Fprintf(x.stdout, "%s: role %s\n", u.Email, u.Role)
				return nil
			})
		}
	},
}

func setStatus(ctx context.Context, x *cli, m *users.Manager, u *users.User, st users.Status) error {
	if u.Status == users.StatusInvited && st == users.StatusActive {
		return fmt.Errorf("%s has not accepted their invitation yet and has no password; they become active by accepting it", u.Email)
	}
	u, err := m.Update(ctx, u.ID, users.UserUpdate{Status: &st})
	if err != nil {
		return err
	}
	fmt.Fprintf(x.stdout, "%s: %s\n", u.Email, u.Status)
	return nil
}

var suspendCmd = userCmd("suspend", "suspend a user and end their sessions",
	`Suspend sets the user's status to suspended and ends all their sessions at
once. A suspended user cannot log in until activated again.`,
	func(ctx context.Context, x *cli, m *users.Manager, u *users.User) error {
		return setStatus(ctx, x, m, u, users.StatusSuspended)
	})

var activateCmd = userCmd("activate", "make a user active again",
	`Activate sets the user's status to active, so they can log in again.`,
	func(ctx context.Context, x *cli, m *users.Manager, u *users.User) error {
		return setStatus(ctx, x, m, u, users.StatusActive)
	})

var unlockCmd = userCmd("unlock", "end a user's login lock",
	`Unlock ends a lock after failed logins, a permanent one (100 failures in a
row) included, and clears the count of failures, as users.Manager.Unlock does.
It says what it cleared.`,
	func(ctx context.Context, x *cli, m *users.Manager, u *users.User) error {
		st, err := m.LockState(ctx, u.ID)
		if err != nil {
			return err
		}
		if err := m.Unlock(ctx, u.ID); err != nil {
			return err
		}
		switch {
		case st.Permanent:
			fmt.Fprintf(x.stdout, "%s: unlocked (was locked for good after %d failed logins in a row)\n", u.Email, st.ConsecutiveFailures)
		case st.Locked:
			fmt.Fprintf(x.stdout, "%s: unlocked (was locked until %s after %d failed logins in a row)\n", u.Email, st.LockedUntil.Format(time.RFC3339), st.ConsecutiveFailures)
		default:
			fmt.Fprintf(x.stdout, "%s: was not locked (%d failed logins in a row cleared)\n", u.Email, st.ConsecutiveFailures)
		}
		return nil
	})

var removeCmd = &command{
	name: "remove", args: "USER", summary: "delete a user with their sessions and tokens",
	help: `Remove deletes the user, their sessions and one-time tokens, and frees their
email and username. It asks for confirmation on standard input first ("y" or
"yes"; anything else, or no input, keeps the user and exits 1) unless -yes is
given. USER is an ID, an email, a username or ext:ID (external_id).`,
	setup: func(fs *flag.FlagSet, x *cli) func(context.Context, []string) error {
		yes := fs.Bool("yes", false, "do not ask for confirmation")
		return func(ctx context.Context, args []string) error {
			if err := nargs(args, 1, "one USER"); err != nil {
				return err
			}
			return x.withManager(false, func(_ *Backend, m *users.Manager) error {
				u, err := findUser(ctx, m, args[0])
				if err != nil {
					return err
				}
				if !*yes {
					ok, err := x.confirm(fmt.Sprintf("Remove %s (ID %s, role %s) and all their sessions?", u.Email, u.ID, u.Role))
					if err != nil {
						return err
					}
					if !ok {
						return errors.New("not confirmed; nothing removed (-yes skips the question)")
					}
				}
				if err := m.Remove(ctx, u.ID); err != nil {
					return err
				}
				fmt.Fprintf(x.stdout, "removed %s (ID %s)\n", u.Email, u.ID)
				return nil
			})
		}
	},
}

// resetToken issues a password-reset token for u through the Manager, voiding
// u's earlier reset tokens, and returns the token and when it expires.
func resetToken(ctx context.Context, m *users.Manager, u *users.User) (token string, expires time.Time, err error) {
	d, err := m.IssuePasswordReset(ctx, u.ID)
	if errors.Is(err, users.ErrAccountDisabled) {
		return "", time.Time{}, fmt.Errorf("%s is %s: activate the account first (users activate %s)", u.Email, u.Status, u.Email)
	}
	if err != nil {
		return "", time.Time{}, err
	}
	return d.Token, d.ExpiresAt, nil
}

var resetPasswordCmd = &command{
	name: "reset-password", args: "USER", summary: "print a password-reset token, or set a password",
	help: `Reset-password prints a password-reset token for the user, for the
application's reset form (Manager.ResetPassword); it expires after an hour and
replaces the user's earlier reset tokens. Give it to the user only over a
channel you trust.

With -set, it sets a new password itself instead: read from $USERS_PASSWORD or
a terminal prompt, never from a flag. Setting a password ends all the user's
sessions and voids their one-time tokens. USER is an ID, an email, a username or ext:ID (external_id).`,
	setup: func(fs *flag.FlagSet, x *cli) func(context.Context, []string) error {
		set := fs.Bool("set", false, "set a new password (from $USERS_PASSWORD or the prompt)")
		return func(ctx context.Context, args []string) error {
			if err := nargs(args, 1, "one USER"); err != nil {
				return err
			}
			return x.withManager(false, func(_ *Backend, m *users.Manager) error {
				u, err := findUser(ctx, m, args[0])
				if err != nil {
					return err
				}
				var pw string
				if *set {
					if pw, err = x.readPassword("New password for "+u.Email+": ", true); err != nil {
						return err
					}
				}
				token, expires, err := resetToken(ctx, m, u)
				if err != nil {
					return err
				}
				if !*set {
					fmt.Fprintf(x.stdout, "%s\n", token)
					fmt.Fprintf(x.stderr, "password-reset token for %s, valid until %s UTC\n", u.Email, when(expires))
					return nil
				}
				if err := m.ResetPassword(ctx, token, pw); err != nil {
					return err
				}
				fmt.Fprintf(x.stdout, "%s: password set; their sessions have ended\n", u.Email)
				return nil
			})
		}
	},
}

var sessionsCmd = &command{
	name: "sessions", args: "USER", summary: "list a user's sessions, or revoke them",
	help: `Sessions lists the user's live sessions, oldest first. With -revoke it ends
one of them by its ID; with -revoke-all it ends all of them (every device).
USER is an ID, an email, a username or ext:ID (external_id).`,
	setup: func(fs *flag.FlagSet, x *cli) func(context.Context, []string) error {
		revoke := fs.String("revoke", "", "end the session with this `ID`")
		revokeAll := fs.Bool("revoke-all", false, "end every session of the user")
		asJSON := fs.Bool("json", false, "print JSON lines")
		return func(ctx context.Context, args []string) error {
			if err := nargs(args, 1, "one USER"); err != nil {
				return err
			}
			if *revoke != "" && *revokeAll {
				return usageError("give -revoke or -revoke-all, not both")
			}
			return x.withManager(false, func(_ *Backend, m *users.Manager) error {
				u, err := findUser(ctx, m, args[0])
				if err != nil {
					return err
				}
				switch {
				case *revoke != "":
					if err := m.RevokeSession(ctx, u.ID, *revoke); err != nil {
						return fmt.Errorf("session %s of %s: %w", *revoke, u.Email, err)
					}
					fmt.Fprintf(x.stdout, "%s: session %s ended\n", u.Email, *revoke)
					return nil
				case *revokeAll:
					if err := m.LogoutAll(ctx, u.ID); err != nil {
						return err
					}
					fmt.Fprintf(x.stdout, "%s: all sessions ended\n", u.Email)
					return nil
				}
				ss, err := m.Sessions(ctx, u.ID)
				if err != nil {
					return err
				}
				if *asJSON {
					enc := json.NewEncoder(x.stdout)
					for _, s := range ss {
						s.User = nil
						if err := enc.Encode(s); err != nil {
							return err
						}
					}
					return nil
				}
				tw := tabwriter.NewWriter(x.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tCREATED\tLAST SEEN\tEXPIRES")
				for _, s := range ss {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, when(s.CreatedAt), when(s.LastSeenAt), when(s.ExpiresAt))
				}
				return tw.Flush()
			})
		}
	},
}
