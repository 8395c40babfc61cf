package users_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/userkit/users"
	"github.com/userkit/users/breach"
)

// readmeBreachList is the README's "Breached passwords" snippet: a Manager
// that refuses the passwords of a local hash list seen at least twice.
func readmeBreachList(store users.Store, path string) (*users.Manager, error) {
	list, err := breach.OpenList(path, &breach.ListOptions{MinCount: 2})
	if err != nil {
		return nil, err
	}
	return users.New(store, &users.Options{BreachChecker: list})
}

// A Manager with Options.BreachChecker refuses a breached password wherever
// one is set. Here the list is a local file of one hash, the SHA-1 of
// "correct horse battery staple", seen 3 times.
func ExampleOptions_breachChecker() {
	dir, err := os.MkdirTemp("", "breach")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "pwned-sha1.txt")
	if err := os.WriteFile(path, []byte("ABF7AAD6438836DBE526AA231ABDE2D0EEF74D42:3\n"), 0o600); err != nil {
		fmt.Println(err)
		return
	}
	m, err := readmeBreachList(users.NewMemoryStore(), path)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = m.Create(context.Background(), users.NewUser{Email: "ada@example.com", Password: "correct horse battery staple"})
	var ve *users.ValidationError
	fmt.Println(errors.As(err, &ve), ve.Field)
	// Output: true password
}
