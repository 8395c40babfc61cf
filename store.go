package users

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/userkit/users/internal/trigram"
)

// Store keeps users, sessions, login-throttle state, one-time tokens, the audit
// log and second factors, and guarantees the atomicity the Manager relies on.
// It is made of one interface per domain (UserStore, SessionStore, and so on),
// each with its own contract, and DeleteExpired, which spans them; the Manager
// needs them all. The Manager keeps all policy:
// it validates and normalises input, hashes passwords and tokens, and decides what
// expires; a Store stores what it is given and answers questions about it.
//
// The doc comment of each method is its contract. storetest.Run checks every rule
// of it; a Store that passes storetest.Run can be handed to New.
//
// Expiry is the Manager's to decide, for sessions and one-time tokens alike: a
// Store returns what it holds whatever its ExpiresAt (GetSession, ListSessions,
// GetToken, ConsumeToken, ConsumeFlow), and only DeleteExpired looks at the
// time, to reclaim space.
//
// Audit. Every method that changes state takes audit entries (possibly none)
// and writes them in the same atomic step as its change, so that a crash never
// leaves a change without its entry or an entry without its change: if the
// method writes nothing (an error, or fn refusing), it writes none of them
// either. Entries arrive complete (ID, Time, Type) unless the method's comment
// says the Store fills a field in. Entries are kept until DeleteAuditBefore,
// also after their user is deleted.
//
// Every method must be safe for concurrent use, must check ctx before doing work,
// and must return copies: changing a value a Store returned, or a value after it was
// passed to a Store, never changes what the Store holds. Errors other than those
// the methods name (I/O failures and the like) are returned wrapped, never
// swallowed.
type Store interface {
	UserStore
	SessionStore
	ThrottleStore
	TokenStore
	AuditStore
	SecondFactorStore
	CredentialStore // store_credential.go
	FlowStore       // store_flow.go
	CeremonyStore   // store_ceremony.go

	// DeleteExpired deletes every session, one-time token, MFA challenge,
	// provider flow, ceremony and login-throttle entry whose ExpiresAt is at or before now, and returns how many it deleted. Its cost
	// should grow with the number deleted, not the number stored.
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
}

