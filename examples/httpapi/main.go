// Command httpapi is a REST API over the users library: the shape of a typical
// user-management API (GET/POST /v1/users, GET/PATCH/DELETE /v1/users/{id},
// the success/data/message and error envelopes), plus login, logout, the
// caller's own account, roles, password reset, email verification, invitations
// and magic links, an admin's password set, and, with -signup, public sign-up;
// the caller's devices (sessions with their IP address and user agent) and
// signing them out, a user's audit log for admins, and two-factor
// authentication (a two-step login, TOTP enrolment with a QR code, recovery
// codes, step-up, disabling, and an admin reset that requires the admin's own
// fresh second factor); sign-in with external providers and linking them
// (see providers.go). See Server.Handler for the routes. It is meant to be
// copied.
//
//	USERS_ADMIN_PASSWORD='a long admin password' \
//	  go run ./examples/httpapi -db httpapi.db -addr 127.0.0.1:8080 -admin-email admin@example.com
//
// On an empty store it creates the first admin from -admin-email (or
// $USERS_ADMIN_EMAIL) with the password in $USERS_ADMIN_PASSWORD, or else
// asked for on the terminal; there is no flag for it, since every user of the
// machine can read a process's flags (ps). It refuses to start on an empty
// store without them, since nobody could sign in. Sessions end after 30
// minutes without a request (-idle-timeout) and 24 hours after login in any
// case. It prints
// "listening on http://ADDR" once it accepts connections (-addr with port 0
// picks a free port), and on SIGINT or SIGTERM it stops accepting, finishes the
// requests in flight, and closes the store.
//
// Two-factor authentication (TOTP and recovery codes) needs a key that seals
// the TOTP secrets in the store: $USERS_MFA_KEY, 32 random bytes in base64
// (head -c 32 /dev/urandom | base64), named by -mfa-key-id. Without it, TOTP
// enrolment answers 501 mfa_not_configured. Keep the key out of the store's
// backups: whoever has both can read every secret.
//
// Sign-in with a provider is off unless a provider is named:
// -oidc-issuer with -oidc-client-id (an OpenID Connect provider),
// -google-client-id or -github-client-id, with the client secrets in
// $USERS_OIDC_CLIENT_SECRET, $USERS_GOOGLE_CLIENT_SECRET and
// $USERS_GITHUB_CLIENT_SECRET. Register
// PUBLIC/v1/auth/providers/NAME/callback at the provider, where PUBLIC is
// -public-url (default http://ADDR) and NAME is oidc, google or github; the
// browser comes back to the front end at -link-base. New users may sign up
// through a provider only with -signup.
//
// Passkeys (WebAuthn) are off unless -passkey-origin names the origins of
// the front ends that run the ceremonies in the browser (comma-separated,
// such as https://app.example); their relying party ID is the first one's
// host, or -passkey-rp-id. See passkey.go for the routes.
//
// The client's IP address recorded on sessions and audit entries is the
// connection's. Behind a reverse proxy, name it with -trusted-proxy (CIDRs,
// comma-separated) and the address it puts in X-Forwarded-For is used instead;
// from anyone else the header is ignored, since a client can write any.
//
// There is no real mailer: each message is rendered from the mail kit's
// templates (github.com/userkit/users/mail) and printed whole to stderr, after
// a "would email" log line with its token; a password change or a second
// factor added is noticed to the account's owner the same way. Serve it
// behind TLS in real use.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/examples/internal/prompt"
	"github.com/userkit/users/examples/internal/providerflag"
	"github.com/userkit/users/mail"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // -h printed the usage: asking for help is no failure
		}
		fmt.Fprintln(os.Stderr, "httpapi:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done, then shuts down. It writes the listening line to
// stdout and logs to stderr.
func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	fl := flag.NewFlagSet("httpapi", flag.ContinueOnError)
	dbPath := fl.String("db", "httpapi.db", "path of the bbolt file, created if missing")
	addr := fl.String("addr", "127.0.0.1:8080", "address to listen on (port 0: any free port)")
	adminEmail := fl.String("admin-email", os.Getenv("USERS_ADMIN_EMAIL"), "first admin's email, used only on an empty store (default $USERS_ADMIN_EMAIL)")
	cost := fl.Int("bcrypt-cost", 12, "bcrypt work factor, 10 to 31 (users.Options.BcryptCost)")
	signUp := fl.Bool("signup", false, "open POST /v1/auth/signup to anyone (default off: only admins add users)")
	mfaKeyID := fl.String("mfa-key-id", "1", "the ID of $USERS_MFA_KEY, stored with the secrets it seals (change it with the key)")
	proxies := fl.String("trusted-proxy", "", "reverse proxies (CIDRs, comma-separated) whose X-Forwarded-For gives the client's IP")
	idle := fl.Duration("idle-timeout", defaultIdleTimeout, "end a session after this long without a request (0: only the 24-hour limit)")
	publicURL := fl.String("public-url", "", "this API's origin as browsers reach it, for the providers' callbacks (default: from -addr)")
	linkBase := fl.String("link-base", "", "the front end's origin: mailed links and the return after a provider's sign-in go there (default http://localhost:3000)")
	providers := providerflag.Define(fl, os.Getenv)
	passkeyOrigins := fl.String("passkey-origin", "", "turn passkeys on for the front ends at these origins (comma-separated, such as https://app.example)")
	rpID := fl.String("passkey-rp-id", "", "the passkeys' relying party ID, a domain (default: the host of the first -passkey-origin)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	trusted, err := parsePrefixes(*proxies)
	if err != nil {
		return err
	}
	var notify atomic.Pointer[Server] // set below: the security notices wait for it
	opts := managerOptions(*cost, *idle)
	opts.OnEvent = notices(&notify)
	if k := os.Getenv("USERS_MFA_KEY"); k != "" {
		key, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(key) != 32 {
			return errors.New("$USERS_MFA_KEY must be 32 bytes in base64")
		}
		opts.MFAKeys = []users.MFAKey{{ID: *mfaKeyID, Key: key}}
	} else {
		logger.Warn("no $USERS_MFA_KEY: TOTP enrolment is off")
	}
	if opts.Passkeys, err = passkeyOptions(*passkeyOrigins, *rpID); err != nil {
		return err
	}

	// The listener comes first: the providers' callback URLs need the address.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close() // a no-op once the server has closed it
	if *publicURL == "" {
		*publicURL = "http://" + ln.Addr().String()
	}
	if opts.Providers, err = providers(func(name string) string { return providerRedirectURL(*publicURL, name) }); err != nil {
		return err
	}
	for i := range opts.Providers {
		opts.Providers[i].AllowSignUp = *signUp // as for POST /v1/auth/signup
	}

	store, err := users.OpenBoltStore(*dbPath, &users.BoltOptions{SweepInterval: 10 * time.Minute, Logger: logger})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the store: %w", cerr)
		}
	}()
	m, err := users.New(store, opts)
	if err != nil {
		return err
	}
	// The password is read only when the first admin is to be created.
	var adminPassword string
	if n, err := m.Count(ctx, users.Filter{}); err != nil {
		return err
	} else if n > 0 && *adminEmail != "" {
		logAdminIgnored(ctx, m, logger, *dbPath, *adminEmail, n)
	} else if n == 0 && *adminEmail != "" {
		if adminPassword, err = prompt.Password(os.Getenv, os.Stdin, os.Stderr, "USERS_ADMIN_PASSWORD", "Password for the first admin "+*adminEmail+": "); err != nil {
			return err
		}
	}
	admin, err := ensureAdmin(ctx, m, *adminEmail, adminPassword)
	if err != nil {
		return err
	}
	if admin != nil {
		logger.Info("created the first admin", "email", admin.Email, "id", admin.ID)
	}

	api := &Server{Users: m, Logger: logger, SignUp: *signUp, TrustedProxies: trusted, LinkBase: *linkBase,
		Mailer: &mail.DevMailer{W: os.Stderr}} // prints each whole message
	notify.Store(api)
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
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
	api.Wait()              // mail still being sent after a 202
	_ = m.FlushEvents(sctx) // and the last requests' notices
	logger.Info("stopped")
	return nil
}

