package prompt

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the test types on master, Password
// reads from tty.
func openPTY(tb testing.TB) (master, tty *os.File) {
	tb.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		tb.Fatalf("no pseudo-terminals here: %v", err)
	}
	tb.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil { // unlockpt
		tb.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN) // ptsname
	if err != nil {
		tb.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tty.Close() })
	return master, tty
}

// On a terminal the password is asked twice, and two different answers are
// refused. (That the terminal does not echo it is term.ReadPassword's: see
// cmd/users's TestPasswordPrompt, which types after echo is off.)
func TestPassword_Terminal(t *testing.T) {
	noenv := func(string) string { return "" }
	for _, c := range []struct {
		name, first, again string
		ok                 bool
	}{
		{"OK", "a typed admin password", "a typed admin password", true},
		{"Mismatch", "a typed admin password", "another one", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			master, tty := openPTY(t)
			if _, err := fmt.Fprintf(master, "%s\n%s\n", c.first, c.again); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			got, err := Password(noenv, tty, &out, "ADMIN_PW", "Admin password: ")
			if c.ok && (err != nil || got != c.first) {
				t.Errorf("Password = %q, %v; want %q", got, err, c.first)
			}
			if !c.ok && (err == nil || got != "") {
				t.Errorf("Password = %q, %v; want an error", got, err)
			}
			if !bytes.Contains(out.Bytes(), []byte("Admin password: ")) || !bytes.Contains(out.Bytes(), []byte("Again: ")) {
				t.Errorf("prompts %q", out.String())
			}
		})
	}
}