// UserStore is the users' part of a Store: the user records, their unique
// email and username, and the queries over them.
//
// Not found: reading, changing or deleting a user that is not there returns
// ErrNotFound; the batch reads give nil for it, and the queries fewer users.
// Conflict: an email, and a username and an external ID when not empty,
// belongs to at most one user, checked and written in one atomic step: a taken
// one gives ErrDuplicateEmail, ErrDuplicateUsername or ErrDuplicateExternalID
// (checked in that order) and a taken ID gives ErrConflict, writing nothing. Atomicity: UpdateUser's read, fn and
// write are one step that no other write to the user comes between, and
// DeleteUser removes with the user what the other domains keep of it.
type UserStore interface {
	// CreateUser stores a new user. In one atomic step it checks that no other user
	// has r.Email or (when not empty) r.Username and writes the record and its
	// indexes: of any number of concurrent CreateUser calls with one email, exactly
	// one succeeds. It returns ErrDuplicateEmail or ErrDuplicateUsername when the
	// key is taken (email is checked first), then ErrDuplicateExternalID when
	// another user has r.ExternalID (when not empty), and ErrConflict when r.ID
	// exists. Email and Username arrive already normalised; the Store compares
	// them, and ExternalID, exactly. Email is never empty; an empty Username or
	// ExternalID means the user has none.
	CreateUser(ctx context.Context, r *UserRecord, audit ...*AuditEntry) error

	// GetUser returns the user with the ID, or ErrNotFound.
	GetUser(ctx context.Context, id string) (*UserRecord, error)

	// GetUserByEmail returns the user with exactly this (normalised) email, or ErrNotFound.
	GetUserByEmail(ctx context.Context, email string) (*UserRecord, error)

	// GetUserByUsername returns the user with exactly this (normalised) username, or
	// ErrNotFound. An empty username never matches.
	GetUserByUsername(ctx context.Context, username string) (*UserRecord, error)

	// GetUserByExternalID returns the user whose ExternalID is exactly id, or
	// ErrNotFound. An empty id never matches.
	GetUserByExternalID(ctx context.Context, id string) (*UserRecord, error)

	// UpdateUser atomically reads the user, calls fn with a copy, and writes back
	// what fn left in it, together with its changed indexes and what fn's Revoke
	// asks to delete. No other write to the user can come between the read and the
	// write. If fn returns an error, nothing is written and UpdateUser returns that
	// error unchanged. fn may be called more than once (a Store may retry); it must
	// only change the record it is given, and it must not block.
	//
	// It returns the record as written, ErrNotFound if there is no such user, and
	// ErrDuplicateEmail or ErrDuplicateUsername (writing nothing; email is checked
	// first) if fn changed the email or username to one another user has. fn must not change ID,
	// ExternalID or Generation: if it does, UpdateUser returns ErrKeyChanged and writes nothing. The
	// Store increments Generation itself when Revoke.Sessions is set.
	//
	// fn may fill in or change the audit entries (they are pointers): the Store
	// writes them as fn's last call left them, leaving out any whose Type is empty.
	UpdateUser(ctx context.Context, id string, fn func(r *UserRecord) (Revoke, error), audit ...*AuditEntry) (*UserRecord, error)

	// DeleteUser deletes the user, frees its email, username and external ID, and deletes all its
	// sessions, its one-time tokens, its MFA record and challenges, its
	// credentials and its login-throttle entry (key UserThrottleKey(id)), in one
	// atomic step. It returns ErrNotFound if there is no such user.
	DeleteUser(ctx context.Context, id string, audit ...*AuditEntry) error

	// CreateUsers stores many new users in one atomic step, each as CreateUser
	// would store it, and returns one error per record, in the order given: nil for
	// a record it stored; ErrDuplicateEmail, ErrDuplicateUsername or
	// ErrDuplicateExternalID (checked in that order) for one whose key another
	// user has, including an earlier record of the same batch; ErrConflict for
	// one whose ID exists. A refused record never stops
	// the others. If the second result is not nil, nothing was stored. Concurrent
	// CreateUser and CreateUsers calls never give two users one email. An empty
	// batch stores nothing and is no error.
	//
	// audit is empty or has one entry per record: audit[i] is written if and only
	// if rs[i] is stored.
	CreateUsers(ctx context.Context, rs []*UserRecord, audit ...*AuditEntry) ([]error, error)

	// GetUsers returns, in one consistent read, the users with these IDs in the
	// order given: the i'th result is the user with ids[i], or nil if there is none.
	// A missing user is never an error.
	GetUsers(ctx context.Context, ids []string) ([]*UserRecord, error)

	// GetUsersByEmail is GetUsers for exact (normalised) emails. An empty email
	// matches nobody.
	GetUsersByEmail(ctx context.Context, emails []string) ([]*UserRecord, error)

	// ListUsers returns at most q.Limit users that q.Match selects (see
	// Match.Matches), in ascending ID order. With q.After, only users whose ID is
	// greater than it; with q.Before, the last q.Limit matching users whose ID is
	// less than it (still returned in ascending order). q.Offset matching users are
	// skipped first, counting from the cursor (from the start, or backwards from
	// Before). At most one of After and Before is set. No match is an empty slice,
	// not an error.
	ListUsers(ctx context.Context, q ListQuery) ([]*UserRecord, error)

	// CountUsers returns how many users m selects (see Match.Matches).
	CountUsers(ctx context.Context, m Match) (int, error)
}

