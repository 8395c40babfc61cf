package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/userkit/users"
)

// eval evaluates the JavaScript expression expr in the tab through the
// DevTools protocol (not the page: the site's CSP allows no script, and the
// protocol is not bound by it).
func eval[T any](t *testing.T, b *tab, expr string) T {
	t.Helper()
	ctx, cancel := b.timeout()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// noSideScroll fails t if the page is wider than the window: the document's
// scroll width must fit both the window (innerWidth) and the part of it the
// page can use beside a vertical scroll bar (clientWidth).
func (b *tab) noSideScroll(t *testing.T, what string) {
	t.Helper()
	got := eval[[]int](t, b, `[document.documentElement.scrollWidth, window.innerWidth, document.documentElement.clientWidth]`)
	if scroll, inner, client := got[0], got[1], got[2]; scroll > inner || scroll > client {
		t.Errorf("%s scrolls sideways: scrollWidth %d, innerWidth %d, clientWidth %d", what, scroll, inner, client)
	}
}

// wantFocus waits until the element with the id has the focus (autofocus
// applies after the page has loaded), and fails t if it never does.
func (b *tab) wantFocus(t *testing.T, id, after string) {
	t.Helper()
	ctx, cancel := b.timeout()
	defer cancel()
	expr := fmt.Sprintf(`document.activeElement !== null && document.activeElement.id === %q`, id)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		got := eval[string](t, b, `document.activeElement ? document.activeElement.tagName + "#" + document.activeElement.id : ""`)
		t.Errorf("after %s the focus is on %q, want #%s (%v)", after, got, id, err)
	}
}

// TestBrowser_Layout opens the main pages at a phone's width (390 CSS pixels)
// and a laptop's (1280): none may scroll sideways, the header's items must
// not break inside, and a form's error summary must take the focus. Its
// screenshots are the README's (see TestBrowser for $WEBAPP_SCREENSHOTS).
func TestBrowser_Layout(t *testing.T) {
	ctx := newBrowser(t)
	s := newSite(t, false)
	shots := os.Getenv("WEBAPP_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	b := (&tab{ctx: ctx, base: s.srv.URL, shots: shots}).newTab(t)
	// A long address and name, and a full page of users, as a real admin list has.
	s.user(t, users.NewUser{Email: "grace.brewster.hopper@navy-reserve.example.com", Password: "the admin's password",
		Role: users.RoleAdmin, FirstName: "Grace Brewster Murray"})
	for i := range 11 {
		s.user(t, users.NewUser{Email: fmt.Sprintf("user%02d.with.a.longer.address@example.com", i), Username: fmt.Sprintf("user_%02d", i),
			Password: "a password for filler", FirstName: "Filler", LastName: "Userson", Role: users.RoleViewer})
	}

	for _, width := range []int64{390, 1280} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			b.do(t, "resizing", chromedp.EmulateViewport(width, 844))
			name := func(page string) string { return fmt.Sprintf("%s-%d", page, width) }

			b.open(t, "/signin")
			b.want(t, "Sign in")
			b.noSideScroll(t, "the sign-in page")
			b.shot(t, name("signin"))

			// Errors: a summary at the top that takes the focus, its
			// items linking to the fields.
			b.open(t, "/signup")
			b.fill(t, "email", "not an address")
			b.click(t, "main form button")
			b.want(t, "Create an account", "There is a problem")
			b.wantFocus(t, "error-summary", "a sign-up error")
			if got := eval[string](t, b, `document.querySelector("#error-summary a").getAttribute("href")`); got != "#email" {
				t.Errorf("the summary links to %q, want #email", got)
			}
			b.noSideScroll(t, "the sign-up page with an error")
			b.shot(t, name("signup-error"))

			b.open(t, "/signin")
			b.fill(t, "identifier", "grace.brewster.hopper@navy-reserve.example.com", "password", "not the password")
			b.click(t, "main form button")
			b.want(t, "Sign in", "The email, username or password is wrong.")
			b.wantFocus(t, "error-summary", "a sign-in error")

			b.fill(t, "identifier", "grace.brewster.hopper@navy-reserve.example.com", "password", "the admin's password")
			b.click(t, "main form button")
			b.want(t, "Your account")
			b.noSideScroll(t, "the account page")
			// "Sign out" on one line: its button is no taller than a line.
			if h := eval[[]float64](t, b, `(() => { const e = document.querySelector("header form button");
				return [e.getBoundingClientRect().height, parseFloat(getComputedStyle(e).lineHeight)] })()`); h[0] >= 1.5*h[1] {
				t.Errorf("the header's Sign out button is %.0fpx high with %.0fpx lines: it wraps", h[0], h[1])
			}
			b.shot(t, name("account"))

			// Every field's error at once: three bad profile fields give
			// three summary links, in the form's order, and the focus.
			b.fill(t, "first_name", strings.Repeat("A", 101), "last_name", strings.Repeat("B", 101), "username", "a!")
			b.click(t, "main form button")
			b.want(t, "Your account", "There are problems")
			b.wantFocus(t, "error-summary", "three profile errors")
			links := eval[[]string](t, b, `[...document.querySelectorAll("#error-summary a")].map(a => a.getAttribute("href"))`)
			if want := []string{"#first_name", "#last_name", "#username"}; !slices.Equal(links, want) {
				t.Errorf("the summary links to %q, want %q", links, want)
			}
			if n := eval[int](t, b, `document.querySelectorAll("[aria-invalid=true]").length`); n != 3 {
				t.Errorf("%d fields are marked invalid, want 3", n)
			}
			b.noSideScroll(t, "the account page with three errors")

			b.open(t, "/admin/users")
			b.want(t, "Users", "12 users, page 1 of 2.")
			b.noSideScroll(t, "the admin list")
			b.shot(t, name("admin"))

			b.open(t, "/admin/users?role=nobody")
			b.want(t, "Users", "Fix the filter")
			if main := b.text(t, "main"); strings.Contains(main, "page 0") {
				t.Errorf("a bad filter shows %q", main)
			}
			b.noSideScroll(t, "the admin list with a bad filter")

			b.open(t, "/no/such/page")
			b.want(t, "Page not found")
			b.noSideScroll(t, "the 404 page")

			b.click(t, "header form button")
			b.want(t, "Welcome", "You are signed out.")
		})
	}
}
