package users

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/userkit/users/internal/passhash"
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
	ID string `json:"id"` // a ULID: sorts by creation time
	// ExternalID is the ID another system gave the user, kept when the user
	// moved in from it (NewUser.ExternalID): unique, found by GetByExternalID,
	// set when the user is created and never changed; empty for none.
	ExternalID      string            `json:"external_id,omitempty"`
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
	// LastActiveAt is when the user last logged in or used a session, to within
	// about a minute (the throttle of the session touch); zero: never.
	LastActiveAt time.Time `json:"last_active_at,omitzero"`
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

// NewUser is Create's input. Only Email and one of Password, PasswordHash or
// NoPassword are required (none for StatusInvited); Role defaults to RoleUser
// and Status to StatusActive. Create checks every field before it refuses
// any; several refused fields come back as ValidationErrors in the order the
// fields are declared here. The fields after Preferences bring a user in from
// another system, or from another store of this package, without loss
// (user_import.go).
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

	// PasswordHash imports a user from another system: a hash made there, given
	// instead of Password: bcrypt ($2a$, $2b$ or $2y$), Argon2id and Argon2i,
	// scrypt and PBKDF2 (PHC strings), Django's, Keycloak's, ASP.NET Core
	// Identity's (v2 and v3), SHA-crypt ($5$, $6$) or Firebase's scrypt (with
	// Options.FirebaseScrypt); password_import.go has the table. The user logs
	// in with the old password and the hash is upgraded to this package's
	// format on that login. Every cost parameter is bounded: a hash over a
	// bound is a *ValidationError on "password_hash.PARAM" (cost, memory,
	// iterations, parallelism, n, r, p, rounds…), a malformed or unknown one
	// on "password_hash".
	// A hash in this package's own format, from another of its stores (moving
	// from bbolt to PostgreSQL, say), is taken as it is; it is re-hashed at a
	// login only if its bcrypt cost is not the Manager's. A bcrypt cost above
	// Options.MaxBcryptCost is refused (a *ValidationError on
	// "password_hash.cost").
	PasswordHash string

	Preferences map[string]string

	// NoPassword creates the user without a password: they sign in by magic
	// link, by password reset, or with a linked provider. It must not be set
	// with Password or PasswordHash (a *ValidationError on "password"). A user
	// in StatusInvited has no password without it.
	NoPassword bool

	// ID keeps the user's ID from another store of this package (export and
	// import keep it): a ULID in its canonical 26-character form, or a
	// *ValidationError on "id". Empty (the default) gives a new ID. A taken
	// ID is ErrConflict.
	ID string

	// ExternalID is the ID the user had in the system they come from: 1 to
	// 255 bytes of printable ASCII without spaces, compared exactly (a
	// *ValidationError on "external_id" otherwise). It is unique: a taken one
	// is ErrDuplicateExternalID. Empty (the default) means none.
	ExternalID string

	// EmailVerified says the email was verified by the system the user comes
	// from; EmailVerifiedAt is when (it needs EmailVerified). Default false.
	EmailVerified   bool
	EmailVerifiedAt time.Time

	// The user's history in the system they come from. None may be after now
	// (a *ValidationError naming the field: "created_at", "updated_at",
	// "last_login_at", "last_active_at"). Zero CreatedAt and UpdatedAt mean
	// now; zero LastLoginAt and LastActiveAt mean never.
	CreatedAt    time.Time
	UpdatedAt    time.Time
	LastLoginAt  time.Time
	LastActiveAt time.Time
}

// UserUpdate is Update's input. A nil field leaves the value as it is; a non-nil
// Preferences map replaces the old map whole (an empty map clears it). Update
// checks every field before it refuses any; several refused fields come back
// as ValidationErrors in the order the fields are declared here.
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
	// Search is a case-insensitive substring of the email, the username, the
	// first or last name, or the full name "First Last".
	Search string
	// ActiveSince selects users whose LastActiveAt is at or after it;
	// InactiveSince users whose LastActiveAt is before it, including users
	// never active: dormant accounts.
	ActiveSince   time.Time
	InactiveSince time.Time

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