// SessionStore is the sessions' part of a Store: sessions found by the SHA-256
// of their bearer token, or by their public ID within their user.
//
// Not found: a session that is not there (never made, deleted, purged), or a
// user that is not there where a method names one, gives ErrNotFound and
// writes nothing; ListSessions gives an empty slice instead. Conflict: CreateSession gives ErrConflict for a taken token
// hash or ID and for a user whose Generation is not the session's.
// Atomicity: a session is created against its user's Generation, read with
// its user, and revoked with the user's Generation, each in one step, so no
// session outlives a revocation or its user.
type SessionStore interface {
	// CreateSession stores a new session. In one atomic step it checks that the user
	// s.UserID exists and that its Generation equals s.UserGeneration, so a session
	// is never created for a removed user or across a revocation that happened after
	// the login read the user. It returns ErrNotFound if the user does not exist and
	// ErrConflict if the generation differs or s.TokenHash or s.ID is taken.
	CreateSession(ctx context.Context, s *SessionRecord, audit ...*AuditEntry) error

	// GetSession returns the session with this token hash and reads its user
	// into u, in one consistent step, or returns ErrNotFound. It returns
	// sessions whatever their expiry; deciding what has expired is the
	// Manager's.
	//
	// The token hash comes in by value and the session goes back by value, so
	// that both can live in the caller's frame: ValidateToken, on every
	// authenticated request, allocates nothing for either. The record's
	// TokenHash may be left nil, since the caller has the hash; its Methods
	// may share memory with the store: the caller must not modify them. u is
	// the caller's, filled the way io.Reader.Read fills a buffer: GetSession
	// sets every field (a field the record leaves empty is set to its zero
	// value), shares no memory the store modifies later, and keeps nothing of
	// u once it returns. On an error, the record returned is the zero value
	// and what u holds is undefined.
	GetSession(ctx context.Context, tokenHash [sha256.Size]byte, u *UserRecord) (SessionRecord, error)

	// TouchSession sets the session's LastSeenAt, and its user's LastActiveAt, to
	// seen where seen is later, in one atomic step.
	// It never creates a session: if the session is gone (logged out, revoked,
	// expired and purged) it returns ErrNotFound and writes nothing.
	TouchSession(ctx context.Context, tokenHash []byte, seen time.Time) error

	// DeleteSession deletes the session with this token hash, or returns ErrNotFound.
	// An audit entry with an empty UserID or SessionID gets the deleted session's
	// (the Store sets them in the entry it was given, so the caller sees them).
	DeleteSession(ctx context.Context, tokenHash []byte, audit ...*AuditEntry) error

	// DeleteSessionByID deletes the session with this public ID if it belongs to
	// userID, or returns ErrNotFound.
	DeleteSessionByID(ctx context.Context, userID, id string, audit ...*AuditEntry) error

	// DeleteUserSessions deletes every session and every MFA challenge of the user
	// and increments the user's Generation in one atomic step. It returns ErrNotFound if there is no such user.
	DeleteUserSessions(ctx context.Context, userID string, audit ...*AuditEntry) error

	// DeleteOtherSessions deletes every session of the user except the one with
	// the public ID keepID, without changing the user's Generation, and returns
	// how many it deleted. It returns ErrNotFound if there is no such user.
	DeleteOtherSessions(ctx context.Context, userID, keepID string, audit ...*AuditEntry) (int, error)

	// ListSessions returns the user's sessions, whatever their expiry, in ascending
	// CreatedAt order (ties by ID). A user without sessions, or no such user, gives
	// an empty slice.
	ListSessions(ctx context.Context, userID string) ([]*SessionRecord, error)

	// StepUpSession records that the user proved a factor again for an existing
	// session: in one atomic step it sets the AuthenticatedAt of the session
	// with the public ID sessionID to at and, when method is not empty (a second
	// factor), sets its SecondFactorAt to at and appends method to its Methods
	// unless it is there already. An empty method (a password proved again)
	// leaves Methods and SecondFactorAt as they are. It returns the session as
	// written, or ErrNotFound, writing nothing, if the session does not exist or
	// does not belong to userID.
	StepUpSession(ctx context.Context, userID, sessionID string, method AuthMethod, at time.Time, audit ...*AuditEntry) (*SessionRecord, error)
}

