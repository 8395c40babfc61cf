package users_test

// Which address is the client's (issue 24, item 2): the connection's peer,
// unless the peer is a trusted proxy; then the proxies' header, read from the
// right, so that a client cannot name another address for itself.

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// Loopback addresses of the parties: Linux routes all of 127.0.0.0/8 to lo.
const (
	proxyIP   = "127.0.0.2"
	clientAIP = "127.0.0.3"
	clientBIP = "127.0.0.4"
)

// clientFrom returns an HTTP client whose connections come from ip.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// get sends a GET with the extra headers from c to url and returns the
// status, the body and the Retry-After header.
func get(tb testing.TB, c *http.Client, url string, headers ...string) (int, string, string) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header.Get("Retry-After")
}

// proxyTo starts a reverse proxy to backend whose connections to it come
// from proxyIP. forwarded, when set, adds a Forwarded element too, as a
// proxy that speaks RFC 7239 would.
func proxyTo(tb testing.TB, backend string, forwarded bool) string {
	tb.Helper()
	target, err := url.Parse(backend)
	if err != nil {
		tb.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"] // keep what came in, as a chain of proxies does
			pr.SetXForwarded()
			if forwarded {
				pr.Out.Header["Forwarded"] = pr.In.Header["Forwarded"]
				host, _, _ := net.SplitHostPort(pr.In.RemoteAddr)
				pr.Out.Header.Add("Forwarded", `for="`+host+`";proto=http`)
			}
		},
		Transport: clientFrom(proxyIP).Transport,
	}
	srv := httptest.NewServer(rp)
	tb.Cleanup(srv.Close)
	return srv.URL
}

// echoIP serves the client's address as p finds it.
func echoIP(p *users.TrustedProxies) http.Handler {
	return p.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := users.ClientFromContext(r.Context())
		io.WriteString(w, c.IP)
	}))
}

func TestTrustedProxies_BehindReverseProxy(t *testing.T) {
	for _, header := range []string{users.HeaderXForwardedFor, users.HeaderForwarded} {
		t.Run(header, func(t *testing.T) {
			p, err := users.ParseTrustedProxies(header, proxyIP)
			if err != nil {
				t.Fatal(err)
			}
			backend := httptest.NewServer(echoIP(p))
			t.Cleanup(backend.Close)
			proxy := proxyTo(t, backend.URL, header == users.HeaderForwarded)
			for _, tc := range []struct {
				name, url string
				headers   []string
				want      string
			}{
				{"ThroughTheProxy", proxy, nil, clientAIP},
				{"SpoofedThroughTheProxy", proxy, []string{"X-Forwarded-For", "198.51.100.1", "Forwarded", "for=198.51.100.1"}, clientAIP},
				{"SpoofedDirect", backend.URL, []string{"X-Forwarded-For", "198.51.100.1", "Forwarded", "for=198.51.100.1"}, clientAIP},
				{"Direct", backend.URL, nil, clientAIP},
			} {
				if _, got, _ := get(t, clientFrom(clientAIP), tc.url, tc.headers...); got != tc.want {
					t.Errorf("%s: client %q, want %q", tc.name, got, tc.want)
				}
			}
			if _, got, _ := get(t, clientFrom(clientBIP), proxy); got != clientBIP {
				t.Errorf("a second client through the proxy: %q, want %q (its own address, not the proxy's)", got, clientBIP)
			}
		})
	}
	t.Run("Untrusted", func(t *testing.T) {
		backend := httptest.NewServer(echoIP(nil))
		t.Cleanup(backend.Close)
		proxy := proxyTo(t, backend.URL, true)
		if _, got, _ := get(t, clientFrom(clientAIP), proxy, "X-Forwarded-For", "198.51.100.1"); got != proxyIP {
			t.Errorf("no trusted proxies: client %q, want the peer %q", got, proxyIP)
		}
	})
}

