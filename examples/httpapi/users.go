package main

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/userkit/users"
)

// The users: /v1/users for admins (and for a user's own record), and the first
// admin of an empty store.

// apiUser is the document's user object, plus username, email_verified,
// last_login_at, account_id (the owning account or tenant) and preferences.
// name is first and last name joined with a space.
type apiUser struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Email         string            `json:"email"`
	Username      string            `json:"username,omitempty"`
	Role          users.Role        `json:"role"`
	Status        users.Status      `json:"status"`
	Avatar        string            `json:"avatar,omitempty"`
	EmailVerified bool              `json:"email_verified"`
	CreatedAt     string            `json:"created_at"`
	UpdatedAt     string            `json:"updated_at"`
	LastLoginAt   string            `json:"last_login_at,omitempty"`
	AccountID     string            `json:"account_id,omitempty"`
	Preferences   map[string]string `json:"preferences,omitempty"`
}

func toAPI(u *users.User) apiUser {
	a := apiUser{
		ID:            u.ID,
		Name:          strings.TrimSpace(u.FirstName + " " + u.LastName),
		Email:         u.Email,
		Username:      u.Username,
		Role:          u.Role,
		Status:        u.Status,
		Avatar:        u.AvatarURL,
		EmailVerified: u.EmailVerified,
		CreatedAt:     timestamp(u.CreatedAt),
		UpdatedAt:     timestamp(u.UpdatedAt),
		AccountID:     u.AccountID,
		Preferences:   u.Preferences,
	}
	if !u.LastLoginAt.IsZero() {
		a.LastLoginAt = timestamp(u.LastLoginAt)
	}
	return a
}

// splitName returns the first and last name a request sets (nil: unchanged).
// A request names a person by "name", which is split on its first space (the
// document has one name field), or by first_name and last_name; using both ways
// at once is refused.
func splitName(name, first, last *string) (*string, *string, error) {
	if name == nil {
		return first, last, nil
	}
	if first != nil || last != nil {
		return nil, nil, &users.ValidationError{Field: "name", Code: users.ValidationExclusive, Reason: "give either name or first_name and last_name, not both"}
	}
	f, l, _ := strings.Cut(strings.TrimSpace(*name), " ")
	l = strings.TrimSpace(l)
	return &f, &l, nil
}

// fieldNames maps the library's field names to this API's, for the user fields:
// avatar_url is avatar, and first and last name are name when the request gave
// name.
func fieldNames(name *string) map[string]string {
	m := map[string]string{"avatar_url": "avatar"}
	if name != nil {
		m["first_name"], m["last_name"] = "name", "name"
	}
	return m
}

// maxPage keeps (page-1)*limit within an int, even a 32-bit one.
const maxPage = math.MaxInt32 / 100

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	number := func(name string, def, max int) (int, bool) {
		v := q.Get(name)
		if v == "" {
			return def, true
		}
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			invalid(w, name, users.ValidationMalformed, "must be a whole number")
			return 0, false
		case n < 1:
			invalid(w, name, users.ValidationOutOfRange, "must be at least 1")
			return 0, false
		case n > max:
			invalid(w, name, users.ValidationOutOfRange, "must be at most "+strconv.Itoa(max))
			return 0, false
		}
		return n, true
	}
	page, ok := number("page", 1, maxPage)
	if !ok {
		return
	}
	limit, ok := number("limit", 20, 100)
	if !ok {
		return
	}
	f := users.Filter{
		Role:      users.Role(q.Get("role")),
		Status:    users.Status(q.Get("status")),
		AccountID: q.Get("account_id"),
		Search:    q.Get("search"),
		Limit:     limit,
		Offset:    (page - 1) * limit,
	}
	p, err := s.Users.Find(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	total, err := s.Users.Count(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	data := make([]apiUser, 0, len(p.Users))
	for _, u := range p.Users {
		data = append(data, toAPI(u))
	}
	writeJSON(w, http.StatusOK, envelope{
		Success:    true,
		Data:       data,
		Pagination: &pagination{Page: page, Limit: limit, Total: total, Pages: (total + limit - 1) / limit},
	})
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	sess, id := session(r), r.PathValue("id")
	if sess.User.Role != users.RoleAdmin && id != sess.UserID {
		forbidden(w, "You may only read your own account")
		return
	}
	u, err := s.Users.Get(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: toAPI(u)})
}

// userRequest is the body of POST /v1/users and POST /v1/users/invite.
type userRequest struct {
	Name        *string           `json:"name"`
	FirstName   *string           `json:"first_name"`
	LastName    *string           `json:"last_name"`
	Email       string            `json:"email"`
	Username    string            `json:"username"`
	Role        users.Role        `json:"role"`
	Status      users.Status      `json:"status"`
	Avatar      string            `json:"avatar"`
	Password    string            `json:"password"`
	AccountID   string            `json:"account_id"`
	Preferences map[string]string `json:"preferences"`
}

func (req *userRequest) newUser() (users.NewUser, error) {
	first, last, err := splitName(req.Name, req.FirstName, req.LastName)
	if err != nil {
		return users.NewUser{}, err
	}
	nu := users.NewUser{
		Email: req.Email, Username: req.Username, Password: req.Password,
		Role: req.Role, Status: req.Status, AvatarURL: req.Avatar,
		AccountID: req.AccountID, Preferences: req.Preferences,
	}
	if first != nil {
		nu.FirstName = *first
	}
	if last != nil {
		nu.LastName = *last
	}
	return nu, nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if !s.decode(w, r, &req) {
		return
	}
	nu, err := req.newUser()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.Users.Create(r.Context(), nu)
	if err != nil {
		s.fail(w, r, rename(err, fieldNames(req.Name)))
		return
	}
	w.Header().Set("Location", "/v1/users/"+u.ID)
	writeJSON(w, http.StatusCreated, envelope{Success: true, Data: toAPI(u), Message: "User created successfully"})
}

