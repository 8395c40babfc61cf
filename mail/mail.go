// Package mail renders and hands over the email messages of the flows of
// package users: email verification, password reset, magic link,
// invitation, email change, and the security notices (password changed, new
// sign-in, second factor added, email changed).
//
// Package users sends nothing. Its request methods return a users.Delivery (a
// one-time token and the stored address to send it to); the application puts
// the token in a link, renders the message with Templates, and sends it with
// its Mailer: SMTP, an email API, or DevMailer while developing.
//
//	d, err := m.RequestPasswordReset(ctx, email)
//	if err == nil {
//		msg, err := mail.Default().Render(mail.KindPasswordReset,
//			mail.FromDelivery(d, "https://example.com/reset?token="+url.QueryEscape(d.Token)))
//		if err == nil {
//			err = mailer.Send(ctx, msg)
//		}
//	}
//
// The default templates (text and HTML) are embedded; New replaces any of them
// with an application's own. The package has no dependency beyond the
// standard library and package users.
package mail

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"

	"github.com/userkit/users"
)

// Kind names a message. Each has a subject, a text body and an HTML body in
// the templates, named after it (see New).
type Kind string

// The messages of package users' flows. The first five carry a one-time
// token's link; the rest are notices of a change to the account, sent so
// that its owner notices one they did not make.
const (
	KindVerifyEmail   Kind = "verify_email"   // RequestEmailVerification: confirm the address
	KindPasswordReset Kind = "password_reset" // RequestPasswordReset: choose a new password
	KindMagicLink     Kind = "magic_link"     // RequestMagicLink: sign in once
	KindInvitation    Kind = "invitation"     // Invite, Reinvite: choose a password and join
	KindEmailChange   Kind = "email_change"   // RequestEmailChange: confirm the new address (sent to it)

	KindPasswordChanged Kind = "password_changed" // the password was changed or reset
	KindNewSignIn       Kind = "new_sign_in"      // someone signed in (Data.Time, IP, UserAgent)
	KindFactorAdded     Kind = "factor_added"     // a second factor was added (Data.Factor)
	KindEmailChanged    Kind = "email_changed"    // the email was changed (sent to the old address; Data.NewEmail)
)

// Kinds returns every Kind the default templates have, in a new slice.
func Kinds() []Kind {
	return []Kind{
		KindVerifyEmail, KindPasswordReset, KindMagicLink, KindInvitation, KindEmailChange,
		KindPasswordChanged, KindNewSignIn, KindFactorAdded, KindEmailChanged,
	}
}

// Message is one rendered email.
type Message struct {
	Kind    Kind
	To      string // one address, as the store has it: never the caller's input
	Subject string // one line
	Text    string // the plain-text body
	HTML    string // the HTML body: a complete document
	// Link is the link the message is about (Data.Link), or empty. It is in
	// Text and HTML already; it is here for development logs and tests. A
	// link with a token signs someone in or changes their account: never log
	// it in production.
	Link string
}

// Mailer delivers messages: the application implements it over SMTP or an
// email API. Send may be called from many goroutines at once, and should be
// called off the request path (a queue or a worker), so that how long it
// takes never tells a requester whether an address has an account.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// MailerFunc adapts a function to a Mailer.
type MailerFunc func(ctx context.Context, m Message) error

// Send calls f(ctx, m).
func (f MailerFunc) Send(ctx context.Context, m Message) error { return f(ctx, m) }

// Data is what a template renders. Which fields a message uses depends on
// its Kind; a zero field is left out of the message.
type Data struct {
	// Site names the application in the message, e.g. "Example". Empty:
	// "your account" wording without a name.
	Site string
	// To is the recipient: a users.Delivery's To, or the stored email of the
	// user a notice is about.
	To string
	// Link is the URL the message asks to open: the one-time token's link,
	// or, in a notice, where to secure the account (the password reset page,
	// say). It must be an absolute http or https URL; the HTML template drops
	// any other.
	Link string
	// ExpiresAt is when the link stops working (users.Delivery.ExpiresAt).
	ExpiresAt time.Time
	// Time is when a noticed change happened (users.AuditEntry.Time).
	Time time.Time
	// IP and UserAgent describe the client of a new sign-in.
	IP        string
	UserAgent string
	// Factor names the second factor added, e.g. "totp".
	Factor string
	// NewEmail is the account's new address, in the email-changed notice
	// sent to the old one.
	NewEmail string
}

// FromDelivery returns the Data of a token's message: its address, expiry,
// and link (which the application makes from d.Token and its own URL).
func FromDelivery(d *users.Delivery, link string) Data {
	return Data{To: d.To, Link: link, ExpiresAt: d.ExpiresAt}
}

// Notice returns the notice Kind for an audit entry (from
// users.Options.OnEvent) and its Data with Time, IP, UserAgent and Factor
// filled in, or false when the entry calls for no notice. The application
// fills in To (the email of the user e.UserID) and Link, and decides whether
// to send it: mailing every sign-in is noisy for some products. The mapping:
//
//	user.password_changed, user.password_reset  KindPasswordChanged
//	login.succeeded                             KindNewSignIn
//	mfa.enabled                                 KindFactorAdded
//
// KindEmailChanged has no entry: the old address is not in it, so send that
// notice where the change is made.
func Notice(e users.AuditEntry) (Kind, Data, bool) {
	d := Data{Time: e.Time, IP: e.IP, UserAgent: e.UserAgent}
	switch e.Type {
	case users.EventPasswordChanged, users.EventPasswordReset:
		return KindPasswordChanged, d, true
	case users.EventLoginSucceeded:
		return KindNewSignIn, d, true
	case users.EventMFAEnabled:
		d.Factor = e.Data["method"]
		return KindFactorAdded, d, true
	}
	return "", Data{}, false
}