// Options configures a Manager. The zero value of every field means its documented
// default, so New(store, nil) is a sound configuration.
type Options struct {
	// BcryptCost is the bcrypt work factor. Default 12. Values below 10 are refused
	// unless InsecureLowBcryptCostForTests is set; above 31 is refused.
	BcryptCost int

	// InsecureLowBcryptCostForTests allows BcryptCost down to 4, which makes hashing
	// fast and passwords cheap to crack. It exists for tests; never set it in a
	// program that stores real passwords.
	InsecureLowBcryptCostForTests bool

	// MaxBcryptCost is the highest bcrypt cost a NewUser.PasswordHash may carry
	// (an imported bcrypt hash or one of this package's own format): each step
	// doubles the work, and one check of a cost-31 hash takes about a day, so a
	// hash above it is refused at Create and Import with a *ValidationError on
	// "password_hash.cost", and a stored one above it (written before this
	// bound) is never computed: its user logs in only after a password reset.
	// Default 14, or BcryptCost if that is higher (systems that used 12 or 13
	// import as they are). It must be between BcryptCost and 31.
	MaxBcryptCost int

	// FirebaseScrypt is a Firebase project's password hash parameters, needed
	// to verify the "$firebase-scrypt$SALT$HASH" hashes of users moved in from
	// it (see NewUser.PasswordHash). Default nil: such hashes are refused.
	// Out-of-range values are a *ValidationError on
	// "options.FirebaseScrypt.Rounds" (1 to 8), ".MemCost" (1 to 15) or
	// ".SignerKey" (at least 16 bytes).
	FirebaseScrypt *FirebaseScrypt

	// SessionTTL is the absolute lifetime of an ordinary session (a sign-in
	// that asked for nothing else, see SessionOptions): it ends this long
	// after login, whatever its activity. Default 24 hours.
	SessionTTL time.Duration

	// SessionIdleTimeout ends an ordinary session that has not been validated
	// for this long. Zero (the default) turns idle expiry off. LastSeenAt is
	// written at most about once a minute per session (within half the
	// session's idle timeout), so the idle clock may start up to that much
	// early.
	SessionIdleTimeout time.Duration

	// RememberSessionTTL is the absolute lifetime of a remembered session
	// (SessionOptions.Remember, "remember me"). Zero means the default, 30
	// days; negative is a *ValidationError.
	RememberSessionTTL time.Duration

	// RememberIdleTimeout ends a remembered session that has not been
	// validated for this long. Zero means the default, 7 days; to leave only
	// the absolute limit, set it to RememberSessionTTL. Negative is a
	// *ValidationError.
	RememberIdleTimeout time.Duration

	// TrustDevices lets the application mark a device trusted after a second
	// factor (Manager.TrustDevice), so that a password login from it skips
	// the second step. Default false: TrustDevice returns
	// ErrTrustedDevicesOff and Login ignores device tokens, also those issued
	// while it was on.
	TrustDevices bool

	// TrustedDeviceTTL is how long a device stays trusted after TrustDevice.
	// Zero means the default, 30 days; negative is a *ValidationError.
	TrustedDeviceTTL time.Duration

	// MinPasswordLength is the minimum password length in Unicode characters after
	// NFKC normalisation. Default and smallest allowed value: 8.
	MinPasswordLength int

	// PasswordChecker runs on every password that is set (Create, UpdatePassword,
	// password reset, accepting an invitation) after the length checks, with the
	// normalised password and the user it is for. At Create and Import it runs
	// even when other fields are refused, so that every field's error is given
	// at once; a refused field is empty in the user it is given. An error refuses the password:
	// a *ValidationError with a Code is returned as is (its Code may be one of
	// the application's own), one without a Code gets ValidationPasswordRejected,
	// and any other error becomes a *ValidationError on "password" with that
	// code and the error's text as its Reason. Default DefaultPasswordChecker.
	// Wrap it to add checks.
	PasswordChecker func(ctx context.Context, password string, u *User) error

	// BreachChecker, if not nil, is asked about every password that is set, at
	// the same places and after PasswordChecker, with the normalised password.
	// A password it reports breached is refused with a *ValidationError on
	// "password"; an error it returns is returned (wrapped, not a
	// *ValidationError) and the password is refused too. Either way nothing is
	// stored. Whether an unreachable breach service refuses passwords or lets
	// them through is the checker's choice (see package breach). Default nil:
	// no breach check, only PasswordChecker's list of common passwords.
	BreachChecker BreachChecker

	// Roles lists the allowed roles. Default RoleAdmin, RoleUser, RoleViewer. It
	// must include RoleUser, the role of new users who are given none.
	Roles []Role

	// MaxFailedLogins is how many consecutive failed logins for one account (or
	// one unknown identifier) within FailedLoginWindow lock it for
	// LockoutDuration. Default 10; at most 100 (NIST SP 800-63B 5.2.2). It also
	// bounds concurrent guesses: at most this many are compared at once.
	// Whatever it is, MaxConsecutiveFailures (100) failures in a row, across
	// windows and locks, lock the account until a reset or Manager.Unlock.
	MaxFailedLogins int

	// FailedLoginWindow is how long failures are counted together: a failure more
	// than this after the first one counted starts a new count. Default 1 hour.
	FailedLoginWindow time.Duration

	// LockoutDuration is how long the first lock of a run of failures lasts.
	// Each further lock lasts twice as long as the one before, up to 24 hours (or
	// LockoutDuration, if longer). Default 15 minutes.
	LockoutDuration time.Duration

	// RateLimits sets the rate limits per action (see RateAction and
	// Manager.Limit): attempts per client address and per identifier in a
	// fixed window, counted in the store. An action missing here, and each
	// zero field, takes its default (DefaultRateLimit: login 30 per client in
	// 5 minutes; sign-up, password-reset and magic-link requests 10 per client
	// and 3 per email an hour; second-factor codes and token redemptions 30
	// per client in 5 minutes); a negative count turns that limit off. An
	// action of the application's own needs a Window. Only calls whose
	// context carries a Client (WithClient, ClientMiddleware,
	// TrustedProxies) are limited. A negative Window is a *ValidationError on
	// "options.RateLimits[…].Window".
	RateLimits map[RateAction]RateLimit

	// RateLimitIPv6Prefix is how many leading bits of an IPv6 client address
	// the rate limits count together, since one subscriber usually has a
	// whole /64. Default 64; between 1 and 128 (128: each address alone).
	RateLimitIPv6Prefix int

	// MaxConcurrentHashes bounds how many bcrypt operations run at once; more
	// callers wait their turn (or until their ctx is done). Default GOMAXPROCS.
	MaxConcurrentHashes int

	// RequireVerifiedEmail makes Login refuse users whose email is not verified
	// with ErrEmailNotVerified (only after the password has been verified).
	// Default false.
	RequireVerifiedEmail bool

	// Lifetimes of one-time tokens. Defaults: password reset 1 hour, email
	// verification 48 hours, invitation 7 days, magic link 15 minutes.
	PasswordResetTTL     time.Duration
	EmailVerificationTTL time.Duration
	InvitationTTL        time.Duration
	MagicLinkTTL         time.Duration

	// Now is the clock. Default time.Now. Tests set a fake clock here.
	Now func() time.Time

	// MFAKeys are the AES-256-GCM keys that seal TOTP secrets at rest (see
	// MFAKey): the first is current and seals every new secret; the others only
	// open secrets sealed before a rotation, and such a secret is sealed again
	// with the current key when next used. Default none: BeginTOTP then returns
	// ErrMFANotConfigured, and recovery codes remain the only factor that works.
	MFAKeys []MFAKey

	// MFAIssuer names the application in authenticator apps (the issuer of the
	// otpauth:// URI and its label). Default "users".
	MFAIssuer string

	// Rand is the source of randomness for tokens and IDs. Default crypto/rand.Reader.
	// Anything else must be cryptographically secure outside tests.
	Rand io.Reader

	// OnEvent, if set, is called with every audit entry after the store has
	// committed it (see docs/audit.md): never inside a store
	// transaction or while a lock is held. Entries of one user reach it in the
	// order they committed (within this Manager). It is called from one
	// goroutine at a time, off the caller's path: a Manager queues committed
	// entries (at most EventQueueSize) and one goroutine, running while the
	// queue is not empty, hands them over in order. A slow hook makes the
	// queue grow; when it is full, further events are dropped and counted
	// (Manager.EventStats), so a hook can never block or fail a login. A panic
	// in the hook is recovered and counted. ctx is the context of the call
	// that made the change, without its cancellation. Default nil: no hook.
	OnEvent func(ctx context.Context, e AuditEntry)

	// EventQueueSize bounds how many committed events wait for OnEvent.
	// Default 4096.
	EventQueueSize int

	// AuditRetention is how long audit entries are kept: PurgeExpired deletes
	// the older ones. Zero (the default) keeps them until you delete them.
	AuditRetention time.Duration

	// ReauthWindow is how recently the acting session's user must have proved
	// a password or a factor (Session.AuthenticatedAt: at login, by
	// Reauthenticate or by StepUp) for the changes that need it: enrolling or
	// removing a second factor, new recovery codes, changing the password or
	// the email (see ErrReauthRequired). The acting session is the one in the
	// call's context (NewContext, Manager.Middleware); a call without one is
	// not checked. Zero means the default, DefaultReauthWindow (10 minutes). A
	// negative value turns the check off, for an application that asks for the
	// proof itself.
	ReauthWindow time.Duration

	// Providers are the external identity providers users may sign in with
	// (see Provider, Google, Microsoft, GitHub). Nil means none. New checks
	// each and returns a *ValidationError on "options.Providers".
	Providers []Provider

	// ProviderFlowTTL is how long a sign-in with a provider may take from
	// its start to the callback. The default (zero) is
	// DefaultProviderFlowTTL, 10 minutes.
	ProviderFlowTTL time.Duration

	// Passkeys turns on passkeys (WebAuthn) with these relying-party
	// settings (see PasskeyOptions). Nil, the default, leaves them off:
	// every passkey method returns ErrPasskeysNotConfigured.
	Passkeys *PasskeyOptions
}