// ThrottleStore is the login throttle's part of a Store: one LoginAttempts
// entry per ThrottleKey.
//
// Not found: a key without an entry reads as the zero LoginAttempts, never
// ErrNotFound, and an entry left zero is deleted. Conflict: none; concurrent
// changes of one key are serialised instead. Atomicity: UpdateLoginAttempts
// reads, calls fn and writes in one step, which is what bounds the password
// guesses of concurrent logins.
type ThrottleStore interface {
	// GetLoginAttempts returns the throttle entry for key, or the zero LoginAttempts
	// if there is none.
	GetLoginAttempts(ctx context.Context, key ThrottleKey) (LoginAttempts, error)

	// UpdateLoginAttempts atomically reads the entry for key (the zero value if there
	// is none), calls fn with it, and writes what fn left, returning it; a
	// LoginAttempts left by fn for which IsZero holds deletes the entry. Concurrent
	// calls for one key are serialised: 100 concurrent increments count 100, and of
	// any number of concurrent calls whose fn refuses once a count is reached,
	// exactly that many succeed (the Manager reserves login attempts this way). If
	// fn returns an error nothing is written and the error is returned unchanged.
	// fn may be called more than once and must not block. Like UpdateUser's, fn
	// may fill in the audit entries; those whose Type is empty are left out.
	UpdateLoginAttempts(ctx context.Context, key ThrottleKey, fn func(a *LoginAttempts) error, audit ...*AuditEntry) (LoginAttempts, error)
}

// TokenStore is the one-time tokens' part of a Store: tokens found by their
// SHA-256 and purpose.
//
// Not found: a token that is not there, or is there for another purpose,
// gives ErrNotFound; so does a user that is not there in CreateToken.
// Conflict: CreateToken gives ErrConflict for a taken hash. Atomicity:
// ConsumeToken finds and deletes in one step, so a token redeems once.
type TokenStore interface {
	// CreateToken stores a one-time token. In one atomic step it checks that the user
	// t.UserID exists and, when replace is true, deletes the user's other tokens of
	// t.Purpose. It returns ErrNotFound if the user does not exist and ErrConflict if
	// t.Hash is taken.
	CreateToken(ctx context.Context, t *TokenRecord, replace bool, audit ...*AuditEntry) error

	// CreateTokenDecoy does the work of CreateToken(ctx, t, false, audit...)
	// in one atomic step and keeps none of it: it writes t, its indexes and
	// the audit entries as CreateToken would, and deletes them again in the
	// same step, so that when it returns the store holds what it held before
	// (a token that had t.Hash already included) and no audit entry was added.
	// t.UserID need not name a user. The Manager calls it for a recovery
	// request whose email names no active user, so that the request costs the
	// store what issuing a token costs: the same writes, the same commit.
	CreateTokenDecoy(ctx context.Context, t *TokenRecord, audit ...*AuditEntry) error

	// GetToken returns the token with this hash if its purpose is purpose, whatever
	// its expiry, without consuming it; otherwise ErrNotFound. The Manager uses it
	// to check a new password against the token's user before redeeming.
	GetToken(ctx context.Context, hash []byte, purpose Purpose) (*TokenRecord, error)

	// ConsumeToken atomically finds the token with this hash and purpose, deletes it
	// and returns it, whatever its expiry: of any number of concurrent calls for one
	// token, exactly one gets it. It returns ErrNotFound, deleting nothing, if there
	// is no such token or its purpose differs. An audit entry with an empty UserID
	// gets the token's (set in the entry given, as DeleteSession does).
	ConsumeToken(ctx context.Context, hash []byte, purpose Purpose, audit ...*AuditEntry) (*TokenRecord, error)
}