// Behind a trusted proxy each client has its own bucket: one client over
// the login limit gets 429 with Retry-After and the others log in. Without
// the proxy named, every client is the proxy, which is what the test of the
// collapsed bucket shows.
func TestTrustedProxies_RateLimitPerClient(t *testing.T) {
	f := newFixture(t, func(o *users.Options) {
		o.RateLimits = map[users.RateAction]users.RateLimit{users.ActionLogin: {PerClient: 2, Window: time.Minute}}
	})
	f.mustCreate(t, users.NewUser{Email: "alice@example.com"})
	login := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pw := r.URL.Query().Get("pw")
		if _, err := f.M.Login(r.Context(), "alice@example.com", pw); err != nil {
			users.WriteError(w, err)
			return
		}
		io.WriteString(w, "ok")
	})
	for _, tc := range []struct {
		name    string
		trusted []string
		bWants  int // client B's answer after A used up the limit
	}{
		{"Trusted", []string{proxyIP + "/32"}, http.StatusOK},
		{"NotTrusted", nil, http.StatusTooManyRequests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.Clock.Advance(time.Minute) // a new window
			p, err := users.ParseTrustedProxies("", tc.trusted...)
			if err != nil {
				t.Fatal(err)
			}
			backend := httptest.NewServer(p.Middleware(users.ClientMiddleware(login)))
			t.Cleanup(backend.Close)
			proxy := proxyTo(t, backend.URL, false)
			a := clientFrom(clientAIP)
			for range 2 {
				if status, _, _ := get(t, a, proxy+"/?pw=wrong-password-here"); status != http.StatusUnauthorized {
					t.Fatalf("client A's wrong password: %d, want 401", status)
				}
			}
			status, _, ra := get(t, a, proxy+"/?pw=wrong-password-here", "X-Forwarded-For", clientBIP)
			if status != http.StatusTooManyRequests || ra != "60" {
				t.Errorf("client A over the limit (naming B in a header): %d Retry-After %q, want 429 60", status, ra)
			}
			if status, _, _ := get(t, clientFrom(clientBIP), proxy+"/?pw="+url.QueryEscape(storetest.Password)); status != tc.bWants {
				t.Errorf("client B's right password: %d, want %d", status, tc.bWants)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		header string
		cidrs  []string
		field  string
	}{
		{"X-Real-IP", nil, "header"},
		{"", []string{"10.0.0.0/8", "not an address"}, "cidrs"},
		{"", []string{"10.0.0.0/33"}, "cidrs"},
	} {
		_, err := users.ParseTrustedProxies(tc.header, tc.cidrs...)
		var ve *users.ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("ParseTrustedProxies(%q, %q): %v, want a *ValidationError on %s", tc.header, tc.cidrs, err, tc.field)
		}
	}
	p, err := users.ParseTrustedProxies("forwarded", "10.0.0.0/8", "2001:db8::1", "::ffff:192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		peer, header, want string
	}{
		{"10.1.2.3:80", `for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711"`, "2001:db8:cafe::17"},
		{"10.1.2.3:80", `for=192.0.2.60, for=10.9.9.9`, "192.0.2.60"},
		{"10.1.2.3:80", `for=10.8.8.8, for=10.9.9.9`, "10.8.8.8"},  // every hop trusted: the first
		{"10.1.2.3:80", `for=192.0.2.60, for=unknown`, "10.1.2.3"}, // not an address: the proxy that added it
		{"10.1.2.3:80", `proto=https`, "10.1.2.3"},                 // no for=
		{"[2001:db8::1]:443", `for=192.0.2.61`, "192.0.2.61"},      // a trusted IPv6 proxy
		{"[::ffff:192.0.2.9]:443", `for=192.0.2.62`, "192.0.2.62"}, // mapped
		{"192.0.2.200:80", `for=192.0.2.63`, "192.0.2.200"},        // untrusted peer
		{"[fe80::1%eth0]:80", `for=192.0.2.64`, "fe80::1%eth0"},    // untrusted, kept as it came
		{"10.1.2.3:80", ``, "10.1.2.3"},                            // no header
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.peer
		if tc.header != "" {
			r.Header.Set("Forwarded", tc.header)
		}
		r.Header.Set("X-Forwarded-For", "203.0.113.1") // not the configured header
		if got := p.Client(r).IP; got != tc.want {
			t.Errorf("peer %s, Forwarded %q: %q, want %q", tc.peer, tc.header, got, tc.want)
		}
	}
	// X-Forwarded-For over several header lines, with ports.
	x, _ := users.ParseTrustedProxies("", "10.0.0.0/8")
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.1:1234"
	r.Header.Add("X-Forwarded-For", "198.51.100.5, 192.0.2.70:5555")
	r.Header.Add("X-Forwarded-For", "10.2.2.2")
	if got := x.Client(r).IP; got != "192.0.2.70" {
		t.Errorf("X-Forwarded-For over two lines: %q, want 192.0.2.70", got)
	}
	// A Client already in the context is kept.
	var got users.Client
	h := x.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got, _ = users.ClientFromContext(r.Context()) }))
	h.ServeHTTP(httptest.NewRecorder(), r.WithContext(users.WithClient(context.Background(), users.Client{IP: "set before"})))
	if got.IP != "set before" {
		t.Errorf("Middleware with a Client in the context: %q, want it kept", got.IP)
	}
}
