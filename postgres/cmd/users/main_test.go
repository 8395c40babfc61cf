package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/userkit/users/internal/cli/clitest"
)

// The tests build the command and run it as a user would: on a bbolt file
// with -db and on a PostgreSQL schema of its own with $USERS_DSN, from the
// server in USERS_POSTGRES_DSN (.ci/postgres.sh starts one).

// build builds the command into a temporary directory and returns its path.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "users")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// schemaDSN returns the DSN of a fresh schema on the test server, dropped when
// the test ends. Without USERS_POSTGRES_DSN the test fails: the command on
// PostgreSQL is tested against PostgreSQL or not at all.
func schemaDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("USERS_POSTGRES_DSN")
	if dsn == "" {
		t.Fatal("USERS_POSTGRES_DSN is not set: run the tests with bash .ci/postgres.sh from the repository root")
	}
	admin, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	b := make([]byte, 8)
	rand.Read(b)
	name := "userkit_cli_" + hex.EncodeToString(b)
	// The search index's extension stays in public, where every schema finds it.
	for _, sql := range []string{`CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public`, "CREATE SCHEMA " + pgx.Identifier{name}.Sanitize()} {
		if _, err := admin.Exec(t.Context(), sql); err != nil && !strings.Contains(err.Error(), "23505") {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + name
}

// env is the command's environment: the test's without USERS_*, a cheap
// bcrypt cost, and kv.
func env(kv ...string) []string {
	var out []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "USERS_") {
			out = append(out, e)
		}
	}
	return append(append(out, "USERS_BCRYPT_COST=10"), kv...)
}

// want runs the command and fails the test unless it exits with code.
func want(t *testing.T, bin string, code int, env []string, stdin string, args ...string) clitest.Result {
	t.Helper()
	r := clitest.Run(t, bin, env, stdin, args...)
	if r.Code != code {
		t.Fatalf("users %s: want exit %d\n%s", strings.Join(args, " "), code, r)
	}
	return r
}

// TestLosslessRoundTripPostgres moves the users of the lossless fixture from a
// bbolt file to PostgreSQL and back: export from bbolt, import into an empty
// schema, export from PostgreSQL, and the two exports must be the same bytes,
// IDs included; then that export into an empty bbolt file gives them back too.
func TestLosslessRoundTripPostgres(t *testing.T) {
	bin := build(t)
	pg := env("USERS_DSN=" + schemaDSN(t))
	bolt := env()
	dir := t.TempDir()
	fixture := filepath.Join("..", "..", "..", clitest.Fixture)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	want(t, bin, 0, bolt, "", "import", "-db", filepath.Join(dir, "first.db"), "-allow-roles", "admin", fixture)
	want(t, bin, 0, bolt, "", "export", "-db", filepath.Join(dir, "first.db"), "-with-hashes", "-o", filepath.Join(dir, "bolt.jsonl"))
	r := want(t, bin, 0, pg, "", "import", "-allow-roles", "admin", filepath.Join(dir, "bolt.jsonl"))
	if !strings.HasPrefix(r.Stdout, "5 rows: 5 imported, 0 exists, 0 refused\n") {
		t.Fatalf("import into PostgreSQL said %q", r.Stdout)
	}
	want(t, bin, 0, pg, "", "export", "-with-hashes", "-o", filepath.Join(dir, "pg.jsonl"))
	f, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	clitest.WantLossless(t, f, read("bolt.jsonl"), read("pg.jsonl"))

	want(t, bin, 0, bolt, "", "import", "-db", filepath.Join(dir, "back.db"), "-allow-roles", "admin", filepath.Join(dir, "pg.jsonl"))
	want(t, bin, 0, bolt, "", "export", "-db", filepath.Join(dir, "back.db"), "-with-hashes", "-o", filepath.Join(dir, "back.jsonl"))
	clitest.WantLossless(t, f, read("pg.jsonl"), read("back.jsonl"))

	r = want(t, bin, 0, pg, "", "import", "-allow-roles", "admin", filepath.Join(dir, "bolt.jsonl"))
	if want := "5 rows: 0 imported, 5 exists, 0 refused\n"; r.Stdout != want {
		t.Errorf("a second import into PostgreSQL said %q, want %q", r.Stdout, want)
	}
}

