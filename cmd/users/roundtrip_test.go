package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users"
	"github.com/userkit/users/internal/soak"
)

// statsReport is the part of stats -json the tests read.
type statsReport struct {
	Users        int            `json:"users"`
	ByRole       map[string]int `json:"by_role"`
	ByStatus     map[string]int `json:"by_status"`
	AuditEntries int            `json:"audit_entries"`
}

// The round trip of the issue: create-admin, import 2k users from CSV (10k
// with -tags soak), find, export, a re-import that reports them all "exists",
// backup, then check the restored copy and log in on it. 2k rows check what
// 10k do: both are one import batch (users.ImportBatch), and find matches the
// same ten users.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	n := 2_000
	if soak.On {
		n = 10_000
	}
	dir := fastDir(t)
	db := filepath.Join(dir, "users.db")

	r := must(t, 0, []string{"USERS_PASSWORD=" + adminPassword}, "", "create-admin", "-db", db, "-username", "root", "admin@example.com")
	if !strings.HasPrefix(r.stdout, "created admin admin@example.com (ID ") {
		t.Errorf("create-admin said %q", r.stdout)
	}

	// Imported hashes from an "old system": one bcrypt at cost 4 keeps it fast.
	hash, err := bcrypt.GenerateFromPassword([]byte("old system password"), 4)
	if err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("email,username,first_name,last_name,role,password_hash\n")
	for i := range n {
		role := "user"
		if i%10 == 0 {
			role = "viewer"
		}
		fmt.Fprintf(&csv, "User%05d@Example.com,u%05d,First%d,Last%d,%s,%s\n", i, i, i, i, role, hash)
	}
	csvPath := filepath.Join(dir, "old.csv")
	if err := os.WriteFile(csvPath, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	// No progress lines: on a loaded machine the import may take longer than
	// their default interval.
	r = must(t, 0, []string{"USERS_PROGRESS_INTERVAL=1h"}, "", "import", "-db", db, csvPath)
	if want := fmt.Sprintf("%d rows: %d imported, 0 exists, 0 refused\nroles imported: user %d, viewer %d\n", n, n, n-n/10, n/10); r.stdout != want {
		t.Errorf("import said %q, want %q", r.stdout, want)
	}
	if r.stderr != "" {
		t.Errorf("import wrote to stderr (not a terminal: no progress bar, nothing refused): %q", r.stderr)
	}

	// find searches email, username and names; the table has a header.
	r = must(t, 0, nil, "", "find", "-db", db, "u0004")
	got := lines(r.stdout)
	if len(got) != 11 || !strings.HasPrefix(got[0], "ID ") || !strings.Contains(got[1], "user00040@example.com") || !strings.Contains(got[10], "user00049@example.com") {
		t.Errorf("find u0004: want a header and users 40 to 49, got\n%s", r.stdout)
	}

	// list with a filter and cursor paging, as JSON lines.
	r = must(t, 0, nil, "", "list", "-db", db, "-role", "viewer", "-limit", "3", "-json")
	page1 := decodeUsers(t, r.stdout)
	m := regexp.MustCompile(`next page: -after (\S+)`).FindStringSubmatch(r.stderr)
	if len(page1) != 3 || m == nil {
		t.Fatalf("list -role viewer -limit 3: want 3 users and a next cursor, got %v", r)
	}
	r = must(t, 0, nil, "", "list", "-db", db, "-role", "viewer", "-limit", "3", "-json", "-after", m[1])
	page2 := decodeUsers(t, r.stdout)
	if len(page2) != 3 || page2[0].Email != "user00030@example.com" || page1[2].Email != "user00020@example.com" {
		t.Errorf("viewer pages: %v then %v; want users 0, 10, 20 then 30, 40, 50", emails(page1), emails(page2))
	}
	for _, u := range append(page1, page2...) {
		if u.Role != users.RoleViewer {
			t.Errorf("list -role viewer gave %s with role %s", u.Email, u.Role)
		}
	}
	r = must(t, 0, nil, "", "list", "-db", db, "-all", "-json", "-search", "first99")
	want99 := 0 // First99, First990..First999, and with 10k First9900..First9999
	for i := range n {
		if strings.HasPrefix(fmt.Sprint(i), "99") {
			want99++
		}
	}
	if all := decodeUsers(t, r.stdout); len(all) != want99 {
		t.Errorf("list -all -search first99: %d users, want %d", len(all), want99)
	}

	// export: every user, hashes only when asked for.
	exported := filepath.Join(dir, "export.jsonl")
	r = must(t, 0, nil, "", "export", "-db", db, "-o", exported)
	if r.stderr != fmt.Sprintf("exported %d users\n", n+1) {
		t.Errorf("export said %q", r.stderr)
	}
	b, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	all := decodeUsers(t, string(b))
	if len(all) != n+1 || bytesContains(b, "password_hash") || bytesContains(b, "$2a$") {
		t.Errorf("export without -with-hashes: %d users (want %d), hashes present: %v", len(all), n+1, bytesContains(b, "$2a$"))
	}
	if fi, err := os.Stat(exported); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("export file mode: %v %v, want 0600", fi.Mode(), err)
	}
	r = must(t, 0, nil, "", "export", "-db", db, "-with-hashes")
	withHashes := lines(r.stdout)
	if len(withHashes) != n+1 || !strings.Contains(withHashes[n], `"password_hash":"`+string(hash)+`"`) {
		t.Errorf("export -with-hashes: %d lines, last %q", len(withHashes), withHashes[len(withHashes)-1])
	}
	must(t, 1, nil, "", "export", "-db", db, "-o", exported) // exists: not overwritten

	// Importing again changes nothing and says so.
	r = must(t, 0, nil, "", "import", "-db", db, csvPath)
	if want := fmt.Sprintf("%d rows: 0 imported, %d exists, 0 refused\n", n, n); r.stdout != want {
		t.Errorf("re-import said %q, want %q", r.stdout, want)
	}
	r = must(t, 0, nil, "", "stats", "-db", db, "-json")
	var st statsReport
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Users != n+1 || st.ByRole["admin"] != 1 || st.ByRole["viewer"] != n/10 || st.ByRole["user"] != n-n/10 || st.ByStatus["active"] != n+1 {
		t.Errorf("stats after the re-import: %+v", st)
	}
	if st.AuditEntries < n+1 { // a user.created entry for each user, none for a refused re-import
		t.Errorf("stats after the re-import: %d audit entries, want at least %d", st.AuditEntries, n+1)
	}

	// backup, then the restored copy: consistent, same users, same logins.
	backup := filepath.Join(dir, "backup.db")
	r = must(t, 0, nil, "", "backup", "-db", db, "-o", backup)
	if !strings.Contains(r.stderr, "bytes written to "+backup) {
		t.Errorf("backup said %q", r.stderr)
	}
	must(t, 1, nil, "", "backup", "-db", db, "-o", backup) // exists: not overwritten
	r = must(t, 0, nil, "", "check", "-db", backup)
	if want := fmt.Sprintf("ok: %s is consistent (%d users, 0 sessions, 0 tokens)\n", backup, n+1); r.stdout != want {
		t.Errorf("check of the backup said %q, want %q", r.stdout, want)
	}
	restored, _, _ := openDB(t, backup)
	ctx := t.Context()
	if _, err := restored.Login(ctx, "root", adminPassword); err != nil {
		t.Errorf("the admin logs in on the restored copy: %v", err)
	}
	if _, err := restored.Login(ctx, fmt.Sprintf("user%05d@example.com", n-1), "old system password"); err != nil {
		t.Errorf("an imported user logs in on the restored copy: %v", err)
	}
}

func decodeUsers(tb testing.TB, jsonLines string) []*users.User {
	tb.Helper()
	var out []*users.User
	for _, l := range lines(jsonLines) {
		var u users.User
		if err := json.Unmarshal([]byte(l), &u); err != nil {
			tb.Fatalf("not a user: %q: %v", l, err)
		}
		out = append(out, &u)
	}
	return out
}

func emails(us []*users.User) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Email)
	}
	return out
}

func bytesContains(b []byte, s string) bool { return strings.Contains(string(b), s) }
