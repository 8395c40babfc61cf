package main

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/mail"
)

// TestMailKit: without a Mail hook, every kind of message is rendered from
// the mail kit's templates, with a link to the front end that carries the
// token, and handed to the Mailer.
func TestMailKit(t *testing.T) {
	var mu sync.Mutex
	var sent []mail.Message
	s := &Server{LinkBase: "https://app.example", Mailer: mail.MailerFunc(func(_ context.Context, m mail.Message) error {
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, m)
		return nil
	})}
	for kind, k := range kinds {
		t.Run(kind, func(t *testing.T) {
			sent = nil
			token := ""
			if kind != "account-exists" {
				token = "tok+en"
			}
			s.mail(t.Context(), Mail{To: "ada@example.com", Kind: kind, Token: token})
			if len(sent) != 1 {
				t.Fatalf("sent %d messages, want 1", len(sent))
			}
			m := sent[0]
			wantLink := "https://app.example" + k.page
			if token != "" {
				wantLink += "?token=tok%2Ben"
			}
			if m.Kind != k.kind || m.To != "ada@example.com" || m.Link != wantLink || m.Subject == "" ||
				!strings.Contains(m.Text, wantLink) || !strings.Contains(m.HTML, wantLink) {
				t.Errorf("sent %+v; want a %s message to ada@example.com with the link %s", m, k.kind, wantLink)
			}
		})
	}
}

// TestMailKit_Flow: a password reset requested over the API reaches the
// Mailer as the kit's message, with the token that resets the password.
func TestMailKit_Flow(t *testing.T) {
	var mu sync.Mutex
	var sent []mail.Message
	e := newEnv(t, users.NewMemoryStore(), func(s *Server) {
		s.Mail = nil
		s.Mailer = mail.MailerFunc(func(_ context.Context, m mail.Message) error {
			mu.Lock()
			defer mu.Unlock()
			sent = append(sent, m)
			return nil
		})
	})
	e.call("POST", "/v1/auth/password-reset", "", `{"email":"`+adminEmail+`"}`, 202)
	e.srv.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 1 || sent[0].Kind != mail.KindPasswordReset || sent[0].To != adminEmail {
		t.Fatalf("sent %+v, want one password reset to %s", sent, adminEmail)
	}
	_, q, _ := strings.Cut(sent[0].Link, "?")
	v, err := url.ParseQuery(q)
	token := v.Get("token")
	if err != nil || token == "" {
		t.Fatalf("link %q has no token", sent[0].Link)
	}
	e.call("POST", "/v1/auth/password-reset/confirm", "", `{"token":"`+token+`","new_password":"a brand new passphrase"}`, 200)
}

// TestNotices: a password change mails its owner the kit's notice, at the
// stored address; a login mails nothing.
func TestNotices(t *testing.T) {
	var mu sync.Mutex
	var sent []mail.Message
	var srv atomic.Pointer[Server]
	e := newEnvOpts(t, users.NewMemoryStore(), users.Options{OnEvent: notices(&srv)}, func(s *Server) {
		s.Mailer = mail.MailerFunc(func(_ context.Context, m mail.Message) error {
			mu.Lock()
			defer mu.Unlock()
			sent = append(sent, m)
			return nil
		})
	})
	srv.Store(e.srv)
	tok := e.login(adminEmail, adminPassword)
	e.call("PUT", "/v1/me/password", tok, `{"current_password":"`+adminPassword+`","new_password":"a brand new password","confirm_password":"a brand new password"}`, 200)
	if err := e.m.FlushEvents(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 1 || sent[0].Kind != mail.KindPasswordChanged || sent[0].To != adminEmail || !strings.Contains(sent[0].Text, "/forgot") {
		t.Errorf("sent %+v, want one password-changed notice to %s with the reset link", sent, adminEmail)
	}
}