// AuditStore is the audit log's part of a Store. Every domain's writes add
// their entries in their own atomic step (see Store); AuditStore appends the
// entries that record no other change, and reads and trims the log.
//
// Not found: a query that selects nothing gives an empty slice, no error.
// Conflict: none. Atomicity: AppendAudit writes all its entries or none.
//
// Order: a Store may give an entry with a UserID a new ID that sorts after
// every stored entry of that user, moving its Time forward to the new ID's
// millisecond if it must, to keep a user's entries in the order they commit
// when several Managers stamp them; it then writes the ID and Time it stored
// into the entry it was given, for every method that takes entries.
type AuditStore interface {
	// AppendAudit writes audit entries that record no other change of state (a
	// failed login whose attempt was already counted), in one atomic step.
	AppendAudit(ctx context.Context, audit ...*AuditEntry) error

	// ListAudit returns at most q.Limit entries that q selects (see
	// AuditQuery.Matches), newest first (descending ID); with q.Before, only
	// entries whose ID is less than it. Its cost grows with the entries returned,
	// not with the entries stored, when q selects by UserID, ActorID or time. A
	// Store may rely on every entry's ID being a ULID whose timestamp is its
	// Time to the millisecond (see AuditEntry.ID), so a time range is also a
	// range of IDs.
	ListAudit(ctx context.Context, q AuditQuery) ([]*AuditEntry, error)

	// DeleteAuditBefore deletes every audit entry whose Time is before t and
	// returns how many it deleted. Its cost grows with the number deleted.
	DeleteAuditBefore(ctx context.Context, t time.Time) (int, error)
}

// SecondFactorStore is the second factors' part of a Store: each user's
// MFARecord, and the MFA challenges of logins waiting for a second factor
// (see MFARecord and ChallengeRecord). The Manager decides what a code is
// worth; the Store keeps the records and serialises the changes to them,
// which is what makes a TOTP code single use, a recovery code single use and
// a challenge's attempts bounded under concurrency.
//
// Not found: a user without a record, a challenge that is not there, or a
// user that is not there gives ErrNotFound. Conflict: CreateChallenge gives
// ErrConflict for a taken hash and for a user whose Generation is not the
// challenge's. Atomicity: UpdateMFA, CountChallengeAttempt and
// ConsumeChallenge each read and write one record in one step, and
// CompleteChallenge spends a code together with the session it buys.
type SecondFactorStore interface {
	// GetMFA returns the user's MFA record, or ErrNotFound if the user has none
	// (or there is no such user).
	GetMFA(ctx context.Context, userID string) (*MFARecord, error)

	// UpdateMFA atomically reads the user's MFA record (a new one with only
	// UserID set if the user has none), calls fn with a copy, and writes what fn
	// left in it; a record left empty (MFARecord.IsEmpty) is deleted. No other
	// write to the record can come between the read and the write: concurrent
	// calls for one user are serialised, so of any number of concurrent calls
	// whose fn refuses once a change is made (a TOTP step not after LastStep, a
	// recovery code hash no longer in the list), exactly one succeeds. This is
	// what makes a TOTP code and a recovery code single use.
	//
	// When fn returns deleteChallenges true, the user's MFA challenges are
	// deleted in the same atomic step (disabling or resetting a factor voids the
	// logins waiting for it). If fn returns an error, nothing is written and
	// UpdateMFA returns that error unchanged. fn may be called more than once
	// and must not block. fn must not change UserID: if it does, UpdateMFA
	// returns ErrKeyChanged and writes nothing. It returns the record as written
	// (the empty record when it deleted it), or ErrNotFound if there is no such
	// user. Like UpdateUser's, fn may fill in the audit entries; those whose
	// Type is empty are left out.
	UpdateMFA(ctx context.Context, userID string, fn func(r *MFARecord) (deleteChallenges bool, err error), audit ...*AuditEntry) (*MFARecord, error)

	// CreateChallenge stores a new MFA challenge. In one atomic step it checks
	// that the user c.UserID exists and that its Generation equals
	// c.UserGeneration, so a challenge is never created across a revocation
	// that happened after the first factor was checked. It returns ErrNotFound
	// if the user does not exist and ErrConflict if the generation differs or
	// c.Hash is taken.
	CreateChallenge(ctx context.Context, c *ChallengeRecord, audit ...*AuditEntry) error

	// GetChallenge returns the challenge with this hash, whatever its expiry,
	// or ErrNotFound.
	GetChallenge(ctx context.Context, hash []byte) (*ChallengeRecord, error)

	// CountChallengeAttempt atomically increments the Attempts of the challenge
	// with this hash and returns it as written, if its Attempts is less than
	// max. So of any number of concurrent calls for one challenge at most max
	// get it, each with a different Attempts. A challenge whose Attempts is
	// max already is left as it is (CompleteChallenge still redeems it, for
	// the code its last attempt was counted for) and ErrNotFound returned. It
	// returns ErrNotFound, writing nothing, if there is no such challenge
	// (never made, used, dead or voided).
	CountChallengeAttempt(ctx context.Context, hash []byte, max int, audit ...*AuditEntry) (*ChallengeRecord, error)

	// CompleteChallenge redeems the challenge with this hash for the new
	// session s, in one atomic step: it calls fn with a copy of the MFA record
	// of the challenge's user (a new one with only UserID set if the user has
	// none) and, if fn returns nil, writes what fn left in the record as
	// UpdateMFA would (deleting a record left empty), deletes the challenge
	// and creates s as CreateSession would. So a second factor's code is
	// spent only together with the session it buys, and of any number of
	// concurrent calls for one challenge at most one succeeds. It looks at
	// neither the challenge's Attempts nor its expiry.
	//
	// It returns ErrNotFound if there is no such challenge or user,
	// ErrConflict if s.UserID is not the challenge's user, the user's
	// Generation is not s.UserGeneration, or s.TokenHash or s.ID is taken,
	// fn's error unchanged, and ErrKeyChanged if fn changed UserID; it writes
	// nothing then. fn may be called more than once and must not block.
	CompleteChallenge(ctx context.Context, hash []byte, fn func(r *MFARecord) error, s *SessionRecord, audit ...*AuditEntry) error

	// ConsumeChallenge atomically finds the challenge with this hash, deletes
	// it and returns it, whatever its expiry: of any number of concurrent calls
	// for one challenge exactly one gets it. It returns ErrNotFound, deleting
	// nothing, if there is none. An audit entry with an empty UserID gets the
	// challenge's.
	ConsumeChallenge(ctx context.Context, hash []byte, audit ...*AuditEntry) (*ChallengeRecord, error)
}

