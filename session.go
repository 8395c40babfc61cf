package users

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"slices"
	"time"
)

// Session is a logged-in user's session.
type Session struct {
	// ID identifies the session publicly: safe to log, list and show. It cannot be
	// used to authenticate.
	ID string `json:"id"`
	// Token is the bearer secret the client presents to ValidateToken. It is set
	// only in the result of a login; the store keeps only its SHA-256.
	Token string `json:"token,omitempty"`
	// UserID is the ID of the session's user.
	UserID string `json:"user_id"`
	// User is the session's user as it is now (not as it was at login).
	User *User `json:"user,omitempty"`
	// CreatedAt is when the session was created by a login.
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is the absolute end of the session: CreatedAt +
	// Options.SessionTTL, or RememberSessionTTL for a remembered session, or
	// less as its SessionOptions asked. No activity moves it.
	ExpiresAt time.Time `json:"expires_at"`
	// LastSeenAt is when the session was last validated, to within about a minute.
	LastSeenAt time.Time `json:"last_seen_at"`
	// IP and UserAgent describe the client that logged in (see WithClient), when
	// the caller passed them.
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	// Methods are how the user authenticated for this session, first factor
	// first. SecondFactorAt is when a second factor was last verified for it, at
	// login or by step-up; zero for a session made with one factor.
	Methods        []AuthMethod `json:"methods,omitempty"`
	SecondFactorAt time.Time    `json:"second_factor_at,omitzero"`
	// AuthenticatedAt is when the user last proved a password or a factor for
	// this session: at login (a password, a magic link, an accepted invitation
	// or a second factor), by Manager.Reauthenticate or by Manager.StepUp.
	// Sensitive changes require it within Options.ReauthWindow.
	AuthenticatedAt time.Time `json:"authenticated_at"`
}

// tokenBytes is the size of every session and one-time token: 256 bits.
const tokenBytes = 32

