package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/term"
)

// readPassword returns $USERS_PASSWORD if it is set, or else asks on the
// terminal without echo (twice when confirm is set). It never reads a password
// from a pipe or a file: with no terminal and no variable, it is a usage error.
func (x *cli) readPassword(prompt string, confirm bool) (string, error) {
	if p := x.getenv("USERS_PASSWORD"); p != "" {
		return p, nil
	}
	fd := int(x.stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", usageError("no password: set $USERS_PASSWORD, or run this at a terminal to be asked for it")
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(x.stderr, prompt)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(x.stderr)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		return string(b), nil
	}
	p, err := ask(prompt)
	if err != nil || !confirm {
		return p, err
	}
	again, err := ask("Again: ")
	if err != nil {
		return "", err
	}
	if again != p {
		return "", errors.New("the two passwords differ; nothing changed")
	}
	return p, nil
}

// confirm asks a yes/no question on standard error and reads the answer from
// standard input; only "y" or "yes" is yes. End of input is no.
func (x *cli) confirm(question string) (bool, error) {
	fmt.Fprintf(x.stderr, "%s [y/N] ", question)
	line, err := bufio.NewReader(x.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
