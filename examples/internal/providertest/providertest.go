// Package providertest drives the loopback OpenID Connect provider of
// internal/oidctest for the examples' tests, as a browser would.
package providertest

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/userkit/users/internal/oidctest"
)

// Approve has p sign in the account with subject at once at authURL (the
// authorization URL an application sent the browser to), and returns the
// path and query of the callback p redirects the browser to. It fails tb if
// p answers anything but a redirect. It sets p's automatic approval, so it is
// not for tests that run flows of one provider in parallel.
func Approve(tb testing.TB, p *oidctest.Server, authURL, subject string) string {
	tb.Helper()
	p.SetAutoApprove(subject)
	c := p.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(authURL)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode/100 != 3 {
		tb.Fatalf("the provider answered %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
	return loc.RequestURI()
}
