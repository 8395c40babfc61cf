package users

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"time"
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
	EventTokenRedeemed      EventType = "token.redeemed" // used up, but its change was refused: Purpose and Reason say which and why
	EventInvitationAccepted EventType = "invitation.accepted"
)

// EventRateLimitReached is written by the attempt that fills a rate limit's
// window (Manager.Limit): Reason is the key's scope ("client" or
// "identifier"), IP the client's, Data the action and the window's end. It
// has no UserID and never the identifier.
const EventRateLimitReached EventType = "rate_limit.reached"

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
	// login failure with an identifier that names nobody, and for
	// EventRateLimitReached.
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

// AuditFilter selects audit entries for Manager.Audit. Its fields combine
// with AND; an empty field selects every entry.
type AuditFilter struct {
	UserID  string      // the subject
	ActorID string      // who caused it
	Types   []EventType // any of these, at most maxAuditTypes
	Since   time.Time   // at or after
	Until   time.Time   // before
	// Limit is the page size: default 50, at most 500 (larger values are
	// clamped).
	Limit int
	// Before is the cursor from an AuditPage's Next, for the next (older)
	// page; a malformed one is a *ValidationError.
	Before string
}

// AuditPage is one page of Manager.Audit's entries, newest first.
type AuditPage struct {
	Entries []*AuditEntry `json:"entries"`
	// Next is the cursor of the following (older) page, for
	// AuditFilter.Before; empty when there are no more entries.
	Next string `json:"next,omitempty"`
}

const (
	maxIDBytes        = 128 // of a user ID in an AuditFilter
	defaultAuditLimit = 50
	maxAuditLimit     = 500
	maxAuditTypes     = 32
)

// Audit returns one page of the audit entries f selects, newest first.
// Follow AuditPage.Next with AuditFilter.Before for older pages; each page
// costs about what it returns when f selects by user, actor or time. It
// returns a *ValidationError naming the field for a negative Limit, an empty
// or too long Types list entry, Until not after Since, a malformed cursor or
// an over-long ID. Deciding who may read whose entries is the application's.
// It is safe for concurrent use.
func (m *Manager) Audit(ctx context.Context, f AuditFilter) (*AuditPage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q := AuditQuery{UserID: f.UserID, ActorID: f.ActorID, Since: f.Since, Until: f.Until}
	switch {
	case f.Limit < 0:
		return nil, invalid("limit", ValidationNegative, "must not be negative")
	case len(f.UserID) > maxIDBytes:
		return nil, invalid("user_id", ValidationTooLong, "is too long")
	case len(f.ActorID) > maxIDBytes:
		return nil, invalid("actor_id", ValidationTooLong, "is too long")
	case len(f.Types) > maxAuditTypes:
		return nil, invalid("types", ValidationTooMany, "must list at most "+strconv.Itoa(maxAuditTypes)+" types")
	case slices.Contains(f.Types, ""):
		return nil, invalid("types", ValidationMalformed, "must not contain an empty type")
	case !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since):
		return nil, invalid("until", ValidationInvalidRange, "must be after since")
	}
	if f.Before != "" {
		var err error
		if q.Before, err = decodeCursor("before", f.Before); err != nil {
			return nil, err
		}
	}
	q.Types = slices.Clone(f.Types)
	limit := min(or(f.Limit, defaultAuditLimit), maxAuditLimit)
	q.Limit = limit + 1 // one more tells whether there is another page
	es, err := m.store.ListAudit(ctx, q)
	if err != nil {
		return nil, storeErr("audit", err)
	}
	p := &AuditPage{Entries: es}
	if len(es) > limit {
		p.Entries = es[:limit]
		p.Next = encodeCursor(es[limit-1].ID)
	}
	return p, nil
}
