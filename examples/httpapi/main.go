// Command httpapi is a REST API over the users library: the shape of a typical
// user-management API (GET/POST /v1/users, GET/PATCH/DELETE /v1/users/{id},
// the success/data/message and error envelopes), plus login, logout, the
// caller's own account, roles, password reset, email verification, invitations
// and magic links, an admin's password set, and, with -signup, public sign-up.
// See Server.Handler for the routes. It is meant to be copied.
//
//	USERS_ADMIN_PASSWORD='a long admin password' \
//	  go run ./examples/httpapi -db users.db -addr 127.0.0.1:8080 -admin-email admin@example.com
//
// On an empty store it creates the first admin from -admin-email and
// -admin-password, or $USERS_ADMIN_EMAIL and $USERS_ADMIN_PASSWORD (prefer the
// environment for the password: flags show in the process list), and refuses
// to start on an empty store without them, since nobody could sign in. It prints
// "listening on http://ADDR" once it accepts connections (-addr with port 0
// picks a free port), and on SIGINT or SIGTERM it stops accepting, finishes the
// requests in flight, and closes the store.
//
// There is no mailer: tokens that would be emailed are logged as "would email"
// lines. Serve it behind TLS in real use.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/userkit/users"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "httpapi:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done, then shuts down. It writes the listening line to
// stdout and logs to stderr.
func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	fl := flag.NewFlagSet("httpapi", flag.ContinueOnError)
	dbPath := fl.String("db", "users.db", "path of the bbolt file, created if missing")
	addr := fl.String("addr", "127.0.0.1:8080", "address to listen on (port 0: any free port)")
	adminEmail := fl.String("admin-email", os.Getenv("USERS_ADMIN_EMAIL"), "first admin's email, used only on an empty store (default $USERS_ADMIN_EMAIL)")
	adminPassword := fl.String("admin-password", "", "first admin's password (default $USERS_ADMIN_PASSWORD, which is better: flags show in ps)")
	cost := fl.Int("bcrypt-cost", 12, "bcrypt work factor, 10 to 31 (users.Options.BcryptCost)")
	signUp := fl.Bool("signup", false, "open POST /v1/auth/signup to anyone (default off: only admins add users)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *adminPassword == "" {
		*adminPassword = os.Getenv("USERS_ADMIN_PASSWORD")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	store, err := users.OpenBoltStore(*dbPath, &users.BoltOptions{SweepInterval: 10 * time.Minute, Logger: logger})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the store: %w", cerr)
		}
	}()
	m, err := users.New(store, &users.Options{BcryptCost: *cost})
	if err != nil {
		return err
	}
	admin, err := ensureAdmin(ctx, m, *adminEmail, *adminPassword)
	if err != nil {
		return err
	}
	if admin != nil {
		logger.Info("created the first admin", "email", admin.Email, "id", admin.ID)
	}

	api := &Server{Users: m, Logger: logger, SignUp: *signUp}
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	api.Wait() // mail still being sent after a 202
	logger.Info("stopped")
	return nil
}
