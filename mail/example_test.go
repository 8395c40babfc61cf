package mail_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/mail"
)

// A password reset from request to mail: the Manager issues the token, the
// application makes the link, the default templates make the message, and
// the dev mailer prints it.
func Example() {
	ctx := context.Background()
	now := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	m, err := users.New(users.NewMemoryStore(), &users.Options{
		BcryptCost: 4, InsecureLowBcryptCostForTests: true, // examples only
		Now: func() time.Time { return now },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: "analytical engine 1843"}); err != nil {
		fmt.Println(err)
		return
	}

	d, err := m.RequestPasswordReset(ctx, "Ada@Example.com")
	if err != nil {
		return // answer as on success: see RequestPasswordReset
	}
	link := "https://example.com/reset?token=" + url.QueryEscape(d.Token)
	s := &mail.Sender{Site: "Example", Mailer: &mail.DevMailer{W: os.Stdout}}
	data := mail.FromDelivery(d, link)
	data.Link = "https://example.com/reset?token=…" // the token is random: not printed here
	if err := s.Send(ctx, mail.KindPasswordReset, data); err != nil {
		fmt.Println(err)
	}
	// Output:
	// ----- dev mailer: not sent -----
	// To: ada@example.com
	// Subject: Reset your password
	// Kind: password_reset
	//
	// Hello,
	//
	// Someone, probably you, asked to reset the password of your Example account. Open this link to choose a new one:
	//
	// https://example.com/reset?token=…
	//
	// The link works once, until 14 March 2026 at 16:00 UTC.
	// If you did not ask for this, ignore this message: nothing changes.
	//
	// Example
	// ----- end -----
}

// Security notices from the event hook: each password change, sign-in and
// new second factor is mailed to the account's owner.
func ExampleNotice() {
	send := func(ctx context.Context, e users.AuditEntry) {
		k, d, ok := mail.Notice(e)
		if !ok {
			return
		}
		d.To = "ada@example.com" // in an application: the email of the user e.UserID
		d.Link = "https://example.com/forgot"
		msg, err := mail.Default().Render(k, d)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(msg.Subject)
	}
	at := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	send(context.Background(), users.AuditEntry{Type: users.EventLoginSucceeded, Time: at, IP: "192.0.2.7"})
	send(context.Background(), users.AuditEntry{Type: users.EventLoginFailed, Time: at})
	send(context.Background(), users.AuditEntry{Type: users.EventPasswordChanged, Time: at})
	// Output:
	// New sign-in to your account
	// Your password was changed
}
