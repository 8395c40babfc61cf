// Command webapp is a server-rendered web site on the users library: sign-up
// by a mailed link, sign-in by email or username with an optional second
// factor (TOTP, a recovery code or a passkey), sign-in with a passkey and no
// password, sign-out, forgotten password, magic-link sign-in, invitations,
// account settings (email changes proven by a link, second-factor enrolment,
// linked providers, passkeys), sign-in with external providers, and an admin
// page. It uses html/template and the standard library only, with one small
// script for the passkey ceremonies, and is meant to be copied. See README.md
// beside this file.
//
//	go run ./examples/webapp -dev        # http://127.0.0.1:8080, mail links in the log
//	go run ./examples/webapp             # https://127.0.0.1:8443, a self-signed certificate
//
// It keeps its users in the bbolt file -db (default webapp.db). With
// -admin-email it creates that admin, its email confirmed, unless the email
// has an account already; the password comes from $USERS_ADMIN_PASSWORD, or
// else is asked for on the terminal. There is no flag for it: every user of
// the machine can read a process's flags (ps).
//
// Second factors (TOTP with a QR code, and recovery codes) need a key that
// seals the TOTP secrets in the store: $USERS_MFA_KEY, 32 random bytes in
// base64 (head -c 32 /dev/urandom | base64), named by -mfa-key-id. Without
// it, enrolment is off. Keep the key out of the store's backups.
//
// "Sign in with …" is offered for the providers named by -oidc-issuer with
// -oidc-client-id, -google-client-id and -github-client-id, with the client
// secrets in $USERS_OIDC_CLIENT_SECRET, $USERS_GOOGLE_CLIENT_SECRET and
// $USERS_GITHUB_CLIENT_SECRET; with none, the site has no provider. Register
// BASE/signin/with/NAME/callback at the provider (NAME: oidc, google or
// github).
//
// Passkeys are bound to the host of -base-url, which must be a name, not an IP
// address: -dev -base-url http://localhost:8080 tries them locally.
//
// Sessions end after 30 minutes without a request (-idle-timeout) and 24
// hours after sign-in in any case; a session signed in with "Remember me"
// ends after a week without a request and 30 days after sign-in. "Trust
// this device" at the second step skips the code at that browser's password
// sign-ins for 30 days (see remember.go).
//
// Without -dev it serves HTTPS: with -tls-cert and -tls-key, or else with a
// self-signed certificate made at start (the browser warns about it), and its
// cookies are __Host- cookies, Secure. -dev serves plain HTTP on a loopback
// address with cookies a browser keeps over HTTP; it refuses other addresses.
// The dev mailer logs every mail with its link: follow those links.
// -bcrypt-cost (default 12) goes below 10 only with -dev, for tests.
// -breach-list names a local file of breached SHA-1 hashes whose passwords
// every form refuses (see package github.com/userkit/users/breach).
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/breach"
	"github.com/userkit/users/examples/internal/prompt"
	"github.com/userkit/users/examples/internal/providerflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // -h printed the usage: asking for help is no failure
		}
		fmt.Fprintln(os.Stderr, "webapp:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done, then shuts down. It prints "listening on URL"
// to stdout once it accepts connections, and logs to stderr.
func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	fl := flag.NewFlagSet("webapp", flag.ContinueOnError)
	dbPath := fl.String("db", "webapp.db", "path of the bbolt file, created if missing")
	addr := fl.String("addr", "", "address to listen on (default 127.0.0.1:8080 with -dev, else 127.0.0.1:8443; port 0: any free port)")
	dev := fl.Bool("dev", false, "serve plain HTTP on a loopback address, with development cookies")
	baseURL := fl.String("base-url", "", "public origin for mailed links (default: from -addr)")
	certFile := fl.String("tls-cert", "", "TLS certificate file (default: a self-signed one)")
	keyFile := fl.String("tls-key", "", "TLS key file")
	adminEmail := fl.String("admin-email", os.Getenv("USERS_ADMIN_EMAIL"), "create this admin if the email has no account (default $USERS_ADMIN_EMAIL)")
	breachList := fl.String("breach-list", "", "refuse the passwords of this file of SHA-1 hashes (HASH or HASH:COUNT a line, as the Pwned Passwords corpus is published)")
	mfaKeyID := fl.String("mfa-key-id", "1", "the ID of $USERS_MFA_KEY, stored with the secrets it seals (change it with the key)")
	idle := fl.Duration("idle-timeout", defaultIdleTimeout, "end a session after this long without a request (0: only the 24-hour limit)")
	cost := fl.Int("bcrypt-cost", 12, "bcrypt work factor, 10 to 31; with -dev down to 4 (fast, and weak: for tests only)")
	proxies := fl.String("trusted-proxy", "", "reverse proxies (CIDRs, comma-separated) whose X-Forwarded-For gives the client's address, for the rate limits")
	providers := providerflag.Define(fl, os.Getenv)
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *addr == "" {
		*addr = "127.0.0.1:8443"
		if *dev {
			*addr = "127.0.0.1:8080"
		}
	}
	if *dev && !loopback(*addr) {
		return fmt.Errorf("-dev serves plain HTTP and is only for a loopback address, not %q", *addr)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var cidrs []string
	if *proxies != "" {
		cidrs = strings.Split(*proxies, ",")
	}
	trusted, err := users.ParseTrustedProxies(users.HeaderXForwardedFor, cidrs...)
	if err != nil {
		return fmt.Errorf("-trusted-proxy: %w", err)
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
	var breached users.BreachChecker
	if *breachList != "" {
		l, err := breach.OpenList(*breachList, nil)
		if err != nil {
			return err
		}
		breached = l
	}
	opts := managerOptions(*cost, *dev, *idle)
	opts.BreachChecker = breached
	if k := os.Getenv("USERS_MFA_KEY"); k != "" {
		key, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(key) != 32 {
			return errors.New("$USERS_MFA_KEY must be 32 bytes in base64")
		}
		opts.MFAKeys = []users.MFAKey{{ID: *mfaKeyID, Key: key}}
	} else {
		logger.Warn("no $USERS_MFA_KEY: second-factor enrolment is off")
	}
	if opts.Passkeys, err = passkeyOptions(*baseURL); err != nil {
		logger.Warn("passkeys are off", "reason", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close() // a no-op once served: Shutdown closes it
	scheme := "https"
	if *dev {
		scheme = "http"
	}
	if *baseURL == "" {
		*baseURL = scheme + "://" + ln.Addr().String()
	}
	// The providers' callbacks are on the base URL, known only now.
	if opts.Providers, err = providers(func(name string) string { return providerRedirectURL(*baseURL, name) }); err != nil {
		return err
	}
	for i := range opts.Providers {
		opts.Providers[i].AllowSignUp = true // anyone may sign up here
	}
	m, err := users.New(store, opts)
	if err != nil {
		return err
	}
	adminPassword := func() (string, error) {
		return prompt.Password(os.Getenv, os.Stdin, os.Stderr, "USERS_ADMIN_PASSWORD", "Password for the admin "+*adminEmail+": ")
	}
	if err := ensureAdmin(ctx, m, *adminEmail, adminPassword, logger); err != nil {
		return err
	}

	app, err := NewApp(Config{Users: m, Logger: logger, BaseURL: *baseURL, Dev: *dev, TrustedProxies: trusted})
	if err != nil {
		return err
	}
	defer app.Close()

	srv := &http.Server{
		Handler:           app.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if !*dev {
		var cert tls.Certificate
		if *certFile != "" {
			cert, err = tls.LoadX509KeyPair(*certFile, *keyFile)
		} else {
			cert, err = selfSigned(time.Now())
			logger.Warn("serving with a self-signed certificate: the browser will warn; give -tls-cert and -tls-key in real use")
		}
		if err != nil {
			return err
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	fmt.Fprintf(stdout, "listening on %s://%s\n", scheme, ln.Addr())

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
	return nil
}

// defaultIdleTimeout ends a session that has made no request for half an
// hour. The site is used in browsers, some of them shared or left unlocked: an
// idle session is a signed-in browser nobody is watching. Half an hour lets
// someone read a long page or answer the phone without being signed out,
// while the 24-hour limit (users.Options.SessionTTL) still bounds a session in
// use. A site holding more sensitive data should take less (OWASP's session
// guidance suggests 2 to 5 minutes for high-value applications).
const defaultIdleTimeout = 30 * time.Minute

// managerOptions are the site's users.Options: bcrypt at cost, confirmed
// emails required, and sessions that end after idle without a request.
// Second-factor keys are added by the caller.
func managerOptions(cost int, dev bool, idle time.Duration) *users.Options {
	return &users.Options{
		BcryptCost:                    cost,
		InsecureLowBcryptCostForTests: dev && cost < 10,
		RequireVerifiedEmail:          true,
		SessionIdleTimeout:            idle,
		MFAIssuer:                     "Example app",
		TrustDevices:                  true, // "Trust this device" at the second step (remember.go)
	}
}

// passkeyOptions are the relying party of the site at base, its public
// origin (-base-url): the passkeys are bound to base's host name and made and
// used only on base. Without -base-url (the default is the listening address,
// an IP address) or with an IP address, which cannot be a relying party ID,
// passkeys are off: give -base-url http://localhost:8080 with -dev to try
// them on one's own machine.
func passkeyOptions(base string) (*users.PasskeyOptions, error) {
	if base == "" {
		return nil, errors.New("no -base-url: passkeys need the site's host name, such as -base-url http://localhost:8080")
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if net.ParseIP(u.Hostname()) != nil {
		return nil, fmt.Errorf("-base-url %s is an IP address; passkeys need a host name, such as localhost", base)
	}
	return &users.PasskeyOptions{RPID: u.Hostname(), RPName: "Example app", Origins: []string{u.Scheme + "://" + u.Host}}, nil
}

// loopback reports whether addr's host is localhost or a loopback IP.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// selfSigned makes a certificate for localhost, 127.0.0.1 and ::1, valid for a
// week, so that the site can be tried over HTTPS without setting anything up.
func selfSigned(now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "webapp example (self-signed)"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// ensureAdmin creates the admin email, its email confirmed (the operator
// vouches for it), unless the email has an account already; only then does it
// call password for the admin's password. With no email it does nothing.
func ensureAdmin(ctx context.Context, m *users.Manager, email string, password func() (string, error), log *slog.Logger) error {
	if email == "" {
		if n, err := m.Count(ctx, users.Filter{}); err == nil && n == 0 {
			log.Info("no users yet: sign up, or start with -admin-email and $USERS_ADMIN_PASSWORD to create an admin")
		}
		return nil
	}
	if _, err := m.GetByEmail(ctx, email); err == nil {
		log.Info("the admin already has an account: its password is left as it is, and $USERS_ADMIN_PASSWORD is not read", "email", email)
		return nil
	} else if !errors.Is(err, users.ErrNotFound) {
		return err
	}
	pw, err := password()
	if err != nil {
		return fmt.Errorf("-admin-email: %w", err)
	}
	u, err := m.Create(ctx, users.NewUser{Email: email, Password: pw, Role: users.RoleAdmin})
	if err != nil {
		return fmt.Errorf("creating the admin: %w", err)
	}
	d, err := m.RequestEmailVerification(ctx, u.ID)
	if err == nil {
		_, err = m.VerifyEmail(ctx, d.Token)
	}
	if err != nil {
		return fmt.Errorf("confirming the admin's email: %w", err)
	}
	log.Info("created the admin", "email", u.Email, "id", u.ID)
	return nil
}
