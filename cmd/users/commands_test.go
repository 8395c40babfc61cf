package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users"
)

// invocations has a run of every command that would succeed on a file made by
// newDB. TestFileInUse checks that it covers every command of the help.
var invocations = map[string][]string{
	"create-admin":   {"create-admin", "new@example.com"},
	"list":           {"list"},
	"find":           {"find", "admin"},
	"get":            {"get", "admin@example.com"},
	"set-role":       {"set-role", "admin@example.com", "admin"},
	"suspend":        {"suspend", "admin@example.com"},
	"activate":       {"activate", "admin@example.com"},
	"unlock":         {"unlock", "admin@example.com"},
	"remove":         {"remove", "-yes", "admin@example.com"},
	"reset-password": {"reset-password", "admin@example.com"},
	"sessions":       {"sessions", "admin@example.com"},
	"import":         {"import", "-"},
	"export":         {"export"},
	"check":          {"check"},
	"backup":         {"backup", "-o", "-"},
	"stats":          {"stats"},
}

// helpCommands lists the commands "users help" shows.
func helpCommands(tb testing.TB) []string {
	tb.Helper()
	r := must(tb, 0, nil, "", "help")
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\t(\S+)\s`).FindAllStringSubmatch(r.stdout, -1) {
		names = append(names, m[1])
	}
	return names
}

// While another process holds the file, every command fails within -timeout
// with exit code 3 and says what to do. The test process holds it here.
func TestFileInUse(t *testing.T) {
	db := newDB(t)
	_, _, _ = openDB(t, db) // holds the lock until the test ends

	names := helpCommands(t)
	if len(names) < 15 {
		t.Fatalf("help lists %d commands: %v", len(names), names)
	}
	for _, name := range names {
		args, ok := invocations[name]
		if !ok {
			t.Errorf("command %s has no invocation in this test", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := append(slices.Clone(args), "-db", db, "-timeout", "100ms")
			r := must(t, exitInUse, []string{"USERS_PASSWORD=" + adminPassword}, "", args...)
			for _, want := range []string{db + " is in use by another process", "Stop that process and retry", "BoltStore.Backup"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
				}
			}
			if r.stdout != "" {
				t.Errorf("stdout: %q", r.stdout)
			}
		})
	}
}

// The same invocations succeed once the file is free: the test above fails for
// the lock, not for its arguments.
func TestEveryCommandRuns(t *testing.T) {
	for _, name := range helpCommands(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := newDB(t)
			args := append(slices.Clone(invocations[name]), "-db", db)
			must(t, 0, []string{"USERS_PASSWORD=" + adminPassword}, "", args...)
			must(t, 0, nil, "", name, "-h")
		})
	}
}

func TestUsageAndExitCodes(t *testing.T) {
	db := newDB(t)
	for _, c := range []struct {
		name   string
		code   int
		args   []string
		stderr string
	}{
		{"NoCommand", exitUsage, nil, "usage: users <command>"},
		{"UnknownCommand", exitUsage, []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"UnknownFlag", exitUsage, []string{"list", "-db", db, "-colour"}, "flag provided but not defined: -colour"},
		{"MissingArgument", exitUsage, []string{"get", "-db", db}, "want one USER"},
		{"ExtraArgument", exitUsage, []string{"list", "-db", db, "stray"}, `unexpected argument "stray"`},
		{"BackupWithoutOutput", exitUsage, []string{"backup", "-db", db}, "want -o FILE"},
		{"NotFound", exitNotFound, []string{"get", "-db", db, "nobody@example.com"}, `no user "nobody@example.com"`},
		{"NotFoundByID", exitNotFound, []string{"suspend", "-db", db, "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, "not found"},
		{"MissingFile", exitFailure, []string{"list", "-db", db + ".typo"}, "does not exist"},
		{"BadRole", exitFailure, []string{"set-role", "-db", db, "admin@example.com", "overlord"}, "invalid role"},
		{"BadCost", exitUsage, []string{"stats", "-db", db}, "USERS_BCRYPT_COST"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var env []string
			if c.name == "BadCost" {
				env = []string{"USERS_BCRYPT_COST=4"} // below 10: refused, not made insecure
			}
			r := must(t, c.code, env, "", c.args...)
			if !strings.Contains(r.stderr, c.stderr) {
				t.Errorf("stderr does not say %q:\n%s", c.stderr, r.stderr)
			}
		})
	}
	if _, err := os.Stat(db + ".typo"); !os.IsNotExist(err) {
		t.Errorf("a command on a missing file created it (%v)", err)
	}

	t.Run("Help", func(t *testing.T) {
		r := must(t, 0, nil, "", "help", "import")
		if !strings.Contains(r.stdout, "usage: users import [flags] [FILE]") || !strings.Contains(r.stdout, "-format csv") {
			t.Errorf("help import:\n%s", r.stdout)
		}
		r = must(t, 0, nil, "", "get", "-h")
		if !strings.Contains(r.stderr, "usage: users get [flags] USER") || !strings.Contains(r.stderr, "-json") {
			t.Errorf("get -h:\n%s", r.stderr)
		}
	})

	t.Run("Corrupt", func(t *testing.T) {
		// Drop the email index entry of the admin behind the store's back.
		bdb, err := bbolt.Open(db, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = bdb.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte("userkit.users.email")).Delete([]byte("admin@example.com"))
		})
		bdb.Close()
		if err != nil {
			t.Fatal(err)
		}
		r := must(t, exitCorrupt, nil, "", "check", "-db", db)
		if !strings.Contains(r.stderr, "inconsistent") {
			t.Errorf("check of a damaged file:\n%s", r.stderr)
		}
	})
}

func TestAccountCommands(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := newDB(t)
	m, _, closeDB := openDB(t, db)
	if _, err := m.Create(ctx, users.NewUser{Email: "ada@example.com", Username: "ada", Password: "difference engine 1822"}); err != nil {
		t.Fatal(err)
	}
	s1, err := m.Login(ctx, "ada", "difference engine 1822")
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := m.Login(ctx, "ada", "difference engine 1822")
	closeDB()

	r := must(t, 0, nil, "", "sessions", "-db", db, "ada", "-json")
	var listed []users.Session
	for _, l := range lines(r.stdout) {
		var s users.Session
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatal(err)
		}
		listed = append(listed, s)
	}
	if len(listed) != 2 || listed[0].ID != s1.ID || listed[1].ID != s2.ID || listed[0].Token != "" {
		t.Fatalf("sessions -json: %v", r.stdout)
	}
	must(t, 0, nil, "", "sessions", "-db", db, "-revoke", s1.ID, "ada@example.com")
	must(t, exitNotFound, nil, "", "sessions", "-db", db, "-revoke", s1.ID, "ada@example.com")
	r = must(t, 0, nil, "", "get", "-db", db, "ada")
	if !strings.Contains(r.stdout, "1 live") || !strings.Contains(r.stdout, "ada@example.com (not verified)") {
		t.Errorf("get after revoking one of two sessions:\n%s", r.stdout)
	}

	// unlock: a locked account logs in again, and the count starts over.
	m, _, closeDB = openDB(t, db)
	for range 10 {
		m.Login(ctx, "ada", "not the password")
	}
	if _, err := m.Login(ctx, "ada", "difference engine 1822"); !errors.Is(err, users.ErrAccountLocked) {
		t.Fatalf("setup: login after 10 failures: %v, want ErrAccountLocked", err)
	}
	closeDB()
	r = must(t, 0, nil, "", "unlock", "-db", db, "ada")
	if !strings.HasPrefix(r.stdout, "ada@example.com: unlocked (was locked until ") || !strings.Contains(r.stdout, "after 10 failed logins in a row") {
		t.Errorf("unlock said %q", r.stdout)
	}
	r = must(t, 0, nil, "", "unlock", "-db", db, "ada")
	if r.stdout != "ada@example.com: was not locked (0 failed logins in a row cleared)\n" {
		t.Errorf("unlock again said %q", r.stdout)
	}
	m, _, closeDB = openDB(t, db)
	if st, err := m.LockState(ctx, userID(t, m, "ada")); err != nil || st.Locked || st.ConsecutiveFailures != 0 {
		t.Errorf("LockState after unlock: %+v, %v", st, err)
	}
	if _, err := m.Login(ctx, "ada", "difference engine 1822"); err != nil {
		t.Errorf("login after unlock: %v", err)
	}
	closeDB()

	must(t, 0, nil, "", "set-role", "-db", db, "ada", "viewer")
	r = must(t, 0, nil, "", "suspend", "-db", db, "ada")
	if r.stdout != "ada@example.com: suspended\n" {
		t.Errorf("suspend said %q", r.stdout)
	}
	m, _, closeDB = openDB(t, db)
	u, _ := m.GetByUsername(ctx, "ada")
	if u.Role != users.RoleViewer || u.Status != users.StatusSuspended {
		t.Errorf("after set-role viewer and suspend: role %s, status %s", u.Role, u.Status)
	}
	if _, err := m.ValidateToken(ctx, s2.Token); err == nil {
		t.Error("a session outlived suspend")
	}
	closeDB()

	// A suspended user gets no reset token; an active one does, and it works.
	r = must(t, 1, nil, "", "reset-password", "-db", db, "ada")
	if !strings.Contains(r.stderr, "activate the account first") {
		t.Errorf("reset-password of a suspended user:\n%s", r.stderr)
	}
	must(t, 0, nil, "", "activate", "-db", db, "ada")
	r = must(t, 0, nil, "", "reset-password", "-db", db, "ada")
	token := strings.TrimSpace(r.stdout)
	m, _, closeDB = openDB(t, db)
	if err := m.ResetPassword(ctx, token, "analytical engine 1843"); err != nil {
		t.Errorf("the printed reset token: %v", err)
	}
	if _, err := m.Login(ctx, "ada", "analytical engine 1843"); err != nil {
		t.Errorf("login with the password set through the printed token: %v", err)
	}
	closeDB()

	// -set takes the password from the environment, never from a flag.
	must(t, 0, []string{"USERS_PASSWORD=jacquard loom punch cards"}, "", "reset-password", "-db", db, "-set", "ada")
	r = must(t, exitUsage, nil, "", "reset-password", "-db", db, "-set", "ada")
	if !strings.Contains(r.stderr, "USERS_PASSWORD") {
		t.Errorf("reset-password -set without a terminal or variable:\n%s", r.stderr)
	}
	must(t, exitUsage, nil, "", "reset-password", "-db", db, "-password", "x", "ada")
	m, _, closeDB = openDB(t, db)
	if _, err := m.Login(ctx, "ada", "jacquard loom punch cards"); err != nil {
		t.Errorf("login with the password of reset-password -set: %v", err)
	}
	closeDB()

	// remove asks first.
	for _, answer := range []string{"", "n\n", "yess\n"} {
		r = must(t, exitFailure, nil, answer, "remove", "-db", db, "ada")
		if !strings.Contains(r.stderr, "Remove ada@example.com") || !strings.Contains(r.stderr, "nothing removed") {
			t.Errorf("remove answered %q:\n%s", answer, r.stderr)
		}
	}
	must(t, 0, nil, "", "get", "-db", db, "ada")
	must(t, 0, nil, "y\n", "remove", "-db", db, "ada")
	must(t, exitNotFound, nil, "", "get", "-db", db, "ada")
}

// userID returns the ID of the user with the username.
func userID(tb testing.TB, m *users.Manager, username string) string {
	tb.Helper()
	u, err := m.GetByUsername(tb.Context(), username)
	if err != nil {
		tb.Fatal(err)
	}
	return u.ID
}

func TestImportRefusals(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	dir := filepath.Dir(db)
	in := filepath.Join(dir, "in.jsonl")
	rows := strings.Join([]string{
		`{"email":"ada@example.com","password":"difference engine 1822","first_name":"Ada","preferences":{"theme":"dark"}}`,
		`{"email":"not an email","password":"difference engine 1822"}`,
		``,
		`{"email":"bob@example.com","pasword":"typo in the field"}`,
		`{"email":"admin@example.com","password_hash":"$2a$04$abcdefghijklmnopqrstuu9n4Z0aQ2mO7yJrKcnvQQdPZGnwNZGm6"}`,
		`{"email":"carol@example.com","password":"password"}`,
		`not json`,
		`{"email":"dan@example.com","status":"invited","password":"difference engine 1822"}`,
		`{"email":"frank@example.com","username":"frank"}`, // no password: imported, signs in by magic link
	}, "\n")
	if err := os.WriteFile(in, []byte(rows), 0o600); err != nil {
		t.Fatal(err)
	}
	r := must(t, exitRefused, nil, "", "import", "-db", db, in)
	if r.stdout != "8 rows: 2 imported, 1 exists, 5 refused\nroles imported: user 2\nrefused: unreadable row 2, invalid email 1, invalid password 1, invalid status 1\n" {
		t.Errorf("import said %q", r.stdout)
	}
	got := lines(r.stderr)
	want := []string{
		in + ":2: refused: invalid email",
		in + ":4: refused: not a JSON object of user fields: json: unknown field \"pasword\"",
		in + ":6: refused: invalid password: is one of the most commonly used passwords",
		in + ":7: refused: not a JSON object",
		in + ":8: refused: invalid status: must not be invited for a user given a password",
		"users import: 5 of 8 rows refused",
	}
	if len(got) != len(want) {
		t.Fatalf("stderr: want %d lines, got\n%s", len(want), r.stderr)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("stderr line %d: %q, want it to start with %q", i+1, got[i], want[i])
		}
	}

	// A CSV whose header names an unknown column is a usage error.
	r = must(t, exitUsage, nil, "email,pass\nx@example.com,y\n", "import", "-db", db, "-format", "csv", "-")
	if !strings.Contains(r.stderr, `CSV column "pass"`) {
		t.Errorf("unknown CSV column:\n%s", r.stderr)
	}

	// export -with-hashes carries every user's hash to another file, where they
	// log in with their passwords: ada's, set here in this library's format, and
	// erin's, imported from an old system.
	hash, err := bcrypt.GenerateFromPassword([]byte("old system password"), 4)
	if err != nil {
		t.Fatal(err)
	}
	must(t, 0, nil, `{"email":"erin@example.com","password_hash":"`+string(hash)+`"}`, "import", "-db", db)
	r = must(t, 0, nil, "", "export", "-db", db, "-with-hashes")
	db2 := filepath.Join(dir, "second.db")
	r = must(t, 0, nil, r.stdout, "import", "-db", db2, "-allow-roles", "admin")
	if r.stdout != "4 rows: 4 imported, 0 exists, 0 refused\nroles imported: admin 1, user 3\n" || r.stderr != "" {
		t.Errorf("import of export -with-hashes: %v", r)
	}
	m, _, _ := openDB(t, db2)
	for email, pw := range map[string]string{"erin@example.com": "old system password", "ada@example.com": "difference engine 1822"} {
		if _, err := m.Login(t.Context(), email, pw); err != nil {
			t.Errorf("login of %s after export -with-hashes and import: %v", email, err)
		}
	}
}

// TestImportRoles: rows with a role above user (admin, or a role of
// USERS_ROLES) are refused unless -allow-roles names it, and the summary
// counts the imported users of each role.
func TestImportRoles(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	env := []string{"USERS_ROLES=admin,user,viewer,support"}
	rows := strings.Join([]string{
		`{"email":"u1@example.com","password":"difference engine 1822"}`,
		`{"email":"u2@example.com","password":"difference engine 1822","role":"user"}`,
		`{"email":"v1@example.com","password":"difference engine 1822","role":"viewer"}`,
		`{"email":"a1@example.com","password":"difference engine 1822","role":"admin"}`,
		`{"email":"s1@example.com","password":"difference engine 1822","role":"support"}`,
	}, "\n")
	r := must(t, exitRefused, env, rows, "import", "-db", db)
	if want := "5 rows: 3 imported, 0 exists, 2 refused\nroles imported: user 2, viewer 1\nrefused: role not allowed 2\n"; r.stdout != want {
		t.Errorf("import without -allow-roles said %q, want %q", r.stdout, want)
	}
	for _, want := range []string{`-:4: refused: role "admin": import it with -allow-roles admin`, `-:5: refused: role "support": import it with -allow-roles support`} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	m, _, closeDB := openDB(t, db)
	for _, email := range []string{"a1@example.com", "s1@example.com"} {
		if _, err := m.GetByEmail(t.Context(), email); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("%s was imported without -allow-roles: %v", email, err)
		}
	}
	closeDB()

	r = must(t, 0, env, rows, "import", "-db", db, "-allow-roles", "admin, support")
	if want := "5 rows: 2 imported, 3 exists, 0 refused\nroles imported: admin 1, support 1\n"; r.stdout != want {
		t.Errorf("import with -allow-roles said %q, want %q", r.stdout, want)
	}
	m, _, _ = openDB(t, db)
	if u, err := m.GetByEmail(t.Context(), "a1@example.com"); err != nil || u.Role != users.RoleAdmin {
		t.Errorf("a1 after -allow-roles admin: %+v, %v", u, err)
	}
}

// TestResetPasswordReplacesTokens: reset-password's help says a new token
// replaces the user's earlier ones; the first token, used after a second run,
// is refused, and the second one works.
func TestResetPasswordReplacesTokens(t *testing.T) {
	db := newDB(t)
	first := strings.TrimSpace(must(t, 0, nil, "", "reset-password", "-db", db, "admin@example.com").stdout)
	second := strings.TrimSpace(must(t, 0, nil, "", "reset-password", "-db", db, "admin@example.com").stdout)
	if first == "" || first == second {
		t.Fatalf("tokens %q and %q", first, second)
	}
	m, _, _ := openDB(t, db)
	if err := m.ResetPassword(t.Context(), first, "analytical engine 1843"); !errors.Is(err, users.ErrInvalidToken) {
		t.Errorf("the first token after a second reset-password: %v, want ErrInvalidToken", err)
	}
	if err := m.ResetPassword(t.Context(), second, "analytical engine 1843"); err != nil {
		t.Errorf("the second token: %v", err)
	}
}

// TestImportProgressLines: without a terminal, the import writes a line to
// standard error every USERS_PROGRESS_INTERVAL, counting rows stored.
func TestImportProgressLines(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("old system password"), 4)
	if err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&in, `{"email":"p%d@example.com","password_hash":"%s"}`+"\n", i, hash)
	}
	// An interval far below the import's time: lines are certain.
	r := must(t, 0, []string{"USERS_PROGRESS_INTERVAL=1ns"}, in.String(), "import", "-db", db)
	if r.stdout != "3000 rows: 3000 imported, 0 exists, 0 refused\nroles imported: user 3000\n" {
		t.Errorf("import said %q", r.stdout)
	}
	got := lines(r.stderr)
	if len(got) == 0 {
		t.Fatal("no progress line on stderr")
	}
	last := -1
	for _, l := range got {
		var stored, imported, exists, refused int
		if _, err := fmt.Sscanf(l, "users import: %d rows stored so far: %d imported, %d exists, %d refused", &stored, &imported, &exists, &refused); err != nil {
			t.Fatalf("stderr line %q: %v", l, err)
		}
		if stored < last || stored != imported+exists+refused || stored > 3000 {
			t.Errorf("progress line %q after %d stored", l, last)
		}
		last = stored
	}
	r = must(t, exitUsage, []string{"USERS_PROGRESS_INTERVAL=often"}, "", "import", "-db", db)
	if !strings.Contains(r.stderr, "USERS_PROGRESS_INTERVAL") {
		t.Errorf("a bad interval: %v", r)
	}
}

// TestImportPeers: import -format reads the exports of Kratos, Supabase (CSV
// and JSON lines) and Django, written in testdata/peers from each system's
// documented format (make.py there), and their users log in with their old
// passwords.
func TestImportPeers(t *testing.T) {
	t.Parallel()
	const pw = "correct horse battery staple"
	for _, c := range []struct {
		format, file string
		args         []string
		code         int
		stdout       string
		login        []string
		fields       map[string]users.User
	}{
		{"kratos", "kratos.json", nil, 0, "2 rows: 2 imported, 0 exists, 0 refused\nroles imported: user 2\n",
			[]string{"ada@example.com"},
			map[string]users.User{
				"ada@example.com": {FirstName: "Ada", LastName: "Lovelace", Role: users.RoleUser, Status: users.StatusActive,
					ExternalID: "9f425a8d-7efc-4768-8f23-7647a74fdf13", EmailVerified: true},
				"bob@example.com": {Username: "bob", FirstName: "Bob", LastName: "Babbage", Status: users.StatusInactive,
					ExternalID: "0a8b4c2e-1d3f-4e5a-9b6c-7d8e9f0a1b2c"},
			}},
		{"supabase", "supabase.csv", nil, exitRefused, "3 rows: 2 imported, 0 exists, 1 refused\nroles imported: user 2\nrefused: unreadable row 1\n",
			[]string{"carol@example.com"},
			map[string]users.User{
				"carol@example.com": {FirstName: "Carol", LastName: "Shaw", Status: users.StatusActive,
					ExternalID: "5e1c7d1a-2b3c-4d5e-8f90-a1b2c3d4e5f6", EmailVerified: true},
				"dan@example.com": {FirstName: "Dan", LastName: "Ingalls", Status: users.StatusSuspended,
					ExternalID: "6f2d8e2b-3c4d-5e6f-9a01-b2c3d4e5f6a7"},
			}},
		{"supabase", "supabase.jsonl", nil, exitRefused, "3 rows: 2 imported, 0 exists, 1 refused\nroles imported: user 2\nrefused: unreadable row 1\n",
			[]string{"carol@example.com"},
			map[string]users.User{"carol@example.com": {FirstName: "Carol", LastName: "Shaw", Status: users.StatusActive,
				ExternalID: "5e1c7d1a-2b3c-4d5e-8f90-a1b2c3d4e5f6", EmailVerified: true}}},
		// grace's password is Django's unusable one: she is imported without a
		// password, and signs in by magic link or a password reset.
		{"django", "django.json", []string{"-allow-roles", "admin"}, 0, "3 rows: 3 imported, 0 exists, 0 refused\nroles imported: admin 1, user 2\n",
			[]string{"erin@example.com"},
			map[string]users.User{
				"erin@example.com":  {Username: "", FirstName: "Erin", LastName: "Admin", Role: users.RoleAdmin, Status: users.StatusActive, ExternalID: "1"},
				"frank@example.com": {Username: "frank", FirstName: "Frank", LastName: "Ee", Status: users.StatusInactive, ExternalID: "2"},
				"grace@example.com": {Username: "grace", FirstName: "Grace", Status: users.StatusActive, ExternalID: "3"},
			}},
	} {
		t.Run(c.file, func(t *testing.T) {
			db := newDB(t)
			args := append([]string{"import", "-db", db, "-format", c.format, filepath.Join("testdata", "peers", c.file)}, c.args...)
			r := must(t, c.code, nil, "", args...)
			if r.stdout != c.stdout {
				t.Errorf("import said %q, want %q\nstderr:\n%s", r.stdout, c.stdout, r.stderr)
			}
			if c.format == "django" && !strings.Contains(r.stderr, "note: 1 usernames did not fit") {
				t.Errorf("no note of erin's username (an email) left out:\n%s", r.stderr)
			}
			m, _, _ := openDB(t, db)
			for _, email := range c.login {
				if _, err := m.Login(t.Context(), email, pw); err != nil {
					t.Errorf("%s logs in with the old password: %v", email, err)
				}
			}
			for email, want := range c.fields {
				u, err := m.GetByEmail(t.Context(), email)
				if err != nil {
					t.Errorf("%s: %v", email, err)
					continue
				}
				if u.FirstName != want.FirstName || u.LastName != want.LastName || u.Username != want.Username ||
					(want.Role != "" && u.Role != want.Role) || u.Status != want.Status ||
					u.ExternalID != want.ExternalID || u.EmailVerified != want.EmailVerified {
					t.Errorf("%s imported as %+v, want %+v", email, u, want)
				}
			}
		})
	}
}

// TestImportFirebase: Firebase's scrypt hashes import with the project's
// parameters in USERS_FIREBASE_*, and are refused without them. The vector is
// the one firebase/scrypt's README publishes.
func TestImportFirebase(t *testing.T) {
	db := newDB(t)
	row := `{"email":"user1@test.com","password_hash":"$firebase-scrypt$42xEC+ixf3L2lw==$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ=="}`
	r := must(t, exitRefused, nil, row, "import", "-db", db)
	if !strings.Contains(r.stderr, "refused: invalid password_hash") {
		t.Errorf("a Firebase hash without the project's parameters:\n%s", r.stderr)
	}
	env := []string{
		"USERS_FIREBASE_SIGNER_KEY=jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==",
		"USERS_FIREBASE_SALT_SEPARATOR=Bw==", "USERS_FIREBASE_ROUNDS=8", "USERS_FIREBASE_MEM_COST=14",
	}
	must(t, 0, env, row, "import", "-db", db)
	r = must(t, exitUsage, append(env[1:], "USERS_FIREBASE_SIGNER_KEY=not base64!"), row, "import", "-db", db)
	if !strings.Contains(r.stderr, "USERS_FIREBASE_SIGNER_KEY") {
		t.Errorf("a bad signer key:\n%s", r.stderr)
	}
	// Logging in needs the same parameters in the application's Options
	// (TestSecurity_ImportedFormats logs in with this vector).
	if r := must(t, 0, nil, "", "get", "-db", db, "user1@test.com"); !strings.Contains(r.stdout, "user1@test.com") {
		t.Errorf("get after the import:\n%s", r.stdout)
	}
}

// TestListUsageAndNames: list's usage line names its flags once, and list
// and find show a name column, so that a search by name shows its matches.
func TestListUsageAndNames(t *testing.T) {
	db := newDB(t)
	for cmd, want := range map[string]string{"list": "usage: users list [flags]\n", "find": "usage: users find [flags] TEXT\n"} {
		if r := must(t, 0, nil, "", "help", cmd); !strings.HasPrefix(r.stdout, want) {
			t.Errorf("help %s: %q, want it to start with %q", cmd, r.stdout[:min(len(r.stdout), 60)], want)
		}
	}
	must(t, 0, nil, `{"email":"ada@example.com","password":"difference engine 1822","first_name":"Ada","last_name":"Lovelace"}`, "import", "-db", db)
	r := must(t, 0, nil, "", "find", "-db", db, "lovelace")
	got := lines(r.stdout)
	if len(got) != 2 || !strings.Contains(got[0], " NAME ") || !strings.Contains(got[1], "Ada Lovelace") {
		t.Errorf("find lovelace:\n%s", r.stdout)
	}
	r = must(t, 0, nil, "", "list", "-db", db)
	if !strings.Contains(r.stdout, "Ada Lovelace") {
		t.Errorf("list:\n%s", r.stdout)
	}
}