func (s *Server) inviteUser(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if !s.decode(w, r, &req) {
		return
	}
	switch {
	case req.Password != "":
		invalid(w, "password", users.ValidationMustBeEmpty, "cannot be set on an invitation: the invited user chooses it")
		return
	case req.Status != "":
		invalid(w, "status", users.ValidationMustBeEmpty, "cannot be set on an invitation")
		return
	}
	nu, err := req.newUser()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, token, err := s.Users.Invite(r.Context(), nu)
	if err != nil {
		s.fail(w, r, rename(err, fieldNames(req.Name)))
		return
	}
	s.mail(r.Context(), Mail{To: u.Email, Kind: "invitation", Token: token})
	w.Header().Set("Location", "/v1/users/"+u.ID)
	writeJSON(w, http.StatusCreated, envelope{Success: true, Data: toAPI(u), Message: "Invitation sent"})
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) {
	sess, id := session(r), r.PathValue("id")
	isAdmin, self := sess.User.Role == users.RoleAdmin, id == sess.UserID
	switch {
	case !isAdmin && !self:
		forbidden(w, "You may only update your own account")
		return
	case sess.User.Role == users.RoleViewer:
		forbidden(w, "Viewers cannot change their account")
		return
	}
	var req struct {
		Name      *string       `json:"name"`
		FirstName *string       `json:"first_name"`
		LastName  *string       `json:"last_name"`
		Email     *string       `json:"email"`
		Username  *string       `json:"username"`
		Avatar    *string       `json:"avatar"`
		Role      *users.Role   `json:"role"`
		Status    *users.Status `json:"status"`
		AccountID *string       `json:"account_id"`
		// Preferences replaces the whole map; {} clears it, null or absent
		// leaves it as it is.
		Preferences map[string]string `json:"preferences"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	switch {
	case !isAdmin && (req.Role != nil || req.Status != nil || req.AccountID != nil):
		forbidden(w, "Only admins can change a role, status or account_id")
		return
	case self && req.Role != nil && *req.Role != users.RoleAdmin,
		self && req.Status != nil && *req.Status != users.StatusActive:
		forbidden(w, "Admins cannot demote or deactivate themselves")
		return
	case self && req.Email != nil:
		// Here it would take effect at once, without the password, and a 409
		// would tell the caller that the address has an account.
		invalid(w, "email", codeNeedsCurrentPassword, "change your own email with POST /v1/me/email, which needs your current password")
		return
	}
	first, last, err := splitName(req.Name, req.FirstName, req.LastName)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	up := users.UserUpdate{
		Email: req.Email, Username: req.Username, FirstName: first, LastName: last,
		AvatarURL: req.Avatar, Role: req.Role, Status: req.Status,
		AccountID: req.AccountID, Preferences: req.Preferences,
	}
	u, err := s.Users.Update(r.Context(), id, up)
	if err != nil {
		s.fail(w, r, rename(err, fieldNames(req.Name)))
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: toAPI(u), Message: "User updated successfully"})
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == session(r).UserID {
		forbidden(w, "Admins cannot delete themselves")
		return
	}
	if err := s.Users.Remove(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Message: "User deleted successfully"})
}

func (s *Server) setRole(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Role users.Role `json:"role"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	if !required(w, "role", string(req.Role)) {
		return
	}
	id := r.PathValue("id")
	if id == session(r).UserID && req.Role != users.RoleAdmin {
		forbidden(w, "Admins cannot demote themselves")
		return
	}
	u, err := s.Users.UpdateRole(r.Context(), id, req.Role)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: toAPI(u), Message: "Role updated successfully"})
}

// setPassword is an admin setting another user's password without the old one
// (users.Manager.SetPassword). Not for the admin's own: that goes through
// PUT /v1/me/password, which asks for the current password, so that a stolen
// admin session cannot lock the admin out.
func (s *Server) setPassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		NewPassword     string `json:"new_password"`
		ConfirmPassword string `json:"confirm_password"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	id := r.PathValue("id")
	if id == session(r).UserID {
		forbidden(w, "Change your own password with PUT /v1/me/password")
		return
	}
	if !required(w, "new_password", req.NewPassword) || !confirmed(w, req.NewPassword, req.ConfirmPassword) {
		return
	}
	if err := s.Users.SetPassword(r.Context(), id, req.NewPassword); err != nil {
		s.fail(w, r, rename(err, map[string]string{"password": "new_password"}))
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Message: "Password set; every session of the user has ended"})
}

// ensureAdmin creates the first admin when the store has no users at all and
// returns it; it returns nil when the store has users. With an empty store and
// no email or password it fails, since nobody could ever sign in.
func ensureAdmin(ctx context.Context, m *users.Manager, email, password string) (*users.User, error) {
	n, err := m.Count(ctx, users.Filter{})
	if err != nil || n > 0 {
		return nil, err
	}
	if email == "" || password == "" {
		return nil, errors.New("the store is empty: give the first admin with -admin-email and $USERS_ADMIN_PASSWORD")
	}
	return m.Create(ctx, users.NewUser{Email: email, Password: password, FirstName: "Admin", Role: users.RoleAdmin})
}