// TestCommandsPostgres runs every command on PostgreSQL as smoke.sh runs it on
// a file: create-admin, import, list, find, get, set-role, suspend, activate,
// unlock, reset-password, sessions, stats, remove, and check, which compares
// the kept counts with the users; backup is a bbolt file's and refuses with
// exit code 2 and a clear message.
func TestCommandsPostgres(t *testing.T) {
	bin := build(t)
	dsn := schemaDSN(t)
	pg := env("USERS_DSN=" + dsn)

	r := want(t, bin, 0, env("USERS_PASSWORD=a long admin password"), "", "create-admin", "-dsn", dsn, "-username", "root", "admin@example.com")
	if !strings.HasPrefix(r.Stdout, "created admin admin@example.com") {
		t.Errorf("create-admin said %q", r.Stdout)
	}
	r = want(t, bin, 0, pg, "email,username,first_name,external_id\nada@example.com,ada,Ada,old-1\n", "import", "-format", "csv")
	if !strings.HasPrefix(r.Stdout, "1 rows: 1 imported") {
		t.Errorf("import said %q", r.Stdout)
	}
	var outputs strings.Builder
	for _, c := range []struct {
		args []string
		has  string
	}{
		{[]string{"list"}, "ada@example.com"},
		{[]string{"find", "ada", "-json"}, `"external_id":"old-1"`},
		{[]string{"get", "ext:old-1"}, "ada@example.com (not verified)"},
		{[]string{"get", "root"}, "admin@example.com (verified"},
		{[]string{"set-role", "ada", "viewer"}, "role viewer"},
		{[]string{"suspend", "ada"}, "suspended"},
		{[]string{"activate", "ada"}, "active"},
		{[]string{"unlock", "ada"}, "was not locked"},
		{[]string{"reset-password", "ada"}, "password-reset token for ada@example.com"},
		{[]string{"sessions", "ada"}, "ID"},
		{[]string{"stats"}, "PostgreSQL database"},
		{[]string{"remove", "-yes", "ada"}, "removed"},
	} {
		r := want(t, bin, 0, pg, "", c.args...)
		outputs.WriteString(r.Stdout + r.Stderr)
		if !strings.Contains(r.Stdout+r.Stderr, c.has) {
			t.Errorf("users %s: output lacks %q:\n%s", strings.Join(c.args, " "), c.has, r)
		}
	}
	want(t, bin, 4, pg, "", "get", "ada")
	r = want(t, bin, 2, pg, "", "backup", "-o", filepath.Join(t.TempDir(), "b"))
	outputs.WriteString(r.Stderr)
	if !strings.Contains(r.Stderr, "bbolt file") || !strings.Contains(r.Stderr, "pg_dump") {
		t.Errorf("users backup on PostgreSQL: %q, want it to say it is a bbolt file's, and what to use", r.Stderr)
	}

	// check compares the kept user counts with the users: right after the
	// commands, whose creates and changes still wait to be folded into the
	// counters, and
	// wrong once a count is changed behind the store's back.
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var deltas int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM userkit_user_count_deltas`).Scan(&deltas); err != nil || deltas == 0 {
		t.Errorf("%d count deltas wait after the commands, %v; the check below wants some", deltas, err)
	}
	var unfolded int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM userkit_users WHERE count_epoch > userkit_user_count_folded()`).Scan(&unfolded); err != nil || unfolded == 0 {
		t.Errorf("%d users created since the last fold after the commands, %v; the check below wants some", unfolded, err)
	}
	r = want(t, bin, 0, pg, "", "check")
	if !strings.HasPrefix(r.Stdout, "ok: PostgreSQL database") || !strings.Contains(r.Stdout, "(1 users") {
		t.Errorf("check on PostgreSQL: %s", r)
	}
	if _, err := pool.Exec(t.Context(), `INSERT INTO userkit_user_counts AS c (kind, role, status, account_id, shard, n)
		VALUES (3, 'admin', 'active', '', 15, 1) ON CONFLICT (kind, role, status, account_id, shard) DO UPDATE SET n = c.n + 1`); err != nil {
		t.Fatal(err)
	}
	r = want(t, bin, 5, pg, "", "check")
	if !strings.Contains(r.Stderr, `role "admin", status "active": 2 users counted, 1 stored`) {
		t.Errorf("check of a wrong count: %s", r)
	}
	r = want(t, bin, 2, pg, "", "list", "-dsn", dsn, "-db", "x.db")
	if !strings.Contains(r.Stderr, "not both") {
		t.Errorf("-db with -dsn: %q", r.Stderr)
	}
	// An explicit -db wins over $USERS_DSN.
	if r := want(t, bin, 1, pg, "", "list", "-db", filepath.Join(t.TempDir(), "none.db")); !strings.Contains(r.Stderr, "does not exist") {
		t.Errorf("-db with $USERS_DSN set: %q, want the file's error", r.Stderr)
	}
	outputs.WriteString(r.Stdout + r.Stderr)
	if creds := dsn[strings.Index(dsn, "://")+3 : strings.Index(dsn, "@")]; strings.Contains(outputs.String(), creds) {
		t.Errorf("the command printed the DSN's credentials:\n%s", outputs.String())
	}
}
