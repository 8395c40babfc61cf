// Command revokebench measures how long a session revoked by one process
// keeps validating in another, both with the PostgreSQL store's session
// cache: the time from the revoking call's return in the first process to the
// first ValidateToken that refuses the token in the second.
//
//	bash .ci/postgres.sh go run ./internal/revokebench -n 200
//
// The first process (this one) creates users and sessions and revokes them one
// at a time, cycling through logout, revoking a session by ID, logging out
// everywhere, suspension and a password change. Before each revocation the
// second process (this program again, with -validator) validates the token
// once, which caches it, and then validates it every 100 µs or so until it is
// refused.
// Both processes run on one machine, so their wall clocks agree. It prints the
// percentiles of the delays; a negative delay is a refusal that came before
// the revoking call had returned.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/userkit/users"
	"github.com/userkit/users/postgres"
)

const password = "correct horse battery staple"

func main() {
	validator := flag.Bool("validator", false, "run as the validating process (internal)")
	n := flag.Int("n", 200, "how many revocations to time")
	flag.Parse()
	dsn := os.Getenv("USERS_POSTGRES_DSN")
	if dsn == "" {
		fmt.Fprintln(os.Stderr, "revokebench: USERS_POSTGRES_DSN is not set: run under .ci/postgres.sh")
		os.Exit(2)
	}
	var err error
	if *validator {
		err = validate(dsn)
	} else {
		err = revoke(dsn, *n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "revokebench:", err)
		os.Exit(1)
	}
}

func open(ctx context.Context, dsn string) (*users.Manager, *postgres.Store, *pgxpool.Pool, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, nil, nil, err
	}
	store, err := postgres.NewWithOptions(ctx, pool, &postgres.Options{SessionCache: true})
	if err != nil {
		pool.Close()
		return nil, nil, nil, err
	}
	m, err := users.New(store, &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true})
	if err != nil {
		return nil, nil, nil, err
	}
	return m, store, pool, nil
}

// validate reads tokens from stdin; for each it validates once, answers
// "cached", then validates until refused and answers the refusal's time.
func validate(dsn string) error {
	ctx := context.Background()
	m, store, pool, err := open(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	defer store.Close()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		token := in.Text()
		if _, err := m.ValidateToken(ctx, token); err != nil {
			return fmt.Errorf("first validation: %w", err)
		}
		fmt.Println("cached")
		for {
			_, err := m.ValidateToken(ctx, token)
			if errors.Is(err, users.ErrInvalidToken) {
				fmt.Println(time.Now().UnixNano())
				break
			}
			if err != nil {
				return err
			}
			// A pause between validations, so that the loop does not take
			// a core from the database and the listener it waits for.
			time.Sleep(100 * time.Microsecond)
		}
	}
	return in.Err()
}

func revoke(dsn string, n int) error {
	ctx := context.Background()
	m, store, pool, err := open(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	defer store.Close()

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "-validator")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Wait()
	defer stdin.Close()
	out := bufio.NewScanner(stdout)
	answer := func() (string, error) {
		if !out.Scan() {
			return "", fmt.Errorf("validator stopped: %v", out.Err())
		}
		return out.Text(), nil
	}

	kinds := []string{"logout", "revoke", "logout-all", "suspend", "password"}
	delays := map[string][]time.Duration{}
	var all []time.Duration
	run := time.Now().UnixNano()
	for i := range n {
		email := fmt.Sprintf("rb%d-%d@example.com", run, i)
		u, err := m.Create(ctx, users.NewUser{Email: email, Password: password})
		if err != nil {
			return err
		}
		s, err := m.Login(ctx, email, password)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdin, s.Token)
		if a, err := answer(); err != nil || a != "cached" {
			return fmt.Errorf("validator: %q, %v", a, err)
		}
		kind := kinds[i%len(kinds)]
		switch kind {
		case "logout":
			err = m.Logout(ctx, s.Token)
		case "revoke":
			err = m.RevokeSession(ctx, u.ID, s.ID)
		case "logout-all":
			err = m.LogoutAll(ctx, u.ID)
		case "suspend":
			_, err = m.Update(ctx, u.ID, users.UserUpdate{Status: ptr(users.StatusSuspended)})
		case "password":
			err = m.SetPassword(ctx, u.ID, "another "+password)
		}
		returned := time.Now()
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		a, err := answer()
		if err != nil {
			return err
		}
		at, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			return fmt.Errorf("validator: %q", a)
		}
		d := time.Unix(0, at).Sub(returned)
		delays[kind] = append(delays[kind], d)
		all = append(all, d)
	}
	fmt.Printf("revocations: %d, refused in the other process after the revoking call returned:\n", len(all))
	fmt.Printf("  all:        %s\n", percentiles(all))
	for _, k := range kinds {
		fmt.Printf("  %-11s %s\n", k+":", percentiles(delays[k]))
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func percentiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	p := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	var b strings.Builder
	fmt.Fprintf(&b, "p50 %v  p90 %v  p99 %v  max %v", p(0.5).Round(10*time.Microsecond),
		p(0.9).Round(10*time.Microsecond), p(0.99).Round(10*time.Microsecond), s[len(s)-1].Round(10*time.Microsecond))
	return b.String()
}
