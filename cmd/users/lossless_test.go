package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/userkit/users/internal/cli/clitest"
)

// TestLosslessRoundTrip imports users of every shape (every field set
// somewhere: an admin with a verified email and history, an invited user, users
// without a password, an imported Argon2 hash, external IDs, a kept ID), exports
// them with their hashes, imports that export into an empty file and exports
// again: the two exports must be the same bytes, IDs included.
func TestLosslessRoundTrip(t *testing.T) {
	dir := fastDir(t)
	fixture := filepath.Join("..", "..", clitest.Fixture)
	first, second := filepath.Join(dir, "first.db"), filepath.Join(dir, "second.db")
	exportA, exportB := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")

	r := must(t, 0, nil, "", "import", "-db", first, "-allow-roles", "admin", fixture)
	if !strings.HasPrefix(r.stdout, "5 rows: 5 imported, 0 exists, 0 refused\n") {
		t.Fatalf("import of the fixture said %q", r.stdout)
	}
	must(t, 0, nil, "", "export", "-db", first, "-with-hashes", "-o", exportA)
	r = must(t, 0, nil, "", "import", "-db", second, "-allow-roles", "admin", exportA)
	if !strings.HasPrefix(r.stdout, "5 rows: 5 imported, 0 exists, 0 refused\n") || r.stderr != "" {
		t.Fatalf("import of the export said %q, %q", r.stdout, r.stderr)
	}
	must(t, 0, nil, "", "export", "-db", second, "-with-hashes", "-o", exportB)
	a, err := os.ReadFile(exportA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exportB)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	clitest.WantLossless(t, f, a, b)

	// Again: every row is there already.
	r = must(t, 0, nil, "", "import", "-db", second, "-allow-roles", "admin", exportA)
	if want := "5 rows: 0 imported, 5 exists, 0 refused\n"; r.stdout != want {
		t.Errorf("a second import said %q, want %q", r.stdout, want)
	}
	// The old system's ID finds its user.
	r = must(t, 0, nil, "", "get", "-db", second, "ext:auth0|5f7c8ec7c33c6c004bbafe82")
	if !strings.Contains(r.stdout, "ada@example.com (verified 2024-02-01") || !strings.Contains(r.stdout, "auth0|5f7c8ec7c33c6c004bbafe82") {
		t.Errorf("get ext:ID said %q", r.stdout)
	}
	must(t, exitNotFound, nil, "", "get", "-db", second, "ext:nobody")
}

// TestImportExternalIDTaken imports two rows with one external ID: the second
// is refused, and the summary counts it.
func TestImportExternalIDTaken(t *testing.T) {
	db := filepath.Join(fastDir(t), "users.db")
	in := `{"email":"a@example.com","external_id":"old-1"}
{"email":"b@example.com","external_id":"old-1"}
`
	r := must(t, exitRefused, nil, in, "import", "-db", db)
	if !strings.Contains(r.stdout, "2 rows: 1 imported, 0 exists, 1 refused") || !strings.Contains(r.stdout, "refused: external ID taken 1") ||
		!strings.Contains(r.stderr, "-:2: refused: external ID already in use") {
		t.Errorf("import of a taken external ID: %s", r)
	}
}
