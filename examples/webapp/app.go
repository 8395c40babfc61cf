package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/userkit/users"
)

//go:embed templates/*.html templates/parts/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures an App. Users is required; zero fields take the defaults
// documented on each.
type Config struct {
	Users *users.Manager

	// Mailer sends the site's mail. Default: LogMailer over Logger.
	Mailer Mailer

	// Logger receives failures and, with the default mailer, the mail.
	// Default: slog.Default().
	Logger *slog.Logger

	// BaseURL is the site's public origin, such as "https://app.example", used
	// in the links that are mailed. Required.
	BaseURL string

	// Dev serves cookies that work over plain HTTP: without Secure and without
	// the __Host- prefix, which browsers accept only with Secure. Only for
	// development on a loopback address. Default false.
	Dev bool

	// CSRFKey keys the HMAC that turns a browser's CSRF cookie into its form
	// token. Default: 32 random bytes, so tokens do not survive a restart.
	CSRFKey []byte

	// SignupKey keys the HMAC that signs sign-up links (see signup.go). Give
	// 32 random bytes, kept secret, for links that survive a restart. Default:
	// 32 random bytes, so links mailed before a restart stop working.
	SignupKey []byte

	// Now is the clock that sign-up links expire by. Default time.Now.
	Now func() time.Time

	// TrustedProxies names the reverse proxies whose header gives the
	// client's address, for the rate limits, sessions and audit entries.
	// Default nil: the client is the connection's peer.
	TrustedProxies *users.TrustedProxies
}

// App is the web site: its handler, its mail worker and its templates. It is
// safe for concurrent use.
type App struct {
	users     *users.Manager
	mailer    Mailer
	log       *slog.Logger
	base      string
	dev       bool
	csrfKey   []byte
	signupKey []byte
	now       func() time.Time
	pages     map[string]*template.Template
	fields    map[string][]string // each page's form fields, in the page's order (formFields)
	work      *worker
	proxies   *users.TrustedProxies

	passkeysOn bool // the Manager has passkeys configured (see passkey.go)

	// Cookie names: "__Host-" names unless Dev.
	sessionCookie, csrfCookie, flashCookie, challengeCookie, deviceCookie string
	providerCookie                                                        string // a provider flow's binding (providers.go)
}

// NewApp returns an App for c. Call Close when the server has stopped.
func NewApp(c Config) (*App, error) {
	if c.Users == nil {
		return nil, errors.New("webapp: Config.Users is required")
	}
	base, err := url.Parse(c.BaseURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, errors.New("webapp: Config.BaseURL must be an absolute http(s) URL")
	}
	if base.Scheme == "http" && !c.Dev {
		return nil, errors.New("webapp: an http BaseURL needs Dev: sessions over plain HTTP are for development only")
	}
	a := &App{
		users:     c.Users,
		mailer:    c.Mailer,
		log:       c.Logger,
		base:      strings.TrimSuffix(base.String(), "/"),
		dev:       c.Dev,
		csrfKey:   c.CSRFKey,
		signupKey: c.SignupKey,
		now:       c.Now,
		proxies:   c.TrustedProxies,
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.mailer == nil {
		a.mailer = LogMailer{Logger: a.log}
	}
	if a.csrfKey == nil {
		a.csrfKey = make([]byte, 32)
		rand.Read(a.csrfKey) // never fails: crypto/rand crashes the program instead
	}
	if a.signupKey == nil {
		a.signupKey = make([]byte, 32)
		rand.Read(a.signupKey)
	}
	if a.now == nil {
		a.now = time.Now
	}
	prefix := "__Host-"
	if a.dev {
		prefix = "dev-"
	}
	a.sessionCookie, a.csrfCookie, a.flashCookie = prefix+"session", prefix+"csrf", prefix+"flash"
	a.challengeCookie, a.deviceCookie = prefix+"challenge", prefix+"device"
	a.providerCookie = prefix + "provider"
	if a.pages, a.fields, err = parsePages(); err != nil {
		return nil, err
	}
	_, err = a.users.Passkeys(context.Background(), "")
	a.passkeysOn = !errors.Is(err, users.ErrPasskeysNotConfigured)
	a.work = newWorker(256)
	return a, nil
}

// Close finishes the queued mail jobs. Call it after the server has stopped.
func (a *App) Close() { a.work.close() }

// parsePages parses every page template together with the layout and the
// parts that pages share, and gives the form fields of each (formFields).
func parsePages() (map[string]*template.Template, map[string][]string, error) {
	layout, err := template.ParseFS(templateFS, "templates/layout.html", "templates/parts/*.html")
	if err != nil {
		return nil, nil, err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, nil, err
	}
	pages := make(map[string]*template.Template)
	fields := make(map[string][]string)
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, nil, err
		}
		src, err := fs.ReadFile(templateFS, n)
		if err != nil {
			return nil, nil, err
		}
		pages[name], fields[name] = t, formFields(string(src))
	}
	return pages, fields, nil
}

