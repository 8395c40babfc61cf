package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/userkit/users"
)

// Sign-up.
//
// Sign-up asks for the email only and mails a link; the password and the
// username are chosen on the page the link opens, so an account is only ever
// created by whoever reads the address's mail. This is what keeps sign-up from
// telling who has an account:
//
//   - The form's answer is the same redirect to the same page, with the same
//     cookies, whatever the store holds: the handler checks the email's shape,
//     queues a job and answers, without touching the store.
//   - The job does the same work either way: one read of the email, then one
//     mail. A new address gets a link to create the account; an address with
//     an account gets "you already have an account". Nothing is written, so
//     neither case leaves work (a write, an fsync) that the next request could
//     feel.
//   - A password typed at sign-up can never be tried at sign-in, because there
//     is none; and nobody can park an account, with a password of their
//     choosing, at an address they do not read.
//   - A username can only be tried on the link's page, by the address's owner.
//
// The link carries the email and an expiry, signed with HMAC-SHA-256 under
// Config.SignupKey: nothing is stored until the account is created. It works
// until it expires (signupLinkTTL), but only once in effect, since an email
// can have one account.

// signupLinkTTL is how long a sign-up link works.
const signupLinkTTL = time.Hour

// signupLinkPrefix separates sign-up link MACs from any other use of the key.
const signupLinkPrefix = "webapp signup link v1\x00"

// signupToken returns the token of a sign-up link for email, valid until exp.
// Its form is base64url(expiry as 8 big-endian bytes of Unix seconds, then the
// email) "." base64url(HMAC-SHA-256).
func (a *App) signupToken(email string, exp time.Time) string {
	payload := binary.BigEndian.AppendUint64(nil, uint64(exp.Unix()))
	payload = append(payload, email...)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(a.signupMAC(payload))
}

func (a *App) signupMAC(payload []byte) []byte {
	m := hmac.New(sha256.New, a.signupKey)
	m.Write([]byte(signupLinkPrefix))
	m.Write(payload)
	return m.Sum(nil)
}

// signupEmail returns the email of a sign-up token, or false if the token is
// malformed, forged or expired.
func (a *App) signupEmail(token string) (string, bool) {
	p, s, ok := strings.Cut(token, ".")
	if !ok {
		return "", false
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil || len(payload) <= 8 {
		return "", false
	}
	mac, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !hmac.Equal(mac, a.signupMAC(payload)) {
		return "", false
	}
	if !a.now().Before(time.Unix(int64(binary.BigEndian.Uint64(payload)), 0)) {
		return "", false
	}
	return string(payload[8:]), true
}

// signupForm shows the sign-up form; a signed-in browser goes to its account.
func (a *App) signupForm(w http.ResponseWriter, r *http.Request) {
	if a.signedInAlready(w, r) {
		return
	}
	a.render(w, r, http.StatusOK, "signup", page{Title: "Create an account"})
}

// signup is the form's POST: the email's shape is checked, the job queued, and
// the answer is the same whoever asks. Other fields (an old form's password or
// username) are ignored.
func (a *App) signup(w http.ResponseWriter, r *http.Request) {
	a.requestByEmail(w, r, "signup", "Create an account", "signup", users.ActionSignUp, a.signupJob)
}

// signupJob is sign-up's work on the mail worker: the same read and one mail,
// whether or not the email has an account.
func (a *App) signupJob(ctx context.Context, email string) {
	owner, err := a.users.GetByEmail(ctx, email)
	switch {
	case err == nil:
		a.send(ctx, Message{To: owner.Email, Subject: "You already have an account",
			Text: "Someone asked to create an account with this email, which has one already. If it was you, sign in, or reset your password. If not, you need to do nothing.",
			Link: a.base + "/forgot"})
	case errors.Is(err, users.ErrNotFound):
		a.send(ctx, Message{To: email, Subject: "Create your account",
			Text: "Open this link to choose your password and create your account. It works for an hour. If you did not ask for it, ignore this mail.",
			Link: a.link("/signup/finish", a.signupToken(email, a.now().Add(signupLinkTTL)))})
	default:
		a.log.ErrorContext(ctx, "sign-up: looking up the email", "err", err)
	}
}

// finishPage is the data of the page a sign-up link opens.
type finishPage struct {
	Email string
}

// signupFinishForm shows the page the sign-up link opens: choose a password
// and, if wanted, a username.
func (a *App) signupFinishForm(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	email, ok := a.signupEmail(token)
	if !ok {
		a.badLink(w, r)
		return
	}
	a.render(w, r, http.StatusOK, "signup-finish", page{Title: "Create your account",
		Form: url.Values{"token": {token}}, Data: finishPage{Email: email}})
}

// signupFinish creates the account of a sign-up link with the password and
// username chosen on its page. Its email counts as confirmed, since the link
// reached it, and the browser is signed in. A taken username is reported, as
// everywhere on the site (usernames are public names); it can only be tried
// by the address's owner here.
func (a *App) signupFinish(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	token := f.Get("token")
	email, ok := a.signupEmail(token)
	if !ok {
		a.badLink(w, r)
		return
	}
	p := page{Title: "Create your account", Form: url.Values{"token": {token}, "username": {f.Get("username")}},
		Data: finishPage{Email: email}}
	u, err := a.users.Create(r.Context(), users.NewUser{Email: email, Username: f.Get("username"), Password: f.Get("password")})
	if fields, ok := fieldError(err); ok { // every refused field at once
		p.Fields = fields
		a.render(w, r, http.StatusBadRequest, "signup-finish", p)
		return
	}
	switch {
	case errors.Is(err, users.ErrDuplicateUsername):
		p.Fields = map[string]string{"username": "This username is taken."}
		a.render(w, r, http.StatusConflict, "signup-finish", p)
		return
	case errors.Is(err, users.ErrDuplicateEmail):
		a.fail(w, r, http.StatusConflict, "You already have an account",
			"This email has an account already (this link may have been used). Sign in, or reset your password.")
		return
	case err != nil:
		a.internal(w, r, "creating an account", err)
		return
	}
	// The link reached the address: confirm it, then sign in.
	ctx := context.WithoutCancel(r.Context()) // the account exists now: finish
	d, err := a.users.RequestEmailVerification(ctx, u.ID)
	if err == nil {
		_, err = a.users.VerifyEmail(ctx, d.Token)
	}
	if err != nil {
		a.internal(w, r, "confirming a new account's email", err)
		return
	}
	s, err := a.users.Login(ctx, u.Email, f.Get("password"))
	if err != nil {
		a.log.WarnContext(ctx, "signing in a new account", "err", err)
		a.redirect(w, r, "/signin", "verified")
		return
	}
	a.startSession(w, r, s)
	a.redirect(w, r, "/account", "welcome")
}