// ErrUnknownKind is returned by Render for a Kind that the templates do not
// define.
var ErrUnknownKind = errors.New("mail: no templates for this kind")

// ErrHeaderInjection is returned by Render when the recipient or the
// rendered subject holds a line break (or another control character), which
// a mail header would turn into a header of its own.
var ErrHeaderInjection = errors.New("mail: line break in a header")

//go:embed templates
var defaults embed.FS

// Templates renders messages. Make it with New or Default; it is safe for
// concurrent use.
type Templates struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// New returns the default templates with those in fsys (nil: none) in their
// place. For each Kind K, the text templates define "K.subject" and "K.text"
// and the HTML templates "K.html", which render Data (the HTML ones with
// .Subject too) and share the parts of templates/common.*.tmpl ("head" and
// "foot" of the page, "expiry", "client", "secure"). New parses fsys's files named *.txt.tmpl as text
// templates and *.html.tmpl as HTML ones (html/template, which escapes
// everything Data brings in), after the defaults, so a define of the same
// name replaces the default: to change one message, define just its names.
// An application may add kinds of its own the same way. New returns the
// parse error of a malformed template.
func New(fsys fs.FS) (*Templates, error) {
	t := &Templates{
		text: texttemplate.New("").Option("missingkey=error").Funcs(texttemplate.FuncMap{"date": date}),
		html: htmltemplate.New("").Option("missingkey=error").Funcs(htmltemplate.FuncMap{"date": date}),
	}
	for _, src := range []fs.FS{defaults, fsys} {
		if src == nil {
			continue
		}
		if err := t.parse(src); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *Templates) parse(fsys fs.FS) error {
	return fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		var parse func(string) error
		switch {
		case strings.HasSuffix(path, ".txt.tmpl"):
			parse = func(s string) error { _, err := t.text.New(path).Parse(s); return err }
		case strings.HasSuffix(path, ".html.tmpl"):
			parse = func(s string) error { _, err := t.html.New(path).Parse(s); return err }
		default:
			return nil
		}
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		if err := parse(string(b)); err != nil {
			return fmt.Errorf("mail: %w", err)
		}
		return nil
	})
}

var defaultTemplates = sync.OnceValue(func() *Templates {
	t, err := New(nil)
	if err != nil {
		panic(err) // the embedded templates are tested
	}
	return t
})

// Default returns the default templates. They are shared and never change.
func Default() *Templates { return defaultTemplates() }

// Render renders the message of kind k for d, addressed to d.To. It returns
// ErrUnknownKind for a kind the templates lack, ErrHeaderInjection if d.To
// or the subject holds a line break, and a template's execution error
// otherwise. It is safe for concurrent use.
func (t *Templates) Render(k Kind, d Data) (Message, error) {
	name := string(k)
	if t.text.Lookup(name+".subject") == nil || t.text.Lookup(name+".text") == nil || t.html.Lookup(name+".html") == nil {
		return Message{}, fmt.Errorf("%w: %q", ErrUnknownKind, k)
	}
	if hasControl(d.To) {
		return Message{}, fmt.Errorf("%w: the recipient", ErrHeaderInjection)
	}
	var subject, text, html bytes.Buffer
	if err := t.text.ExecuteTemplate(&subject, name+".subject", d); err != nil {
		return Message{}, fmt.Errorf("mail: %s: %w", k, err)
	}
	s := strings.TrimSpace(subject.String())
	if hasControl(s) {
		return Message{}, fmt.Errorf("%w: the subject of %s", ErrHeaderInjection, k)
	}
	if err := t.text.ExecuteTemplate(&text, name+".text", d); err != nil {
		return Message{}, fmt.Errorf("mail: %s: %w", k, err)
	}
	if err := t.html.ExecuteTemplate(&html, name+".html", htmlData{d, s}); err != nil {
		return Message{}, fmt.Errorf("mail: %s: %w", k, err)
	}
	return Message{Kind: k, To: d.To, Subject: s, Text: text.String(), HTML: html.String(), Link: d.Link}, nil
}

// htmlData is what the HTML templates render: Data and the subject, for the
// document's title.
type htmlData struct {
	Data
	Subject string
}

// hasControl reports whether s holds a control character: CR and LF end a
// header line; the others have no business in one.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// date formats a time for a message, in UTC so that a server's zone does not
// leak into mail.
func date(t time.Time) string {
	return t.UTC().Format("2 January 2006 at 15:04 UTC")
}

// Sender renders and sends in one call. Its zero value sends nothing (Send
// returns an error); set Mailer. It is safe for concurrent use when Mailer
// is.
type Sender struct {
	Mailer    Mailer
	Templates *Templates // nil: Default()
	Site      string     // Data.Site for every message that leaves it empty
}

// Send renders the message of kind k for d (see Templates.Render) and hands
// it to s.Mailer, returning the first error.
func (s *Sender) Send(ctx context.Context, k Kind, d Data) error {
	if s.Mailer == nil {
		return errors.New("mail: Sender without a Mailer")
	}
	t := s.Templates
	if t == nil {
		t = Default()
	}
	if d.Site == "" {
		d.Site = s.Site
	}
	m, err := t.Render(k, d)
	if err != nil {
		return err
	}
	return s.Mailer.Send(ctx, m)
}
