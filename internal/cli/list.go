package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/userkit/users"
)

var listCmd = listCommand("list", "", "list users, with filters and paging",
	`List prints one page of users (in creation order) as a table, or as JSON
lines with -json. The filters combine: -role, -status, -account, -search. When
there are more pages, the cursor for the next one goes to standard error:
run the command again with -after CURSOR (or -before for the page before).
-all prints every page.`)

var findCmd = listCommand("find", "TEXT", "search users by email, username or name",
	`Find is list with a search: it prints the users whose email, username,
first or last name contains TEXT (ignoring case). It takes list's flags.`)

func listCommand(name, args, summary, help string) *command {
	return &command{
		name: name, args: args, summary: summary, help: help,
		setup: func(fs *flag.FlagSet, x *cli) func(context.Context, []string) error {
			var f users.Filter
			fs.Func("role", "only users with this `role`", func(s string) error { f.Role = users.Role(s); return nil })
			fs.Func("status", "only users with this `status` (active, inactive, suspended, invited)", func(s string) error {
				f.Status = users.Status(s)
				return nil
			})
			fs.StringVar(&f.AccountID, "account", "", "only users of this account `ID`")
			fs.StringVar(&f.Search, "search", "", "only users whose email, username or name contains `text`")
			fs.IntVar(&f.Limit, "limit", 20, "users per page (at most 100; -all uses 100)")
			fs.StringVar(&f.After, "after", "", "start after this `cursor` (from the previous page)")
			fs.StringVar(&f.Before, "before", "", "the page before this `cursor`")
			all := fs.Bool("all", false, "print every page")
			asJSON := fs.Bool("json", false, "print JSON lines instead of a table")
			return func(ctx context.Context, args []string) error {
				switch {
				case name == "find" && len(args) == 0 && f.Search == "":
					return usageError("want the TEXT to search for; see -h")
				case name == "find":
					f.Search = strings.TrimSpace(strings.Join(append([]string{f.Search}, args...), " "))
				case len(args) > 0:
					return usageError("unexpected argument %q (filters are flags: see -h)", args[0])
				}
				if *all {
					if f.Before != "" {
						return usageError("-all walks forward: it takes -after, not -before")
					}
					f.Limit = 100 // the largest page: fewer round trips
				}
				return x.withManager(false, func(_ *Backend, m *users.Manager) error {
					return x.listUsers(ctx, m, f, *all, *asJSON)
				})
			}
		},
	}
}

func (x *cli) listUsers(ctx context.Context, m *users.Manager, f users.Filter, all, asJSON bool) error {
	enc := json.NewEncoder(x.stdout)
	header := !asJSON
	for {
		p, err := m.Find(ctx, f)
		if err != nil {
			return err
		}
		if asJSON {
			for _, u := range p.Users {
				if err := enc.Encode(u); err != nil {
					return err
				}
			}
		} else {
			// One tabwriter per page: a long listing is never held whole.
			tw := tabwriter.NewWriter(x.stdout, 0, 0, 2, ' ', 0)
			if header {
				fmt.Fprintln(tw, "ID\tEMAIL\tUSERNAME\tNAME\tROLE\tSTATUS\tCREATED\tLAST LOGIN")
				header = false
			}
			for _, u := range p.Users {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, or(u.Username, "-"), or(fullName(u), "-"), u.Role, u.Status,
					when(u.CreatedAt), when(u.LastLoginAt))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if !all || p.Next == "" {
			if !all && p.Prev != "" {
				fmt.Fprintf(x.stderr, "previous page: -before %s\n", p.Prev)
			}
			if !all && p.Next != "" {
				fmt.Fprintf(x.stderr, "next page: -after %s\n", p.Next)
			}
			return nil
		}
		f.After, f.Offset = p.Next, 0
	}
}

// fullName is "First Last", without the space when one is missing, and
// with tabs and line breaks (which would break the table) made spaces.
func fullName(u *users.User) string {
	n := strings.TrimSpace(u.FirstName + " " + u.LastName)
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, n)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
