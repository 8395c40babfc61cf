package users_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/userkit/users"
)

// An application limits a form of its own, here a contact form: two messages
// per client address a minute.
func ExampleManager_Limit() {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m, err := users.New(users.NewMemoryStore(), &users.Options{
		BcryptCost: 4, InsecureLowBcryptCostForTests: true, // tests only
		Now:        func() time.Time { return now },
		RateLimits: map[users.RateAction]users.RateLimit{"contact": {PerClient: 2, Window: time.Minute}},
	})
	if err != nil {
		panic(err)
	}
	ctx := users.WithClient(context.Background(), users.Client{IP: "192.0.2.7"})
	for i := range 3 {
		err := m.Limit(ctx, "contact", "")
		var le *users.LimitError
		if errors.As(err, &le) {
			fmt.Println(i+1, errors.Is(err, users.ErrRateLimited), "retry after", le.RetryAfter)
			continue
		}
		fmt.Println(i+1, err)
	}
	// Output:
	// 1 <nil>
	// 2 <nil>
	// 3 true retry after 1m0s
}

// proxied is the README's set-up behind a reverse proxy.
func proxied(m *users.Manager, mux *http.ServeMux, out *http.Handler) error {
	proxies, err := users.ParseTrustedProxies("X-Forwarded-For", "10.0.0.0/8")
	if err != nil {
		return err
	}
	handler := proxies.Middleware(m.Middleware("session", mux))
	*out = handler
	return nil
}

// Behind a trusted proxy the client is the address the proxy appended, not
// what the client wrote into the header itself.
func ExampleTrustedProxies_Client() {
	p, err := users.ParseTrustedProxies("X-Forwarded-For", "10.0.0.0/8")
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.1:41000"                              // the proxy
	r.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.5") // a spoofed hop, then the one the proxy saw
	fmt.Println(p.Client(r).IP)
	r.RemoteAddr = "192.0.2.9:41000" // not a proxy: the header is ignored
	fmt.Println(p.Client(r).IP)
	var h http.Handler
	fmt.Println(proxied(nil, http.NewServeMux(), &h), h != nil)
	// Output:
	// 203.0.113.5
	// 192.0.2.9
	// <nil> true
}