// defaultIdleTimeout ends a session that has made no request for half an
// hour. A bearer token left in an idle client (a closed laptop, a forgotten
// tab, a script that stopped) is a credential nobody watches; half an hour
// keeps a person at work signed in across pauses, while the 24-hour limit
// (users.Options.SessionTTL) still bounds a session in use. Clients that poll
// keep theirs alive; a more sensitive API should take less.
const defaultIdleTimeout = 30 * time.Minute

// managerOptions are the API's users.Options: bcrypt at cost, and sessions
// that end after idle without a request. Second-factor keys are added by the
// caller.
func managerOptions(cost int, idle time.Duration) *users.Options {
	return &users.Options{BcryptCost: cost, MFAIssuer: "httpapi", SessionIdleTimeout: idle, TrustDevices: true}
}

// passkeyOptions are the relying party of -passkey-origin and -passkey-rp-id:
// nil (passkeys off) without origins. users.New checks them.
func passkeyOptions(origins, rpID string) (*users.PasskeyOptions, error) {
	var list []string
	for v := range strings.SplitSeq(origins, ",") {
		if v = strings.TrimSpace(v); v != "" {
			list = append(list, v)
		}
	}
	if len(list) == 0 {
		if rpID != "" {
			return nil, errors.New("-passkey-rp-id needs -passkey-origin")
		}
		return nil, nil
	}
	if rpID == "" {
		u, err := url.Parse(list[0])
		if err != nil || u.Hostname() == "" {
			return nil, fmt.Errorf("-passkey-origin: %q is not an origin such as https://app.example", list[0])
		}
		rpID = u.Hostname()
	}
	return &users.PasskeyOptions{RPID: rpID, RPName: "httpapi", Origins: list}, nil
}

// parsePrefixes reads comma-separated CIDRs; a bare address is its own /32 or
// /128.
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for v := range strings.SplitSeq(list, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("-trusted-proxy: %q is not a CIDR or an address", v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// logAdminIgnored says why -admin-email created nobody on a store that has n
// users: at level Info when that admin exists already (its password is left
// as it is), at Warn when it does not, since signing in as that admin will
// fail.
func logAdminIgnored(ctx context.Context, m *users.Manager, logger *slog.Logger, db, email string, n int) {
	if _, err := m.GetByEmail(ctx, email); err == nil {
		logger.Info("the admin already exists: $USERS_ADMIN_PASSWORD is ignored and its password is unchanged", "db", db, "admin_email", email)
		return
	}
	logger.Warn("the store is not empty: -admin-email and $USERS_ADMIN_PASSWORD are ignored; sign in with an account the file already has, or give a new -db",
		"db", db, "users", n, "admin_email", email)
}
