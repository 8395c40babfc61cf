package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestHelpExitsZero runs main with -h in a child process: it prints the usage
// and exits 0, since asking for help is no failure.
func TestHelpExitsZero(t *testing.T) {
	if os.Getenv("USERS_EXAMPLE_MAIN") == "1" {
		os.Args = []string{"httpapi", "-h"}
		main()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelpExitsZero$")
	// Under -race a test binary waits a second before it exits (GORACE's
	// atexit_sleep_ms); the child need not.
	cmd.Env = append(os.Environ(), "USERS_EXAMPLE_MAIN=1", "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("-h: %v, want exit status 0; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "Usage of httpapi") || !strings.Contains(string(out), "-db") {
		t.Errorf("-h printed %q, want the usage with its flags", out)
	}
}