// Manager is the entry point of the package: it creates, finds and updates users,
// checks passwords and issues and validates sessions and one-time tokens over a
// Store. A Manager is safe for concurrent use by multiple goroutines.
type Manager struct {
	store Store

	cost          int
	maxCost       int              // Options.MaxBcryptCost
	hashCfg       *passhash.Config // imported formats' settings (password_import.go)
	sess          sessionConfig    // session lifetimes (session_options.go)
	trust         trustConfig      // trusted devices (trusted_device.go)
	minPassword   int
	checker       func(context.Context, string, *User) error
	breach        BreachChecker
	roles         []Role
	maxFailures   int
	failureWindow time.Duration
	lockout       time.Duration
	requireVerify bool
	tokenTTL      map[Purpose]time.Duration
	now           func() time.Time
	rand          io.Reader

	hashSlots chan struct{}
	dummyHash string

	idMu      sync.Mutex
	idEntropy io.Reader

	onCompare func() // test seam: called once per bcrypt comparison

	events         *eventQueue // nil without Options.OnEvent
	userLocks      [userLockShards]sync.Mutex
	auditRetention time.Duration
	strangers      strangerBudget
	reauthWindow   time.Duration // negative: no check
	rate           *rateLimits   // limit.go

	mfa mfaConfig // second factors (mfa_keys.go)

	providers     map[string]*providerConfig // by name (oidc.go)
	providerOrder []string
	flowTTL       time.Duration
	passkey       *passkeyConfig // nil: passkeys off (passkey.go)
}