// fieldID is an input's, select's or textarea's id in a template.
var fieldID = regexp.MustCompile(`<(?:input|select|textarea)\b[^>]*?\sid="([a-z_]+)"`)

// formFields returns the ids of the fields of a page template's source, in
// the order the page shows them: the error summary's order.
func formFields(src string) []string {
	var ids []string
	for _, m := range fieldID.FindAllStringSubmatch(src, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// Handler returns the site's handler: every route behind the request log
// (log.go), the security headers, the error page for a panic (errors.go),
// the client's address in the context (Config.TrustedProxies) for the
// library's rate limits, and net/http's cross-origin protection, and every POST also behind a CSRF
// token check (see checkCSRF for why both).
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.HandleFunc("GET /static/{file...}", func(w http.ResponseWriter, r *http.Request) {
		// A missing file or a folder gets the site's 404 page, not
		// net/http's text or a listing.
		if fi, err := fs.Stat(static, r.PathValue("file")); err != nil || fi.IsDir() {
			a.notFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /{$}", a.home)

	mux.HandleFunc("GET /signup", a.signupForm)
	mux.HandleFunc("POST /signup", a.post(a.signup))
	mux.HandleFunc("GET /signup/finish", a.signupFinishForm)
	mux.HandleFunc("POST /signup/finish", a.post(a.signupFinish))
	mux.HandleFunc("GET /check-email", a.checkEmail)
	mux.HandleFunc("GET /verify", a.verifyForm)
	mux.HandleFunc("POST /verify", a.post(a.verify))
	mux.HandleFunc("GET /signin", a.signinForm)
	mux.HandleFunc("POST /signin", a.post(a.signin))
	mux.HandleFunc("GET /signin/code", a.signinCodeForm)
	mux.HandleFunc("POST /signin/code", a.post(a.signinCode))
	mux.HandleFunc("POST /signout", a.post(a.signout))
	mux.HandleFunc("GET /forgot", a.forgotForm)
	mux.HandleFunc("POST /forgot", a.post(a.forgot))
	mux.HandleFunc("GET /reset", a.resetForm)
	mux.HandleFunc("POST /reset", a.post(a.reset))
	mux.HandleFunc("GET /magic", a.magicForm)
	mux.HandleFunc("POST /magic", a.post(a.magic))
	mux.HandleFunc("GET /magic/signin", a.magicSigninForm)
	mux.HandleFunc("POST /magic/signin", a.post(a.magicSignin))
	mux.HandleFunc("GET /invite", a.inviteForm)
	mux.HandleFunc("POST /invite", a.post(a.acceptInvite))

	mux.HandleFunc("GET /account", a.signedIn(a.account))
	mux.HandleFunc("POST /account/profile", a.post(a.signedIn(a.updateProfile)))
	mux.HandleFunc("POST /account/password", a.post(a.signedIn(a.changePassword)))
	mux.HandleFunc("POST /account/email", a.post(a.signedIn(a.changeEmail)))
	mux.HandleFunc("POST /account/verify", a.post(a.signedIn(a.resendVerification)))
	mux.HandleFunc("POST /account/mfa/setup", a.post(a.signedIn(a.setupMFA)))
	mux.HandleFunc("POST /account/mfa/confirm", a.post(a.signedIn(a.confirmMFA)))
	mux.HandleFunc("POST /account/mfa/recovery", a.post(a.signedIn(a.newRecoveryCodes)))
	mux.HandleFunc("POST /account/mfa/disable", a.post(a.signedIn(a.disableMFA)))
	mux.HandleFunc("POST /account/stepup", a.post(a.signedIn(a.stepUp)))
	mux.HandleFunc("POST /account/reauth", a.post(a.signedIn(a.reauthenticate)))
	mux.HandleFunc("POST /account/devices/forget", a.post(a.signedIn(a.forgetDevice)))
	a.passkeyRoutes(mux)
	mux.HandleFunc("GET /email/confirm", a.confirmEmailForm)
	mux.HandleFunc("POST /email/confirm", a.post(a.confirmEmail))

	a.providerRoutes(mux)
	mux.HandleFunc("/", a.notFound) // every path no other route has

	mux.HandleFunc("GET /admin/users", a.admin(a.adminUsers))
	mux.HandleFunc("POST /admin/users/{id}/role", a.post(a.admin(a.adminRole)))
	mux.HandleFunc("POST /admin/users/{id}/status", a.post(a.admin(a.adminStatus)))
	mux.HandleFunc("POST /admin/users/{id}/reinvite", a.post(a.admin(a.adminReinvite)))
	mux.HandleFunc("POST /admin/users/{id}/mfa/reset", a.post(a.admin(a.adminResetMFA)))
	mux.HandleFunc("POST /admin/invite", a.post(a.admin(a.adminInvite)))

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, http.StatusForbidden, "Cross-origin request refused",
			"This form was sent from another site, so it was not accepted.")
	}))
	return a.logRequests(a.headers(a.recoverPanics(a.proxies.Middleware(cop.Handler(a.loadSession(mux))))))
}

