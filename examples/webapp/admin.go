package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/userkit/users"
	"github.com/userkit/users/mail"
)

const adminPageSize = 10

// adminList is the data of the admin page.
type adminList struct {
	Users      []*users.User
	Total      int
	Page       int
	Pages      int
	Prev, Next string // links to the neighbouring pages, or ""
	Query      string // the filters, to come back to after a change
	Roles      []users.Role
	Statuses   []users.Status
	Self       string // the admin's own ID
}

// adminUsers lists users with the filters of the 004 API (role, status, a
// search in name and email) and page-number paging.
func (a *App) adminUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := users.Filter{
		Role:   users.Role(q.Get("role")),
		Status: users.Status(q.Get("status")),
		Search: strings.TrimSpace(q.Get("q")),
		Limit:  adminPageSize,
	}
	n, _ := strconv.Atoi(q.Get("page"))
	n = max(n, 1)
	f.Offset = (n - 1) * adminPageSize
	total, err := a.users.Count(r.Context(), f)
	if fields, ok := fieldError(err); ok {
		a.render(w, r, http.StatusBadRequest, "admin", page{Title: "Users", Fields: fields, Form: q,
			Data: adminList{Roles: roles, Statuses: statuses}})
		return
	}
	if err != nil {
		a.internal(w, r, "counting users", err)
		return
	}
	found, err := a.users.Find(r.Context(), f)
	if err != nil {
		a.internal(w, r, "listing users", err)
		return
	}
	d := adminList{Users: found.Users, Total: total, Page: n, Pages: max(1, (total+adminPageSize-1)/adminPageSize),
		Roles: roles, Statuses: statuses, Self: currentUser(r).ID}
	link := func(page int) string {
		v := url.Values{}
		for _, k := range []string{"role", "status", "q"} {
			if q.Get(k) != "" {
				v.Set(k, q.Get(k))
			}
		}
		if page > 1 {
			v.Set("page", strconv.Itoa(page))
		}
		if len(v) == 0 {
			return "/admin/users"
		}
		return "/admin/users?" + v.Encode()
	}
	d.Query = link(n)
	if n > 1 {
		d.Prev = link(n - 1)
	}
	if n < d.Pages {
		d.Next = link(n + 1)
	}
	a.render(w, r, http.StatusOK, "admin", page{Title: "Users", Form: q, Data: d})
}

var (
	roles    = []users.Role{users.RoleAdmin, users.RoleUser, users.RoleViewer}
	statuses = []users.Status{users.StatusActive, users.StatusInactive, users.StatusSuspended, users.StatusInvited}
)

// back is where an admin action returns to: the list as it was.
func back(r *http.Request) string {
	if p := localPath(r.PostForm.Get("back")); strings.HasPrefix(p, "/admin/users") {
		return p
	}
	return "/admin/users"
}

// notSelf refuses an admin's change of their own role or status, so that the
// last admin cannot lock everyone out by a slip.
func (a *App) notSelf(w http.ResponseWriter, r *http.Request) bool {
	if r.PathValue("id") == currentUser(r).ID {
		a.redirect(w, r, back(r), "not-yourself")
		return false
	}
	return true
}

func (a *App) adminRole(w http.ResponseWriter, r *http.Request) {
	if !a.notSelf(w, r) {
		return
	}
	_, err := a.users.UpdateRole(r.Context(), r.PathValue("id"), users.Role(r.PostForm.Get("role")))
	a.adminDone(w, r, err, "role-changed")
}

func (a *App) adminStatus(w http.ResponseWriter, r *http.Request) {
	if !a.notSelf(w, r) {
		return
	}
	st := users.Status(r.PostForm.Get("status"))
	_, err := a.users.Update(r.Context(), r.PathValue("id"), users.UserUpdate{Status: &st})
	a.adminDone(w, r, err, "status-changed")
}

func (a *App) adminDone(w http.ResponseWriter, r *http.Request, err error, flash string) {
	switch {
	case err == nil:
		a.redirect(w, r, back(r), flash)
	case errors.Is(err, users.ErrNotFound):
		a.fail(w, r, http.StatusNotFound, "No such user", "The user may have been removed.")
	case errors.Is(err, users.ErrInvalidInput):
		a.fail(w, r, http.StatusBadRequest, "Not changed", err.Error())
	default:
		a.internal(w, r, "changing a user", err)
	}
}

// adminResetMFA removes another user's second factor, for a user who lost
// their device and their recovery codes. Only an admin whose own session
// proved a second factor within freshSecondFactor may, as in examples/httpapi:
// a stolen admin session alone cannot strip someone's second factor. The user
// is told by mail.
func (a *App) adminResetMFA(w http.ResponseWriter, r *http.Request) {
	if !a.notSelf(w, r) {
		return
	}
	s, _ := users.FromContext(r.Context())
	if !a.fresh(s) {
		st, err := a.users.MFAStatus(r.Context(), s.UserID)
		if err != nil {
			a.internal(w, r, "reading second factors", err)
			return
		}
		if !st.Enabled {
			a.fail(w, r, http.StatusForbidden, "Not allowed",
				"Removing someone's second factor needs your own: turn on two-factor authentication on your account first.")
			return
		}
		a.render(w, r, http.StatusForbidden, "step-up", page{Title: "Confirm it is you", Form: url.Values{"next": {back(r)}}})
		return
	}
	id := r.PathValue("id")
	err := a.users.ResetMFA(r.Context(), id)
	if errors.Is(err, users.ErrReauthRequired) {
		a.askReauth(w, r, back(r), page{})
		return
	}
	if err == nil {
		a.notify(r.Context(), id, "Two-factor authentication is off",
			"An administrator removed the second factor of your account: signing in needs only the password now. Set up your authenticator app again on your account page.")
	}
	a.adminDone(w, r, err, "mfa-reset")
}

// adminInvite creates an invited user and mails the invitation.
func (a *App) adminInvite(w http.ResponseWriter, r *http.Request) {
	u, token, err := a.users.Invite(r.Context(), users.NewUser{
		Email: r.PostForm.Get("email"), Role: users.Role(r.PostForm.Get("role")),
	})
	switch {
	case errors.Is(err, users.ErrDuplicateEmail):
		a.fail(w, r, http.StatusConflict, "Not invited", "Someone already has an account with this email.")
		return
	case err != nil:
		a.adminDone(w, r, err, "")
		return
	}
	a.mailInvitation(r.Context(), u.Email, token)
	a.redirect(w, r, back(r), "invited")
}

func (a *App) adminReinvite(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	to, token, err := a.issueReinvite(r.Context(), id)
	if err != nil {
		a.adminDone(w, r, err, "")
		return
	}
	a.mailInvitation(r.Context(), to, token)
	a.redirect(w, r, back(r), "invited")
}

// mailInvitation queues the invitation mail. Admins may learn who has an
// account, so this need not hide anything; it is queued only so that a slow
// mailer does not hold the page.
func (a *App) mailInvitation(ctx context.Context, to, token string) {
	link := a.link("/invite", token)
	a.work.enqueue(ctx, func(ctx context.Context) {
		a.mailKind(ctx, mail.KindInvitation, mail.Data{To: to, Link: link})
	})
}
