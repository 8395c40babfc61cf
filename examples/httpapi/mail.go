package main

import (
	"context"
	"embed"
	"net/url"
	"sync/atomic"

	"github.com/userkit/users"
	"github.com/userkit/users/mail"
)

// Mail is a message the API sends, before it is rendered.
type Mail struct {
	To string // the address
	// Kind is "password-reset", "verify-email", "invitation", "magic-link",
	// "email-change", "signup" (an invitation token: the link leads to choosing
	// a password) or "account-exists" (no token: "you already have an account;
	// sign in or reset your password").
	Kind  string
	Token string // the one-time token the link carries, if any
}

// kinds gives each Mail.Kind its template in the mail kit and the front-end
// page its link opens.
var kinds = map[string]struct {
	kind mail.Kind
	page string
}{
	"password-reset": {mail.KindPasswordReset, "/reset"},
	"verify-email":   {mail.KindVerifyEmail, "/verify"},
	"invitation":     {mail.KindInvitation, "/join"},
	"signup":         {mail.KindInvitation, "/join"},
	"magic-link":     {mail.KindMagicLink, "/magic"},
	"email-change":   {mail.KindEmailChange, "/email-change"},
	"account-exists": {"account_exists", "/forgot"}, // this API's own template
}

// The kit's default templates, with this API's own message added.
//
//go:embed mailtemplates
var ownTemplates embed.FS

var templates = func() *mail.Templates {
	t, err := mail.New(ownTemplates)
	if err != nil {
		panic(err) // the embedded templates are tested
	}
	return t
}()

// mail sends m: to Server.Mail if set, else rendered with the kit's templates
// and handed to Server.Mailer. It logs a "would email" line with the token
// too, since this example has no front end to open the link: a real program
// never logs a token.
func (s *Server) mail(ctx context.Context, m Mail) {
	if s.Mail != nil {
		s.Mail(ctx, m)
		return
	}
	k := kinds[m.Kind]
	link := s.linkBase() + k.page
	if m.Token != "" {
		link += "?token=" + url.QueryEscape(m.Token)
	}
	msg, err := templates.Render(k.kind, mail.Data{Site: "httpapi", To: m.To, Link: link})
	if err != nil {
		s.logger().Error("rendering mail", "kind", m.Kind, "err", err)
		return
	}
	s.logger().Info("would email (no front end in this example; a real program never logs the token)",
		"to", m.To, "kind", m.Kind, "subject", msg.Subject, "token", m.Token)
	if s.Mailer != nil {
		if err := s.Mailer.Send(ctx, msg); err != nil {
			s.logger().Error("sending mail", "kind", m.Kind, "err", err)
		}
	}
}

// notices returns an event hook (users.Options.OnEvent) that mails the
// owner of an account the kit's notice of a password change or a second
// factor added, with a link to reset the password, through the Server in
// srv once it is set (the Server needs the Manager the hook is for). Other
// events, and sign-ins (a real program would mail only a new device's),
// send nothing.
func notices(srv *atomic.Pointer[Server]) func(ctx context.Context, e users.AuditEntry) {
	return func(ctx context.Context, e users.AuditEntry) {
		s := srv.Load()
		k, d, ok := mail.Notice(e)
		if s == nil || !ok || k == mail.KindNewSignIn {
			return
		}
		u, err := s.Users.Get(ctx, e.UserID)
		if err != nil {
			return // removed since
		}
		d.Site, d.To, d.Link = "httpapi", u.Email, s.linkBase()+"/forgot"
		msg, err := templates.Render(k, d)
		if err != nil {
			s.logger().Error("rendering mail", "kind", k, "err", err)
			return
		}
		s.logger().Info("would email a notice", "to", msg.To, "kind", k)
		if s.Mailer != nil {
			if err := s.Mailer.Send(ctx, msg); err != nil {
				s.logger().Error("sending mail", "kind", k, "err", err)
			}
		}
	}
}
