package users

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// What a request carries into the Manager: the client it came from
// (WithClient, found behind proxies by TrustedProxies) and the session that
// made it (NewContext).

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

// The client's address behind reverse proxies. A request's peer (its
// RemoteAddr) is the client unless it is a proxy the application trusts;
// then the proxies' header names the client, read from the right, past every
// trusted proxy, so that whatever a client wrote into the header itself is
// never taken for its address.

// The headers TrustedProxies reads.
const (
	HeaderXForwardedFor = "X-Forwarded-For"
	HeaderForwarded     = "Forwarded" // RFC 7239, its for= parameters
)

// TrustedProxies says which peers are the application's reverse proxies and
// which header they put the client's address in. A nil *TrustedProxies, or
// one without Prefixes, trusts nobody: the client is the connection's peer.
// Its methods only read it: it is safe for concurrent use once made.
type TrustedProxies struct {
	// Prefixes are the addresses of the proxies (CIDRs; a single address is a
	// /32 or /128). An IPv4-mapped IPv6 peer matches as its IPv4 address.
	Prefixes []netip.Prefix
	// Header is HeaderXForwardedFor (the default when empty) or
	// HeaderForwarded. Any other value trusts nobody.
	Header string
}

// ParseTrustedProxies returns the TrustedProxies of header ("" for
// X-Forwarded-For) and cidrs (such as "10.0.0.0/8" or "192.0.2.7"). It
// returns a *ValidationError on "header" for another header and on
// "cidrs" for a CIDR or address it cannot parse.
func ParseTrustedProxies(header string, cidrs ...string) (*TrustedProxies, error) {
	p := &TrustedProxies{Header: header}
	switch http.CanonicalHeaderKey(header) {
	case "", HeaderXForwardedFor, HeaderForwarded:
		p.Header = http.CanonicalHeaderKey(header)
	default:
		return nil, invalid("header", ValidationNotOneOf, "must be X-Forwarded-For or Forwarded")
	}
	for _, c := range cidrs {
		pre, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			a, aerr := netip.ParseAddr(strings.TrimSpace(c))
			if aerr != nil {
				return nil, invalid("cidrs", ValidationMalformed, "must be CIDRs or addresses: "+strconv.Quote(clip(c, 64)))
			}
			pre = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		p.Prefixes = append(p.Prefixes, pre.Masked())
	}
	return p, nil
}

// trusts reports whether a is one of the proxies.
func (p *TrustedProxies) trusts(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	for _, pre := range p.Prefixes {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

// Client returns the Client of r: its User-Agent, and the address of the
// connection's peer unless that peer is a trusted proxy. Then it is the
// address the proxies' header names last that is not a trusted proxy's (the
// hops are read from the right, the last one added first); if every hop is
// trusted, the first; if a hop is not an address (such as "unknown"), the
// proxy that added it. A header sent by a peer that is not trusted is
// ignored, and so is a header a client put in front of what the proxies
// added. Addresses are given without port, IPv4-mapped ones as IPv4, and
// without zone but for the peer's own.
func (p *TrustedProxies) Client(r *http.Request) Client {
	c := ClientFromRequest(r)
	peer, err := netip.ParseAddr(c.IP)
	if err != nil {
		return c
	}
	if p == nil || !p.trusts(peer) {
		c.IP = peer.Unmap().String()
		return c
	}
	var hops []string
	switch or(p.Header, HeaderXForwardedFor) {
	case HeaderXForwardedFor:
		for _, line := range r.Header.Values(HeaderXForwardedFor) {
			for h := range strings.SplitSeq(line, ",") {
				hops = append(hops, strings.TrimSpace(h))
			}
		}
	case HeaderForwarded:
		hops = forwardedFor(r.Header.Values(HeaderForwarded))
	default:
		return c
	}
	client := peer.WithZone("").Unmap()
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := hopAddr(hops[i])
		if !ok {
			break
		}
		client = a
		if !p.trusts(a) {
			break
		}
	}
	c.IP = client.String()
	return c
}

// Middleware returns a handler that calls next with the request's Client,
// as Client finds it, in its context (unless the context has one already).
// Put it outside ClientMiddleware and Manager.Middleware, which keep the
// Client they find. The handler is safe for concurrent use.
func (p *TrustedProxies) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := ClientFromContext(r.Context()); !ok {
			r = r.WithContext(WithClient(r.Context(), p.Client(r)))
		}
		next.ServeHTTP(w, r)
	})
}

// forwardedFor returns the for= values of Forwarded header lines, in order;
// an element without one gives "" (not an address).
func forwardedFor(lines []string) []string {
	var out []string
	for _, line := range lines {
		for elem := range strings.SplitSeq(line, ",") {
			v := ""
			for pair := range strings.SplitSeq(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					v = strings.Trim(val, `"`)
				}
			}
			out = append(out, v)
		}
	}
	return out
}

// hopAddr parses one hop of a proxy header: an address, with or without a
// port, IPv6 perhaps in brackets.
func hopAddr(h string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return a.WithZone("").Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr().WithZone("").Unmap(), true
	}
	return netip.Addr{}, false
}