// csp is the site's Content-Security-Policy: scripts, styles, images and
// fetches from the site only (the one script is static/passkey.js; no page
// has inline script or style). The enrolment page alone adds data: images for
// its QR code (cspWithQRCode).
const csp = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// headers sets the security headers of every response.
func (a *App) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !a.dev {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, &requestState{})))
	})
}

// loadSession puts the session of the request's cookie, if valid, into the
// request's context, and deletes a cookie whose session has ended.
func (a *App) loadSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(a.sessionCookie)
		if err != nil || c.Value == "" {
			next.ServeHTTP(w, r)
			return
		}
		s, err := a.users.ValidateToken(r.Context(), c.Value)
		switch {
		case err == nil:
			r = r.WithContext(users.NewContext(r.Context(), s))
		case errors.Is(err, users.ErrInvalidToken), errors.Is(err, users.ErrAccountDisabled):
			a.clearCookie(w, a.sessionCookie)
		default:
			a.fail(w, r, http.StatusServiceUnavailable, "Something went wrong", "Please try again in a moment.")
			a.log.ErrorContext(r.Context(), "validating a session", "err", err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// currentUser returns the signed-in user, or nil.
func currentUser(r *http.Request) *users.User {
	if s, ok := users.FromContext(r.Context()); ok {
		return s.User
	}
	return nil
}

// signedIn lets only signed-in requests through; others are sent to sign in
// and brought back afterwards.
func (a *App) signedIn(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if currentUser(r) == nil {
			next := r.URL.Path
			if r.Method != http.MethodGet {
				next = "/account"
			}
			http.Redirect(w, r, "/signin?next="+url.QueryEscape(next), http.StatusSeeOther)
			return
		}
		h(w, r)
	}
}

// admin lets only signed-in admins through.
func (a *App) admin(h http.HandlerFunc) http.HandlerFunc {
	return a.signedIn(func(w http.ResponseWriter, r *http.Request) {
		if currentUser(r).Role != users.RoleAdmin {
			a.fail(w, r, http.StatusForbidden, "Not allowed", "Only administrators can see this page.")
			return
		}
		h(w, r)
	})
}

// The session cookie.

// startSession makes s the browser's session: it ends the session the browser
// had (sign-in changes the session, so a session planted before sign-in is
// worth nothing) and gives the browser a new CSRF cookie too. The cookie
// outlives the browser only for a session the form asked to remember.
func (a *App) startSession(w http.ResponseWriter, r *http.Request, s *users.Session) {
	a.endSession(w, r)
	c := &http.Cookie{
		Name: a.sessionCookie, Value: s.Token, Path: "/",
		HttpOnly: true, Secure: !a.dev, SameSite: http.SameSiteLaxMode,
	}
	if remembered(r) {
		c.Expires = s.ExpiresAt
	}
	http.SetCookie(w, c)
	a.newCSRFCookie(w, r)
}

// endSession logs the browser's session out, if any, and deletes its cookie.
func (a *App) endSession(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(a.sessionCookie)
	if err != nil || c.Value == "" {
		return
	}
	if err := a.users.Logout(context.WithoutCancel(r.Context()), c.Value); err != nil && !errors.Is(err, users.ErrInvalidToken) {
		a.log.ErrorContext(r.Context(), "logging out", "err", err)
	}
	a.clearCookie(w, a.sessionCookie)
}

func (a *App) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: !a.dev, SameSite: http.SameSiteLaxMode})
}

