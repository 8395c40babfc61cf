// Command recoverytiming measures whether the account-recovery endpoints of
// examples/httpapi (POST /v1/auth/password-reset and /v1/auth/magic-link)
// tell, through the timing of the next request, whether an email has an
// account. It posts a known and an unknown email in turn (alternating which
// goes first), and after each answer sends a follow-up GET /v1/me, whose
// latency it keeps apart by kind; it prints the medians and their ratio
// (known / unknown) for each endpoint and each gap between the answer and the
// follow-up. The work a request triggers runs after its 202 answer, so the
// follow-up is where a difference shows.
//
// It talks to a running httpapi server; .ci/recovery-timing.sh builds both,
// starts the server pinned to one core and this program pinned to the other
// (taskset), as a remote client would see a one-core server:
//
//	bash .ci/recovery-timing.sh            # 400 pairs per endpoint and gap
//	bash .ci/recovery-timing.sh -pairs 1000
//
// It exits with status 1 when a ratio is outside -band (default 0.1: 0.9 to
// 1.1).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	url := flag.String("url", "", "the server's base URL, e.g. http://127.0.0.1:8080")
	adminEmail := flag.String("admin-email", os.Getenv("USERS_ADMIN_EMAIL"), "an admin's email (default $USERS_ADMIN_EMAIL)")
	pairs := flag.Int("pairs", 400, "known/unknown pairs measured per endpoint and gap")
	warmup := flag.Int("warmup", 50, "pairs sent first and not measured")
	band := flag.Float64("band", 0.1, "largest allowed distance of a ratio from 1")
	gaps := flag.String("gaps", "0,10-20", "gaps between an answer and its follow-up, in ms: a number or a range drawn uniformly")
	flag.Parse()
	if *url == "" || *adminEmail == "" || os.Getenv("USERS_ADMIN_PASSWORD") == "" {
		log.Fatal("need -url, -admin-email and $USERS_ADMIN_PASSWORD")
	}
	c := &client{base: strings.TrimRight(*url, "/"), http: &http.Client{Timeout: 10 * time.Second}}
	var login struct {
		Data struct {
			Token string `json:"token"`
		} `json:"data"`
	}
	c.mustDo("POST", "/v1/auth/login", "", fmt.Sprintf(`{"email":%q,"password":%q}`, *adminEmail, os.Getenv("USERS_ADMIN_PASSWORD")), 200, &login)
	c.token = login.Data.Token
	known := fmt.Sprintf("known%d@example.com", time.Now().UnixNano())
	c.mustDo("POST", "/v1/users", c.token, fmt.Sprintf(`{"name":"Known","email":%q,"password":"a long enough password for timing"}`, known), 201, nil)

	fmt.Printf("%-16s %-8s %6s %12s %12s %7s\n", "endpoint", "gap", "pairs", "known", "unknown", "ratio")
	failed := false
	n := 0
	for _, path := range []string{"/v1/auth/password-reset", "/v1/auth/magic-link"} {
		for _, g := range strings.Split(*gaps, ",") {
			lo, hi := parseGap(g)
			var follow [2][]time.Duration // [known, unknown]
			for i := range *warmup + *pairs {
				for k := range 2 {
					which := (i + k) % 2 // alternate which goes first
					email := known
					if which == 1 {
						n++
						email = fmt.Sprintf("nobody%d-%d@example.com", time.Now().UnixNano(), n)
					}
					c.mustDo("POST", path, "", fmt.Sprintf(`{"email":%q}`, email), 202, nil)
					if hi > 0 {
						time.Sleep(lo + rand.N(hi-lo+1))
					}
					start := time.Now()
					c.mustDo("GET", "/v1/me", c.token, "", 200, nil)
					if i >= *warmup {
						follow[which] = append(follow[which], time.Since(start))
					}
					time.Sleep(30 * time.Millisecond) // let the request's work finish before the next
				}
			}
			mk, mu := median(follow[0]), median(follow[1])
			ratio := float64(mk) / float64(mu)
			fmt.Printf("%-16s %-8s %6d %12v %12v %7.3f\n", strings.TrimPrefix(path, "/v1/auth/"), g+"ms", *pairs, mk, mu, ratio)
			if ratio < 1-*band || ratio > 1+*band {
				failed = true
			}
		}
	}
	if failed {
		fmt.Printf("a ratio is outside %.2f-%.2f\n", 1-*band, 1+*band)
		os.Exit(1)
	}
}

// parseGap parses "15" or "10-20" (milliseconds).
func parseGap(s string) (lo, hi time.Duration) {
	var a, b int
	if _, err := fmt.Sscanf(s, "%d-%d", &a, &b); err != nil {
		if _, err := fmt.Sscanf(s, "%d", &a); err != nil {
			log.Fatalf("bad gap %q", s)
		}
		b = a
	}
	return time.Duration(a) * time.Millisecond, time.Duration(b) * time.Millisecond
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

type client struct {
	base, token string
	http        *http.Client
}

// mustDo sends a request and stops the program unless the answer has status
// want; it decodes the body into out when out is not nil.
func (c *client) mustDo(method, path, token, body string, want int, out any) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader([]byte(body)))
	if err != nil {
		log.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		log.Fatal(err)
	}
	if res.StatusCode != want {
		log.Fatalf("%s %s: %d, want %d: %s", method, path, res.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			log.Fatalf("%s %s: %v", method, path, err)
		}
	}
}