// New returns a Manager over store. opts may be nil; zero fields take their
// documented defaults. It returns a *ValidationError naming the option (as
// "options.Field") if an option is out of range. The first New at a bcrypt
// cost computes one hash at that cost (the decoy compared against for unknown
// users), so it takes as long as one login; later ones, in the same process,
// share it. New is safe for concurrent use.
func New(store Store, opts *Options) (*Manager, error) {
	if store == nil {
		return nil, invalid("store", ValidationRequired, "must not be nil")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	m := &Manager{
		store:         store,
		cost:          or(o.BcryptCost, 12),
		minPassword:   or(o.MinPasswordLength, MinPasswordLength),
		checker:       o.PasswordChecker,
		breach:        o.BreachChecker,
		roles:         o.Roles,
		maxFailures:   or(o.MaxFailedLogins, 10),
		failureWindow: or(o.FailedLoginWindow, time.Hour),
		lockout:       or(o.LockoutDuration, 15*time.Minute),
		requireVerify: o.RequireVerifiedEmail,
		tokenTTL: map[Purpose]time.Duration{
			PurposePasswordReset: or(o.PasswordResetTTL, time.Hour),
			PurposeVerifyEmail:   or(o.EmailVerificationTTL, 48*time.Hour),
			PurposeInvitation:    or(o.InvitationTTL, 7*24*time.Hour),
			PurposeMagicLink:     or(o.MagicLinkTTL, 15*time.Minute),
			PurposeEmailChange:   or(o.EmailVerificationTTL, 48*time.Hour),
		},
		now:  o.Now,
		rand: o.Rand,
	}
	minCost := 10
	if o.InsecureLowBcryptCostForTests {
		minCost = bcrypt.MinCost
	}
	switch {
	case m.cost < minCost || m.cost > bcrypt.MaxCost:
		return nil, invalid("options.BcryptCost", ValidationOutOfRange, "must be between "+strconv.Itoa(minCost)+" and 31")
	case m.minPassword < MinPasswordLength || m.minPassword > MaxPasswordLength:
		return nil, invalid("options.MinPasswordLength", ValidationOutOfRange, "must be between 8 and 128")
	case m.maxFailures < 1 || m.maxFailures > 100:
		return nil, invalid("options.MaxFailedLogins", ValidationOutOfRange, "must be between 1 and 100")
	case m.failureWindow < 0:
		return nil, invalid("options.FailedLoginWindow", ValidationNegative, "must not be negative")
	case m.lockout < 0:
		return nil, invalid("options.LockoutDuration", ValidationNegative, "must not be negative")
	case o.MaxBcryptCost != 0 && (o.MaxBcryptCost < m.cost || o.MaxBcryptCost > bcrypt.MaxCost):
		return nil, invalid("options.MaxBcryptCost", ValidationOutOfRange, "must be between BcryptCost ("+strconv.Itoa(m.cost)+") and 31")
	case o.MaxConcurrentHashes < 0:
		return nil, invalid("options.MaxConcurrentHashes", ValidationNegative, "must not be negative")
	case o.EventQueueSize < 0:
		return nil, invalid("options.EventQueueSize", ValidationNegative, "must not be negative")
	case o.AuditRetention < 0:
		return nil, invalid("options.AuditRetention", ValidationNegative, "must not be negative")
	}
	m.maxCost = or(o.MaxBcryptCost, max(14, m.cost))
	hashCfg, herr := hashConfig(m.maxCost, o.FirebaseScrypt)
	if herr != nil {
		return nil, herr
	}
	m.hashCfg = hashCfg
	if m.rate, herr = newRateLimits(o.RateLimits, o.RateLimitIPv6Prefix); herr != nil {
		return nil, herr
	}
	m.auditRetention = o.AuditRetention
	m.reauthWindow = or(o.ReauthWindow, DefaultReauthWindow)
	if o.OnEvent != nil {
		m.events = &eventQueue{fn: o.OnEvent, max: or(o.EventQueueSize, 4096)}
	}
	for p, d := range m.tokenTTL {
		if d < 0 {
			return nil, invalid("options."+tokenTTLOption[p], ValidationNegative, "must not be negative")
		}
	}
	if m.checker == nil {
		m.checker = DefaultPasswordChecker
	}
	if m.roles == nil {
		m.roles = []Role{RoleAdmin, RoleUser, RoleViewer}
	} else {
		m.roles = slices.Clone(m.roles)
	}
	if !slices.Contains(m.roles, RoleUser) {
		return nil, invalid("options.Roles", ValidationRequired, "must include RoleUser, the default role")
	}
	for _, r := range m.roles {
		if r == "" || strings.TrimSpace(string(r)) != string(r) {
			return nil, invalid("options.Roles", ValidationMalformed, "must not contain empty or padded roles")
		}
	}
	var err error
	if m.sess, err = newSessionConfig(&o); err != nil {
		return nil, err
	}
	if m.trust, err = newTrustConfig(&o); err != nil {
		return nil, err
	}
	mfa, err := newMFAConfig(o.MFAKeys, o.MFAIssuer)
	if err != nil {
		return nil, err
	}
	m.mfa = mfa
	if err := m.configureProviders(o.Providers, o.ProviderFlowTTL); err != nil {
		return nil, err
	}
	if m.passkey, err = newPasskeyConfig(o.Passkeys); err != nil {
		return nil, err
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.rand == nil {
		m.rand = rand.Reader
	}
	m.idEntropy = ulid.Monotonic(m.rand, 0) // read only under idMu
	m.hashSlots = make(chan struct{}, or(o.MaxConcurrentHashes, runtime.GOMAXPROCS(0)))

	// The decoy hash for unknown users: same format, same cost, random input,
	// made by the first New at this cost (password.go).
	var seed [32]byte
	if err := m.readRand(seed[:]); err != nil {
		return nil, err
	}
	h, err := decoyHash(m.cost, seed[:])
	if err != nil {
		return nil, fmt.Errorf("users: computing decoy hash: %w", err)
	}
	m.dummyHash = h
	return m, nil
}

var tokenTTLOption = map[Purpose]string{
	PurposePasswordReset: "PasswordResetTTL",
	PurposeVerifyEmail:   "EmailVerificationTTL",
	PurposeInvitation:    "InvitationTTL",
	PurposeMagicLink:     "MagicLinkTTL",
	PurposeEmailChange:   "EmailVerificationTTL",
}

// or returns v, or def when v is the zero value.
func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// newID returns a new ULID for a record created at t.
func (m *Manager) newID(t time.Time) (string, error) {
	m.idMu.Lock()
	defer m.idMu.Unlock()
	id, err := ulid.New(ulid.Timestamp(t), m.idEntropy)
	if err != nil {
		return "", fmt.Errorf("users: new id: %w", err)
	}
	return id.String(), nil
}

// storeErr passes the package's sentinel errors through and wraps anything else a
// Store returned with the operation's name.
func storeErr(op string, err error) error {
	if err == nil {
		return nil
	}
	for _, s := range []error{ErrNotFound, ErrDuplicateEmail, ErrDuplicateUsername, ErrConflict, ErrInvalidInput} {
		if errors.Is(err, s) {
			return err
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("users: %s: %w", op, err)
}

// readRand fills b from Options.Rand. Reads are serialised, so a Rand that is not
// safe for concurrent use (a seeded test source) still works.
func (m *Manager) readRand(b []byte) error {
	m.idMu.Lock()
	defer m.idMu.Unlock()
	if _, err := io.ReadFull(m.rand, b); err != nil {
		return fmt.Errorf("users: reading randomness: %w", err)
	}
	return nil
}

// checkNew checks and normalises every field of nu that needs neither the
// store nor a hash into a record, in NewUser's field order, and collects
// every refused field (one error per field) before it returns: nil, one
// *ValidationError, or ValidationErrors. It returns too the normalised
// password, "" when nu sets none. invite is Invite's: the password must be
// empty, Status is ignored and the record is StatusInvited.
//
// The password checker (Options.PasswordChecker) runs after the other
// fields, so that it sees the user they make (a refused field is empty in
// it), and its error takes the password's place in the order. It runs only
// when the password passed its own rules. The breach check, the store and
// the hash are newRecord's, once all of this passed.
func (m *Manager) checkNew(ctx context.Context, nu NewUser, invite bool) (*UserRecord, string, error) {
	var r UserRecord
	var c fieldErrors
	var err error
	r.Email, err = NormalizeEmail(nu.Email)
	c.add(err)
	r.Username, err = NormalizeUsername(nu.Username)
	c.add(err)

	// The password: its own rules here, the checker below.
	given := nu.Password != "" || nu.PasswordHash != ""
	r.Status = or(nu.Status, StatusActive)
	if invite {
		r.Status = StatusInvited
	}
	var password string
	checkerAt := -1 // where the checker's error goes, when it runs
	switch {
	case invite && given:
		c.add(invalid("password", ValidationMustBeEmpty, "must be empty: the invited user chooses it"))
	case nu.NoPassword && given:
		c.add(invalid("password", ValidationMustBeEmpty, "must be empty with NoPassword"))
	case nu.PasswordHash != "", nu.NoPassword, r.Status == StatusInvited:
		// No password to check: none is set, or a refusal below (on
		// status or password_hash) says why the one given is refused.
	default:
		password, err = normalizePassword("password", nu.Password, m.minPassword)
		if c.add(err) {
			checkerAt = len(c.list)
		}
	}

	r.FirstName, err = checkText("first_name", nu.FirstName, maxNameChars)
	c.add(err)
	r.LastName, err = checkText("last_name", nu.LastName, maxNameChars)
	c.add(err)
	r.Role = or(nu.Role, RoleUser)
	c.add(m.checkRole(r.Role))
	switch {
	case invite:
	case !r.Status.valid() && r.Status != StatusInvited:
		c.add(invalid("status", ValidationNotOneOf, "must be active, inactive, suspended or invited"))
	case r.Status == StatusInvited && given && !nu.NoPassword:
		c.add(invalid("status", ValidationWrongState, "must not be invited for a user given a password: an invited user chooses it"))
	}
	r.AvatarURL, err = checkAvatarURL(nu.AvatarURL)
	c.add(err)
	r.AccountID, err = checkAccountID(nu.AccountID)
	c.add(err)
	if nu.PasswordHash != "" && !invite && !nu.NoPassword && r.Status != StatusInvited {
		switch {
		case nu.Password != "":
			c.add(invalid("password_hash", ValidationExclusive, "give either a password or a password hash, not both"))
		case c.add(m.checkImportedHash(nu.PasswordHash)):
			r.PasswordHash = nu.PasswordHash
		}
	}
	if nu.Preferences != nil {
		r.Preferences, err = checkPreferences(nu.Preferences)
		c.add(err)
	}
	m.checkMovedIn(nu, &r, &c)

	if checkerAt >= 0 {
		if err := m.checkPolicy(ctx, "password", password, &r.User); err != nil {
			if len(c.list) == 0 {
				return nil, "", err // alone: as the checker gave it
			}
			var ve *ValidationError
			errors.As(err, &ve) // always: see checkPolicy
			c.insert(checkerAt, ve)
		}
	}
	if err := c.err(); err != nil {
		return nil, "", err
	}
	return &r, password, nil
}

// Create validates and stores a new user and returns it. Email and Username are
// normalised (trimmed, lower-cased); Role defaults to RoleUser and Status to
// StatusActive. The password must pass the length rules and the password checker;
// alternatively PasswordHash imports a hash from another system (bcrypt and
// the formats NewUser.PasswordHash lists), or a hash of this package's own
// format from another of its stores.
//
// Every field is checked before it returns a refusal: one refused field is a
// *ValidationError naming it ("password_hash.cost", "password_hash.memory"
// and so on for an imported hash's parameter over its bound); several are
// ValidationErrors, one per field in NewUser's field order (email, username,
// password, first_name, …), whose first errors.As gives as a
// *ValidationError; FieldErrors gives them all. Both match ErrInvalidInput.
// Only when every field passes are the costly checks made, each of which may
// refuse alone: the breach check (Options.BreachChecker), a look for the
// email in the store, and the hash. It returns ErrDuplicateEmail or ErrDuplicateUsername if another user has
// the email or username (checked atomically by the Store, so concurrent Creates
// of one email give exactly one user), ErrDuplicateExternalID if another has
// nu.ExternalID, ErrConflict if nu.ID is taken, and nothing is stored on any
// error. The fields that move a user in from elsewhere (ID, ExternalID,
// EmailVerified, the times, NoPassword) are described at NewUser.
func (m *Manager) Create(ctx context.Context, nu NewUser) (*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := m.newRecord(ctx, nu)
	if err != nil {
		return nil, err
	}
	return m.insert(ctx, r, "")
}

// newRecord validates and normalises a NewUser for Create and Import and gives
// it its password hash: the hash of Password, or the imported PasswordHash.
// Every field is checked first (checkNew); only then, for a password, the
// breach check, a look for the email, and the hash.
func (m *Manager) newRecord(ctx context.Context, nu NewUser) (*UserRecord, error) {
	r, password, err := m.checkNew(ctx, nu, false)
	if err != nil || password == "" {
		return r, err
	}
	if err := m.checkBreached(ctx, "password", password); err != nil {
		return nil, err
	}
	// A cheap early answer for the common case, before the costly hash; the
	// Store decides atomically.
	if _, err := m.store.GetUserByEmail(ctx, r.Email); err == nil {
		return nil, ErrDuplicateEmail
	}
	if r.PasswordHash, err = m.hashPassword(ctx, password); err != nil {
		return nil, err
	}
	return r, nil
}

// insert gives r its ID and times and stores it with its user.created entry
// (whose Purpose is p: PurposeInvitation for Invite).
func (m *Manager) insert(ctx context.Context, r *UserRecord, p Purpose) (*User, error) {
	if err := m.stampNew(r, m.now()); err != nil {
		return nil, err
	}
	id := r.ID
	e, err := m.auditEntry(ctx, EventUserCreated, id)
	if err != nil {
		return nil, err
	}
	e.Purpose = p
	err = m.write(ctx, id, func() error { return m.store.CreateUser(ctx, r, e) }, e)
	if err != nil {
		return nil, storeErr("create", err)
	}
	return r.User.Clone(), nil
}

// Get returns the user with the ID, or ErrNotFound.
func (m *Manager) Get(ctx context.Context, id string) (*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := m.store.GetUser(ctx, id)
	if err != nil {
		return nil, storeErr("get", err)
	}
	return r.User.Clone(), nil
}

// GetByEmail returns the user with the email (normalised first), or ErrNotFound.
// A malformed email is a *ValidationError.
func (m *Manager) GetByEmail(ctx context.Context, email string) (*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	r, err := m.store.GetUserByEmail(ctx, e)
	if err != nil {
		return nil, storeErr("get by email", err)
	}
	return r.User.Clone(), nil
}

// GetByUsername returns the user with the username (normalised first), or
// ErrNotFound. A malformed or empty username is a *ValidationError.
func (m *Manager) GetByUsername(ctx context.Context, username string) (*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	u, err := NormalizeUsername(username)
	if err != nil {
		return nil, err
	}
	if u == "" {
		return nil, invalid("username", ValidationRequired, "is required")
	}
	r, err := m.store.GetUserByUsername(ctx, u)
	if err != nil {
		return nil, storeErr("get by username", err)
	}
	return r.User.Clone(), nil
}

// cursor encoding: opaque to callers, versioned, and checked on the way in.
const cursorPrefix = "c1."

func encodeCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + id))
}

func decodeCursor(field, c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", invalid(field, ValidationMalformed, "is not a cursor from this package")
	}
	id, ok := strings.CutPrefix(string(b), cursorPrefix)
	if !ok {
		return "", invalid(field, ValidationMalformed, "is not a cursor from this package")
	}
	// Only the canonical (upper-case) spelling compares correctly with stored IDs.
	if u, err := ulid.ParseStrict(id); err != nil || u.String() != id {
		return "", invalid(field, ValidationMalformed, "is not a cursor from this package")
	}
	return id, nil
}

