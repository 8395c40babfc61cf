package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/userkit/users"
)

// explainRows is how many users TestExplain loads: enough that, without the
// indexes, the planner reads the whole table for every filtered query.
const explainRows = 30000

// TestExplain checks, with EXPLAIN, that the statements ListUsers, CountUsers,
// GetUsers and GetUsersByEmail send are served by indexes and never read the
// whole of userkit_users, on a table of explainRows users after ANALYZE and
// VACUUM, where the planner is free to choose (enable_seqscan stays on).
// ListUsers and CountUsers always get a custom plan (see queryArgs), which is
// what is explained for them; GetUsers and GetUsersByEmail go through pgx's
// statement cache, so their generic plan, which PostgreSQL may use after five
// executions, is explained too. Run with -v to see the plans.
func TestExplain(t *testing.T) {
	dsn := os.Getenv("USERS_POSTGRES_DSN")
	if dsn == "" {
		t.Fatal("USERS_POSTGRES_DSN is not set: run bash .ci/postgres.sh from the repository root")
	}
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(t.Context())
	b := make([]byte, 8)
	rand.Read(b)
	schema := "userkit_explain_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public; CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			_, err = conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`)
			conn.Close(ctx)
		}
		if err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := New(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	// Every 100th user an admin, about every 100th suspended (every 10th
	// admin), 50 users per account,
	// 1,000 first names and 5,000 last names, one "Quagmire"; every 1,000th
	// user active (at time i), the others never.
	if _, err := pool.Exec(ctx, `INSERT INTO userkit_users (`+strings.Join(userWriteColumns, ", ")+`)
		SELECT lpad(i::text, 26, '0'), 'user' || i || '@example.com', 'user' || i, false, 0,
			'First' || i % 1000, CASE WHEN i = 12345 THEN 'Quagmire' ELSE 'Last' || i % 5000 END,
			CASE WHEN i % 100 = 0 THEN 'admin' ELSE 'user' END,
			CASE WHEN i % 100 = 7 OR i % 1000 = 0 THEN 'suspended' ELSE 'active' END,
			'', 'acct' || i / 50, NULL, i, i, 0, 'hash', 0,
			CASE WHEN i % 1000 = 0 THEN i ELSE -9223372036854775808 END, 'ext-' || i,
			'first' || i % 1000, CASE WHEN i = 12345 THEN 'quagmire' ELSE 'last' || i % 5000 END
		FROM generate_series(1, $1::int) AS i`, explainRows); err != nil {
		t.Fatal(err)
	}
	// As many audit entries, 10 per subject, 4 types, 100 actors.
	if _, err := pool.Exec(ctx, `INSERT INTO userkit_audit (`+auditCols+`)
		SELECT lpad(i::text, 26, '0'), i, (ARRAY['login.succeeded', 'login.failed', 'user.updated', 'session.logout'])[i % 4 + 1],
			'u' || i % 3000, 'a' || i % 100, '', '', '', '', '', NULL, NULL
		FROM generate_series(1, $1::int) AS i`, explainRows); err != nil {
		t.Fatal(err)
	}
	// One MFA challenge per user, expiring at time i.
	if _, err := pool.Exec(ctx, `INSERT INTO userkit_mfa_challenges (`+challengeCols+`)
		SELECT decode(lpad(i::text, 64, '0'), 'hex'), lpad(i::text, 26, '0'), 0, '{password}', 0, i, i
		FROM generate_series(1, $1::int) AS i`, explainRows); err != nil {
		t.Fatal(err)
	}
	// As many passkey ceremonies, expiring at time i.
	if _, err := pool.Exec(ctx, `INSERT INTO userkit_ceremonies (`+ceremonyCols+`)
		SELECT decode(lpad(i::text, 64, '0'), 'hex'), 'passkey_login', '', i, i
		FROM generate_series(1, $1::int) AS i`, explainRows); err != nil {
		t.Fatal(err)
	}
	// Fold the users inserted above into the counters, as a count would, and
	// create a few after, which the kept counts read through the index.
	if err := s.foldCounts(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO userkit_users (`+strings.Join(userWriteColumns, ", ")+`)
		SELECT 'new' || i, 'new' || i || '@example.com', 'new' || i, false, 0, '', '', 'user', 'active', '', '',
			NULL, 0, 0, 0, 'hash', 0, 0, NULL, '', ''
		FROM generate_series(1, 10) AS i`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE userkit_users, userkit_audit, userkit_mfa_challenges, userkit_ceremonies`); err != nil {
		t.Fatal(err)
	}

	listOffset := func(m users.Match, after, before string, offset int) func() (string, []any) {
		return func() (string, []any) {
			sql, args, _ := listSQL(users.ListQuery{Match: m, After: after, Before: before, Offset: offset, Limit: 21})
			return sql, args
		}
	}
	list := func(m users.Match, after, before string) func() (string, []any) {
		return listOffset(m, after, before, 0)
	}
	audit := func(q users.AuditQuery) func() (string, []any) {
		return func() (string, []any) {
			q.Limit = 21
			return auditSQL(q)
		}
	}
	count := func(m users.Match) func() (string, []any) {
		return func() (string, []any) {
			sql, args, _ := countSQL(m)
			return sql, args
		}
	}
	mid := strings.Repeat("0", 21) + "15000"
	adminMatch, suspended := users.Match{Role: users.RoleAdmin}, users.Match{Status: users.StatusSuspended}
	for _, c := range []struct {
		name  string
		query func() (string, []any)
		index string // the index the plan must use
	}{
		{"FirstPage", list(users.Match{}, "", ""), "userkit_users_pkey"},
		{"RoleFirstPage", list(adminMatch, "", ""), "userkit_users_role_idx"},
		{"DeepOffset", listOffset(users.Match{}, "", "", explainRows/2), "Index Only Scan using userkit_users_pkey"},
		{"RoleDeepOffsetBefore", listOffset(adminMatch, "", mid, 100), "Index Only Scan Backward using userkit_users_role_idx"},
		{"RoleAfter", list(adminMatch, mid, ""), "userkit_users_role_idx"},
		{"RoleBefore", list(adminMatch, "", mid), "userkit_users_role_idx"},
		{"StatusFirstPage", list(suspended, "", ""), "userkit_users_status_idx"},
		{"RoleStatusFirstPage", list(users.Match{Role: users.RoleAdmin, Status: users.StatusSuspended}, "", ""), "userkit_users_role_status_idx"},
		{"AccountFirstPage", list(users.Match{AccountID: "acct77"}, "", ""), "userkit_users_account_id_idx"},
		{"SearchFirstPage", list(users.Match{Search: "quagmire"}, "", ""), "userkit_users_search_idx"},
		{"SearchEmailFirstPage", list(users.Match{Search: "user12345@"}, "", ""), "userkit_users_search_idx"},
		{"SearchFullNameFirstPage", list(users.Match{Search: "first345 quag"}, "", ""), "userkit_users_search_idx"},
		{"RoleCount", count(adminMatch), "userkit_users_role"},
		{"StatusCount", count(suspended), "userkit_users_status_idx"},
		{"RoleStatusCount", count(users.Match{Role: users.RoleAdmin, Status: users.StatusSuspended}), "userkit_users_role_status_idx"},
		{"AccountCount", count(users.Match{AccountID: "acct77"}), "userkit_users_account_id_idx"},
		{"SearchCount", count(users.Match{Search: "quagmire"}), "userkit_users_search_idx"},
		{"ActiveSinceFirstPage", list(users.Match{ActiveSince: time.Unix(0, 100)}, "", ""), "userkit_users_last_active_idx"},
		{"ActiveSinceCount", count(users.Match{ActiveSince: time.Unix(0, 100)}), "userkit_users_last_active_idx"},
		{"InactiveSinceFirstPage", list(users.Match{InactiveSince: time.Unix(0, 100)}, "", ""), "userkit_users_pkey"},
		{"AuditFirstPage", audit(users.AuditQuery{}), "Index Scan Backward using userkit_audit_pkey"},
		{"AuditUserPage", audit(users.AuditQuery{UserID: "u77"}), "userkit_audit_user_idx"},
		{"AuditActorPage", audit(users.AuditQuery{ActorID: "a7", Before: strings.Repeat("0", 21) + "15000"}), "userkit_audit_actor_idx"},
		{"AuditTypePage", audit(users.AuditQuery{Types: []users.EventType{users.EventLoginFailed}}), "userkit_audit_"},
		{"AuditTimeRange", audit(users.AuditQuery{Since: time.Unix(0, 100), Until: time.Unix(0, 200)}), "userkit_audit_"},
		{"AuditPurge", func() (string, []any) { return sqlPurgeAudit, []any{int64(100), int64(purgeBatch)} }, "userkit_audit_time_idx"},
		{"ChallengePurge", func() (string, []any) {
			return sqlPurge("userkit_mfa_challenges", "hash"), []any{int64(100), int64(purgeBatch)}
		}, "userkit_mfa_challenges_expires_at_idx"},
		{"CeremonyPurge", func() (string, []any) {
			return sqlPurge("userkit_ceremonies", "hash"), []any{int64(100), int64(purgeBatch)}
		}, "userkit_ceremonies_expires_at_idx"},
		{"UserChallengesDelete", func() (string, []any) {
			return `DELETE FROM userkit_mfa_challenges WHERE user_id = $1`, []any{mid}
		}, "userkit_mfa_challenges_user_idx"},
		{"GetUsers", func() (string, []any) {
			return sqlSelectUser + ` WHERE id = ANY ($1)`, []any{[]string{mid, "x"}}
		}, "userkit_users_pkey"},
		{"CreateUsersKeyHolders", func() (string, []any) {
			return sqlKeyHolders, []any{[]string{mid, "x"}, []string{"user1@example.com", "x"}, []string{"user1", "x"}, []string{"ext-1", "x"}}
		}, "userkit_users_username_key"},
		{"CreateUsersExternalHolders", func() (string, []any) {
			return sqlKeyHolders, []any{[]string{mid, "x"}, []string{"user1@example.com", "x"}, []string{"user1", "x"}, []string{"ext-1", "x"}}
		}, "userkit_users_external_id_key"},
		{"GetUserByExternalID", func() (string, []any) {
			return sqlSelectUser + ` WHERE external_id = $1`, []any{"ext-77"}
		}, "userkit_users_external_id_key"},
		{"GetUsersByEmail", func() (string, []any) {
			return sqlSelectUser + ` WHERE email = ANY ($1)`, []any{[]string{"user1@example.com", "x"}}
		}, "userkit_users_email_key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sql, args := c.query()
			generic := true
			if len(args) > 0 {
				if _, ok := args[0].(pgx.QueryExecMode); ok {
					args, generic = args[1:], false // planned anew each time: never generic
				}
			}
			check := func(kind, plan string) {
				t.Helper()
				t.Logf("%s plan:\n%s", kind, plan)
				if strings.Contains(plan, "Seq Scan") {
					t.Errorf("%s plan reads the whole table:\n%s", kind, plan)
				}
				if !strings.Contains(plan, c.index) {
					t.Errorf("%s plan does not use %s:\n%s", kind, c.index, plan)
				}
			}
			check("custom", explain(t, pool, "EXPLAIN "+sql, args))
			if generic {
				check("generic", explainGeneric(t, pool, sql, args))
			}
		})
	}
	t.Run("KeptCount", func(t *testing.T) {
		// The users created since the last fold are read through
		// userkit_users_count_epoch_idx, never by reading the table (the
		// few rows of the counters and deltas may be read whole).
		for _, m := range []users.Match{{}, {Role: users.RoleAdmin}, {AccountID: "acct77"}} {
			sql, args, _ := keptCount(m)
			check := func(kind, plan string) {
				t.Helper()
				t.Logf("CountUsers(%+v) %s plan:\n%s", m, kind, plan)
				if strings.Contains(plan, "Seq Scan on userkit_users ") || !strings.Contains(plan, "userkit_users_count_epoch_idx") {
					t.Errorf("CountUsers(%+v) %s plan does not read userkit_users through userkit_users_count_epoch_idx:\n%s", m, kind, plan)
				}
				// The planner must know the folded epoch, and so how few
				// users are above it (10 of explainRows): a bound it cannot
				// see is estimated at a third of the table, which at a
				// larger size it reads whole instead.
				est := regexp.MustCompile(`userkit_users_count_epoch_idx on userkit_users +\(cost=[0-9.]+ rows=([0-9]+)`).FindStringSubmatch(plan)
				if len(est) < 2 {
					t.Fatalf("no estimate of userkit_users_count_epoch_idx in the plan:\n%s", plan)
				}
				if n, err := strconv.Atoi(est[1]); err != nil || n > 100 {
					t.Errorf("CountUsers(%+v) %s plan expects %v users above the folded epoch; want at most 100 (10 are):\n%s", m, kind, est, plan)
				}
			}
			check("custom", explain(t, pool, "EXPLAIN "+sql, args))
			if len(args) > 0 {
				check("generic", explainGeneric(t, pool, sql, args))
			}
		}
	})
	t.Run("WithoutTheIndexes", func(t *testing.T) {
		// The control: without version 2's indexes, in a transaction rolled
		// back, the planner reads the whole table at this size.
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `DROP INDEX userkit_users_role_idx, userkit_users_role_status_idx,
			userkit_users_status_idx, userkit_users_search_idx`); err != nil {
			t.Fatal(err)
		}
		for _, m := range []users.Match{{Role: users.RoleAdmin}, {Search: "quagmire"}} {
			sql, args, _ := countSQL(m)
			rows, err := tx.Query(ctx, "EXPLAIN "+sql, append([]any{pgx.QueryExecModeSimpleProtocol}, args[1:]...)...)
			if err != nil {
				t.Fatal(err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			plan := strings.Join(lines, "\n")
			t.Logf("CountUsers(%+v) without the indexes:\n%s", m, plan)
			if !strings.Contains(plan, "Seq Scan on userkit_users") {
				t.Errorf("at %d users the planner should read the whole table without the indexes; the test's table is too small to show they matter", explainRows)
			}
		}
	})
	t.Run("CountAll", func(t *testing.T) {
		// Not asserted: counting every user reads a whole index or the table,
		// which is why CountUsers sums the kept counts instead (keptCount),
		// as it does for the role, status and account filters above, whose
		// countSQL it runs only for combinations the counts do not keep
		// (TestStore_KeptCounts checks the counts against the rows).
		t.Logf("plan:\n%s", explain(t, pool, `EXPLAIN SELECT count(*) FROM userkit_users`, nil))
	})
}

// explain runs an EXPLAIN with args as literals (the simple protocol), which
// plans as a custom plan for those values does.
func explain(t *testing.T, pool *pgxpool.Pool, sql string, args []any) string {
	t.Helper()
	rows, err := pool.Query(t.Context(), sql, append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return strings.Join(lines, "\n")
}

// explainGeneric prepares sql and explains its generic plan, the one
// PostgreSQL may cache for a statement pgx prepared.
func explainGeneric(t *testing.T, pool *pgxpool.Pool, sql string, args []any) string {
	t.Helper()
	conn, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(t.Context(), `SET plan_cache_mode = force_generic_plan; PREPARE explained AS `+sql); err != nil {
		t.Fatalf("prepare %s: %v", sql, err)
	}
	defer conn.Exec(t.Context(), `DEALLOCATE explained; RESET plan_cache_mode`)
	ps := make([]string, len(args))
	for i := range args {
		ps[i] = "$" + string(rune('1'+i))
	}
	rows, err := conn.Query(t.Context(), `EXPLAIN EXECUTE explained (`+strings.Join(ps, ", ")+`)`,
		append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
	if err != nil {
		t.Fatalf("explain %s: %v", sql, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}
