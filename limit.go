package users

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Rate limits. Each limited call counts one attempt of its action under up to
// two keys, the client's address (an IPv4 address, or an IPv6 /64 by
// default) and the identifier it names (an email, a user ID), before it does
// any work. The counts are LoginAttempts entries of the ThrottleStore under
// keys of their own ("rate:…"), counted in one atomic UpdateLoginAttempts
// each, so several instances over one PostgreSQL database share them and no
// number of concurrent calls gets past a limit. A window is fixed: it starts
// with the first attempt counted, ends Window later, and its entry expires
// then (PurgeExpired deletes it). The per-account lockout (throttle.go) is a
// separate, older mechanism and stays as it is.

// RateAction names an action the rate limiter counts (see Manager.Limit).
// The Manager limits its own public flows under the actions below; an
// application may limit actions of its own by giving them a RateLimit in
// Options.RateLimits.
type RateAction string

// The actions the Manager limits.
const (
	// ActionLogin is Login, counted per client before the password is
	// compared. It has no identifier limit by default: the account lockout
	// (Options.MaxFailedLogins) is that.
	ActionLogin RateAction = "login"
	// ActionSignUp is SignUp, per client and per email.
	ActionSignUp RateAction = "signup"
	// ActionPasswordReset is RequestPasswordReset, per client and per email.
	ActionPasswordReset RateAction = "password_reset"
	// ActionMagicLink is RequestMagicLink, per client and per email.
	ActionMagicLink RateAction = "magic_link"
	// ActionSecondFactor is CompleteLogin and StepUp, per client. It has no
	// identifier limit by default: the account's code lockout is that.
	ActionSecondFactor RateAction = "second_factor"
	// ActionRedeem is the redemption of a one-time token (ResetPassword,
	// VerifyEmail, AcceptInvitation, LoginWithMagicLink, ConfirmEmailChange),
	// per client: a token names nobody before it is found.
	ActionRedeem RateAction = "redeem"
)

// RateLimit is the limit of one RateAction: at most PerClient attempts from
// one client address and at most PerIdentifier attempts for one identifier in
// each Window.
//
// In Options.RateLimits a zero field takes the action's default (see
// DefaultRateLimit); an action of the application's own has no defaults, so
// there a zero count means no limit and Window is required. A negative count
// turns that key's limit off.
type RateLimit struct {
	PerClient     int
	PerIdentifier int
	Window        time.Duration
}

// defaultRateLimits is the table of the Manager's actions and their
// default limits, made anew for each caller. A flow that adds an action adds
// its row here.
func defaultRateLimits() map[RateAction]RateLimit {
	perClient5m := RateLimit{PerClient: 30, PerIdentifier: -1, Window: 5 * time.Minute}
	byEmail := RateLimit{PerClient: 10, PerIdentifier: 3, Window: time.Hour}
	return map[RateAction]RateLimit{
		ActionLogin:         perClient5m,
		ActionSignUp:        byEmail,
		ActionPasswordReset: byEmail,
		ActionMagicLink:     byEmail,
		ActionSecondFactor:  perClient5m,
		ActionRedeem:        perClient5m,
	}
}

// DefaultRateLimit returns the default limit of one of the Manager's actions,
// and false for any other action. Login allows 30 attempts per client in 5
// minutes; sign-up, password-reset and magic-link requests 10 per client and
// 3 per email in an hour; second-factor codes 30 per client in 5 minutes;
// token redemptions 30 per client in 5 minutes. A negative count means no
// limit on that key. It is safe for concurrent use.
func DefaultRateLimit(a RateAction) (RateLimit, bool) {
	l, ok := defaultRateLimits()[a]
	return l, ok
}

// defaultIPv6Prefix is how many leading bits of an IPv6 address name one
// client by default: a /64 is what one subscriber usually gets.
const defaultIPv6Prefix = 64

// LimitError is the error of an attempt refused for a while: by a rate limit
// (errors.Is(err, ErrRateLimited)) or by an account's lock
// (errors.Is(err, ErrAccountLocked)). Get it with errors.As to learn when to
// try again; HTTPError answers 429 and WriteError adds a Retry-After header.
type LimitError struct {
	// Err is ErrRateLimited or ErrAccountLocked.
	Err error
	// Action is the rate-limited action; empty for a lock.
	Action RateAction
	// RetryAfter is how long until an attempt may be admitted again: the end
	// of the window or of the lock. Zero for a lock that lasts until a reset
	// or Unlock (MaxConsecutiveFailures).
	RetryAfter time.Duration
}