// normFilter validates f's match fields, collecting every refused one in
// Filter's field order, and returns the Match the Store sees.
func (m *Manager) normFilter(f Filter) (Match, error) {
	out := Match{Role: f.Role, Status: f.Status, AccountID: f.AccountID, ActiveSince: f.ActiveSince, InactiveSince: f.InactiveSince}
	var c fieldErrors
	var err error
	if f.Email != "" {
		out.Email, err = NormalizeEmail(f.Email)
		c.add(err)
	}
	if f.Username != "" {
		out.Username, err = NormalizeUsername(f.Username)
		c.add(err)
	}
	if f.Role != "" {
		c.add(m.checkRole(f.Role))
	}
	if f.Status != "" && !f.Status.valid() && f.Status != StatusInvited {
		c.add(invalid("status", ValidationNotOneOf, "must be active, inactive, suspended or invited"))
	}
	out.Search, err = checkText("search", f.Search, maxSearchChars)
	c.add(err)
	out.Search = strings.ToLower(out.Search)
	return out, c.err()
}

// Find returns one page of the users matching f, in ascending ID (creation)
// order. Limit defaults to 20 and is clamped to 100. Follow Page.Next with
// Filter.After to walk forward and Page.Prev with Filter.Before to walk back: a
// walk to the end yields every user that matched throughout exactly once, even
// while users are created and removed. Offset skips matching users (from the
// cursor, if any). It returns a *ValidationError for a malformed cursor, both
// cursors at once, a negative Limit or Offset, or a malformed filter field
// (ValidationErrors for several, in Filter's field order: every match field
// is checked before the paging ones).
func (m *Manager) Find(ctx context.Context, f Filter) (*Page, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q := ListQuery{Offset: f.Offset}
	var err error
	if q.Match, err = m.normFilter(f); err != nil {
		return nil, err
	}
	switch {
	case f.Limit < 0:
		return nil, invalid("limit", ValidationNegative, "must not be negative")
	case f.Offset < 0:
		return nil, invalid("offset", ValidationNegative, "must not be negative")
	case f.After != "" && f.Before != "":
		return nil, invalid("before", ValidationExclusive, "cannot be combined with after")
	}
	limit := min(or(f.Limit, defaultPageLimit), maxPageLimit)
	if f.After != "" {
		if q.After, err = decodeCursor("after", f.After); err != nil {
			return nil, err
		}
	}
	if f.Before != "" {
		if q.Before, err = decodeCursor("before", f.Before); err != nil {
			return nil, err
		}
	}
	q.Limit = limit + 1 // one more tells whether there is another page
	rs, err := m.store.ListUsers(ctx, q)
	if err != nil {
		return nil, storeErr("find", err)
	}
	p := &Page{Users: []*User{}}
	more := len(rs) > limit
	if more {
		if q.Before != "" {
			rs = rs[1:] // the extra one is the earliest
		} else {
			rs = rs[:limit]
		}
	}
	for _, r := range rs {
		p.Users = append(p.Users, &r.User) // the store's copy is ours to hand out
	}
	if len(rs) == 0 {
		return p, nil
	}
	first, last := rs[0].ID, rs[len(rs)-1].ID
	// Whether there is anything on the other side is a second, one-row question.
	exists := func(after, before string) (bool, error) {
		n, err := m.store.ListUsers(ctx, ListQuery{Match: q.Match, After: after, Before: before, Limit: 1})
		return len(n) > 0, err
	}
	hasNext, hasPrev := more, more
	if q.Before != "" {
		hasNext, err = exists(last, "")
	} else {
		hasPrev, err = exists("", first)
	}
	if err != nil {
		return nil, storeErr("find", err)
	}
	if hasNext {
		p.Next = encodeCursor(last)
	}
	if hasPrev {
		p.Prev = encodeCursor(first)
	}
	return p, nil
}

