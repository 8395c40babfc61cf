package mail_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/mail"
)

var when = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// full is Data with every field set, for any kind.
func full() mail.Data {
	return mail.Data{
		Site: "Example", To: "ada@example.com", Link: "https://example.com/act?token=abc%2Bdef",
		ExpiresAt: when.Add(time.Hour), Time: when, IP: "192.0.2.7", UserAgent: "Firefox/140",
		Factor: "totp", NewEmail: "ada.lovelace@example.com",
	}
}

// TestRender_EveryKind: every kind has a one-line subject, a text body and a
// whole HTML document, each with the link, and the text names the site.
func TestRender_EveryKind(t *testing.T) {
	for _, k := range mail.Kinds() {
		t.Run(string(k), func(t *testing.T) {
			d := full()
			m, err := mail.Default().Render(k, d)
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind != k || m.To != d.To || m.Link != d.Link {
				t.Errorf("Kind, To, Link = %q, %q, %q; want %q, %q, %q", m.Kind, m.To, m.Link, k, d.To, d.Link)
			}
			if m.Subject == "" || strings.ContainsAny(m.Subject, "\r\n") {
				t.Errorf("subject %q, want one non-empty line", m.Subject)
			}
			if !strings.Contains(m.Text, d.Link) || !strings.Contains(m.Text, "Example") {
				t.Errorf("text lacks the link or the site:\n%s", m.Text)
			}
			// html/template writes "&" in an attribute as "&amp;"; the link has none.
			if !strings.Contains(m.HTML, `href="`+d.Link+`"`) {
				t.Errorf("HTML lacks the link as an href:\n%s", m.HTML)
			}
			if !strings.HasPrefix(m.HTML, "<!DOCTYPE html>") || !strings.Contains(m.HTML, "<title>"+m.Subject+"</title>") {
				t.Errorf("HTML is not a whole document titled with the subject:\n%s", m.HTML)
			}
		})
	}
}