// ErrKeyChanged is returned by a Store's UpdateUser, having written nothing, when
// fn changed the record's ID, ExternalID or Generation, which the Store
// contract forbids. The Manager never does; it exists for Store
// implementations and storetest.
var ErrKeyChanged = errors.New("users: UpdateUser: fn must not change the record's ID, ExternalID or Generation")

// UserRecord is what a Store keeps for one user: the public User and the secrets
// the Manager needs, which never leave the package through User.
type UserRecord struct {
	User

	// PasswordHash is the encoded password hash (see SECURITY.md for its formats),
	// or empty for a user who has no password yet (an invitation not yet accepted).
	PasswordHash string

	// Generation counts revocations of the user's sessions. Stores increment it
	// when UpdateUser's Revoke.Sessions is set and in DeleteUserSessions; sessions
	// carry the Generation they were created under.
	Generation int64
}

// String describes the record without its password hash, so that printing one by
// mistake leaks nothing.
func (r *UserRecord) String() string {
	if r == nil {
		return "<nil>"
	}
	return "UserRecord{ID:" + r.ID + " Email:" + r.Email + "}"
}

// LogValue makes log/slog print only the public User, never the password hash.
func (r *UserRecord) LogValue() slog.Value {
	if r == nil {
		return slog.AnyValue(nil)
	}
	return slog.GroupValue(slog.String("id", r.ID), slog.String("email", r.Email))
}

// clone returns a deep copy of r.
func (r *UserRecord) clone() *UserRecord {
	c := *r
	c.User = *r.User.Clone()
	return &c
}

// Clone returns a deep copy of r, for Store implementations that must hand out and
// keep copies.
func (r *UserRecord) Clone() *UserRecord {
	if r == nil {
		return nil
	}
	return r.clone()
}

// Revoke says what UpdateUser deletes in the same atomic step as its write.
type Revoke struct {
	// Sessions deletes all the user's sessions and MFA challenges and
	// increments its Generation.
	Sessions bool
	// Tokens deletes the user's one-time tokens of these purposes.
	Tokens []Purpose
}

