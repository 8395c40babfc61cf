package breach_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/breach"
)

var (
	_ users.BreachChecker = (*breach.Range)(nil)
	_ users.BreachChecker = (*breach.List)(nil)
)

func sha1Hex(pw string) string {
	s := sha1.Sum([]byte(pw))
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

// rangeServer serves range files built from breached (password → count) and
// padded (passwords listed with a count of 0, as padding lines are), and
// keeps every request it receives, whole.
type rangeServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []string // dumps of the requests, headers and body
}

func newRangeServer(t *testing.T, breached map[string]int, padded []string) *rangeServer {
	t.Helper()
	ranges := map[string][]string{}
	for pw, n := range breached {
		h := sha1Hex(pw)
		ranges[h[:5]] = append(ranges[h[:5]], fmt.Sprintf("%s:%d", h[5:], n))
	}
	for _, pw := range padded {
		h := sha1Hex(pw)
		ranges[h[:5]] = append(ranges[h[:5]], h[5:]+":0")
	}
	rs := &rangeServer{}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dump, err := httputil.DumpRequest(r, true)
		if err != nil {
			t.Error(err)
		}
		rs.mu.Lock()
		rs.reqs = append(rs.reqs, string(dump))
		rs.mu.Unlock()
		prefix, ok := strings.CutPrefix(r.URL.Path, "/range/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		// Some unrelated lines, lower-case and CRLF-ended, as real answers end.
		fmt.Fprintf(w, "%s:3\r\n", strings.Repeat("0", 35))
		for _, l := range ranges[strings.ToUpper(prefix)] {
			fmt.Fprintf(w, "%s\r\n", strings.ToLower(l))
		}
	}))
	t.Cleanup(rs.Close)
	return rs
}

func (rs *rangeServer) requests() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return slicesClone(rs.reqs)
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

var rangePath = regexp.MustCompile(`^GET /range/[0-9A-F]{5} HTTP/1\.1\r\n`)

func TestRange(t *testing.T) {
	ctx := t.Context()
	breached := map[string]int{"correct horse battery staple": 12, "Tr0ub4dor&3": 1}
	padded := []string{"only a padding line here"}
	rs := newRangeServer(t, breached, padded)
	c := &breach.Range{URL: rs.URL, Client: rs.Client()}

	for pw, want := range map[string]bool{
		"correct horse battery staple": true,
		"Tr0ub4dor&3":                  true,
		"only a padding line here":     false, // count 0: padding, ignored
		"a password nobody has used":   false,
	} {
		got, err := c.Breached(ctx, pw)
		if err != nil || got != want {
			t.Errorf("Breached(%q) = %v, %v; want %v, nil", pw, got, err, want)
		}
	}

	t.Run("OnlyFiveHexDigitsLeave", func(t *testing.T) {
		reqs := rs.requests()
		if len(reqs) != 4 {
			t.Fatalf("the server got %d requests, want 4", len(reqs))
		}
		for i, pw := range []string{"correct horse battery staple", "Tr0ub4dor&3", "only a padding line here", "a password nobody has used"} {
			h := sha1Hex(pw)
			found := false
			for _, req := range reqs {
				if !rangePath.MatchString(req) {
					t.Errorf("request %q: want GET /range/ and five upper-case hex digits", req)
				}
				if !strings.Contains(strings.ToLower(req), "\r\nadd-padding: true\r\n") {
					t.Errorf("request %q: no Add-Padding: true header", req)
				}
				low := strings.ToLower(req)
				for _, secret := range []string{pw, h[5:], h[:6], h[len(h)-8:]} {
					if strings.Contains(low, strings.ToLower(secret)) {
						t.Errorf("request %q holds %q of password %d", req, secret, i)
					}
				}
				found = found || strings.HasPrefix(req, "GET /range/"+h[:5]+" ")
			}
			if !found {
				t.Errorf("no request for the prefix of password %d", i)
			}
		}
	})
}

// unavailable returns servers that fail in each way a Range must survive.
func unavailable(t *testing.T) map[string]string {
	t.Helper()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers: the client's timeout ends it
	}))
	t.Cleanup(slow.Close)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	garbled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "<html>maintenance</html>")
	}))
	t.Cleanup(garbled.Close)
	return map[string]string{"Timeout": slow.URL, "5xx": down.URL, "Garbled": garbled.URL}
}

func TestRange_Unavailable(t *testing.T) {
	for name, url := range unavailable(t) {
		t.Run(name+"/FailOpen", func(t *testing.T) {
			var seen []error
			var mu sync.Mutex
			c := &breach.Range{URL: url, Timeout: 1, OnError: func(err error) { mu.Lock(); seen = append(seen, err); mu.Unlock() }}
			if name != "Timeout" {
				c.Timeout = 0 // the default; only the silent server needs a short one
			}
			got, err := c.Breached(t.Context(), "correct horse battery staple")
			if got || err != nil {
				t.Errorf("Breached = %v, %v; want false, nil (fail open)", got, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 1 || !errors.Is(seen[0], breach.ErrUnavailable) {
				t.Errorf("OnError got %v, want one error matching ErrUnavailable", seen)
			}
		})
		t.Run(name+"/FailClosed", func(t *testing.T) {
			c := &breach.Range{URL: url, FailClosed: true}
			if name == "Timeout" {
				c.Timeout = 1
			}
			got, err := c.Breached(t.Context(), "correct horse battery staple")
			if got || !errors.Is(err, breach.ErrUnavailable) {
				t.Errorf("Breached = %v, %v; want false and an error matching ErrUnavailable", got, err)
			}
			if name == "Timeout" && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("got %v, want it to wrap context.DeadlineExceeded", err)
			}
		})
	}
	t.Run("CallerCanceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		c := &breach.Range{URL: unavailable(t)["Timeout"]}
		if _, err := c.Breached(ctx, "x"); !errors.Is(err, context.Canceled) || errors.Is(err, breach.ErrUnavailable) {
			t.Errorf("Breached with a canceled context: %v, want context.Canceled, in fail-open mode too", err)
		}
	})
}