// Count returns how many users match f's match fields (cursors, Limit and Offset
// are ignored). It returns a *ValidationError for a malformed filter field, or
// ValidationErrors naming each in Filter's field order when several are.
func (m *Manager) Count(ctx context.Context, f Filter) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	nf, err := m.normFilter(f)
	if err != nil {
		return 0, err
	}
	n, err := m.store.CountUsers(ctx, nf)
	return n, storeErr("count", err)
}

// validUpdate checks and normalises the fields of up that are set, in
// UserUpdate's field order, and collects every refused field before it
// returns: nil, one *ValidationError, or ValidationErrors.
func (m *Manager) validUpdate(up UserUpdate) (UserUpdate, error) {
	var c fieldErrors
	text := func(p **string, check func(string) (string, error)) {
		if *p != nil {
			s, err := check(**p)
			if c.add(err) {
				*p = &s
			}
		}
	}
	text(&up.Email, NormalizeEmail)
	text(&up.Username, NormalizeUsername)
	text(&up.FirstName, func(s string) (string, error) { return checkText("first_name", s, maxNameChars) })
	text(&up.LastName, func(s string) (string, error) { return checkText("last_name", s, maxNameChars) })
	if up.Role != nil {
		c.add(m.checkRole(*up.Role))
	}
	if up.Status != nil && !up.Status.valid() {
		c.add(invalid("status", ValidationNotOneOf, "must be active, inactive or suspended"))
	}
	text(&up.AvatarURL, checkAvatarURL)
	text(&up.AccountID, checkAccountID)
	if up.Preferences != nil {
		p, err := checkPreferences(up.Preferences)
		if c.add(err) {
			up.Preferences = p
		}
	}
	return up, c.err()
}

