// Command readme is the README's "Basic use" program, kept here so that it
// compiles and runs with the tests (see example_test.go, and TestREADMESnippets
// in the root package, which fails when the README and this file differ).
package main

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/userkit/users"
)

func main() {
	ctx := context.Background()
	store, err := users.OpenBoltStore("users.db", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	m, err := users.New(store, nil) // nil: the documented defaults
	if err != nil {
		log.Fatal(err)
	}
	_, err = m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: "analytical engine 1843"})
	if err != nil && !errors.Is(err, users.ErrDuplicateEmail) { // a second run finds her
		log.Fatal(err)
	}
	s, err := m.Login(ctx, "ada@example.com", "analytical engine 1843")
	if err != nil {
		log.Fatal(err) // users.ErrInvalidCredentials, ErrAccountLocked, ...
	}
	// Give s.Token to the client; on each request:
	v, err := m.ValidateToken(ctx, s.Token)
	if err != nil {
		log.Fatal(err) // users.ErrInvalidToken: answer 401
	}
	fmt.Println(v.User.Email, v.User.Role)
}
