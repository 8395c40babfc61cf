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
// On PostgreSQL every command works but check and backup, which are a bbolt
// file's: back up the database with its own tools (pg_dump). The connection
// string's password is better given in $PGPASSWORD or ~/.pgpass than on the
// command line, where other users of the machine can see it. The tables are
// created, or brought to this version, on the first connection (postgres.New).
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

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
	}, nil
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
