package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/userkit/users"
)

// cookies returns the tab's cookies for the site as names and attributes,
// without their values, sorted.
func (b *tab) cookies(t *testing.T) []string {
	t.Helper()
	ctx, cancel := b.timeout()
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base + "/"}})
	if err != nil {
		t.Fatalf("reading cookies: %v", err)
	}
	var out []string
	for _, c := range res.Cookies {
		out = append(out, fmt.Sprintf("%s path=%s httponly=%v secure=%v samesite=%s session=%v",
			c.Name, c.Path, c.HTTPOnly, c.Secure, c.SameSite, c.Session))
	}
	slices.Sort(out)
	return out
}

// TestBrowser_SignupNoOracle signs up in Chromium, each time in a new browser,
// with an email that has an account and with one that has none, and checks
// that the browser gets the same status, page (the address masked) and
// cookies; and that the address with an account is not given the password
// typed into an old form, while the other gets no account until its link is
// followed.
func TestBrowser_SignupNoOracle(t *testing.T) {
	ctx := newBrowser(t)
	s := newSite(t, false)
	s.user(t, users.NewUser{Email: "ada@example.com", Password: "ada's own password"})
	root := &tab{ctx: ctx, base: s.srv.URL, shots: t.TempDir()}
	type answer struct {
		status  int64
		page    string
		cookies []string
	}
	signUp := func(email, subject string) answer {
		b := root.newTab(t)
		b.open(t, "/signup")
		b.fill(t, "email", email)
		st := b.click(t, "main form button")
		a := answer{status: st, page: strings.ReplaceAll(b.text(t, "body"), email, "EMAIL"), cookies: b.cookies(t)}
		s.link(t, email, subject)
		return a
	}
	known := signUp("ada@example.com", "You already have an account")
	unknown := signUp("nobody@example.com", "Create your account")
	if known.status != unknown.status || known.page != unknown.page {
		t.Errorf("different answers:\n%d %s\n---\n%d %s", known.status, known.page, unknown.status, unknown.page)
	}
	if !slices.Equal(known.cookies, unknown.cookies) {
		t.Errorf("different cookies:\n%q\n%q", known.cookies, unknown.cookies)
	}
	if known.status != 200 || !strings.Contains(known.page, "If the address can be used") {
		t.Errorf("answer %d:\n%s", known.status, known.page)
	}
	if _, err := s.users.GetByEmail(t.Context(), "nobody@example.com"); err == nil {
		t.Error("sign-up created an account before its link was followed")
	}
}