// newToken returns a fresh random token (base64url, no padding) and its hash.
func (m *Manager) newToken() (token string, hash []byte, err error) {
	var b [tokenBytes]byte
	if err := m.readRand(b[:]); err != nil {
		return "", nil, err
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, hashToken(token), nil
}

// hashToken is what stores keep of a token: the SHA-256 of the token string.
func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// tokenChars is the length of every session and one-time token in base64url.
const tokenChars = (tokenBytes*8 + 5) / 6

// parseToken checks that s has the form of one of our tokens and returns its hash.
// Malformed input never reaches the store.
func parseToken(s string) ([]byte, bool) {
	if !wellFormedToken(s) {
		return nil, false
	}
	h := sumToken(s)
	return h[:], true
}

// sumToken is hashToken(s) for a well-formed token s, hashed from a copy on the
// stack: []byte(s) would allocate.
func sumToken(s string) [sha256.Size]byte {
	var b [tokenChars]byte
	copy(b[:], s)
	return sha256.Sum256(b[:])
}

// wellFormedToken reports whether s is tokenBytes bytes in unpadded base64url
// with its unused low bits zero: exactly the strings that
// base64.RawURLEncoding.Strict() decodes to tokenBytes bytes, checked without
// decoding, since every authenticated request pays for it.
func wellFormedToken(s string) bool {
	if len(s) != tokenChars {
		return false
	}
	var bad byte
	for i := 0; i < len(s); i++ {
		bad |= base64URLValue[s[i]]
	}
	// The last character carries the last 4 bits of the token, then 2 unused bits.
	const unused = tokenChars*6 - tokenBytes*8
	return bad&0x80 == 0 && base64URLValue[s[len(s)-1]]&(1<<unused-1) == 0
}

// base64URLValue is the value of each base64url character, and 0xff for every
// other byte.
var base64URLValue = func() (t [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range t {
		t[i] = 0xff
	}
	for i := range len(alphabet) {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// startSession records a login of r (LastLoginAt and LastActiveAt, and
// whatever check adds) and creates a session bound to the user's current
// Generation, so that a password change or revocation that lands between the
// check and the session voids it. The session keeps the client of ctx and
// methods, the factors verified, first factor first; with more than one the
// session's SecondFactorAt is now. Its login.succeeded entry, with the token
// purpose p of a link that logged in, is written with it.
func (m *Manager) startSession(ctx context.Context, r *UserRecord, p Purpose, check func(cur *UserRecord) error, methods ...AuthMethod) (*Session, error) {
	return m.startSessionWith(ctx, r, p, check, nil, methods...)
}

// startSessionWith is startSession with create, which stores the session and
// its entry: nil means CreateSession, and CompleteLogin stores it with the
// challenge it redeems. create's ErrNotFound and ErrConflict are
// ErrInvalidCredentials, its ErrInvalidCode (a factor refusing a code used
// meanwhile) is returned as it is, and other errors are wrapped.
func (m *Manager) startSessionWith(ctx context.Context, r *UserRecord, p Purpose, check func(cur *UserRecord) error,
	create func(s *SessionRecord, e *AuditEntry) error, methods ...AuthMethod) (*Session, error) {
	ttl, idle, err := m.sess.lifetime(ctx)
	if err != nil {
		return nil, err
	}
	now := m.now()
	cur, err := m.store.UpdateUser(ctx, r.ID, func(cur *UserRecord) (Revoke, error) {
		if cur.Generation != r.Generation || cur.Status != StatusActive {
			return Revoke{}, ErrInvalidCredentials
		}
		if err := check(cur); err != nil {
			return Revoke{}, err
		}
		cur.LastLoginAt = now
		if now.After(cur.LastActiveAt) {
			cur.LastActiveAt = now
		}
		return Revoke{}, nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidCredentials // removed meanwhile
	}
	if err != nil {
		return nil, storeErr("login", err)
	}
	token, hash, err := m.newToken()
	if err != nil {
		return nil, err
	}
	sid, err := m.newID(now)
	if err != nil {
		return nil, err
	}
	c := client(ctx)
	s := &SessionRecord{
		ID:             sid,
		TokenHash:      hash,
		UserID:         cur.ID,
		UserGeneration: cur.Generation,
		CreatedAt:      now,
		ExpiresAt:      now.Add(ttl),
		IdleTimeout:    idle,
		LastSeenAt:     now,
		IP:             c.IP,
		UserAgent:      c.UserAgent,
		Methods:        slices.Clone(methods),

		AuthenticatedAt: now,
	}
	if verifiedSecondFactor(methods) {
		s.SecondFactorAt = now
	}
	e, err := m.auditEntry(ctx, EventLoginSucceeded, cur.ID)
	if err != nil {
		return nil, err
	}
	e.SessionID, e.Purpose = sid, p
	if create == nil {
		create = func(s *SessionRecord, e *AuditEntry) error {
			return m.write(ctx, s.UserID, func() error { return m.store.CreateSession(ctx, s, e) }, e)
		}
	}
	if err := create(s, e); err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
			return nil, ErrInvalidCredentials
		}
		if errors.Is(err, ErrInvalidCode) {
			return nil, err
		}
		return nil, storeErr("login", err)
	}
	out := m.session(s, cur)
	out.Token = token
	return out, nil
}

func (m *Manager) session(s *SessionRecord, u *UserRecord) *Session {
	return &Session{
		ID:         s.ID,
		UserID:     s.UserID,
		User:       u.User.Clone(),
		CreatedAt:  s.CreatedAt,
		ExpiresAt:  s.ExpiresAt,
		LastSeenAt: s.LastSeenAt,

		IP:             s.IP,
		UserAgent:      s.UserAgent,
		Methods:        slices.Clone(s.Methods),
		SecondFactorAt: s.SecondFactorAt,

		AuthenticatedAt: s.AuthenticatedAt,
	}
}

// live reports whether a session is usable at now for its user u.
func (m *Manager) live(s *SessionRecord, u *UserRecord, now time.Time) bool {
	switch {
	case !now.Before(s.ExpiresAt):
		return false
	case u.Status != StatusActive, u.Generation != s.UserGeneration:
		return false
	}
	// idleFor does not inline: a session without an idle timeout, as most
	// are, pays only this comparison for the feature.
	idle := m.sess.idleTimeout(s)
	return idle <= 0 || !idleFor(idle, s.LastSeenAt, now)
}

// ValidateToken returns the session a bearer token belongs to, with its user as
// the user is now: a role change made after login is visible at once. An unknown,
// malformed, expired (absolute or idle), logged-out or revoked token, and one
// whose user was removed or is not active, gives ErrInvalidToken.
//
// ValidateToken is a read; about once a minute per session it also records the
// session's LastSeenAt, which extends an idle timeout but never the absolute one.
func (m *Manager) ValidateToken(ctx context.Context, token string) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !wellFormedToken(token) {
		return nil, ErrInvalidToken
	}
	// The store reads the user straight into the Session returned, takes the
	// token's hash by value and gives the session record back by value, so
	// both stay in this frame (no heap record whose pointer fields cost
	// write barriers while the collector marks); the record's methods, which
	// may be the store's, are copied into room beside the Session, so no
	// caller can reach the store's memory. Every Store gets this path: it is
	// GetSession's contract.
	v := new(validated)
	h := sumToken(token)
	s, err := m.store.GetSession(ctx, h, &v.user)
	s.Methods = append(v.methods[:0], s.Methods...)
	return m.validate(ctx, h[:], &s, &v.user, &v.Session, err)
}

// validate is ValidateToken after the store's read of the session s and its
// user u (s with its Methods, and u, copies made for this call) or its
// failure err: it checks
// the session, touches it when due, and fills out, which it returns.
func (m *Manager) validate(ctx context.Context, hash []byte, s *SessionRecord, u *UserRecord, out *Session, err error) (*Session, error) {
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, storeErr("validate token", err)
	}
	now := m.now()
	if !m.live(s, u, now) {
		return nil, ErrInvalidToken
	}
	if now.Sub(s.LastSeenAt) >= m.sess.touchDue(s) {
		// TouchSession never recreates a session: if a logout or revocation won
		// the race, this token is void and we say so. It gets a copy of hash,
		// which is in the caller's frame: a touch is about once a minute.
		if err := m.store.TouchSession(ctx, bytes.Clone(hash), now); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, ErrInvalidToken
			}
			return nil, storeErr("validate token", err)
		}
		s.LastSeenAt = now
		if u.LastActiveAt.Before(now) {
			u.LastActiveAt = now // as TouchSession wrote it
		}
	}
	// u is a copy the store made for us: the Session can keep it, uncloned,
	// and so can s's Methods. Set field by field: assigning a whole Session to
	// the heap copies it with a write barrier over all of it while the garbage
	// collector marks.
	out.ID, out.UserID, out.User = s.ID, s.UserID, &u.User
	out.CreatedAt, out.ExpiresAt, out.LastSeenAt = s.CreatedAt, s.ExpiresAt, s.LastSeenAt
	out.IP, out.UserAgent, out.Methods, out.SecondFactorAt = s.IP, s.UserAgent, s.Methods, s.SecondFactorAt
	out.AuthenticatedAt = s.AuthenticatedAt
	if len(out.Methods) == 0 {
		out.Methods = nil // not the empty room
	}
	return out, nil
}

