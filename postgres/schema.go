package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrationLockKey is the pg_advisory_xact_lock key that serialises New's
// migrations across processes: an arbitrary number that no other program is
// likely to use. It is one key for the whole database, so stores in different
// schemas of one database also migrate one after the other; that only costs a
// moment at start-up.
const migrationLockKey int64 = 0x5af1_4a51_3583_0021

// migrations[i] brings the schema from version i to version i+1. A released
// migration is never edited: a change is a new migration at the end.
//
// Times are bigint nanoseconds since 1970-01-01 UTC (see encodeTime), the zero
// time.Time being the smallest bigint, so that stored times keep every
// nanosecond and compare in time order.
//
// Text that is compared or ordered uses COLLATE "C", so that equality and order
// are bytewise, as they are in the other stores. first_name_lower and
// last_name_lower hold strings.ToLower of the names, made in Go, so that search
// lower-cases exactly as users.Match.Matches does whatever the database's locale.
//
// preferences is json, not jsonb: jsonb cannot hold the character U+0000, which
// a preference value may contain, and the store never queries into it (the json
// operators -> and ->> still work for reports). NULL is a nil map.
var migrations = [][]string{
	// Version 1: users, sessions, one-time tokens and login-throttle entries.
	{
		`CREATE TABLE userkit_users (
			id                text COLLATE "C" PRIMARY KEY,
			email             text COLLATE "C" NOT NULL,
			username          text COLLATE "C" NOT NULL,
			email_verified    boolean NOT NULL,
			email_verified_at bigint NOT NULL,
			first_name        text NOT NULL,
			last_name         text NOT NULL,
			role              text COLLATE "C" NOT NULL,
			status            text COLLATE "C" NOT NULL,
			avatar_url        text NOT NULL,
			account_id        text COLLATE "C" NOT NULL,
			preferences       json,
			created_at        bigint NOT NULL,
			updated_at        bigint NOT NULL,
			last_login_at     bigint NOT NULL,
			password_hash     text NOT NULL,
			generation        bigint NOT NULL,
			first_name_lower  text COLLATE "C" NOT NULL,
			last_name_lower   text COLLATE "C" NOT NULL,
			CONSTRAINT userkit_users_email_key UNIQUE (email)
		)`,
		`CREATE UNIQUE INDEX userkit_users_username_key ON userkit_users (username) WHERE username <> ''`,
		`CREATE INDEX userkit_users_account_id_idx ON userkit_users (account_id, id)`,

		`CREATE TABLE userkit_sessions (
			token_hash      bytea PRIMARY KEY,
			id              text COLLATE "C" NOT NULL,
			user_id         text COLLATE "C" NOT NULL REFERENCES userkit_users (id) ON DELETE CASCADE,
			user_generation bigint NOT NULL,
			created_at      bigint NOT NULL,
			expires_at      bigint NOT NULL,
			last_seen_at    bigint NOT NULL,
			CONSTRAINT userkit_sessions_id_key UNIQUE (id)
		)`,
		`CREATE INDEX userkit_sessions_user_idx ON userkit_sessions (user_id, created_at, id)`,
		`CREATE INDEX userkit_sessions_expires_at_idx ON userkit_sessions (expires_at)`,

		`CREATE TABLE userkit_tokens (
			hash       bytea PRIMARY KEY,
			user_id    text COLLATE "C" NOT NULL REFERENCES userkit_users (id) ON DELETE CASCADE,
			purpose    text COLLATE "C" NOT NULL,
			email      text NOT NULL,
			created_at bigint NOT NULL,
			expires_at bigint NOT NULL
		)`,
		`CREATE INDEX userkit_tokens_user_idx ON userkit_tokens (user_id, purpose)`,
		`CREATE INDEX userkit_tokens_expires_at_idx ON userkit_tokens (expires_at)`,

		`CREATE TABLE userkit_login_attempts (
			key          text COLLATE "C" PRIMARY KEY,
			failures     bigint NOT NULL,
			window_start bigint NOT NULL,
			locked_until bigint NOT NULL,
			expires_at   bigint NOT NULL
		)`,
		`CREATE INDEX userkit_login_attempts_expires_at_idx ON userkit_login_attempts (expires_at)`,
	},

	// Version 2: indexes for ListUsers and CountUsers, and login throttling
	// that keeps consecutive failures across locks, escalates locks and
	// remembers an imported hash it could not upgrade.
	//
	// Each filter index ends in id, so that a filtered page is read in ID
	// order from the index, from the cursor on, and stops after LIMIT rows; a
	// filtered count is an index-only scan. Account filters use
	// userkit_users_account_id_idx of version 1. (role, status, id) serves a
	// role together with a status without walking every user of the role.
	//
	// The search index is a trigram index (pg_trgm, which migrate makes sure is
	// installed before this runs, and puts on search_path) over searchText,
	// every text Match.Search looks in joined into one. It finds a superset of
	// the matching users for terms of 3 or more characters, which filter then
	// narrows to the exact ones.
	{
		`CREATE INDEX userkit_users_role_idx ON userkit_users (role, id)`,
		`CREATE INDEX userkit_users_status_idx ON userkit_users (status, id)`,
		`CREATE INDEX userkit_users_role_status_idx ON userkit_users (role, status, id)`,
		`CREATE INDEX userkit_users_search_idx ON userkit_users USING gin ((` + searchText + `) gin_trgm_ops)`,
		`ALTER TABLE userkit_login_attempts ADD COLUMN consecutive bigint NOT NULL DEFAULT 0`,
		`ALTER TABLE userkit_login_attempts ADD COLUMN locks bigint NOT NULL DEFAULT 0`,
		`ALTER TABLE userkit_login_attempts ADD COLUMN hash_not_upgradable boolean NOT NULL DEFAULT false`,
	},

	// Version 3: the audit log, sessions that know their client and how the
	// user authenticated, and the users' last activity.
	//
	// userkit_audit holds one row per entry. Its indexes end in id, so that a
	// page of one subject's, actor's or type's entries, newest first, is read
	// backwards from the index and stops after LIMIT rows; a time range is a
	// range of IDs too (an entry's ID is a ULID of its Time, see
	// users.AuditEntry.ID), and the time index serves DeleteAuditBefore. ip and
	// user_agent, here and in userkit_sessions, are bytea: they are what the
	// client sent, which need not be valid UTF-8. fields is NULL for a nil
	// slice, data (json, as preferences) for a nil map.
	//
	// last_active_at has the zero time as every user's value until a session
	// of the user is touched; (last_active_at, id) serves Match.ActiveSince and
	// InactiveSince when few users match; when many do, the planner walks the
	// primary key instead and filters.
	{
		`CREATE TABLE userkit_audit (
			id         text COLLATE "C" PRIMARY KEY,
			time       bigint NOT NULL,
			type       text COLLATE "C" NOT NULL,
			user_id    text COLLATE "C" NOT NULL,
			actor_id   text COLLATE "C" NOT NULL,
			session_id text NOT NULL,
			ip         bytea NOT NULL,
			user_agent bytea NOT NULL,
			reason     text NOT NULL,
			purpose    text NOT NULL,
			fields     text[],
			data       json
		)`,
		`CREATE INDEX userkit_audit_user_idx ON userkit_audit (user_id, id)`,
		`CREATE INDEX userkit_audit_actor_idx ON userkit_audit (actor_id, id)`,
		`CREATE INDEX userkit_audit_type_idx ON userkit_audit (type, id)`,
		`CREATE INDEX userkit_audit_time_idx ON userkit_audit (time)`,
		`ALTER TABLE userkit_sessions ADD COLUMN ip bytea NOT NULL DEFAULT ''`,
		`ALTER TABLE userkit_sessions ADD COLUMN user_agent bytea NOT NULL DEFAULT ''`,
		`ALTER TABLE userkit_sessions ADD COLUMN methods text[] NOT NULL DEFAULT '{}'`,
		`ALTER TABLE userkit_sessions ADD COLUMN second_factor_at bigint NOT NULL DEFAULT -9223372036854775808`,
		`ALTER TABLE userkit_users ADD COLUMN last_active_at bigint NOT NULL DEFAULT -9223372036854775808`,
		`CREATE INDEX userkit_users_last_active_idx ON userkit_users (last_active_at, id)`,

		// Second factors. userkit_mfa holds one row per user with a second
		// factor (users.MFARecord): totp is false when the user has no TOTP
		// factor, and then the totp_ columns are empty; totp_secret holds the
		// secret as the Manager sealed it (AES-GCM), never in the clear.
		// recovery_codes holds the SHA-256 hashes of the unused recovery codes,
		// NULL for a nil list. userkit_mfa_challenges holds the logins waiting
		// for a second factor, by the SHA-256 of their token; methods NULL is a
		// nil list. Both go with their user (ON DELETE CASCADE).
		`CREATE TABLE userkit_mfa (
			user_id           text COLLATE "C" PRIMARY KEY REFERENCES userkit_users (id) ON DELETE CASCADE,
			totp              boolean NOT NULL,
			totp_secret       bytea NOT NULL,
			totp_key_id       text NOT NULL,
			totp_confirmed    boolean NOT NULL,
			totp_created_at   bigint NOT NULL,
			totp_confirmed_at bigint NOT NULL,
			totp_last_step    bigint NOT NULL,
			recovery_codes    bytea[],
			recovery_codes_at bigint NOT NULL
		)`,
		`CREATE TABLE userkit_mfa_challenges (
			hash            bytea PRIMARY KEY,
			user_id         text COLLATE "C" NOT NULL REFERENCES userkit_users (id) ON DELETE CASCADE,
			user_generation bigint NOT NULL,
			methods         text[],
			attempts        bigint NOT NULL,
			created_at      bigint NOT NULL,
			expires_at      bigint NOT NULL
		)`,
		`CREATE INDEX userkit_mfa_challenges_user_idx ON userkit_mfa_challenges (user_id)`,
		`CREATE INDEX userkit_mfa_challenges_expires_at_idx ON userkit_mfa_challenges (expires_at)`,
	},

	// Version 4: a session's authenticated_at (users.SessionRecord.AuthenticatedAt),
	// when its user last proved a password or a factor for it. Sessions made
	// before it get the last proof they are known to have had: their login
	// (created_at), or a later step-up (second_factor_at).
	{
		`ALTER TABLE userkit_sessions ADD COLUMN authenticated_at bigint NOT NULL DEFAULT -9223372036854775808`,
		`UPDATE userkit_sessions SET authenticated_at = GREATEST(created_at, second_factor_at)`,
	},

	// Version 5: counts kept as users change, so that CountUsers with no
	// filter, or with any of role, status and account, sums a few rows instead
	// of counting the users; and notifications that tell every Store with a
	// session cache which users' sessions to forget.
	//
	// userkit_user_counts holds how many users have each role and status
	// (kind 3: bit 1 is the role, bit 2 the status) and each account but the
	// empty one, which no count asks for (kind 4, bit 4; the fields a kind
	// leaves out are ''), each spread over up to 16
	// rows (shard) that a count sums: each change adds to the shard of its
	// connection (pg_backend_pid() modulo 16), so concurrent creates on
	// different connections do not wait for one row. Triggers keep it exact in
	// the transaction of every change to userkit_users: a row-level trigger
	// per inserted row, one per updated row that changes its role, status or
	// account (so the many updates that change none of them, a login's or a
	// touch's, cost nothing), and a statement-level one per DELETE, over its
	// transition table. CreateUsers copies a batch with the insert trigger
	// turned off for its transaction (the setting userkit.counted = 'on') and
	// adds the batch's counts in one statement (sqlCountCopied), which a
	// trigger per row would make many times slower. Each upsert takes its
	// rows in key order, so that two never lock two counters in opposite
	// orders. TRUNCATE is not counted: the store never truncates.
	//
	// The notify triggers send pg_notify('userkit_sessions', payload) in the
	// transaction of the change, delivered when it commits: the payload is the
	// length of the tables' schema, ':', the schema and the user's ID, so one
	// channel serves every schema. They fire when a session is deleted or
	// changed (anything but last_seen_at, which TouchSession moves), when a user
	// is deleted or changed (anything but last_active_at) and when a user's
	// second factors change.
	{
		`CREATE TABLE userkit_user_counts (
			kind       smallint NOT NULL,
			role       text COLLATE "C" NOT NULL,
			status     text COLLATE "C" NOT NULL,
			account_id text COLLATE "C" NOT NULL,
			shard      smallint NOT NULL,
			n          bigint NOT NULL,
			PRIMARY KEY (kind, role, status, account_id, shard)
		)`,
		`CREATE FUNCTION userkit_count_users_insert() RETURNS trigger LANGUAGE plpgsql AS $$
		DECLARE
			s smallint := pg_backend_pid() % 16;
		BEGIN
			IF NEW.account_id = '' THEN
				INSERT INTO userkit_user_counts AS c (kind, role, status, account_id, shard, n) VALUES
					(3, NEW.role, NEW.status, '', s, 1)
				ON CONFLICT (kind, role, status, account_id, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
			ELSE
				INSERT INTO userkit_user_counts AS c (kind, role, status, account_id, shard, n) VALUES
					(3, NEW.role, NEW.status, '', s, 1), (4, '', '', NEW.account_id, s, 1)
				ON CONFLICT (kind, role, status, account_id, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
			END IF;
			RETURN NULL;
		END $$`,
		countUsersFunction("userkit_count_users_update", `VALUES (NEW.role, NEW.status, NEW.account_id, 1), (OLD.role, OLD.status, OLD.account_id, -1)`),
		countUsersFunction("userkit_count_users_delete", `SELECT role, status, account_id, -1 AS delta FROM userkit_old_users`),
		`CREATE TRIGGER userkit_count_users_insert AFTER INSERT ON userkit_users FOR EACH ROW
			WHEN (current_setting('userkit.counted', true) IS DISTINCT FROM 'on')
			EXECUTE FUNCTION userkit_count_users_insert()`,
		`CREATE TRIGGER userkit_count_users_update AFTER UPDATE ON userkit_users FOR EACH ROW
			WHEN (OLD.role IS DISTINCT FROM NEW.role OR OLD.status IS DISTINCT FROM NEW.status
				OR OLD.account_id IS DISTINCT FROM NEW.account_id)
			EXECUTE FUNCTION userkit_count_users_update()`,
		`CREATE TRIGGER userkit_count_users_delete AFTER DELETE ON userkit_users
			REFERENCING OLD TABLE AS userkit_old_users FOR EACH STATEMENT EXECUTE FUNCTION userkit_count_users_delete()`,
		// The triggers above lock userkit_users against writes until this
		// migration commits, so no change falls between this count and them.
		`INSERT INTO userkit_user_counts (kind, role, status, account_id, shard, n)
			SELECT k,
				CASE WHEN k & 1 <> 0 THEN role ELSE '' END,
				CASE WHEN k & 2 <> 0 THEN status ELSE '' END,
				CASE WHEN k & 4 <> 0 THEN account_id ELSE '' END,
				0, count(*)
			FROM userkit_users CROSS JOIN (VALUES (3), (4)) AS kinds (k)
			WHERE k = 3 OR account_id <> ''
			GROUP BY 1, 2, 3, 4`,

		`CREATE FUNCTION userkit_notify_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
		DECLARE
			uid text;
		BEGIN
			IF TG_OP = 'DELETE' THEN
				uid := OLD.user_id;
			ELSE
				uid := NEW.user_id;
			END IF;
			PERFORM pg_notify('userkit_sessions', length(TG_TABLE_SCHEMA) || ':' || TG_TABLE_SCHEMA || uid);
			RETURN NULL;
		END $$`,
		`CREATE FUNCTION userkit_notify_users() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM pg_notify('userkit_sessions', length(TG_TABLE_SCHEMA) || ':' || TG_TABLE_SCHEMA || OLD.id);
			RETURN NULL;
		END $$`,
		`CREATE TRIGGER userkit_notify_sessions_delete AFTER DELETE ON userkit_sessions
			FOR EACH ROW EXECUTE FUNCTION userkit_notify_sessions()`,
		`CREATE TRIGGER userkit_notify_sessions_update AFTER UPDATE ON userkit_sessions FOR EACH ROW
			WHEN (ROW(OLD.token_hash, OLD.id, OLD.user_id, OLD.user_generation, OLD.created_at, OLD.expires_at,
				OLD.ip, OLD.user_agent, OLD.methods, OLD.second_factor_at, OLD.authenticated_at)
			IS DISTINCT FROM ROW(NEW.token_hash, NEW.id, NEW.user_id, NEW.user_generation, NEW.created_at, NEW.expires_at,
				NEW.ip, NEW.user_agent, NEW.methods, NEW.second_factor_at, NEW.authenticated_at))
			EXECUTE FUNCTION userkit_notify_sessions()`,
		`CREATE TRIGGER userkit_notify_users_delete AFTER DELETE ON userkit_users
			FOR EACH ROW EXECUTE FUNCTION userkit_notify_users()`,
		`CREATE TRIGGER userkit_notify_users_update AFTER UPDATE ON userkit_users FOR EACH ROW
			WHEN (ROW(OLD.id, OLD.email, OLD.username, OLD.email_verified, OLD.email_verified_at, OLD.first_name,
				OLD.last_name, OLD.role, OLD.status, OLD.avatar_url, OLD.account_id, OLD.preferences::text,
				OLD.created_at, OLD.updated_at, OLD.last_login_at, OLD.password_hash, OLD.generation)
			IS DISTINCT FROM ROW(NEW.id, NEW.email, NEW.username, NEW.email_verified, NEW.email_verified_at, NEW.first_name,
				NEW.last_name, NEW.role, NEW.status, NEW.avatar_url, NEW.account_id, NEW.preferences::text,
				NEW.created_at, NEW.updated_at, NEW.last_login_at, NEW.password_hash, NEW.generation))
			EXECUTE FUNCTION userkit_notify_users()`,
		`CREATE TRIGGER userkit_notify_mfa AFTER INSERT OR UPDATE OR DELETE ON userkit_mfa
			FOR EACH ROW EXECUTE FUNCTION userkit_notify_sessions()`,
	},

	// Version 6: credentials (users.CredentialRecord), the ways to sign in
	// other than the password. The primary key (kind, identifier) is what
	// makes an identifier unique per kind, across processes; identifier is
	// bytea, as a passkey's credential ID is any bytes. The by-user index
	// serves ListCredentials in its order. Credentials go with their user
	// (ON DELETE CASCADE). data is the kind's payload, which the store never
	// reads.
	{
		`CREATE TABLE userkit_credentials (
			kind         text COLLATE "C" NOT NULL,
			identifier   bytea NOT NULL,
			user_id      text COLLATE "C" NOT NULL REFERENCES userkit_users (id) ON DELETE CASCADE,
			name         text NOT NULL,
			created_at   bigint NOT NULL,
			last_used_at bigint NOT NULL,
			counter      bigint NOT NULL,
			data         bytea NOT NULL,
			PRIMARY KEY (kind, identifier)
		)`,
		`CREATE INDEX userkit_credentials_user_idx ON userkit_credentials (user_id, created_at, kind, identifier)`,
	},

	// Version 7: a user's external ID (users.User.ExternalID), the ID another
	// system gave the user. NULL for none, so that the unique index, which is
	// what makes it unique across processes, holds only the users who have
	// one. Written by CreateUser and CreateUsers only: UpdateUser never
	// changes it, so migration 3's update trigger need not watch it.
	{
		`ALTER TABLE userkit_users ADD COLUMN external_id text COLLATE "C"`,
		`CREATE UNIQUE INDEX userkit_users_external_id_key ON userkit_users (external_id)`,
	},

	// Version 8: provider flows (users.FlowRecord), the state of a sign-in
	// with an external provider between its start and the callback, keyed by
	// the state's hash; data is the Manager's payload, which the store never
	// reads. The expires_at index serves DeleteExpired.
	{
		`CREATE TABLE userkit_provider_flows (
			hash       bytea PRIMARY KEY,
			data       bytea NOT NULL,
			created_at bigint NOT NULL,
			expires_at bigint NOT NULL
		)`,
		`CREATE INDEX userkit_provider_flows_expires_idx ON userkit_provider_flows (expires_at)`,
	},

	// Version 9: a session's own idle timeout (users.SessionRecord.IdleTimeout)
	// in nanoseconds, chosen at login; 0, none of its own, for the sessions
	// made before. It never changes after the insert, so the session
	// triggers of version 5, which tell caches of changes, need not watch it.
	{
		`ALTER TABLE userkit_sessions ADD COLUMN idle_timeout bigint NOT NULL DEFAULT 0`,
	},

	// Version 10: ceremonies (users.CeremonyRecord), the passkey challenges
	// waiting for the browser's answer, by the SHA-256 of the challenge. The
	// primary key makes a hash single; ConsumeCeremony's DELETE … RETURNING
	// makes it answered once, across processes. user_id is '' for a ceremony
	// that names no user yet (a passwordless sign-in), so it has no foreign
	// key: ceremonies live minutes and DeleteExpired reclaims them through the
	// expires_at index.
	{
		`CREATE TABLE userkit_ceremonies (
			hash       bytea PRIMARY KEY,
			kind       text COLLATE "C" NOT NULL,
			user_id    text COLLATE "C" NOT NULL,
			created_at bigint NOT NULL,
			expires_at bigint NOT NULL
		)`,
		`CREATE INDEX userkit_ceremonies_expires_at_idx ON userkit_ceremonies (expires_at)`,
	},

	// Version 11: counts kept without rewriting a shared row, so that
	// concurrent creates do not pay for them. Every change to the users
	// appends its deltas to userkit_user_count_deltas, one row per role,
	// status and account that it adds users to or takes users from (a create
	// appends one row, a move between roles two): a plain insert, with no
	// index, no conflict and no lock on a row another transaction writes,
	// where version 5 upserted a counter row that every create on that shard
	// rewrote. A count is the sum of its rows in userkit_user_counts and of
	// the matching deltas, read in one statement (keptCount), so it is exact
	// at that statement's moment; CountUsers folds the deltas into
	// userkit_user_counts (sqlFoldCounts, which adds exactly the rows it
	// deletes) once it read more than countFoldAt of them.
	//
	// Creates append their delta through a rule, not a trigger: the rule is
	// rewritten into the INSERT when the statement is prepared, so each
	// create runs one more plain insert, where a row trigger, even one whose
	// WHEN is false, costs each statement its own setup
	// (BenchmarkCreateUserConcurrent). Any INSERT into userkit_users is
	// counted so, including those of processes still running an older
	// version of this package after this migration; COPY does not apply
	// rules, so CreateUsers, which copies, adds a batch's counts itself, as it
	// did (and no longer needs to switch a trigger off). A table with an
	// INSERT rule refuses INSERT … ON CONFLICT, which the store never sends.
	// A process of an older version still counts from userkit_user_counts
	// alone, so its counts miss the deltas not yet folded until it is
	// upgraded.
	// The update and delete triggers keep when they fire and append instead
	// of adding.
	{
		`CREATE TABLE userkit_user_count_deltas (
			role       text COLLATE "C" NOT NULL,
			status     text COLLATE "C" NOT NULL,
			account_id text COLLATE "C" NOT NULL,
			n          bigint NOT NULL
		)`,
		`DROP TRIGGER userkit_count_users_insert ON userkit_users`,
		`DROP FUNCTION userkit_count_users_insert()`,
		`CREATE RULE userkit_count_users_insert AS ON INSERT TO userkit_users DO ALSO
			INSERT INTO userkit_user_count_deltas (role, status, account_id, n)
			VALUES (NEW.role, NEW.status, NEW.account_id, 1)`,
		`CREATE OR REPLACE FUNCTION userkit_count_users_update() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO userkit_user_count_deltas (role, status, account_id, n)
				VALUES (NEW.role, NEW.status, NEW.account_id, 1), (OLD.role, OLD.status, OLD.account_id, -1);
			RETURN NULL;
		END $$`,
		`CREATE OR REPLACE FUNCTION userkit_count_users_delete() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO userkit_user_count_deltas (role, status, account_id, n)
				SELECT role, status, account_id, -count(*) FROM userkit_old_users GROUP BY 1, 2, 3;
			RETURN NULL;
		END $$`,
	},

	// Version 12: creates counted without writing a second row, where the
	// rule of version 11 appended one: its second insert cost 32 concurrent
	// creates 4 to 9% of the server's CPU, reading the epoch 2 to 3%
	// (BenchmarkCreateUserConcurrentPaired). Every user row carries
	// count_epoch, the fold epoch it was created in: its default reads the
	// sequence userkit_user_count_epoch with pg_sequence_last_value (the
	// function behind the pg_sequences view, since PostgreSQL 10), which
	// neither advances the sequence nor writes anything, and the index on it
	// finds the rows created since the last fold; the epochs need only never
	// go back, which holds after a crash or a standby's promotion too (the
	// sequence may then be ahead, as PostgreSQL logs sequences ahead, and a
	// dump restores it). userkit_user_count_folded
	// holds the last epoch folded: userkit_user_counts and the deltas count
	// every user whose count_epoch is at most that epoch, and a count adds
	// the users above it, read through the index in the same statement
	// (keptCount). The count reads the folded epoch through the function
	// userkit_user_count_folded(): being STABLE, the planner evaluates it
	// when it estimates, so it sees how few rows are above the epoch, where
	// a subquery's value is unknown to it and looks like a third of the
	// table at any size (PL/pgSQL, whose plan a session keeps, cost a count
	// less of the server's time than SQL). The price is a count's: reading
	// userkit_users too costs it about 15µs more of the server's time
	// (EXPLAIN ANALYZE of the prepared statement at 10k users), and its
	// folds' lock holds creates off, which is why a count folds the users
	// created only past countFoldCreatedAt.
	//
	// A fold (sqlFoldEpoch) takes a SHARE ROW EXCLUSIVE lock on
	// userkit_users, which waits for every transaction writing it and keeps
	// other folds out, so that every row of the current epoch is committed
	// or gone; it then starts the next epoch, adds the rows above the folded
	// epoch to the counters and moves the folded epoch, in one transaction,
	// while writes wait for the lock (a fold waits for it at most
	// foldLockTimeout). A create after the fold reads the new epoch, so it is
	// counted through the index until the next fold.
	//
	// The update and delete triggers append deltas only for users already
	// folded (count_epoch at most the folded epoch): a user above it is
	// counted as it is now by the index. Since a fold waits for every
	// writer, a trigger and a fold never overlap: the trigger reads the
	// folded epoch either before the fold began (and the fold then counts
	// the row as the trigger's transaction left it) or after it committed.
	// The users already stored, and those CreateUsers copies (it writes
	// count_epoch 0 and adds its batch's counts itself, as before), have
	// count_epoch 0, which is always folded. ADD COLUMN with a constant
	// default and SET DEFAULT rewrite no row.
	//
	// Creates read the sequence, triggers read userkit_user_count_folded and
	// folds advance and update them, as the role that writes the users:
	// every role granted INSERT, UPDATE or DELETE on userkit_users when this
	// migration runs is granted SELECT and UPDATE on both, so that an
	// upgrade does not take a working role's creates away; a role granted
	// later needs them too (GRANT … ON ALL SEQUENCES as well as ON ALL
	// TABLES).
	//
	// The rule of version 11 is dropped. A process of version 11 still
	// running counts from the counters and deltas alone, so its counts miss
	// the users created since the last fold until it is upgraded, and its
	// CreateUsers, which copies without count_epoch, counts its batch twice
	// (users check reports it): upgrade every process before importing.
	{
		`CREATE SEQUENCE userkit_user_count_epoch`,
		`SELECT setval('userkit_user_count_epoch', 1)`,
		`CREATE TABLE userkit_user_count_folded (
			singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
			epoch     bigint NOT NULL
		)`,
		`INSERT INTO userkit_user_count_folded (epoch) VALUES (0)`,
		`CREATE FUNCTION userkit_user_count_folded() RETURNS bigint LANGUAGE plpgsql STABLE AS $$
		BEGIN
			RETURN (SELECT epoch FROM userkit_user_count_folded);
		END $$`,
		`ALTER TABLE userkit_users ADD COLUMN count_epoch bigint NOT NULL DEFAULT 0`,
		`ALTER TABLE userkit_users ALTER COLUMN count_epoch SET DEFAULT pg_sequence_last_value('userkit_user_count_epoch')`,
		`CREATE INDEX userkit_users_count_epoch_idx ON userkit_users (count_epoch)`,
		`DO $$
		DECLARE
			grantee text;
		BEGIN
			FOR grantee IN SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END
				FROM pg_class c CROSS JOIN aclexplode(c.relacl) AS a LEFT JOIN pg_roles r ON r.oid = a.grantee
				WHERE c.oid = 'userkit_users'::regclass AND a.grantee <> c.relowner
					AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE')
			LOOP
				EXECUTE 'GRANT SELECT, UPDATE ON SEQUENCE userkit_user_count_epoch TO ' || grantee;
				EXECUTE 'GRANT SELECT, UPDATE ON userkit_user_count_folded TO ' || grantee;
			END LOOP;
		END $$`,
		`DROP RULE userkit_count_users_insert ON userkit_users`,
		`CREATE OR REPLACE FUNCTION userkit_count_users_update() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF OLD.count_epoch <= (SELECT epoch FROM userkit_user_count_folded) THEN
				INSERT INTO userkit_user_count_deltas (role, status, account_id, n)
					VALUES (NEW.role, NEW.status, NEW.account_id, 1), (OLD.role, OLD.status, OLD.account_id, -1);
			END IF;
			RETURN NULL;
		END $$`,
		`CREATE OR REPLACE FUNCTION userkit_count_users_delete() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO userkit_user_count_deltas (role, status, account_id, n)
				SELECT role, status, account_id, -count(*) FROM userkit_old_users
				WHERE count_epoch <= (SELECT epoch FROM userkit_user_count_folded)
				GROUP BY 1, 2, 3;
			RETURN NULL;
		END $$`,
	},
}

