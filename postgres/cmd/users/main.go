// Command users is github.com/userkit/users/cmd/users, the admin command of
// the users library, built with the PostgreSQL store as well: every command
// takes -dsn (or $USERS_DSN), a PostgreSQL connection string, instead of -db,
// a bbolt file. Its manual is the package comment of cmd/users and
// cmd/users/README.md.
//
// Install it with
//
//	go install github.com/userkit/users/postgres/cmd/users@latest
//
// On PostgreSQL every command works but backup, which is a bbolt file's: back
// up the database with its own tools (pg_dump). check compares the user counts
// the store keeps with its users, the one thing PostgreSQL's constraints do
// not guard. The connection
// string's password is better given in $PGPASSWORD or ~/.pgpass than on the
// command line, where other users of the machine can see it. The tables are
// created, or brought to this version, on the first connection (postgres.New).
package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/userkit/users"
	"github.com/userkit/users/internal/cli"
	"github.com/userkit/users/postgres"
)

func main() { cli.Main(open) }

// open connects to the database dsn names and opens the store in it.
func open(ctx context.Context, dsn string) (*cli.Backend, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("-dsn: %w", err) // pgconn leaves the password out of its errors
	}
	cfg.MaxConns = 4 // an admin command: a few connections are plenty
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s, err := postgres.New(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	cc := cfg.ConnConfig
	return &cli.Backend{
		Store: s,
		Name:  fmt.Sprintf("PostgreSQL database %s on %s:%d", cc.Database, cc.Host, cc.Port),
		Close: func() error { s.Close(); pool.Close(); return nil },
		Stats: func(ctx context.Context, now time.Time) (cli.Stats, error) { return stats(ctx, pool, now) },
		Check: func(ctx context.Context) error { return checkCounts(ctx, pool) },
	}, nil
}

// checkCounts compares the user counts the store keeps (userkit_user_counts,
// the changes userkit_user_count_deltas holds until a count folds them in,
// which triggers append with every move and removal, and the users created
// since the last fold, whose count_epoch is above the folded epoch, all of
// which CountUsers sums) with the users, in one snapshot: the one thing of the store's that can drift
// without PostgreSQL noticing (the keys are its UNIQUE constraints, and no
// row outlives its user through the foreign keys). A difference is an error
// matching users.ErrCorrupt that lists up to ten of them.
func checkCounts(ctx context.Context, pool *pgxpool.Pool) error {
	rows, err := pool.Query(ctx, `WITH kept AS (
			SELECT kind, role, status, account_id, sum(n) AS n FROM (
				SELECT kind, role, status, account_id, n FROM userkit_user_counts
				UNION ALL
				SELECT k,
					CASE WHEN k & 1 <> 0 THEN role ELSE '' END,
					CASE WHEN k & 2 <> 0 THEN status ELSE '' END,
					CASE WHEN k & 4 <> 0 THEN account_id ELSE '' END,
					n
				FROM (
					SELECT role, status, account_id, n FROM userkit_user_count_deltas
					UNION ALL
					SELECT role, status, account_id, 1 FROM userkit_users
					WHERE count_epoch > userkit_user_count_folded()
				) AS changes CROSS JOIN (VALUES (3), (4)) AS kinds (k)
				WHERE k = 3 OR account_id <> ''
			) AS counts
			GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0
		), actual AS (
			SELECT 3 AS kind, role, status, '' AS account_id, count(*) AS n FROM userkit_users GROUP BY role, status
			UNION ALL
			SELECT 4, '', '', account_id, count(*) FROM userkit_users WHERE account_id <> '' GROUP BY account_id
		)
		SELECT kind, role, status, account_id, coalesce(kept.n, 0), coalesce(actual.n, 0)
		FROM kept FULL JOIN actual USING (kind, role, status, account_id)
		WHERE kept.n IS DISTINCT FROM actual.n
		ORDER BY 1, 2, 3, 4 LIMIT 10`)
	if err != nil {
		return fmt.Errorf("compare the kept user counts with the users: %w", err)
	}
	var problems []string
	var kind int16
	var role, status, account string
	var kept, actual int64
	_, err = pgx.ForEachRow(rows, []any{&kind, &role, &status, &account, &kept, &actual}, func() error {
		what := fmt.Sprintf("role %q, status %q", role, status)
		if kind == 4 {
			what = fmt.Sprintf("account %q", account)
		}
		problems = append(problems, fmt.Sprintf("%s: %d users counted, %d stored", what, kept, actual))
		return nil
	})
	if err != nil {
		return fmt.Errorf("compare the kept user counts with the users: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: the kept user counts (userkit_user_counts, userkit_user_count_deltas and the users above the epoch in userkit_user_count_folded) disagree with userkit_users:\n\t%s", users.ErrCorrupt, strings.Join(problems, "\n\t"))
	}
	return nil
}

// stats counts the rows stats reports, in one statement (one snapshot).
func stats(ctx context.Context, pool *pgxpool.Pool, now time.Time) (cli.Stats, error) {
	var st cli.Stats
	err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM userkit_sessions),
		(SELECT count(*) FROM userkit_sessions WHERE expires_at <= $1),
		(SELECT count(*) FROM userkit_tokens),
		(SELECT count(*) FROM userkit_tokens WHERE expires_at <= $1),
		(SELECT count(*) FROM userkit_login_attempts),
		(SELECT count(*) FROM userkit_audit),
		(SELECT count(*) FROM userkit_credentials),
		pg_total_relation_size('userkit_users') + pg_total_relation_size('userkit_sessions') +
			pg_total_relation_size('userkit_tokens') + pg_total_relation_size('userkit_audit') +
			pg_total_relation_size('userkit_credentials')`, now.UnixNano()).Scan(
		&st.Sessions, &st.ExpiredSessions, &st.Tokens, &st.ExpiredTokens, &st.LoginThrottles,
		&st.AuditEntries, &st.Credentials, &st.Size)
	if err != nil {
		return cli.Stats{}, fmt.Errorf("count the store's rows: %w", err)
	}
	return st, nil
}
