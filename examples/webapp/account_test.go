package main

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/userkit/users"
)

// TestEmailChange checks that an email change goes through a link mailed to
// the new address: nothing changes before it is followed, and the answer, the
// account page and the store work are the same whether the new address is
// taken or free.
func TestEmailChange(t *testing.T) {
	s := newSite(t, false)
	const pw = "ada's own password"
	ada := s.user(t, users.NewUser{Email: "ada@example.com", Password: pw})
	s.user(t, users.NewUser{Email: "bob@example.com", Password: "bob's own password"})
	b := s.browser(t)
	b.signIn("ada@example.com", pw)

	change := func(email string) (answer string, calls []string) {
		csrf := b.token("/account")
		n := len(s.mails(email))
		resume := s.pause(t)
		s.store.take()
		resp, body := b.post("/account/email", url.Values{"csrf": {csrf}, "email": {email}, "email_password": {pw}})
		calls = s.store.take()
		_, page := b.get(resp.Header.Get("Location"))
		resume()
		s.waitMails(t, email, n)
		return strings.ReplaceAll(resp.Status+" "+resp.Header.Get("Location")+"\n"+body+page, email, "NEW"), calls
	}
	taken, takenCalls := change("bob@example.com")
	free, freeCalls := change("ada.lovelace@example.com")
	if taken != free {
		t.Errorf("a taken and a free address get different answers:\n%s\n---\n%s", taken, free)
	}
	if !slices.Equal(takenCalls, freeCalls) {
		t.Errorf("store calls differ: taken %v, free %v", takenCalls, freeCalls)
	}
	if !strings.Contains(free, "Your email is <strong>ada@example.com</strong>,\nconfirmed.") || !strings.Contains(free, "Your email changes when you follow it.") {
		t.Errorf("the account page after the request:\n%s", free)
	}
	if got := s.mails("ada@example.com"); len(got) != 2 || !strings.HasPrefix(got[0], "A change of your email was asked for") {
		t.Errorf("mails to the current address: %q", got)
	}
	// Nothing changed yet: the old address still signs in.
	if u, _ := s.users.Get(t.Context(), ada.ID); u.Email != "ada@example.com" {
		t.Fatalf("the email changed before the link was followed: %s", u.Email)
	}
	if _, err := s.users.Login(t.Context(), "ada@example.com", pw); err != nil {
		t.Errorf("sign-in with the current address: %v", err)
	}

	confirm := func(email string) (*http.Response, string) {
		link := strings.TrimPrefix(s.link(t, email, "Confirm your new email"), s.srv.URL)
		other := s.browser(t) // the link works on any device, signed in or not
		return other.post("/email/confirm", url.Values{"csrf": {other.token(link)}, "token": {strings.TrimPrefix(link, "/email/confirm?token=")}})
	}
	// The second request voided the first, so bob's address's link is dead.
	if resp, body := confirm("bob@example.com"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "This link does not work") {
		t.Errorf("the voided link: %s\n%s", resp.Status, body)
	}
	resp, _ := confirm("ada.lovelace@example.com")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
		t.Errorf("confirming: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	if u, _ := s.users.Get(t.Context(), ada.ID); u.Email != "ada.lovelace@example.com" || !u.EmailVerified {
		t.Errorf("after the link: %s, confirmed %v", u.Email, u.EmailVerified)
	}

	// A taken address, asked for alone: its link is refused, and nothing changes.
	change("bob@example.com")
	if resp, body := confirm("bob@example.com"); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "has an account already") {
		t.Errorf("the taken address's link: %s\n%s", resp.Status, body)
	}
	if u, _ := s.users.Get(t.Context(), ada.ID); u.Email != "ada.lovelace@example.com" {
		t.Errorf("ada's email became %s", u.Email)
	}

	// A wrong password changes nothing and mails nothing.
	before := len(s.mails("carol@example.com"))
	resp, body := b.post("/account/email", url.Values{"csrf": {b.token("/account")}, "email": {"carol@example.com"}, "email_password": {"not the password"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "The password is wrong.") || len(s.mails("carol@example.com")) != before {
		t.Errorf("a wrong password: %s\n%s", resp.Status, body)
	}
	if _, err := s.users.GetByEmail(t.Context(), "carol@example.com"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("carol: %v", err)
	}
}

// TestProfile_EveryFieldError posts the profile form with three bad fields:
// all three errors are shown at once, beside their fields (aria-invalid,
// aria-describedby) and in the summary, which lists them in the form's order
// and keeps its focus and links; the form keeps what was typed, and nothing
// changes.
func TestProfile_EveryFieldError(t *testing.T) {
	s := newSite(t, false)
	const pw = "ada's own password"
	ada := s.user(t, users.NewUser{Email: "ada@example.com", Username: "ada", FirstName: "Ada", Password: pw})
	b := s.browser(t)
	b.signIn("ada@example.com", pw)

	long := strings.Repeat("L", 101)
	resp, body := b.post("/account/profile", url.Values{"csrf": {b.token("/account")},
		"first_name": {long}, "last_name": {"Love\x01lace"}, "username": {"a!"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("%s, want 400\n%s", resp.Status, body)
	}
	for _, want := range []string{
		`There are problems`, `autofocus`,
		`aria-invalid="true" aria-describedby="first_name-error"`,
		`<span class="field-error" id="first_name-error">Must be at most 100 characters.</span>`,
		`aria-invalid="true" aria-describedby="last_name-error"`,
		`<span class="field-error" id="last_name-error">Must not contain control characters.</span>`,
		`aria-invalid="true" aria-describedby="username-error"`,
		`<span class="field-error" id="username-error">Must be 3 to 32 characters.</span>`,
		`value="` + long + `"`, `value="a!"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// The summary reads as the form does: first name, last name, username.
	links := []string{
		`<li><a href="#first_name">First name: must be at most 100 characters.</a></li>`,
		`<li><a href="#last_name">Last name: must not contain control characters.</a></li>`,
		`<li><a href="#username">Username: must be 3 to 32 characters.</a></li>`,
	}
	last := -1
	for _, l := range links {
		i := strings.Index(body, l)
		if i <= last {
			t.Errorf("the summary lacks %q, or has it out of the form's order:\n%s", l, body)
		}
		last = i
	}
	if u, err := s.users.Get(t.Context(), ada.ID); err != nil || u.FirstName != "Ada" || u.Username != "ada" || u.LastName != "" {
		t.Errorf("a refused profile changed the user: %+v, %v", u, err)
	}
}

// TestFormFields checks that the summary's order comes from the forms: the
// field ids of a page, in the order the page shows them.
func TestFormFields(t *testing.T) {
	s := newSite(t, false)
	for page, want := range map[string][]string{
		"signup-finish": {"username", "password"},
		"account":       {"first_name", "last_name", "username", "current_password", "new_password", "email", "email_password", "mfa_password", "mfa_code"},
	} {
		if got := s.app.fields[page]; !slices.Equal(got, want) {
			t.Errorf("fields of %s = %q, want %q", page, got, want)
		}
	}
}