// Error returns Err's text.
func (e *LimitError) Error() string { return e.Err.Error() }

// Unwrap returns Err, for errors.Is.
func (e *LimitError) Unwrap() error { return e.Err }

// errLimitFull is what the counting fn returns when a window is full.
var errLimitFull = errors.New("users: window full")

// rateLimits is a Manager's table of limits, defaults filled in.
type rateLimits struct {
	limits     map[RateAction]RateLimit
	ipv6Prefix int
	refused    atomic.Uint64 // for EventStats
}

// newRateLimits checks opts' limits and fills in the defaults. It returns a
// *ValidationError naming the option.
func newRateLimits(given map[RateAction]RateLimit, ipv6Prefix int) (*rateLimits, error) {
	rl := &rateLimits{limits: defaultRateLimits(), ipv6Prefix: or(ipv6Prefix, defaultIPv6Prefix)}
	if rl.ipv6Prefix < 1 || rl.ipv6Prefix > 128 {
		return nil, invalid("options.RateLimitIPv6Prefix", ValidationOutOfRange, "must be between 1 and 128")
	}
	for a, l := range given {
		field := "options.RateLimits[" + strconv.Quote(string(a)) + "]"
		if a == "" {
			return nil, invalid("options.RateLimits", ValidationRequired, "an action must have a name")
		}
		def, ok := rl.limits[a]
		if !ok {
			def = RateLimit{PerClient: -1, PerIdentifier: -1}
		}
		l = RateLimit{PerClient: or(l.PerClient, def.PerClient), PerIdentifier: or(l.PerIdentifier, def.PerIdentifier), Window: or(l.Window, def.Window)}
		switch {
		case l.Window < 0:
			return nil, invalid(field+".Window", ValidationNegative, "must not be negative")
		case l.Window == 0 && (l.PerClient > 0 || l.PerIdentifier > 0):
			return nil, invalid(field+".Window", ValidationRequired, "is required for an action of the application's own")
		}
		rl.limits[a] = l
	}
	return rl, nil
}

// Limit counts one attempt at action by the client in ctx (its Client's IP,
// see WithClient and TrustedProxies) and for identifier, and refuses it with
// a *LimitError (errors.Is ErrRateLimited) when either count has reached its
// limit in the current window (Options.RateLimits). A refused attempt counts
// nothing. The Manager calls it in its own public flows (see RateAction); an
// application calls it for actions of its own before doing their work, and
// for one of the Manager's actions on paths that it serves itself.
//
// A call whose ctx carries no Client is not limited per client (it comes from
// the application, not from a client), nor per identifier: the limits are for
// requests. An empty identifier is not limited per identifier. The
// identifier is compared after trimming space and folding ASCII case, and
// kept only as a hash. IPv6 addresses count per /64
// (Options.RateLimitIPv6Prefix); a Client.IP that is not an address counts as
// the text it is. The call that fills a window writes one audit entry,
// rate_limit.reached, with the client and the action (not the identifier),
// so that one client's attempts across many accounts are visible; every
// refusal is counted in EventStats.RateLimited.
//
// It returns a *ValidationError on "action" for an action with no limit
// configured, and the store's error if counting fails. It is safe for
// concurrent use: of any number of concurrent calls over a limit of n, at
// most n are admitted.
func (m *Manager) Limit(ctx context.Context, action RateAction, identifier string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, ok := m.rate.limits[action]; !ok {
		return invalid("action", ValidationNotOneOf, "has no rate limit configured")
	}
	return m.limit(ctx, action, identifier)
}

