// Package postgres provides a users.Store kept in PostgreSQL, for applications
// that run on several processes or machines against one database. It is a module
// of its own, github.com/userkit/users/postgres, so that importing
// github.com/userkit/users never pulls in a database driver.
//
// # Overview
//
// Open a pgx pool and hand it to New, which creates or migrates the tables, then
// hand the Store to users.New:
//
//	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	...
//	store, err := postgres.New(ctx, pool)
//	...
//	m, err := users.New(store, nil)
//
// The Store passes the conformance suite storetest.Run. It keeps no state of its
// own besides the pool, which the caller closes.
//
// # Tables
//
// The tables are userkit_users, userkit_sessions, userkit_tokens,
// userkit_login_attempts, userkit_mfa and userkit_mfa_challenges (second
// factors; a TOTP secret is kept only as the Manager sealed it),
// userkit_user_counts, userkit_user_count_deltas and
// userkit_user_count_folded with the sequence userkit_user_count_epoch
// (counts of users, kept by triggers and each user's count_epoch) and
// userkit_schema_version, in the first schema of the connections' search_path
// (set search_path in the connection string to keep them apart from the
// application's tables). New creates them, or migrates them
// from an older version of this package, in one transaction under a
// transaction-scoped advisory lock, so any number of processes may start at
// once; it refuses tables written by a newer version with ErrSchemaTooNew. The
// database must use the UTF8 encoding.
//
// Emails, usernames, IDs and the other keys compare bytewise (COLLATE "C"), as in
// the other stores; ListUsers orders by ID bytewise, which for ULIDs is creation
// order. The names are lower-cased for search by Go's strings.ToLower, not the
// database's locale, so search selects exactly the users users.Match.Matches
// selects.
//
// # Indexes and the pg_trgm extension
//
// Every filter of ListUsers and CountUsers (role, status, account, and role
// with status) has an index ending in id, so a filtered page is read in ID
// order from its cursor and stops after the page. A count with no filter, or
// by role, status, role and status, or account alone, sums a few rows of
// userkit_user_counts (16 per account, or per role and status that users
// have), the moves and removals appended to userkit_user_count_deltas and
// the users created since the last fold, found through an index on
// count_epoch (a count folds them once there are more than 64 changes or
// 256 users), which triggers and each user's count_epoch keep exact in the
// transaction of every change to the users, whatever the number of users;
// another filtered count is an index-only scan of the matching entries. An offset is skipped over IDs only, by an index-only
// scan. Search has a trigram GIN index, from the pg_trgm extension, over the
// texts it looks in; a term of fewer than three characters has no trigram to
// look up and reads the table. These statements are planned for their values
// every time, never with a cached generic plan, which cannot tell a rare role
// or term from a common one. Index-only scans need the visibility map that
// (auto)vacuum keeps: run VACUUM ANALYZE after a large import.
//
// pg_trgm ships with PostgreSQL (in the contrib package of most distributions,
// and on the hosted services). When New migrates to the schema version with the
// search index and the database does not have the extension yet, it creates it
// in the tables' schema; since PostgreSQL 13 that needs only the CREATE
// privilege on the database. If the server lacks pg_trgm, or the role may not
// create it, New fails with an error that says so and leaves the tables as they
// were; a privileged role can then run CREATE EXTENSION pg_trgm, in any schema.
//
// CreateUsers (Manager.Import) writes a batch with one lookup of its keys and
// one INSERT, in one transaction; GetUsers and GetUsersByEmail are one SELECT
// each.
//
// # Several machines
//
// Any number of processes may share the tables. Give the pool a connection
// string that names the primary and its standbys with
// target_session_attrs=read-write, for example
//
//	postgres://app:secret@db1:5432,db2:5432/app?target_session_attrs=read-write
//
// and after a failover (the standby promoted) the pool's new connections find
// the new primary by themselves; the calls made while there was none fail with
// an error that wraps the driver's, which the caller may retry (see
// internal/failover for how each Manager operation behaves on retry). With
// synchronous replication (synchronous_commit = on and the standby in
// synchronous_standby_names) a write acknowledged to the caller is on the
// standby too, and survives the primary.
//
// # Session cache
//
// NewWithOptions with Options.SessionCache keeps the sessions GetSession reads
// (and so the ones Manager.ValidateToken validates) in memory for up to
// Options.SessionCacheTTL, 5 seconds by default. Every change that ends or
// changes a session or its user (a logout, a revocation, logging out
// everywhere, a password change, a suspension, a removal, a role change, a
// change of second factors, a step-up or reauthentication) sends a notification on the channel
// userkit_sessions in its own transaction, from triggers, and every Store
// listening forgets the user's sessions when it arrives; the Store that made
// the change forgets them before the method returns. A Store whose listening
// connection drops empties its cache and serves nothing from it until it is
// back. So a revoked session is refused at once by the Store that revoked it,
// and by every other Store once the notification arrives, and in any case
// once SessionCacheTTL has passed since the revoking call returned.
//
// # Times
//
// Times are stored as bigint nanoseconds since 1970-01-01 UTC, so they come back
// exactly as they went in (PostgreSQL's timestamptz would keep only
// microseconds), in UTC. The zero time.Time is stored as the smallest bigint, so
// stored times still compare in time order. Times from 1678 to 2262 can be
// stored; a method asked to store one outside that range returns an error
// wrapping ErrTimeRange and writes nothing.
//
// # Concurrency
//
// Every rule of the users.Store contract holds across processes, not only
// across the goroutines of one:
//
//   - Emails and usernames are unique by UNIQUE constraints (usernames through a
//     partial unique index that leaves out the empty username), and their
//     violations are returned as users.ErrDuplicateEmail,
//     users.ErrDuplicateUsername or users.ErrConflict.
//   - UpdateUser and UpdateLoginAttempts read under a row lock, call fn and write
//     in one transaction. A transaction that PostgreSQL aborts for a deadlock or a
//     serialization failure is run again, fn included, a few times.
//   - CreateSession locks the user row (FOR SHARE) while it checks the user's
//     generation and inserts, and DeleteUserSessions and UpdateUser lock it while
//     they revoke, so no session outlives a revocation; foreign keys with ON
//     DELETE CASCADE mean no session or token outlives its user.
//   - ConsumeToken is one DELETE … RETURNING, so exactly one caller gets a token.
//
// Transactions run at READ COMMITTED whatever the database's default, which the
// locking above relies on.
package postgres