// Update changes the fields of up that are not nil and leaves the rest as they
// are, in one atomic read-modify-write: concurrent Updates of different fields
// all survive. CreatedAt never changes; UpdatedAt is set to now.
//
// Changing the email marks it unverified and voids the user's outstanding
// verification, password-reset, magic-link and email-change tokens. Update is
// for administrators; a user changing their own email should go through
// RequestEmailChange, which checks the password and never tells whether the new
// address is taken. Setting a Status other than
// active deletes all the user's sessions and voids all its outstanding one-time
// tokens (reset, magic link, verification, invitation), so none of them works
// again if the account is reactivated. A user invited but not yet accepted
// keeps StatusInvited unless Status is set.
//
// It returns a *ValidationError for a refused field, or ValidationErrors
// naming every refused field in UserUpdate's field order when there are
// several (nothing is changed; see Create), ErrNotFound, or ErrDuplicateEmail / ErrDuplicateUsername if another user has
// the new email or username. Setting a user's own current email or username is
// not a conflict. Made with a Session in ctx (see NewContext), an Update that
// changes the email first returns ErrReauthRequired, changing nothing, unless
// that session's user proved a password or a factor within
// Options.ReauthWindow.
func (m *Manager) Update(ctx context.Context, id string, up UserUpdate) (*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if up.Email != nil {
		if err := m.recentAuth(ctx); err != nil {
			return nil, err
		}
	}
	up, err := m.validUpdate(up)
	if err != nil {
		return nil, err
	}
	now := m.now()
	e, err := m.auditEntry(ctx, EventUserUpdated, id)
	if err != nil {
		return nil, err
	}
	var r *UserRecord
	err = m.write(ctx, id, func() (err error) {
		r, err = m.store.UpdateUser(ctx, id, func(r *UserRecord) (Revoke, error) {
			return m.applyUpdate(r, up, now, e), nil
		}, e)
		return err
	}, e)
	if err != nil {
		return nil, storeErr("update", err)
	}
	return r.User.Clone(), nil
}

// applyUpdate changes r as up says, at now, and fills e in: which fields
// changed (never their values, but a role's or status's old and new one) and
// the event, user.role_changed, user.status_changed or user.email_changed
// when only that field changed, and user.updated otherwise.
func (m *Manager) applyUpdate(r *UserRecord, up UserUpdate, now time.Time, e *AuditEntry) Revoke {
	old := r.User.Clone()
	var rv Revoke
	if up.Email != nil && *up.Email != r.Email {
		r.Email = *up.Email
		r.EmailVerified, r.EmailVerifiedAt = false, time.Time{}
		rv.Tokens = []Purpose{PurposeVerifyEmail, PurposePasswordReset, PurposeMagicLink, PurposeEmailChange}
	}
	setIf(&r.Username, up.Username)
	setIf(&r.FirstName, up.FirstName)
	setIf(&r.LastName, up.LastName)
	setIf(&r.Role, up.Role)
	setIf(&r.AvatarURL, up.AvatarURL)
	setIf(&r.AccountID, up.AccountID)
	if up.Status != nil {
		r.Status = *up.Status
		if r.Status != StatusActive {
			// Suspending must not leave a way back in for when the
			// account is reactivated.
			rv.Sessions = true
			rv.Tokens = Purposes()
		}
	}
	if up.Preferences != nil {
		r.Preferences = maps.Clone(up.Preferences)
		if len(r.Preferences) == 0 {
			r.Preferences = nil
		}
	}
	r.UpdatedAt = now
	e.Type, e.Fields, e.Data = EventUserUpdated, changedFields(old, &r.User), nil
	for _, f := range e.Fields {
		switch f {
		case "role":
			e.Data = setData(e.Data, "role_from", string(old.Role), "role_to", string(r.Role))
		case "status":
			e.Data = setData(e.Data, "status_from", string(old.Status), "status_to", string(r.Status))
		}
	}
	if len(e.Fields) == 1 {
		switch e.Fields[0] {
		case "role":
			e.Type = EventRoleChanged
		case "status":
			e.Type = EventStatusChanged
		case "email":
			e.Type = EventEmailChanged
		}
	}
	return rv
}

// changedFields names the fields of a User that differ between old and now,
// as their JSON keys.
func changedFields(old, now *User) []string {
	var out []string
	add := func(changed bool, name string) {
		if changed {
			out = append(out, name)
		}
	}
	add(old.Email != now.Email, "email")
	add(old.Username != now.Username, "username")
	add(old.FirstName != now.FirstName, "first_name")
	add(old.LastName != now.LastName, "last_name")
	add(old.Role != now.Role, "role")
	add(old.Status != now.Status, "status")
	add(old.AvatarURL != now.AvatarURL, "avatar_url")
	add(old.AccountID != now.AccountID, "account_id")
	add(!maps.Equal(old.Preferences, now.Preferences), "preferences")
	return out
}

