package main

import (
	"net/http"

	"github.com/userkit/users"
)

// What a request carries: its client (address and User-Agent) and, behind
// m.Middleware, its session.

func session(r *http.Request) *users.Session {
	sess, _ := users.FromContext(r.Context()) // always there behind Middleware
	return sess
}

// clientIP returns the address of the client that sent r: the connection's
// peer, unless that is one of TrustedProxies; then the rightmost
// X-Forwarded-For entry that is not itself a trusted proxy (see
// users.TrustedProxies: entries a client wrote itself prove nothing).
func (s *Server) clientIP(r *http.Request) string {
	p := users.TrustedProxies{Prefixes: s.TrustedProxies, Header: users.HeaderXForwardedFor}
	return p.Client(r).IP
}

// withClient puts the request's client (clientIP and the User-Agent header)
// in its context for every route, login included: the Manager records it on
// the sessions it creates and on every audit entry, and m.Middleware keeps it.
func (s *Server) withClient(r *http.Request) *http.Request {
	c := users.Client{IP: s.clientIP(r), UserAgent: r.UserAgent()}
	return r.WithContext(users.WithClient(r.Context(), c))
}