// countUsersFunction returns migration 5's statement creating the trigger
// function name, which adds to userkit_user_counts the deltas (rows of role,
// status, account_id and delta) of one change to userkit_users, to the counts
// of both kinds, in the key order of the counts' primary key. It
// is part of a released migration: it must never change.
func countUsersFunction(name, deltas string) string {
	return `CREATE FUNCTION ` + name + `() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO userkit_user_counts AS c (kind, role, status, account_id, shard, n)
			SELECT k,
				CASE WHEN k & 1 <> 0 THEN d.role ELSE '' END,
				CASE WHEN k & 2 <> 0 THEN d.status ELSE '' END,
				CASE WHEN k & 4 <> 0 THEN d.account_id ELSE '' END,
				pg_backend_pid() % 16, sum(d.delta)
			FROM (` + deltas + `) AS d (role, status, account_id, delta)
				CROSS JOIN (VALUES (3), (4)) AS kinds (k)
			WHERE k = 3 OR d.account_id <> ''
			GROUP BY 1, 2, 3, 4
			HAVING sum(d.delta) <> 0
			ORDER BY 1, 2, 3, 4
			ON CONFLICT (kind, role, status, account_id, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
			RETURN NULL;
		END $$`
}

// searchText is the expression userkit_users_search_idx indexes: the email,
// the username and the lower-cased "first last", joined by line feeds. Every
// text Match.Search looks in (users.SearchFields) is a substring of it, so a
// user whose fields contain a term has a searchText containing it too. The
// reverse does not hold (a term may span a line feed, or the space when a
// name is empty), so the query checks the fields themselves as well. The index
// is used only by queries that spell this expression exactly: it must never
// change (a different one needs a new index in a new migration).
const searchText = `email || E'\n' || username || E'\n' || first_name_lower || ' ' || last_name_lower`