// SessionRecord is what a Store keeps for one session. The bearer token itself is
// never stored, only its SHA-256.
type SessionRecord struct {
	ID             string // public session ID (a ULID), safe to log and list
	TokenHash      []byte // SHA-256 of the bearer token, 32 bytes
	UserID         string
	UserGeneration int64 // the user's Generation when the session was created
	CreatedAt      time.Time
	ExpiresAt      time.Time // absolute expiry
	LastSeenAt     time.Time

	// IP and UserAgent describe the client that created the session, when known.
	IP        string
	UserAgent string
	// Methods are how the user authenticated for this session, in order (the
	// first factor first). SecondFactorAt is when a second factor was last
	// verified for it (at login or by step-up), or zero.
	Methods        []AuthMethod
	SecondFactorAt time.Time
	// AuthenticatedAt is when the user last proved a password or a factor for
	// this session: at login (by any method), by re-authentication or by
	// step-up. Sensitive changes require it to be recent (Options.ReauthWindow).
	// The library's stores give a session stored before this field existed
	// the later of its CreatedAt and SecondFactorAt.
	AuthenticatedAt time.Time
	// IdleTimeout is the session's own idle timeout, chosen at login
	// (SessionOptions): the session ends when LastSeenAt is this long ago.
	// Zero means it has none of its own and Options.SessionIdleTimeout
	// applies, as it does to sessions stored before this field existed.
	IdleTimeout time.Duration
}

// Clone returns a deep copy of s.
func (s *SessionRecord) Clone() *SessionRecord {
	if s == nil {
		return nil
	}
	c := *s
	c.TokenHash = append([]byte(nil), s.TokenHash...)
	c.Methods = slices.Clone(s.Methods)
	return &c
}

// Purpose is what a one-time token may be redeemed for. A token redeems only for
// the purpose it was issued for.
type Purpose string

// The purposes of one-time tokens.
const (
	PurposePasswordReset Purpose = "password_reset"
	PurposeVerifyEmail   Purpose = "verify_email"
	PurposeInvitation    Purpose = "invitation"
	PurposeMagicLink     Purpose = "magic_link"
	// PurposeEmailChange tokens carry a new address in TokenRecord.Email and
	// change the user's email to it when redeemed.
	PurposeEmailChange Purpose = "email_change"
)

// Purposes returns every Purpose, for revoking all of a user's tokens. Each call
// returns a new slice, so a caller that changes it changes nothing else.
func Purposes() []Purpose {
	return []Purpose{PurposePasswordReset, PurposeVerifyEmail, PurposeInvitation, PurposeMagicLink, PurposeEmailChange}
}

