package main

import (
	"encoding/json"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/userkit/users"
)

var requestLine = regexp.MustCompile(`(?m)^.*msg=request .*$`)

// TestRequestLog checks the request log: one line per request with the
// method, the path, the status, the duration and the request ID of the
// response's X-Request-ID header, and never a query string, a cookie or a
// token.
func TestRequestLog(t *testing.T) {
	s := newSite(t, false)
	s.user(t, users.NewUser{Email: "ada@example.com", Password: "correct horse battery"})
	b := s.browser(t)
	const linkToken = "a-secret-link-token-xyz"
	resp, _ := b.get("/verify?token=" + linkToken)
	session := b.signIn("ada@example.com", "correct horse battery")
	notFound, _ := b.get("/no/such/page?token=" + linkToken)

	lines := requestLine.FindAllString(s.log.String(), -1)
	if len(lines) != 4 { // the verify page, the sign-in form, its POST, the 404
		t.Fatalf("%d request lines, want 4:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for i, want := range []struct {
		method, path string
		status       int
		id           string
	}{
		{"GET", "/verify", 200, resp.Header.Get("X-Request-ID")},
		{"GET", "/signin", 200, ""},
		{"POST", "/signin", 303, ""},
		{"GET", "/no/such/page", 404, notFound.Header.Get("X-Request-ID")},
	} {
		line := lines[i]
		for _, part := range []string{"method=" + want.method, "path=" + want.path + " ", "status=" + strconv.Itoa(want.status), "duration="} {
			if !strings.Contains(line, part) {
				t.Errorf("line %d lacks %q: %s", i, part, line)
			}
		}
		if !regexp.MustCompile(`request_id=[0-9a-f]{16}\b`).MatchString(line) {
			t.Errorf("line %d has no request ID: %s", i, line)
		}
		if want.id != "" && !strings.Contains(line, "request_id="+want.id) {
			t.Errorf("line %d lacks the response's X-Request-ID %s: %s", i, want.id, line)
		}
	}
	log := s.log.String()
	csrf := b.cookie(s.app.csrfCookie)
	for what, secret := range map[string]string{"the link's token": linkToken, "the session cookie": session,
		"the CSRF cookie": csrf, "the password": "correct horse battery", "a query string": "?token"} {
		if secret != "" && strings.Contains(log, secret) {
			t.Errorf("the log holds %s:\n%s", what, log)
		}
	}
	if session == "" || csrf == "" {
		t.Fatal("no session or CSRF cookie to look for")
	}
}

// TestLogMailer checks that the dev mailer logs the whole message: the
// recipient, the subject, the link and every line of the text body.
func TestLogMailer(t *testing.T) {
	var buf syncBuffer
	m := Message{To: "ada@example.com", Subject: "Reset your password",
		Text: "Open this link to choose a new password:\nhttps://app.example/reset?token=t0k\n\nIf you did not ask, ignore this mail.",
		Link: "https://app.example/reset?token=t0k"}
	if err := (LogMailer{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}).Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(buf.String()), &got); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	for k, want := range map[string]string{"to": m.To, "subject": m.Subject, "link": m.Link, "text": m.Text} {
		if got[k] != want {
			t.Errorf("%s: logged %q, want %q", k, got[k], want)
		}
	}
}
