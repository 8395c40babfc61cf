// Package prompt reads the secrets the examples need when they start, such as
// the first admin's password: from the environment, or else from the terminal
// without echo. Never from a flag: every user of the machine can read a
// process's arguments (ps, /proc/PID/cmdline).
package prompt

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// Password returns the value of the environment variable env, read with
// getenv, if it is not empty. Otherwise, if in is a terminal, it asks for the
// password on out with question, twice and without echo, and returns it. It
// never reads a password from a pipe or a file: with no variable and no
// terminal it returns an error that names env, and so it does when the two
// answers differ. It is safe for concurrent use only with distinct terminals.
func Password(getenv func(string) string, in *os.File, out io.Writer, env, question string) (string, error) {
	if p := getenv(env); p != "" {
		return p, nil
	}
	fd := int(in.Fd())
	if !term.IsTerminal(fd) {
		return "", fmt.Errorf("no password: set $%s, or start at a terminal to be asked for it", env)
	}
	ask := func(q string) (string, error) {
		fmt.Fprint(out, q)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(out)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		return string(b), nil
	}
	p, err := ask(question)
	if err != nil {
		return "", err
	}
	again, err := ask("Again: ")
	if err != nil {
		return "", err
	}
	if again != p {
		return "", errors.New("the two passwords differ")
	}
	return p, nil
}