// CSRF tokens.
//
// http.CrossOriginProtection refuses a POST whose Sec-Fetch-Site header says it
// came from another origin (or, without that header, whose Origin does not
// match Host). It lets through requests with neither header: browsers from
// before 2020 and some privacy tools that strip Origin. For those the form
// token is the defence: each browser gets a random CSRF cookie (HttpOnly, not
// the session: the session token never appears in a page), each form carries
// HMAC(key, cookie), and a POST must carry the token of the cookie it came
// with. Another site can make the browser send the cookie but cannot read it,
// so it cannot compute the token. The cookie is replaced at sign-in and
// sign-out, so a token learnt before either is void afterwards.

const csrfField = "csrf"

func (a *App) csrfToken(cookie string) string {
	m := hmac.New(sha256.New, a.csrfKey)
	m.Write([]byte("webapp csrf v1\x00" + cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newCSRFCookie sets a fresh CSRF cookie and returns its value.
func (a *App) newCSRFCookie(w http.ResponseWriter, r *http.Request) string {
	b := make([]byte, 32)
	rand.Read(b) // never fails
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: a.csrfCookie, Value: v, Path: "/",
		HttpOnly: true, Secure: !a.dev, SameSite: http.SameSiteLaxMode})
	// Pages rendered later in this request use the new cookie.
	if st, ok := r.Context().Value(stateKey{}).(*requestState); ok {
		st.newCSRF = v
	}
	return v
}

// requestState is what one request's handlers tell each other.
type requestState struct {
	newCSRF string // the CSRF cookie set during this request, if any
}

type stateKey struct{}

// csrfFor returns the form token for the request, setting a CSRF cookie first if
// the browser has none.
func (a *App) csrfFor(w http.ResponseWriter, r *http.Request) string {
	if st, ok := r.Context().Value(stateKey{}).(*requestState); ok && st.newCSRF != "" {
		return a.csrfToken(st.newCSRF)
	}
	if c, err := r.Cookie(a.csrfCookie); err == nil && len(c.Value) == 43 {
		return a.csrfToken(c.Value)
	}
	return a.csrfToken(a.newCSRFCookie(w, r))
}

// post checks the CSRF token of a POST before h runs; CrossOriginProtection has
// already run. It also bounds the form's size.
func (a *App) post(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			a.fail(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
			return
		}
		c, err := r.Cookie(a.csrfCookie)
		got := r.PostForm.Get(csrfField)
		if err != nil || got == "" || !hmac.Equal([]byte(got), []byte(a.csrfToken(c.Value))) {
			a.fail(w, r, http.StatusForbidden, "This form has expired",
				"Go back, reload the page and try again. (Cookies must be enabled.)")
			return
		}
		h(w, r)
	}
}

// Redirects.

// localPath returns next if it is a path on this site, else "". It refuses
// anything a browser could read as another origin: "//host", "/\host",
// "https:…", control characters, and anything that parses with a scheme or
// host.
func localPath(next string) string {
	if next == "" || next[0] != '/' || len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return ""
	}
	if strings.ContainsAny(next, "\\") || strings.IndexFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return next
}

// Flash messages: a key in a short-lived cookie, shown once by the next page.
// Only the keys below can be shown, so the cookie cannot inject text.
var flashes = map[string]string{
	"signed-in":        "You are signed in.",
	"signed-out":       "You are signed out.",
	"verified":         "Your email is confirmed. You can sign in.",
	"verified-in":      "Your email is confirmed.",
	"password-reset":   "Your password is changed. Sign in with it.",
	"password-changed": "Your password is changed. Your other sessions are signed out.",
	"password-relogin": "Your password is changed. Sign in again with it.",
	"profile-saved":    "Your profile is saved.",
	"email-sent":       "If that address can be used, a confirmation link is on its way to it. Your email changes when you follow it.",
	"email-changed":    "Your email is changed.",
	"verify-sent":      "A new confirmation link is on its way to your email.",
	"welcome":          "Welcome! Your account is ready.",
	"role-changed":     "The role is changed.",
	"status-changed":   "The account status is changed.",
	"invited":          "The invitation is sent.",
	"not-yourself":     "You cannot change your own role or status here.",
	"challenge-over":   "That sign-in is over (too many wrong codes, or too slow). Sign in again.",
	"stepped-up":       "Code accepted. You can make the change now.",
	"reauthenticated":  "Confirmed. You can make the change now.",
	"mfa-off":          "Two-factor authentication is off.",
	"mfa-reset":        "The user's second factor is removed.",
	"device-forgotten": "That device is forgotten: it will be asked for a code at its next sign-in.",
	"linked":           "The provider is linked: you can sign in with it.",
	"unlinked":         "The provider is unlinked.",
	"passkey-added":    "Your passkey is added. You can sign in with it.",
	"passkey-renamed":  "Your passkey is renamed.",
	"passkey-removed":  "Your passkey is removed.",
}

