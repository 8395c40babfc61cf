// Package clitest holds what the tests of the admin command on each store
// share: the check that an export survived an import into another store
// without loss.
package clitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/userkit/users"
)

// Fixture is the JSON lines file of users of every shape that the lossless
// round trips import first, relative to the repository's root.
const Fixture = "cmd/users/testdata/lossless.jsonl"

// WantLossless checks the round trip fixture → import → export A → import →
// export B: every field of every user of the fixture must be in A as the
// fixture has it; B must be A byte for byte, IDs included; and A must give
// every field of users.User and the password hash a value other than its zero
// in at least one user, so that a field added later without its way through
// import fails here.
func WantLossless(tb testing.TB, fixture, a, b []byte) {
	tb.Helper()
	exported := map[any]map[string]any{} // by email
	for line := range strings.Lines(string(a)) {
		var row map[string]any
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			tb.Fatalf("export wrote a line that is not a JSON object: %q: %v", line, err)
		}
		exported[row["email"]] = row
	}
	for line := range strings.Lines(string(fixture)) {
		var want map[string]any
		if err := json.Unmarshal([]byte(line), &want); err != nil {
			tb.Fatalf("fixture line %q: %v", line, err)
		}
		got := exported[want["email"]]
		for k, v := range want {
			if !reflect.DeepEqual(got[k], v) {
				tb.Errorf("user %v: the fixture has %s %v, the export %v", want["email"], k, v, got[k])
			}
		}
	}
	if !bytes.Equal(a, b) {
		al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
		for i := range max(len(al), len(bl)) {
			var x, y string
			if i < len(al) {
				x = al[i]
			}
			if i < len(bl) {
				y = bl[i]
			}
			if x != y {
				tb.Errorf("the export after the import differs at line %d:\nbefore %s\nafter  %s", i+1, x, y)
				break
			}
		}
		tb.Errorf("the round trip lost or changed something: %d bytes exported, %d after the import", len(a), len(b))
	}
	set := map[string]bool{}
	for line := range strings.Lines(string(a)) {
		var row map[string]any
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			tb.Fatalf("export wrote a line that is not a JSON object: %q: %v", line, err)
		}
		for k, v := range row {
			if v != nil && v != false && v != "" {
				set[k] = true
			}
		}
	}
	for _, f := range append(jsonFields(reflect.TypeFor[users.User]()), "password_hash") {
		if !set[f] {
			tb.Errorf("no user of the fixture has a %s: the round trip does not show that it survives", f)
		}
	}
}

// jsonFields returns the JSON names of the fields of struct type t.
func jsonFields(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

// Result is what one run of the command gave.
type Result struct {
	Code           int
	Stdout, Stderr string
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// Run runs the command bin with args, the environment env and stdin as its
// standard input. A run that does not end within a minute fails the test: the
// command must never hang.
func Run(tb testing.TB, bin string, env []string, stdin string, args ...string) Result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		tb.Fatalf("users %s did not end within a minute", strings.Join(args, " "))
	}
	r := Result{Code: cmd.ProcessState.ExitCode(), Stdout: stdout.String(), Stderr: stderr.String()}
	if err != nil && r.Code <= 0 {
		tb.Fatalf("users %s: %v", strings.Join(args, " "), err)
	}
	return r
}
