package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/userkit/users"
)

// tick ticks the checkbox with the id.
func (b *tab) tick(t *testing.T, id string) {
	t.Helper()
	ctx, cancel := b.timeout()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#"+id))); err != nil {
		t.Fatalf("ticking #%s: %v", id, err)
	}
}

// cookie returns the browser's cookie of the site named name (with its
// __Host- prefix), or nil.
func (b *tab) cookie(t *testing.T, name string) *network.Cookie {
	t.Helper()
	ctx, cancel := b.timeout()
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base}})
	if err != nil {
		t.Fatalf("reading cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if strings.TrimPrefix(c.Name, "__Host-") == name {
			return c
		}
	}
	return nil
}

// TestBrowser_RememberAndTrust drives "Remember me" on the sign-in form and
// "Trust this device" on the code page in headless Chromium, over HTTPS with
// the production cookies: a sign-in that asks for neither gets a session
// cookie that ends with the browser and is asked for the code every time;
// one that asks for both gets a cookie that lasts the remembered session's 30
// days and a device cookie that lets the next password sign-in skip the code,
// in that browser only, until the account page forgets the device.
func TestBrowser_RememberAndTrust(t *testing.T) {
	ctx := newBrowser(t)
	s := newSite(t, false)
	const pw = "ada's own password"
	ada := s.user(t, users.NewUser{Email: "ada@example.com", Password: pw})
	e, err := s.users.BeginTOTP(t.Context(), ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.users.ConfirmTOTP(t.Context(), ada.ID, s.code(t, e.Secret)); err != nil {
		t.Fatal(err)
	}
	b := &tab{ctx: ctx, base: s.srv.URL, shots: t.TempDir()}
	signIn := func(t *testing.T, b *tab, remember bool) {
		t.Helper()
		b.open(t, "/signin")
		b.fill(t, "identifier", "ada@example.com", "password", pw)
		if remember {
			b.tick(t, "remember")
		}
		b.click(t, "main form button")
	}

	t.Run("OrdinaryByDefault", func(t *testing.T) {
		signIn(t, b, false)
		b.want(t, "Enter your code")
		b.fill(t, "code", s.code(t, e.Secret))
		b.click(t, "main form button")
		b.want(t, "Your account", "You are signed in.")
		if c := b.cookie(t, "session"); c == nil || !c.Session {
			t.Errorf("session cookie %+v, want one that ends with the browser", c)
		}
		if c := b.cookie(t, "device"); c != nil {
			t.Errorf("device cookie %+v without asking to trust the device", c)
		}
		b.click(t, "header form button")
		signIn(t, b, false)
		b.want(t, "Enter your code")
	})
	t.Run("RememberAndTrust", func(t *testing.T) {
		signIn(t, b, true)
		b.want(t, "Enter your code")
		b.tick(t, "trust")
		b.fill(t, "code", s.code(t, e.Secret))
		b.click(t, "main form button")
		b.want(t, "Your account", "You are signed in.", "Trusted devices")
		c := b.cookie(t, "session")
		want := s.clock.Now().Add(users.DefaultRememberSessionTTL)
		if c == nil || c.Session || time.Unix(int64(c.Expires), 0).Sub(want).Abs() > time.Minute {
			t.Errorf("session cookie %+v, want one that lasts until %v", c, want)
		}
		if d := b.cookie(t, "device"); d == nil || !d.HTTPOnly || !d.Secure || d.Session {
			t.Errorf("device cookie %+v, want an HttpOnly, Secure cookie with an expiry", d)
		}
	})
	t.Run("TrustedDeviceSkipsTheCode", func(t *testing.T) {
		b.click(t, "header form button")
		b.want(t, "Welcome", "You are signed out.")
		signIn(t, b, false)
		b.want(t, "Your account", "You are signed in.")
	})
	t.Run("AnotherBrowserIsAsked", func(t *testing.T) {
		other := b.newTab(t)
		signIn(t, other, false)
		other.want(t, "Enter your code")
	})
	t.Run("ForgetTheDevice", func(t *testing.T) {
		b.click(t, `form[action="/account/devices/forget"] button`)
		b.want(t, "Your account", "That device is forgotten")
		b.click(t, "header form button")
		signIn(t, b, false)
		b.want(t, "Enter your code")
	})
}
