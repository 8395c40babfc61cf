package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the test types on master, the command
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

// The password prompt on a terminal: asked twice, never echoed, never needed
// from a flag or the environment.
func TestPasswordPrompt(t *testing.T) {
	for _, c := range []struct {
		name         string
		first, again string
		code         int
	}{
		{"OK", adminPassword, adminPassword, exitOK},
		{"Mismatch", adminPassword, adminPassword + "!", exitFailure},
	} {
		t.Run(c.name, func(t *testing.T) {
			master, tty := openPTY(t)
			db := filepath.Join(t.TempDir(), "users.db")
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, usersBin, "create-admin", "-db", db, "admin@example.com")
			cmd.Env = cmdEnv() // no USERS_PASSWORD
			cmd.Stdin = tty
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			tty.Close() // the child has its own copy

			// Type each answer once its prompt is shown and echo is off: the
			// prompt is written just before echo is turned off, and a person
			// does not type within those microseconds.
			var errOut strings.Builder
			br := bufio.NewReader(io.TeeReader(stderr, &errOut))
			for _, step := range []struct{ prompt, typed string }{
				{"Password for admin@example.com: ", c.first},
				{"Again: ", c.again},
			} {
				if err := readUntil(br, step.prompt); err != nil {
					t.Fatalf("waiting for %q: %v; stderr so far: %q", step.prompt, err, errOut.String())
				}
				waitNoEcho(t, master)
				if _, err := master.WriteString(step.typed + "\n"); err != nil {
					t.Fatal(err)
				}
			}
			io.Copy(io.Discard, br)
			err = cmd.Wait()
			if got := cmd.ProcessState.ExitCode(); got != c.code {
				t.Fatalf("exit %d (%v), want %d\nstdout: %s\nstderr: %s", got, err, c.code, stdout.String(), errOut.String())
			}

			// Whatever the terminal echoed is on master: the password must not be.
			master.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			echoed, _ := io.ReadAll(master)
			if bytes.Contains(echoed, []byte(adminPassword)) {
				t.Errorf("the password was echoed on the terminal: %q", echoed)
			}
			if c.code != exitOK {
				if !strings.Contains(errOut.String(), "the two passwords differ") {
					t.Errorf("stderr: %q", errOut.String())
				}
				must(t, exitNotFound, nil, "", "get", "-db", db, "admin@example.com")
				return
			}
			m, _, _ := openDB(t, db)
			if _, err := m.Login(t.Context(), "admin@example.com", adminPassword); err != nil {
				t.Errorf("login with the password typed at the prompt: %v", err)
			}
		})
	}
}

// waitNoEcho waits until the terminal's echo is off (the master side reads
// the terminal's settings).
func waitNoEcho(tb testing.TB, master *os.File) {
	tb.Helper()
	for range 5000 {
		tio, err := unix.IoctlGetTermios(int(master.Fd()), unix.TCGETS)
		if err != nil {
			tb.Fatal(err)
		}
		if tio.Lflag&unix.ECHO == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	tb.Fatal("the command did not turn echo off within 5s of its prompt")
}

// readUntil reads from br until it has read s.
func readUntil(br *bufio.Reader, s string) error {
	var seen []byte
	for !bytes.HasSuffix(seen, []byte(s)) {
		b, err := br.ReadByte()
		if err != nil {
			return err
		}
		seen = append(seen, b)
	}
	return nil
}

// On a terminal, import draws a progress bar on standard error and clears it
// before the summary; the summary itself goes to standard output.
func TestImportProgress(t *testing.T) {
	master, tty := openPTY(t)
	db := newDB(t)
	var csv strings.Builder
	csv.WriteString("email,status\n")
	for i := range 2500 {
		fmt.Fprintf(&csv, "u%d@example.com,deleted\n", i) // no such status: refused, cheaply
	}
	in := filepath.Join(filepath.Dir(db), "in.csv")
	if err := os.WriteFile(in, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, usersBin, "import", "-db", db, in)
	cmd.Env = cmdEnv()
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var screen bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(&screen, master) // ends with EIO once the child has exited
	}()
	cmd.Wait()
	<-done
	if got := cmd.ProcessState.ExitCode(); got != exitRefused {
		t.Errorf("exit %d, want %d", got, exitRefused)
	}
	if want := "2500 rows: 0 imported, 0 exists, 2500 refused\nrefused: invalid status 2500\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	s := screen.String()
	if !strings.Contains(s, "\r\033[K[") || !strings.Contains(s, "%") || !strings.Contains(s, "rows stored") {
		t.Errorf("no progress bar on the terminal: %q", s[:min(len(s), 400)])
	}
	if strings.Count(s, ": refused: invalid status: must be active") != 2500 {
		t.Errorf("want 2500 refusal lines on the terminal")
	}
}
