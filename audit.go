package users

import (
	"context"
	"maps"
	"slices"
	"time"
	"unicode/utf8"
)

// EventType names what an audit entry records.
type EventType string

// The events the Manager records, each in the same store transaction as the
// change it describes.
const (
	EventUserCreated        EventType = "user.created"
	EventUserUpdated        EventType = "user.updated" // AuditEntry.Fields names the changed fields
	EventRoleChanged        EventType = "user.role_changed"
	EventStatusChanged      EventType = "user.status_changed"
	EventEmailChanged       EventType = "user.email_changed"
	EventEmailVerified      EventType = "user.email_verified"
	EventPasswordChanged    EventType = "user.password_changed"
	EventPasswordReset      EventType = "user.password_reset"
	EventUserRemoved        EventType = "user.removed"
	EventLoginSucceeded     EventType = "login.succeeded"
	EventLoginFailed        EventType = "login.failed" // AuditEntry.Reason says why
	EventAccountLocked      EventType = "account.locked"
	EventAccountUnlocked    EventType = "account.unlocked"
	EventLogout             EventType = "session.logout"
	EventSessionRevoked     EventType = "session.revoked"
	EventSessionsRevoked    EventType = "session.revoked_all"
	EventTokenIssued        EventType = "token.issued"   // AuditEntry.Purpose says for what
	EventTokenRedeemed      EventType = "token.redeemed" // AuditEntry.Purpose says for what
	EventInvitationAccepted EventType = "invitation.accepted"
)

// AuditEntry is one record of the audit log. It never holds a secret: no
// password, token, hash or second-factor code, and for a login failure not the
// identifier that was typed.
type AuditEntry struct {
	// ID is a ULID made by the Manager from Time: its timestamp is Time to the
	// millisecond, so entries sort by time and Stores find time ranges by ID.
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	Type EventType `json:"type"`
	// UserID is the subject: the user the event is about. It is empty only for a
	// login failure with an identifier that names nobody.
	UserID string `json:"user_id,omitempty"`
	// ActorID is the user who caused the event through an authenticated caller:
	// the user of the Session in the context (see NewContext), who may be the
	// subject. It is empty for the system or an anonymous caller.
	ActorID string `json:"actor_id,omitempty"`
	// SessionID is the session the event concerns (a login's new session, a
	// logout's or revocation's session), or the actor's session.
	SessionID string `json:"session_id,omitempty"`
	// IP and UserAgent describe the client, when the caller passed them (see
	// WithClient).
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	// Reason is a machine-readable code for failures and locks, for operators.
	Reason string `json:"reason,omitempty"`
	// Purpose is the one-time token's purpose, for token events.
	Purpose Purpose `json:"purpose,omitempty"`
	// Fields names the fields an update changed, never their values.
	Fields []string `json:"fields,omitempty"`
	// Data holds other non-secret details, such as a role's old and new value.
	Data map[string]string `json:"data,omitempty"`
}

// Clone returns a deep copy of e.
func (e *AuditEntry) Clone() *AuditEntry {
	if e == nil {
		return nil
	}
	c := *e
	c.Fields = slices.Clone(e.Fields)
	c.Data = maps.Clone(e.Data)
	return &c
}

// AuditQuery selects audit entries for ListAudit. Its fields combine with AND;
// an empty field selects every entry.
type AuditQuery struct {
	UserID  string
	ActorID string
	Types   []EventType // any of these
	Since   time.Time   // Time at or after
	Until   time.Time   // Time before
	// Before is an exclusive upper bound on ID: the next page of a listing
	// passes the ID of the last entry of the page before.
	Before string
	Limit  int // at most this many entries; always positive
}

// Matches reports whether q selects e (ignoring Before and Limit). Every Store
// selects exactly the entries this function selects.
func (q *AuditQuery) Matches(e *AuditEntry) bool {
	switch {
	case q.UserID != "" && e.UserID != q.UserID,
		q.ActorID != "" && e.ActorID != q.ActorID,
		len(q.Types) > 0 && !slices.Contains(q.Types, e.Type),
		!q.Since.IsZero() && e.Time.Before(q.Since),
		!q.Until.IsZero() && !e.Time.Before(q.Until):
		return false
	}
	return true
}

// AuthMethod names a way a user proved who they are, as recorded on a session.
type AuthMethod string

// The authentication methods.
const (
	MethodPassword  AuthMethod = "password"
	MethodEmailLink AuthMethod = "email_link" // magic link, or an invitation accepted from mail
)

// Client describes the client a request came from, for sessions and audit
// entries. Both fields are free text as the caller passes them; the Manager
// cuts them to maxClientBytes.
type Client struct {
	IP        string
	UserAgent string
}

type clientKey struct{}

// WithClient returns a copy of ctx that carries c. Manager methods called with
// it record c on the sessions they create and on their audit entries.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientFromContext returns the Client that WithClient put in ctx, and whether
// there was one.
func ClientFromContext(ctx context.Context) (Client, bool) {
	c, ok := ctx.Value(clientKey{}).(Client)
	return c, ok
}

// maxClientBytes bounds what is kept of Client.IP and Client.UserAgent.
const maxClientBytes = 256

// clip cuts s to at most n bytes, on a UTF-8 boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// client returns the Client in ctx, clipped.
func client(ctx context.Context) Client {
	c, _ := ClientFromContext(ctx)
	return Client{IP: clip(c.IP, maxClientBytes), UserAgent: clip(c.UserAgent, maxClientBytes)}
}

// auditEntry returns a new audit entry of type t about the user userID, made
// now, with the actor (the Session in ctx) and the client (WithClient) of ctx.
func (m *Manager) auditEntry(ctx context.Context, t EventType, userID string) (*AuditEntry, error) {
	now := m.now()
	id, err := m.newID(now)
	if err != nil {
		return nil, err
	}
	c := client(ctx)
	e := &AuditEntry{ID: id, Time: now, Type: t, UserID: userID, IP: c.IP, UserAgent: c.UserAgent}
	if s, ok := FromContext(ctx); ok {
		e.ActorID, e.SessionID = s.UserID, s.ID
	}
	return e, nil
}
