package breach_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/userkit/users"
	"github.com/userkit/users/breach"
)

// An air-gapped deployment loads a local list of breached SHA-1 hashes (here
// one line, the SHA-1 of "correct horse battery staple" with its count) and
// gives it to the Manager, which then refuses those passwords wherever one is
// set.
func ExampleList() {
	list, err := breach.ReadList(strings.NewReader("ABF7AAD6438836DBE526AA231ABDE2D0EEF74D42:3\n"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	m, err := users.New(users.NewMemoryStore(), &users.Options{
		BreachChecker:                 list,
		BcryptCost:                    4, // tests only; the default is 12
		InsecureLowBcryptCostForTests: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = m.Create(context.Background(), users.NewUser{Email: "ada@example.com", Password: "correct horse battery staple"})
	var ve *users.ValidationError
	if errors.As(err, &ve) {
		fmt.Println(ve.Field, ve.Reason)
	}
	// Output:
	// password has appeared in a data breach; choose another
}

// Range asks a range service for the five first hex digits of the password's
// SHA-1 only. Here the service is a local stand-in that knows one hash.
func ExampleRange() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("asked for", r.URL.Path, "padding:", r.Header.Get("Add-Padding"))
		if r.URL.Path == "/range/5BAA6" { // SHA-1("password") is 5BAA61E4…
			fmt.Fprint(w, "1E4C9B93F3F0682250B6CF8331B7EE68FD8:9545824\r\n")
		}
	}))
	defer srv.Close()

	c := &breach.Range{URL: srv.URL, FailClosed: true}
	found, err := c.Breached(context.Background(), "password")
	fmt.Println(found, err)
	// Output:
	// asked for /range/5BAA6 padding: true
	// true <nil>
}
