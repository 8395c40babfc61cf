package users_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/userkit/users"
)

// A form with several bad fields: FieldErrors gives each field's error, in
// NewUser's field order, with its Code (to translate) and Reason (English).
func ExampleFieldErrors() {
	m := exampleManager()
	_, err := m.Create(context.Background(), users.NewUser{
		Email:     "ada at example.com",
		Password:  "short",
		FirstName: strings.Repeat("A", 101),
		Role:      "wizard",
	})
	fmt.Println(errors.Is(err, users.ErrInvalidInput))
	for _, ve := range users.FieldErrors(err) {
		fmt.Printf("%s %s: %s\n", ve.Field, ve.Code, ve.Reason)
	}

	// Code written for one field still works: errors.As gives the first.
	var ve *users.ValidationError
	if errors.As(err, &ve) {
		fmt.Println("first:", ve.Field)
	}
	// Output:
	// true
	// email malformed: must contain exactly one @
	// password too_short: must be at least 8 characters
	// first_name too_long: must be at most 100 characters
	// role not_one_of: must be one of admin, user, viewer
	// first: email
}

// ValidationErrors is what errors.As finds when more than one field was
// refused; a single refused field is a plain *ValidationError.
func ExampleValidationErrors() {
	m := exampleManager()
	ctx := context.Background()
	bad, long := "nobody", strings.Repeat("x", 33)

	_, err := m.Create(ctx, users.NewUser{Email: bad, Username: long, Password: examplePassword})
	var many users.ValidationErrors
	fmt.Println(errors.As(err, &many), len(many))
	fmt.Println(err)

	_, err = m.Create(ctx, users.NewUser{Email: bad, Password: examplePassword})
	fmt.Println(errors.As(err, &many))
	fmt.Println(err)
	// Output:
	// true 2
	// users: invalid email: must contain exactly one @; invalid username: must be 3 to 32 characters
	// false
	// users: invalid email: must contain exactly one @
}
