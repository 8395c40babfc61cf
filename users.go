package users

import (
	"maps"
	"strings"
	"time"
)

// Role is what a user may do in the application. The Manager only checks that a
// role is one of Options.Roles; what each role may do is the application's call.
type Role string

// The default roles.
const (
	RoleAdmin  Role = "admin"
	RoleUser   Role = "user"
	RoleViewer Role = "viewer"
)

// Status is the state of an account. Only active users can log in or hold sessions.
type Status string

// The statuses of an account.
const (
	StatusActive    Status = "active"
	StatusInactive  Status = "inactive"
	StatusSuspended Status = "suspended"
	// StatusInvited is the status of a user created by Invite who has not yet
	// accepted the invitation. It cannot be set through Create or Update.
	StatusInvited Status = "invited"
)

func (s Status) valid() bool {
	switch s {
	case StatusActive, StatusInactive, StatusSuspended:
		return true
	}
	return false
}

// User is one account. It never holds the password hash; marshalling a User to
// JSON gives snake_case keys.
type User struct {
	ID              string            `json:"id"` // a ULID: sorts by creation time
	Email           string            `json:"email"`
	EmailVerified   bool              `json:"email_verified"`
	EmailVerifiedAt time.Time         `json:"email_verified_at,omitzero"`
	Username        string            `json:"username,omitempty"`
	FirstName       string            `json:"first_name"`
	LastName        string            `json:"last_name"`
	Role            Role              `json:"role"`
	Status          Status            `json:"status"`
	AvatarURL       string            `json:"avatar_url,omitempty"`
	AccountID       string            `json:"account_id,omitempty"` // owning account or tenant
	Preferences     map[string]string `json:"preferences,omitempty"`
	CreatedAt       time.Time         `json:"created_at"`
	UpdatedAt       time.Time         `json:"updated_at"`
	LastLoginAt     time.Time         `json:"last_login_at,omitzero"` // zero: never logged in
}

// Clone returns a deep copy of u.
func (u *User) Clone() *User {
	if u == nil {
		return nil
	}
	c := *u
	if u.Preferences != nil {
		c.Preferences = maps.Clone(u.Preferences)
	}
	return &c
}

// NewUser is Create's input. Only Email and one of Password or PasswordHash are
// required; Role defaults to RoleUser and Status to StatusActive.
type NewUser struct {
	Email     string
	Username  string // optional; 3-32 of a-z 0-9 _ . - after lower-casing
	Password  string
	FirstName string
	LastName  string
	Role      Role
	Status    Status
	AvatarURL string
	AccountID string

	// PasswordHash imports a user from another system: a bcrypt hash ($2a$, $2b$
	// or $2y$) made there, given instead of Password. The user logs in with the old
	// password and the hash is upgraded to this package's format on that login.
	PasswordHash string

	Preferences map[string]string
}

// UserUpdate is Update's input. A nil field leaves the value as it is; a non-nil
// Preferences map replaces the old map whole (an empty map clears it).
type UserUpdate struct {
	Email       *string
	Username    *string // a pointer to "" removes the username
	FirstName   *string
	LastName    *string
	Role        *Role
	Status      *Status
	AvatarURL   *string
	AccountID   *string
	Preferences map[string]string
}

// Filter selects users for Find and Count. Its match fields combine with AND; an
// empty field matches every user.
type Filter struct {
	Email     string // exact match, after normalisation
	Username  string // exact match, after normalisation
	Role      Role
	Status    Status
	AccountID string
	Search    string // case-insensitive substring of email, username, first or last name

	// Limit is the page size: default 20, at most 100 (larger values are clamped).
	Limit int
	// After and Before are opaque cursors from a Page's Next and Prev. At most one
	// may be set; a malformed one is a *ValidationError.
	After  string
	Before string
	// Offset skips that many matching users, for page-number interfaces. Cursors
	// are better for walking through a changing list.
	Offset int
}

// Match reports whether u matches the filter's match fields (Email, Username, Role,
// Status, AccountID, Search). Stores use it so that every store selects the same
// users; the Manager hands stores filters whose Email, Username and Search are
// already normalised (lower-case).
func (f *Filter) Match(u *User) bool {
	switch {
	case f.Email != "" && u.Email != f.Email,
		f.Username != "" && u.Username != f.Username,
		f.Role != "" && u.Role != f.Role,
		f.Status != "" && u.Status != f.Status,
		f.AccountID != "" && u.AccountID != f.AccountID:
		return false
	}
	if f.Search == "" {
		return true
	}
	s := strings.ToLower(f.Search)
	return strings.Contains(u.Email, s) ||
		strings.Contains(u.Username, s) ||
		strings.Contains(strings.ToLower(u.FirstName), s) ||
		strings.Contains(strings.ToLower(u.LastName), s)
}

// Page is one page of Find's results, in ascending ID (creation) order.
type Page struct {
	Users []*User `json:"users"`
	// Next is the cursor for the following page (Filter.After); empty when there
	// are no more users after this page.
	Next string `json:"next,omitempty"`
	// Prev is the cursor for the preceding page (Filter.Before); empty when there
	// are no users before this page.
	Prev string `json:"prev,omitempty"`
}
