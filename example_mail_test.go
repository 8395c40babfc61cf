package users_test

import (
	"context"
	"fmt"
	"net/url"

	"github.com/userkit/users"
	"github.com/userkit/users/mail"
)

// A Delivery becomes mail with the kit in github.com/userkit/users/mail: its
// default templates render the message (text and HTML), and a mail.Mailer
// (SMTP, an email API, or mail.DevMailer while developing) sends it.
func ExampleDelivery() {
	ctx := context.Background()
	m := exampleManager()
	m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: "analytical engine 1843"})
	email := "Ada@Example.com" // as typed into the "forgot password" form
	mailer := mail.MailerFunc(func(_ context.Context, msg mail.Message) error {
		fmt.Println(msg.To, "|", msg.Subject, "|", msg.HTML != "")
		return nil
	})

	sender := &mail.Sender{Site: "Example", Mailer: mailer} // mailer: your SMTP or email API, or &mail.DevMailer{W: os.Stderr}
	d, err := m.RequestPasswordReset(ctx, email)
	if err == nil {
		link := "https://app.example/reset?token=" + url.QueryEscape(d.Token)
		err = sender.Send(ctx, mail.KindPasswordReset, mail.FromDelivery(d, link))
	}
	fmt.Println(err)
	// Output:
	// ada@example.com | Reset your password | true
	// <nil>
}