// limit is Limit for the Manager's own actions, which always have a limit.
// The flows of other files call it first, before any work.
func (m *Manager) limit(ctx context.Context, action RateAction, identifier string) error {
	c, ok := ClientFromContext(ctx)
	if !ok {
		return nil
	}
	l := m.rate.limits[action]
	if ip := clip(c.IP, maxClientBytes); ip != "" && l.PerClient > 0 {
		if err := m.count(ctx, action, "client", m.clientKey(ip), l.PerClient, l.Window); err != nil {
			return err
		}
	}
	if identifier != "" && l.PerIdentifier > 0 {
		id := clip(identifier, maxIdentifierBytes)
		if isASCII(id) {
			id = strings.ToLower(strings.TrimSpace(id))
		}
		return m.count(ctx, action, "identifier", id, l.PerIdentifier, l.Window)
	}
	return nil
}

// clientKey is the part of a client's address that names it: the address
// for IPv4, its first m.rate.ipv6Prefix bits for IPv6, the text as it is for
// anything that is not an address.
func (m *Manager) clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(m.rate.ipv6Prefix) // cannot fail: 1..128 for IPv6
	return p.String()
}

// RateLimitKey is the ThrottleKey under which the rate limiter counts action
// for one client address (scope "client", the address as Limit keys it) or
// one identifier (scope "identifier", trimmed and folded): "rate:", the
// action, the scope and the first 128 bits of the SHA-256 of the value, so
// the store keeps neither addresses nor what was typed. It is exported for
// tests and operators who look an entry up; it is safe for concurrent use.
func RateLimitKey(action RateAction, scope, value string) ThrottleKey {
	sum := sha256.Sum256([]byte(value))
	return ThrottleKey("rate:" + string(action) + ":" + scope + ":" + hex.EncodeToString(sum[:16]))
}

// count takes one attempt of the window of (action, scope, value), or
// refuses with a *LimitError when the window holds limit attempts already.
// The attempt that fills the window then appends its rate_limit.reached
// entry; the others make no entry, and take no ID from Options.Rand.
func (m *Manager) count(ctx context.Context, action RateAction, scope, value string, limit int, window time.Duration) error {
	now := m.now()
	var retry time.Duration
	a, err := m.store.UpdateLoginAttempts(ctx, RateLimitKey(action, scope, value), func(a *LoginAttempts) error {
		if a.Failures == 0 || !now.Before(a.WindowStart.Add(window)) {
			*a = LoginAttempts{WindowStart: now} // a new window
		}
		end := a.WindowStart.Add(window)
		if a.Failures >= limit {
			retry = end.Sub(now)
			return errLimitFull
		}
		a.Failures++
		a.ExpiresAt = end
		return nil
	})
	switch {
	case errors.Is(err, errLimitFull):
		m.rate.refused.Add(1)
		return &LimitError{Err: ErrRateLimited, Action: action, RetryAfter: retry}
	case err != nil:
		return storeErr("rate limit", err)
	case a.Failures != limit:
		return nil
	}
	// Counts are serialised per key: exactly one attempt per window gets here.
	e, err := m.auditEntry(ctx, EventRateLimitReached, "")
	if err != nil {
		return err
	}
	e.Reason = scope
	e.Data = map[string]string{"action": string(action), "until": a.ExpiresAt.UTC().Format(time.RFC3339)}
	return storeErr("rate limit", m.write(ctx, "", func() error { return m.store.AppendAudit(ctx, e) }, e))
}

// lockedError is the error of an attempt refused because key is locked, as
// a says: ErrAccountLocked in a *LimitError that says when the lock ends.
func (m *Manager) lockedError(a LoginAttempts, now time.Time) error {
	e := &LimitError{Err: ErrAccountLocked}
	if a.Consecutive < MaxConsecutiveFailures && now.Before(a.LockedUntil) {
		e.RetryAfter = a.LockedUntil.Sub(now)
	}
	return e
}

// SignUp is Create for a public sign-up form: it first counts the attempt
// under ActionSignUp for the client in ctx and for nu.Email (see Limit), and
// refuses it with a *LimitError (ErrRateLimited) over the limit, before any
// work. Everything else is Create's: its errors, and its fields, which the
// application fills (never let a visitor choose Role or Status). Call Create
// for users made by administrators, imports and invitations. It is safe for
// concurrent use.
func (m *Manager) SignUp(ctx context.Context, nu NewUser) (*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.limit(ctx, ActionSignUp, nu.Email); err != nil {
		return nil, err
	}
	return m.Create(ctx, nu)
}