// TokenRecord is what a Store keeps for one one-time token. The token itself is
// never stored, only its SHA-256.
type TokenRecord struct {
	Hash      []byte // SHA-256 of the token, 32 bytes
	UserID    string
	Purpose   Purpose
	Email     string // the user's email when the token was issued (for PurposeEmailChange, the new one)
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Clone returns a deep copy of t.
func (t *TokenRecord) Clone() *TokenRecord {
	if t == nil {
		return nil
	}
	c := *t
	c.Hash = append([]byte(nil), t.Hash...)
	return &c
}

// ThrottleKey names one login-throttle entry. Make it with UserThrottleKey or
// IdentifierThrottleKey (the rate limiter's are RateLimitKey's); a Store
// treats it as an opaque string and compares it exactly.
type ThrottleKey string

// UserThrottleKey is the throttle key of the user with this ID: every identifier
// that names the user (email or username) counts against it.
func UserThrottleKey(userID string) ThrottleKey { return ThrottleKey("user:" + userID) }

// IdentifierThrottleKey is the throttle key of a login identifier that names no
// user. The identifier is hashed (SHA-256, the first 128 bits in hex), so the
// store never keeps what strangers typed and the key is short whatever the input.
func IdentifierThrottleKey(identifier string) ThrottleKey {
	sum := sha256.Sum256([]byte(identifier))
	return ThrottleKey("id:" + hex.EncodeToString(sum[:16]))
}

// LoginAttempts is the login-throttle state of one ThrottleKey. The Manager
// decides what the fields mean (see SECURITY.md, "Throttling"; a rate
// limit's window uses Failures, WindowStart and ExpiresAt); a Store keeps
// them exactly, times by instant.
type LoginAttempts struct {
	Failures    int       // attempts counted in the current window, towards the next lock
	WindowStart time.Time // time of the first attempt counted in the window
	LockedUntil time.Time // zero, or the end of the current lock
	ExpiresAt   time.Time // when the entry can be purged (DeleteExpired)

	// Consecutive counts failures since the last success, password change or
	// reset, or Manager.Unlock. Unlike Failures it survives the end of a window
	// and of a lock; at 100 the key stays locked (NIST SP 800-63B 5.2.2).
	Consecutive int
	// Locks counts the locks since Consecutive was last zero; each lasts twice as
	// long as the one before.
	Locks int
	// HashNotUpgradable is set by a successful login that verified an imported
	// password hash it could not re-hash (see LockState.ImportedHashNotUpgradable).
	HashNotUpgradable bool
}

// IsZero reports whether a is the zero LoginAttempts, comparing times by
// instant. A Store deletes an entry that UpdateLoginAttempts leaves zero.
func (a LoginAttempts) IsZero() bool {
	return a.Failures == 0 && a.WindowStart.IsZero() && a.LockedUntil.IsZero() && a.ExpiresAt.IsZero() &&
		a.Consecutive == 0 && a.Locks == 0 && !a.HashNotUpgradable
}

// Match says which users ListUsers and CountUsers select. Its fields combine with
// AND; an empty field selects every user. The Manager hands stores a Match whose
// Email, Username and Search are already normalised (lower-case).
type Match struct {
	Email     string // exact match
	Username  string // exact match
	Role      Role
	Status    Status
	AccountID string
	// ActiveSince selects users whose LastActiveAt is at or after it;
	// InactiveSince users whose LastActiveAt is before it (never active included).
	ActiveSince   time.Time
	InactiveSince time.Time
	// Search is a lower-case substring of the email, the username, the lower-cased
	// first or last name, or the lower-cased full name "first last".
	Search string
}

// Matches reports whether m selects u. Every Store selects exactly the users this
// function selects; a Store may use indexes to find them faster.
func (m *Match) Matches(u *User) bool {
	switch {
	case m.Email != "" && u.Email != m.Email,
		m.Username != "" && u.Username != m.Username,
		m.Role != "" && u.Role != m.Role,
		m.Status != "" && u.Status != m.Status,
		m.AccountID != "" && u.AccountID != m.AccountID,
		!m.ActiveSince.IsZero() && u.LastActiveAt.Before(m.ActiveSince),
		!m.InactiveSince.IsZero() && !u.LastActiveAt.Before(m.InactiveSince):
		return false
	}
	if m.Search == "" {
		return true
	}
	for _, f := range SearchFields(u) {
		if strings.Contains(f, m.Search) {
			return true
		}
	}
	return false
}

// SearchFields returns the lower-case texts of u that Match.Search looks in: the
// email, the username, the first name, the last name and the full name
// "first last" (empty ones left out). Stores that index search terms index these.
func SearchFields(u *User) []string {
	first, last := strings.ToLower(u.FirstName), strings.ToLower(u.LastName)
	out := make([]string, 0, 5)
	for _, f := range []string{u.Email, u.Username, first, last} {
		if f != "" {
			out = append(out, f)
		}
	}
	if first != "" && last != "" {
		out = append(out, first+" "+last)
	}
	return out
}

// searchTrigrams returns the distinct trigrams of u's SearchFields in
// increasing order (none for a nil u): what the built-in stores index
// Match.Search by.
func searchTrigrams(u *User) []trigram.T {
	if u == nil {
		return nil
	}
	return trigram.Distinct(SearchFields(u))
}

// ListQuery is ListUsers's question: which users (Match) and which page of them.
type ListQuery struct {
	Match  Match
	After  string // exclusive lower bound on ID, or empty
	Before string // exclusive upper bound on ID, or empty
	Offset int    // matching users to skip first
	Limit  int    // at most this many users; always positive
}