func (a *App) flash(w http.ResponseWriter, key string) {
	http.SetCookie(w, &http.Cookie{Name: a.flashCookie, Value: key, Path: "/", MaxAge: 60,
		HttpOnly: true, Secure: !a.dev, SameSite: http.SameSiteLaxMode})
}

func (a *App) redirect(w http.ResponseWriter, r *http.Request, to, flash string) {
	if flash != "" {
		a.flash(w, flash)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// Rendering.

// page is what every template gets.
type page struct {
	Title  string
	User   *users.User // nil when signed out
	CSRF   string
	Flash  string
	Error  string            // about the whole form
	Fields map[string]string // errors per field name
	Form   url.Values        // values to show again; never passwords
	Data   any

	Summary []summaryItem // the error summary's field errors, made by render from Fields

	Providers []providerButton // the sign-in providers, for their buttons
	Passkeys  bool             // the site offers passkeys
}

func (a *App) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.User = currentUser(r)
	p.CSRF = a.csrfFor(w, r)
	p.Providers = a.providerButtons()
	p.Passkeys = a.passkeysOn
	if c, err := r.Cookie(a.flashCookie); err == nil {
		p.Flash = flashes[c.Value]
		a.clearCookie(w, a.flashCookie)
	}
	p.Summary = summarize(p.Fields, a.fields[name])
	var buf bytes.Buffer
	if err := a.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		a.log.ErrorContext(r.Context(), "rendering", "page", name, "err", err, "request_id", requestID(r))
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, fallbackPage)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// summaryItem is one line of the error summary: a field's error, linking to
// the field (its element id is its name).
type summaryItem struct {
	Field, Text string
}

// fieldLabels names the fields whose name does not read as their label.
var fieldLabels = map[string]string{
	"email_password": "Password", "mfa_password": "Password", "mfa_code": "Code", "identity": "Sign-in provider",
}

// summarize returns the summary lines of fields, each as "Field name:
// reason", in the order of the page's form (order: its field ids), so that
// the summary reads as the form does; a field the page does not list comes
// after, by name.
func summarize(fields map[string]string, order []string) []summaryItem {
	items := make([]summaryItem, 0, len(fields))
	for f, msg := range fields {
		label, ok := fieldLabels[f]
		if !ok {
			label = strings.ReplaceAll(f, "_", " ")
		}
		if label != "" {
			label = strings.ToUpper(label[:1]) + label[1:]
		}
		if msg != "" {
			msg = strings.ToLower(msg[:1]) + msg[1:]
		}
		items = append(items, summaryItem{Field: f, Text: label + ": " + msg})
	}
	at := func(f string) int {
		if i := slices.Index(order, f); i >= 0 {
			return i
		}
		return len(order)
	}
	slices.SortFunc(items, func(a, b summaryItem) int {
		return cmp.Or(cmp.Compare(at(a.Field), at(b.Field)), strings.Compare(a.Field, b.Field))
	})
	return items
}

// fail shows a page with a title and one sentence.
func (a *App) fail(w http.ResponseWriter, r *http.Request, status int, title, text string) {
	a.render(w, r, status, "message", page{Title: title, Data: text})
}

// internal logs err and shows the error page (serverError); a rate limit's refusal,
// which every handler may meet, gets 429 with Retry-After instead.
func (a *App) internal(w http.ResponseWriter, r *http.Request, op string, err error) {
	if errors.Is(err, users.ErrRateLimited) {
		users.SetRetryAfter(w, err)
		a.fail(w, r, http.StatusTooManyRequests, "Too many attempts", "Too many attempts from your network: try again in a few minutes.")
		return
	}
	a.serverError(w, r, op, err)
}

// link returns the absolute URL of path with the token as its query.
func (a *App) link(path, token string) string {
	return a.base + path + "?token=" + url.QueryEscape(token)
}

// home is the front page.
func (a *App) home(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "home", page{Title: "Welcome"})
}

// send sends m; it runs on the mail worker.
func (a *App) send(ctx context.Context, m Message) {
	if err := a.mailer.Send(ctx, m); err != nil {
		a.log.ErrorContext(ctx, "sending mail", "subject", m.Subject, "err", err)
	}
}