// TestRender_Defaults pins two messages whole, so that a template change is
// a visible change.
func TestRender_Defaults(t *testing.T) {
	d := full()
	d.Link = "https://example.com/reset?token=abc"
	m, err := mail.Default().Render(mail.KindPasswordReset, d)
	if err != nil {
		t.Fatal(err)
	}
	want := `Hello,

Someone, probably you, asked to reset the password of your Example account. Open this link to choose a new one:

https://example.com/reset?token=abc

The link works once, until 14 March 2026 at 16:09 UTC.
If you did not ask for this, ignore this message: nothing changes.

Example
`
	if m.Subject != "Reset your password" || m.Text != want {
		t.Errorf("got subject %q, text:\n%s\nwant %q, text:\n%s", m.Subject, m.Text, "Reset your password", want)
	}
	n, err := mail.Default().Render(mail.KindNewSignIn, mail.Data{To: "ada@example.com", Time: when, IP: "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	want = `Hello,

Someone signed in to your account.
When: 14 March 2026 at 15:09 UTC
IP address: 192.0.2.7

If this was you, you need to do nothing. If this was not you, reset your password now.

Sent by the account service
`
	if n.Text != want {
		t.Errorf("new sign-in text:\n%s\nwant:\n%s", n.Text, want)
	}
}

// TestRender_Escapes: what Data brings in cannot add markup or a script
// link to the HTML body.
func TestRender_Escapes(t *testing.T) {
	d := full()
	d.Site = `<script>alert("site")</script>`
	d.UserAgent = `<img src=x onerror=alert(1)>`
	d.Link = "javascript:alert(1)"
	m, err := mail.Default().Render(mail.KindNewSignIn, d)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script>", "<img", `href="javascript:`} {
		if strings.Contains(m.HTML, bad) {
			t.Errorf("HTML contains %q:\n%s", bad, m.HTML)
		}
	}
	if !strings.Contains(m.HTML, "&lt;script&gt;") {
		t.Errorf("HTML does not show the site's name escaped:\n%s", m.HTML)
	}
}

// TestRender_HeaderInjection: a line break in the recipient or the subject
// would start a header of its own (Bcc: ...) in most mail libraries, so the
// message is refused instead.
func TestRender_HeaderInjection(t *testing.T) {
	subjectWithSite, err := mail.New(fstest.MapFS{"x.txt.tmpl": {Data: []byte(
		`{{define "verify_email.subject"}}Confirm your {{.Site}} email{{end}}`)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		t    *mail.Templates
		d    mail.Data
	}{
		{"To", mail.Default(), mail.Data{To: "ada@example.com\r\nBcc: eve@example.com", Link: "https://example.com/"}},
		{"ToLF", mail.Default(), mail.Data{To: "ada@example.com\nBcc: eve@example.com", Link: "https://example.com/"}},
		{"Subject", subjectWithSite, mail.Data{To: "ada@example.com", Site: "X\r\nBcc: eve@example.com", Link: "https://example.com/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := tc.t.Render(mail.KindVerifyEmail, tc.d)
			if !errors.Is(err, mail.ErrHeaderInjection) {
				t.Errorf("got %+v, %v; want ErrHeaderInjection", m, err)
			}
		})
	}
}

// TestNew_Override: an application's template replaces the default of the
// same name, leaves the others, and may add a kind of its own.
func TestNew_Override(t *testing.T) {
	tm, err := mail.New(fstest.MapFS{
		"mail/reset.txt.tmpl": {Data: []byte(`{{define "password_reset.subject"}}New password for {{.Site}}{{end}}`)},
		"mail/welcome.txt.tmpl": {Data: []byte(`{{define "welcome.subject"}}Welcome{{end}}` +
			`{{define "welcome.text"}}Hi {{.To}}{{end}}`)},
		"mail/welcome.html.tmpl": {Data: []byte(`{{define "welcome.html"}}<p>Hi {{.To}}</p>{{end}}`)},
		"README":                 {Data: []byte("not a template")},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := full()
	m, err := tm.Render(mail.KindPasswordReset, d)
	if err != nil || m.Subject != "New password for Example" || !strings.Contains(m.Text, d.Link) {
		t.Errorf("overridden subject: %+v, %v", m, err)
	}
	if m, err := tm.Render(mail.KindMagicLink, d); err != nil || m.Subject != "Your sign-in link" {
		t.Errorf("a kind not overridden: %+v, %v", m, err)
	}
	if m, err := tm.Render("welcome", mail.Data{To: "a<b>@example.com"}); err != nil || m.Text != "Hi a<b>@example.com" || m.HTML != "<p>Hi a&lt;b&gt;@example.com</p>" {
		t.Errorf("the application's own kind: %+v, %v", m, err)
	}
	if got := mail.Default(); got == tm {
		t.Error("New returned the shared defaults")
	}
	if m, _ := mail.Default().Render(mail.KindPasswordReset, d); m.Subject != "Reset your password" {
		t.Errorf("New changed the defaults: subject %q", m.Subject)
	}
	if _, err := mail.New(fstest.MapFS{"bad.html.tmpl": {Data: []byte(`{{define "x"}}`)}}); err == nil {
		t.Error("New parsed a malformed template")
	}
}

func TestRender_UnknownKind(t *testing.T) {
	if _, err := mail.Default().Render("nope", full()); !errors.Is(err, mail.ErrUnknownKind) {
		t.Errorf("got %v, want ErrUnknownKind", err)
	}
}

// TestDevMailer: the whole message is written, in one piece even when
// messages are sent at once.
func TestDevMailer(t *testing.T) {
	var buf bytes.Buffer
	dm := &mail.DevMailer{W: &buf, HTML: true}
	m, err := mail.Default().Render(mail.KindMagicLink, full())
	if err != nil {
		t.Fatal(err)
	}
	if err := dm.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"To: ada@example.com\n", "Subject: Your sign-in link\n", "Kind: magic_link\n", strings.TrimRight(m.Text, "\n"), "<!DOCTYPE html>", "----- end -----\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("dev mailer output lacks %q:\n%s", want, out)
		}
	}

	var w lockedCounter
	dm = &mail.DevMailer{W: &w}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { _ = dm.Send(context.Background(), m) })
	}
	wg.Wait()
	if w.writes != 8 {
		t.Errorf("%d writes for 8 messages, want one each", w.writes)
	}
	if err := (&mail.DevMailer{}).Send(t.Context(), m); err != nil {
		t.Errorf("nil writer: %v", err)
	}
}

type lockedCounter struct {
	mu     sync.Mutex
	writes int
}

func (c *lockedCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return len(p), nil
}

// TestSender renders with the Sender's site and hands the message over.
func TestSender(t *testing.T) {
	var got []mail.Message
	s := &mail.Sender{Site: "Example", Mailer: mail.MailerFunc(func(_ context.Context, m mail.Message) error {
		got = append(got, m)
		return nil
	})}
	d := mail.FromDelivery(&users.Delivery{To: "ada@example.com", Token: "tok", ExpiresAt: when}, "https://example.com/verify?token=tok")
	if err := s.Send(t.Context(), mail.KindVerifyEmail, d); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].To != "ada@example.com" || !strings.Contains(got[0].Text, "your Example account") || !strings.Contains(got[0].Text, "until 14 March 2026 at 15:09 UTC") {
		t.Errorf("sent %+v", got)
	}
	if err := (&mail.Sender{}).Send(t.Context(), mail.KindVerifyEmail, d); err == nil {
		t.Error("a Sender without a Mailer sent")
	}
}

// TestNotice maps the audit events that call for a notice.
func TestNotice(t *testing.T) {
	for _, tc := range []struct {
		e    users.AuditEntry
		want mail.Kind
	}{
		{users.AuditEntry{Type: users.EventPasswordChanged}, mail.KindPasswordChanged},
		{users.AuditEntry{Type: users.EventPasswordReset}, mail.KindPasswordChanged},
		{users.AuditEntry{Type: users.EventLoginSucceeded, IP: "192.0.2.7", UserAgent: "curl", Time: when}, mail.KindNewSignIn},
		{users.AuditEntry{Type: users.EventMFAEnabled, Data: map[string]string{"method": "totp"}}, mail.KindFactorAdded},
		{users.AuditEntry{Type: users.EventLoginFailed}, ""},
	} {
		k, d, ok := mail.Notice(tc.e)
		if k != tc.want || ok != (tc.want != "") {
			t.Errorf("Notice(%s) = %q, %v; want %q", tc.e.Type, k, ok, tc.want)
		}
		if d.IP != tc.e.IP || d.UserAgent != tc.e.UserAgent || !d.Time.Equal(tc.e.Time) || d.Factor != tc.e.Data["method"] {
			t.Errorf("Notice(%s) data %+v does not carry the entry's client, time and factor", tc.e.Type, d)
		}
	}
}