// validated is what ValidateToken allocates, and what the caller gets to
// own: the Session it returns with its user and room for one method. At 568
// bytes, plus the 8-byte header Go gives objects over 512 bytes, it fills the
// 576-byte size class exactly (TestValidatedSizeClass): room for a second
// method would take it to 640 bytes, which every call would pay for in
// allocation and collection, so a session with more than one method (a
// second factor) has its methods copied into an allocation of their own.
type validated struct {
	Session
	user    UserRecord
	methods [1]AuthMethod
}

// Logout ends the session of a bearer token. It returns ErrInvalidToken if the
// token is malformed or names no session (already logged out, say).
func (m *Manager) Logout(ctx context.Context, token string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	hash, ok := parseToken(token)
	if !ok {
		return ErrInvalidToken
	}
	// The session's user, for the entry and the order of the user's events.
	var u UserRecord
	s, err := m.store.GetSession(ctx, [sha256.Size]byte(hash), &u)
	if errors.Is(err, ErrNotFound) {
		return ErrInvalidToken
	}
	if err != nil {
		return storeErr("logout", err)
	}
	e, err := m.auditEntry(ctx, EventLogout, s.UserID)
	if err != nil {
		return err
	}
	e.SessionID = s.ID
	err = m.write(ctx, s.UserID, func() error { return m.store.DeleteSession(ctx, hash, e) }, e)
	if errors.Is(err, ErrNotFound) {
		return ErrInvalidToken
	}
	return storeErr("logout", err)
}

