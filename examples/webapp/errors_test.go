package main

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/userkit/users"
)

// TestNotFound checks that a path no route has, and a static file that is
// not there, get the site's own 404 page, in its layout, with the security
// headers; the static folder is not listed.
func TestNotFound(t *testing.T) {
	s := newSite(t, false)
	b := s.browser(t)
	for _, path := range []string{"/no/such/page", "/account/nothing", "/signin/", "/static/", "/static/nothing.css"} {
		resp, body := b.get(path)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", path, resp.Status)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
		for _, want := range []string{`<link rel="stylesheet" href="/static/style.css">`, "<h1>Page not found</h1>", `href="/signin"`} {
			if !strings.Contains(body, want) {
				t.Errorf("GET %s: the page lacks %q:\n%s", path, want, body)
			}
		}
		if resp.Header.Get("Content-Security-Policy") != csp {
			t.Errorf("GET %s: no CSP on the 404 page", path)
		}
	}
}

// TestServerError checks that a failure (an error from the store, a panic)
// shows the site's 500 page with the request's ID and no detail, and that the
// detail goes to the log under that ID.
func TestServerError(t *testing.T) {
	const secret = "pq: connection to 10.0.0.7 refused (password=hunter2)"
	s := newSite(t, false)
	cases := map[string]http.HandlerFunc{
		"StoreError": func(w http.ResponseWriter, r *http.Request) {
			s.app.internal(w, r, "loading the account", errors.New(secret))
		},
		"Panic": func(w http.ResponseWriter, r *http.Request) { panic(secret) },
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			// The handler behind the same middleware as the site's routes.
			srv := httptest.NewServer(s.app.logRequests(s.app.headers(s.app.recoverPanics(h))))
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			body := string(raw)
			id := resp.Header.Get("X-Request-ID")
			if resp.StatusCode != http.StatusInternalServerError || id == "" {
				t.Fatalf("%s, X-Request-ID %q; want 500 with an ID", resp.Status, id)
			}
			for _, want := range []string{`href="/static/style.css"`, "<h1>Something went wrong</h1>", `<code id="request-id">` + id + "</code>"} {
				if !strings.Contains(body, want) {
					t.Errorf("the page lacks %q:\n%s", want, body)
				}
			}
			if strings.Contains(body, "hunter2") || strings.Contains(body, "10.0.0.7") {
				t.Errorf("the page shows the error's detail:\n%s", body)
			}
			var logged bool
			for _, line := range strings.Split(s.log.String(), "\n") {
				if strings.Contains(line, "level=ERROR") && strings.Contains(line, "hunter2") && strings.Contains(line, "request_id="+id) {
					logged = true
				}
			}
			if !logged {
				t.Errorf("no error logged with request_id=%s:\n%s", id, s.log.String())
			}
		})
	}
}

// TestSignedInAwayFromSignIn checks that a signed-in browser is sent on from
// the sign-in and sign-up forms (to ?next= when it is on this site), and that
// a signed-out one sees them.
func TestSignedInAwayFromSignIn(t *testing.T) {
	s := newSite(t, false)
	s.user(t, users.NewUser{Email: "ada@example.com", Password: "correct horse battery"})
	b := s.browser(t)
	for _, path := range []string{"/signin", "/signup"} {
		if resp, _ := b.get(path); resp.StatusCode != http.StatusOK {
			t.Errorf("signed out, GET %s: %s, want 200", path, resp.Status)
		}
	}
	b.signIn("ada@example.com", "correct horse battery")
	for path, want := range map[string]string{
		"/signin": "/account",
		"/signup": "/account",
		"/signin?next=" + url.QueryEscape("/account?tab=mfa"): "/account?tab=mfa",
		"/signin?next=" + url.QueryEscape("//evil.example/"):  "/account",
	} {
		resp, _ := b.get(path)
		if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != want {
			t.Errorf("signed in, GET %s: %s to %q, want 303 to %q", path, resp.Status, got, want)
		}
	}
}

// TestFieldError checks that every validation error of a joined error is
// shown, each under its field, and that the summary names each field.
func TestFieldError(t *testing.T) {
	err := errors.Join(
		&users.ValidationError{Field: "username", Code: users.ValidationTooLong, Reason: "must be at most 64 characters"},
		errors.New("something else"),
		&users.ValidationError{Field: "new_password", Code: users.ValidationTooShort, Reason: "must be at least 8 characters"},
	)
	if got := summarize(map[string]string{"mfa_code": "The code is wrong."}, nil); len(got) != 1 || got[0].Text != "Code: the code is wrong." {
		t.Errorf("summarize(mfa_code) = %q", got)
	}
	fields, ok := fieldError(err)
	if !ok || len(fields) != 2 || fields["username"] != "Must be at most 64 characters." || fields["new_password"] != "Must be at least 8 characters." {
		t.Fatalf("fieldError = %q, %v", fields, ok)
	}
	got := summarize(fields, nil) // no form: by name
	want := []summaryItem{{"new_password", "New password: must be at least 8 characters."}, {"username", "Username: must be at most 64 characters."}}
	if !slices.Equal(got, want) {
		t.Errorf("summarize = %q, want %q", got, want)
	}
	got = summarize(fields, []string{"username", "current_password", "new_password"}) // the form's order
	if want := []summaryItem{want[1], want[0]}; !slices.Equal(got, want) {
		t.Errorf("summarize in the form's order = %q, want %q", got, want)
	}
	if _, ok := fieldError(errors.New("not a validation error")); ok {
		t.Error("fieldError reported fields for a plain error")
	}
}
