package users

import (
	"context"
	"time"
)

// Session lifetimes. Every session has an absolute end (ExpiresAt, fixed at
// login) and may have an idle timeout, measured from LastSeenAt, which
// ValidateToken moves forward: the idle timeout slides, the absolute end never
// does, so however active a session is it ends at ExpiresAt. A sign-in picks
// its session's kind with SessionOptions carried in its context: every method
// that creates a session (Login, CompleteLogin, a magic link, an accepted
// invitation, and any sign-in added later, since they all end in
// startSession) reads them there, so no signature grows a parameter.

// The defaults of the remembered-session options.
const (
	DefaultRememberSessionTTL  = 30 * 24 * time.Hour // Options.RememberSessionTTL
	DefaultRememberIdleTimeout = 7 * 24 * time.Hour  // Options.RememberIdleTimeout
)

// SessionOptions are what a sign-in asks of the session it creates: a
// remembered session ("remember me") or a short one (a shared computer). The
// zero value asks for an ordinary session: Options.SessionTTL and
// Options.SessionIdleTimeout. Pass them with WithSessionOptions.
type SessionOptions struct {
	// Remember asks for a remembered session: it ends Options.RememberSessionTTL
	// after login (default 30 days) and after Options.RememberIdleTimeout
	// without use (default 7 days), instead of the ordinary SessionTTL and
	// SessionIdleTimeout.
	Remember bool

	// MaxTTL, when positive, shortens the session's absolute lifetime to at
	// most MaxTTL; it never lengthens it. Zero keeps the lifetime of the
	// session's kind. Negative is a *ValidationError on "session.MaxTTL".
	MaxTTL time.Duration

	// MaxIdle, when positive, gives the session an idle timeout of at most
	// MaxIdle: shorter than its kind's, or one where its kind has none. Zero
	// keeps the kind's. Negative is a *ValidationError on "session.MaxIdle".
	MaxIdle time.Duration
}

type sessionOptionsKey struct{}

// WithSessionOptions returns a copy of ctx that carries o. Every Manager
// method that creates a session (Login, CompleteLogin, LoginWithMagicLink,
// AcceptInvitation, ...) called with it makes the session o asks for. For a
// user with a second factor the session is made by CompleteLogin, so pass o
// to that call: Login's challenge does not keep it.
func WithSessionOptions(ctx context.Context, o SessionOptions) context.Context {
	return context.WithValue(ctx, sessionOptionsKey{}, o)
}

// SessionOptionsFromContext returns the SessionOptions WithSessionOptions put
// in ctx, and whether there were any.
func SessionOptionsFromContext(ctx context.Context) (SessionOptions, bool) {
	o, ok := ctx.Value(sessionOptionsKey{}).(SessionOptions)
	return o, ok
}

// sessionConfig is the Manager's session lifetimes.
type sessionConfig struct {
	ttl, idle                 time.Duration // ordinary sessions; idle zero: none
	rememberTTL, rememberIdle time.Duration
	touchEvery                time.Duration // how often ValidateToken writes LastSeenAt
}

// newSessionConfig checks the session options of o and fills in their defaults.
func newSessionConfig(o *Options) (sessionConfig, error) {
	c := sessionConfig{
		ttl:          or(o.SessionTTL, 24*time.Hour),
		idle:         o.SessionIdleTimeout,
		rememberTTL:  or(o.RememberSessionTTL, DefaultRememberSessionTTL),
		rememberIdle: or(o.RememberIdleTimeout, DefaultRememberIdleTimeout),
		touchEvery:   time.Minute,
	}
	switch {
	case c.ttl < 0:
		return c, invalid("options.SessionTTL", ValidationNegative, "must not be negative")
	case c.idle < 0:
		return c, invalid("options.SessionIdleTimeout", ValidationNegative, "must not be negative")
	case c.rememberTTL < 0:
		return c, invalid("options.RememberSessionTTL", ValidationNegative, "must not be negative")
	case c.rememberIdle < 0:
		return c, invalid("options.RememberIdleTimeout", ValidationNegative, "must not be negative")
	}
	if c.idle > 0 {
		c.touchEvery = min(c.touchEvery, c.idle/2)
	}
	return c, nil
}

// lifetime returns the absolute lifetime and the idle timeout of the session
// a sign-in with ctx creates, the idle timeout as SessionRecord.IdleTimeout
// keeps it (zero: the ordinary one), or a *ValidationError for
// SessionOptions out of range.
func (c *sessionConfig) lifetime(ctx context.Context) (ttl, idle time.Duration, err error) {
	o, _ := SessionOptionsFromContext(ctx)
	switch {
	case o.MaxTTL < 0:
		return 0, 0, invalid("session.MaxTTL", ValidationNegative, "must not be negative")
	case o.MaxIdle < 0:
		return 0, 0, invalid("session.MaxIdle", ValidationNegative, "must not be negative")
	}
	ttl, idle = c.ttl, 0
	if o.Remember {
		ttl, idle = c.rememberTTL, c.rememberIdle
	}
	if o.MaxTTL > 0 {
		ttl = min(ttl, o.MaxTTL)
	}
	if o.MaxIdle > 0 {
		kind := idle
		if !o.Remember {
			kind = c.idle
		}
		if kind == 0 || o.MaxIdle < kind {
			idle = o.MaxIdle
		}
	}
	return ttl, idle, nil
}

// idleTimeout is the idle timeout of the session s; zero: none.
func (c *sessionConfig) idleTimeout(s *SessionRecord) time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return c.idle
}

// touchDue is how long after its LastSeenAt ValidateToken writes the
// session's LastSeenAt again: about a minute, and within half its idle
// timeout.
func (c *sessionConfig) touchDue(s *SessionRecord) time.Duration {
	if s.IdleTimeout > 0 {
		return min(c.touchEvery, s.IdleTimeout/2)
	}
	return c.touchEvery
}

// idleFor reports whether a session last seen at seen is past its idle
// timeout idle (zero: none) at now.
func idleFor(idle time.Duration, seen, now time.Time) bool {
	return idle > 0 && !now.Before(seen.Add(idle))
}
