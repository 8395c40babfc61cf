package main

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/userkit/users"
)

// What a request carries: its client (address and User-Agent) and, behind
// m.Middleware, its session.

func session(r *http.Request) *users.Session {
	sess, _ := users.FromContext(r.Context()) // always there behind Middleware
	return sess
}

// clientIP returns the address of the client that sent r. It is the address
// the connection came from (r.RemoteAddr), unless that is one of
// TrustedProxies: then it is the address that proxy reports, the rightmost
// X-Forwarded-For entry that is not itself a trusted proxy. Any client can
// send an X-Forwarded-For header saying anything, so the header is read only
// from a proxy we know appends the real peer to it; entries left of the first
// untrusted one were written by whoever the proxy talked to and prove nothing.
// A malformed entry ends the walk at the last address that is known.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer.String()
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		peer = a.Unmap()
		if !s.trusted(peer) {
			break
		}
	}
	return peer.String()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// withClient puts the request's client (clientIP and the User-Agent header)
// in its context for every route, login included: the Manager records it on
// the sessions it creates and on every audit entry, and m.Middleware keeps it.
func (s *Server) withClient(r *http.Request) *http.Request {
	c := users.Client{IP: s.clientIP(r), UserAgent: r.UserAgent()}
	return r.WithContext(users.WithClient(r.Context(), c))
}