// LogoutAll ends every session of the user, on every device, and stops
// trusting every device the user trusted (TrustDevice): they were trusted
// under the Generation it moves. It returns ErrNotFound if there is no such
// user.
func (m *Manager) LogoutAll(ctx context.Context, userID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e, err := m.auditEntry(ctx, EventSessionsRevoked, userID)
	if err != nil {
		return err
	}
	return storeErr("logout all", m.write(ctx, userID, func() error { return m.store.DeleteUserSessions(ctx, userID, e) }, e))
}

// RevokeSession ends one session of the user by its public ID, for "sign out that
// device" screens. It returns ErrNotFound if the user has no such session.
func (m *Manager) RevokeSession(ctx context.Context, userID, sessionID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e, err := m.auditEntry(ctx, EventSessionRevoked, userID)
	if err != nil {
		return err
	}
	e.SessionID = sessionID // the revoked one, not the actor's
	return storeErr("revoke session", m.write(ctx, userID, func() error { return m.store.DeleteSessionByID(ctx, userID, sessionID, e) }, e))
}

// RevokeOtherSessions ends every session of the user except keepSessionID
// (typically the caller's own: "sign out everywhere else"), without touching
// the kept one, and returns how many it ended. Unlike LogoutAll it does not
// bump the user's session generation, so sessions being created at that
// moment survive it. It returns ErrNotFound if there is no such user; a
// keepSessionID that names none of the user's sessions keeps nothing. Its
// session.revoked_all entry has the kept session in Data["kept"]. It is safe
// for concurrent use.
func (m *Manager) RevokeOtherSessions(ctx context.Context, userID, keepSessionID string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	e, err := m.auditEntry(ctx, EventSessionsRevoked, userID)
	if err != nil {
		return 0, err
	}
	var n int
	err = m.write(ctx, userID, func() (err error) {
		e.Data = map[string]string{"kept": keepSessionID}
		n, err = m.store.DeleteOtherSessions(ctx, userID, keepSessionID, e)
		return err
	}, e)
	if err != nil {
		return 0, storeErr("revoke other sessions", err)
	}
	return n, nil
}

// Sessions lists the user's live sessions, oldest first, each with its current
// User and without its Token, and with the device it was created from (IP,
// UserAgent, as WithClient gave them at login) and its LastSeenAt, for a
// "where you're signed in" page. It returns ErrNotFound if there is no such
// user.
func (m *Manager) Sessions(ctx context.Context, userID string) ([]*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	u, err := m.store.GetUser(ctx, userID)
	if err != nil {
		return nil, storeErr("sessions", err)
	}
	ss, err := m.store.ListSessions(ctx, userID)
	if err != nil {
		return nil, storeErr("sessions", err)
	}
	now := m.now()
	out := []*Session{}
	for _, s := range ss {
		if m.live(s, u, now) {
			out = append(out, m.session(s, u))
		}
	}
	return out, nil
}