// setData sets pairs of keys and values in d, made if nil, and returns it.
func setData(d map[string]string, kv ...string) map[string]string {
	if d == nil {
		d = make(map[string]string, len(kv)/2)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		d[kv[i]] = kv[i+1]
	}
	return d
}

func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// UpdateRole sets the user's role, which must be one of Options.Roles. It is
// Update with only Role set; the new role is visible to ValidateToken at once.
func (m *Manager) UpdateRole(ctx context.Context, id string, role Role) (*User, error) {
	return m.Update(ctx, id, UserUpdate{Role: &role})
}

// UpdatePassword changes the user's password after checking the current one.
// The new password must pass the length rules and the password checker. On
// success every session of the user (the caller's included) and every
// outstanding one-time token are revoked: log in again with the new password.
// A right oldPassword is never counted as a failure; the change forgets the
// failures counted before, except for a user with a second factor, whose
// failures only a right second factor or Unlock forgets.
//
// It returns ErrInvalidCredentials if oldPassword is wrong (counted as a failed
// login, before the comparison, exactly as Login counts: enough of them lock
// the account, and then ErrAccountLocked), a
// *ValidationError on "password" for a refused new password, and ErrNotFound.
// Nothing changes on any error.
//
// Made with a Session in ctx (see NewContext), it first returns
// ErrReauthRequired, checking and changing nothing, unless that session's
// user proved a password or a factor within Options.ReauthWindow.
func (m *Manager) UpdatePassword(ctx context.Context, id, oldPassword, newPassword string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := m.recentAuth(ctx); err != nil {
		return err
	}
	r, err := m.store.GetUser(ctx, id)
	if err != nil {
		return storeErr("update password", err)
	}
	n, err := m.checkNewPassword(ctx, "password", newPassword, &r.User)
	if err != nil {
		return err
	}
	key := UserThrottleKey(r.ID)
	if err := m.confirmPassword(ctx, r, key, oldPassword); err != nil {
		return err
	}
	h, err := m.hashPassword(ctx, n)
	if err != nil {
		return err
	}
	now := m.now()
	e, err := m.auditEntry(ctx, EventPasswordChanged, id)
	if err != nil {
		return err
	}
	err = m.write(ctx, id, func() error {
		_, err := m.store.UpdateUser(ctx, id, func(cur *UserRecord) (Revoke, error) {
			if cur.PasswordHash != r.PasswordHash {
				// Changed since we verified the old password: that check is void.
				return Revoke{}, ErrInvalidCredentials
			}
			cur.PasswordHash, cur.UpdatedAt = h, now
			return Revoke{Sessions: true, Tokens: Purposes()}, nil
		}, e)
		return err
	}, e)
	if err != nil {
		return storeErr("update password", err)
	}
	return m.passwordChanged(ctx, id)
}

// SetPassword sets the user's password without asking for the current one: the
// administrator's counterpart of UpdatePassword, for an application's own
// authorisation to guard. The new password must pass the length rules and the
// password checker, as every password set does. On success every session of the
// user and every outstanding one-time token are revoked, and a login lock on the
// user is cleared. The user's Status is left as it is (an invited or inactive
// user still cannot log in).
//
// It returns a *ValidationError on "password" for a refused password,
// ErrNotFound if there is no such user, and ErrConflict if the user's email or
// username changed while the password was being checked against them (trying
// again may succeed). Nothing changes on any error. It is safe for concurrent use.
//
// Made with a Session in ctx (see NewContext), it first returns
// ErrReauthRequired, checking and changing nothing, unless that session's
// user proved a password or a factor within Options.ReauthWindow.
func (m *Manager) SetPassword(ctx context.Context, id, newPassword string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := m.recentAuth(ctx); err != nil {
		return err
	}
	r, err := m.store.GetUser(ctx, id)
	if err != nil {
		return storeErr("set password", err)
	}
	n, err := m.checkNewPassword(ctx, "password", newPassword, &r.User)
	if err != nil {
		return err
	}
	h, err := m.hashPassword(ctx, n)
	if err != nil {
		return err
	}
	now := m.now()
	e, err := m.auditEntry(ctx, EventPasswordChanged, id)
	if err != nil {
		return err
	}
	e.Data = map[string]string{"method": "set"} // not the user's own change
	err = m.write(ctx, id, func() error {
		_, err := m.store.UpdateUser(ctx, id, func(cur *UserRecord) (Revoke, error) {
			if cur.Email != r.Email || cur.Username != r.Username {
				// The checker compared the password with what is no longer there.
				return Revoke{}, ErrConflict
			}
			cur.PasswordHash, cur.UpdatedAt = h, now
			return Revoke{Sessions: true, Tokens: Purposes()}, nil
		}, e)
		return err
	}, e)
	if err != nil {
		return storeErr("set password", err)
	}
	return m.clearFailures(ctx, UserThrottleKey(id))
}

// Remove deletes the user with all its sessions and tokens, freeing its email and
// username. It returns ErrNotFound if there is no such user (also when removing
// twice).
func (m *Manager) Remove(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e, err := m.auditEntry(ctx, EventUserRemoved, id)
	if err != nil {
		return err
	}
	return storeErr("remove", m.write(ctx, id, func() error { return m.store.DeleteUser(ctx, id, e) }, e))
}

// PurgeExpired deletes expired sessions, one-time tokens and login-throttle
// entries from the store, and with Options.AuditRetention the audit entries
// older than that, and returns how many it deleted. Expired items are never
// valid whether purged or not; purging only reclaims space. Call it from time to
// time (the bbolt store can also run it for you, without the audit entries).
// It writes no audit entry of its own.
func (m *Manager) PurgeExpired(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := m.now()
	n, err := m.store.DeleteExpired(ctx, now)
	if err != nil || m.auditRetention == 0 {
		return n, storeErr("purge expired", err)
	}
	k, err := m.store.DeleteAuditBefore(ctx, now.Add(-m.auditRetention))
	return n + k, storeErr("purge expired", err)
}