// schemaVersion is the version of the tables this package writes. New migrates
// older tables to it and refuses newer ones with ErrSchemaTooNew.
func schemaVersion() int { return len(migrations) }

// ErrSchemaTooNew is returned by New when the tables were migrated by a newer
// version of this package, whose layout this one cannot read or write. New
// leaves them untouched.
var ErrSchemaTooNew = errors.New("postgres: tables written by a newer version of this package")

// migrate creates or upgrades the tables in one transaction, holding an advisory
// lock so that processes starting at once migrate one after the other: the first
// creates the tables, the others find them current. Current tables need no
// privilege but SELECT on userkit_schema_version.
func migrate(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	var enc string
	if err := tx.QueryRow(ctx, `SELECT current_setting('server_encoding')`).Scan(&enc); err != nil {
		return fmt.Errorf("read server_encoding: %w", err)
	}
	if enc != "UTF8" {
		// Other encodings cannot hold every name and email a user may have.
		return fmt.Errorf("database encoding is %s; the store needs UTF8", enc)
	}
	// Look before creating anything, so that a role that may only read and
	// write the tables (no CREATE on the schema) can open current tables.
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('userkit_schema_version') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("look for userkit_schema_version: %w", err)
	}
	have := 0
	if exists {
		err := tx.QueryRow(ctx, `SELECT version FROM userkit_schema_version`).Scan(&have)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read schema version: %w", err)
		}
	}
	want := schemaVersion()
	switch {
	case have > want:
		return fmt.Errorf("%w: schema version %d, this package knows up to %d", ErrSchemaTooNew, have, want)
	case have == want:
		return nil
	}
	if !exists {
		if _, err := tx.Exec(ctx, `CREATE TABLE userkit_schema_version (
				singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
				version   integer NOT NULL
			)`); err != nil {
			return fmt.Errorf("create userkit_schema_version: %w", err)
		}
	}
	if have < 2 {
		if err := ensureTrigram(ctx, tx); err != nil {
			return err
		}
	}
	for v := have; v < want; v++ {
		for _, stmt := range migrations[v] {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("migration to version %d: %w", v+1, err)
			}
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO userkit_schema_version (version) VALUES ($1)
		ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version`, want); err != nil {
		return fmt.Errorf("write schema version: %w", err)
	}
	return nil
}

// ensureTrigram makes sure the pg_trgm extension, which the search index of
// version 2 needs, is installed, and puts the schema holding it on the
// transaction's search_path (after the tables' schema) so that its operator
// class gin_trgm_ops can be named. If it is not installed it creates it, in the
// tables' schema: pg_trgm is a trusted extension, so any role that may create
// tables in the database may create it. If the server does not have it (it is
// in PostgreSQL's contrib, which most packages and hosted services include) or
// the role may not create it, it returns an error saying so, and the migration
// changes nothing; an administrator can then run CREATE EXTENSION pg_trgm, in
// any schema, and New will use it.
func ensureTrigram(ctx context.Context, tx pgx.Tx) error {
	var schema string
	err := tx.QueryRow(ctx, `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
		WHERE e.extname = 'pg_trgm'`).Scan(&schema)
	if errors.Is(err, pgx.ErrNoRows) {
		var available bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm')`).Scan(&available); err != nil {
			return fmt.Errorf("look for the pg_trgm extension: %w", err)
		}
		if !available {
			return errors.New("the search index needs the pg_trgm extension, which this server does not have: install PostgreSQL's contrib package")
		}
		if _, err := tx.Exec(ctx, `CREATE EXTENSION pg_trgm`); err != nil {
			return fmt.Errorf("the search index needs the pg_trgm extension; creating it failed (an administrator can run CREATE EXTENSION pg_trgm): %w", err)
		}
		err = tx.QueryRow(ctx, `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
			WHERE e.extname = 'pg_trgm'`).Scan(&schema)
	}
	if err != nil {
		return fmt.Errorf("look for the pg_trgm extension: %w", err)
	}
	_, err = tx.Exec(ctx, `SELECT set_config('search_path', current_setting('search_path') || ', ' || quote_ident($1), true)`, schema)
	if err != nil {
		return fmt.Errorf("put pg_trgm's schema on search_path: %w", err)
	}
	return nil
}
