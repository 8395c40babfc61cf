package users

import (
	"context"
	"unicode/utf8"
)

// What a request carries into the Manager: the client it came from
// (WithClient) and the session that made it (NewContext).

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

type sessionKey struct{}

// NewContext returns a copy of ctx that carries s, for FromContext.
func NewContext(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

// FromContext returns the Session that NewContext (or Manager.Middleware) put in
// ctx, and whether there was one.
func FromContext(ctx context.Context) (*Session, bool) {
	s, ok := ctx.Value(sessionKey{}).(*Session)
	return s, ok && s != nil
}
