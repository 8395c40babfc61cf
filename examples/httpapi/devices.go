package main

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/userkit/users"
)

// The client of a request, the caller's devices, and the audit log.

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

// apiDevice is one of the caller's sessions, as the "where you're signed in"
// page shows it. Current marks the session that made the request.
type apiDevice struct {
	ID             string             `json:"id"`
	Current        bool               `json:"current"`
	IP             string             `json:"ip,omitempty"`
	UserAgent      string             `json:"user_agent,omitempty"`
	CreatedAt      string             `json:"created_at"`
	LastSeenAt     string             `json:"last_seen_at"`
	ExpiresAt      string             `json:"expires_at"`
	Methods        []users.AuthMethod `json:"methods"`
	SecondFactorAt string             `json:"second_factor_at,omitempty"`
	// AuthenticatedAt is when the session last proved the password or a
	// factor: the changes that need a recent proof answer 403
	// reauth_required once it is older than the library's ReauthWindow.
	AuthenticatedAt string `json:"authenticated_at"`
}

func toDevice(sess *users.Session, current string) apiDevice {
	d := apiDevice{
		ID: sess.ID, Current: sess.ID == current, IP: sess.IP, UserAgent: sess.UserAgent,
		CreatedAt: timestamp(sess.CreatedAt), LastSeenAt: timestamp(sess.LastSeenAt), ExpiresAt: timestamp(sess.ExpiresAt),
		Methods: sess.Methods, AuthenticatedAt: timestamp(sess.AuthenticatedAt),
	}
	if d.Methods == nil {
		d.Methods = []users.AuthMethod{}
	}
	if !sess.SecondFactorAt.IsZero() {
		d.SecondFactorAt = timestamp(sess.SecondFactorAt)
	}
	return d
}

// sessions lists the caller's live sessions, oldest first.
func (s *Server) sessions(w http.ResponseWriter, r *http.Request) {
	me := session(r)
	list, err := s.Users.Sessions(r.Context(), me.UserID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	data := make([]apiDevice, 0, len(list))
	for _, sess := range list {
		data = append(data, toDevice(sess, me.ID))
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: data})
}

// revokeSession signs one of the caller's devices out; the current one too,
// which is a logout.
func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request) {
	err := s.Users.RevokeSession(r.Context(), session(r).UserID, r.PathValue("id"))
	if errors.Is(err, users.ErrNotFound) {
		// Someone else's session is not found either: nothing tells them apart.
		writeError(w, http.StatusNotFound, users.CodeNotFound, "Session not found", "")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Message: "Session ended"})
}

// revokeOthers signs out every device of the caller but this one.
func (s *Server) revokeOthers(w http.ResponseWriter, r *http.Request) {
	me := session(r)
	n, err := s.Users.RevokeOtherSessions(r.Context(), me.UserID, me.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{
		Success: true,
		Data: struct {
			Revoked int `json:"revoked"`
		}{n},
		Message: "Every other session has ended",
	})
}

// apiAuditPage is one page of a user's audit log, newest first. Next, when
// set, is the before= cursor of the next (older) page.
type apiAuditPage struct {
	Entries []*users.AuditEntry `json:"entries"`
	Next    string              `json:"next,omitempty"`
}

// audit shows an admin one page of what happened to a user: the entries whose
// subject is the user, newest first. Query parameters, all optional:
//
//	type    an event type (users.EventType); repeat it or separate with commas
//	since   RFC 3339 time: entries at or after it
//	until   RFC 3339 time: entries before it
//	limit   page size, 1 to 500, default 50
//	before  the next cursor of the previous page
//
// The log outlives the user, so a removed user's ID still answers.
func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := users.AuditFilter{UserID: r.PathValue("id"), Before: q.Get("before")}
	for _, v := range q["type"] {
		for t := range strings.SplitSeq(v, ",") {
			f.Types = append(f.Types, users.EventType(strings.TrimSpace(t)))
		}
	}
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				invalid(w, p.name, users.ValidationMalformed, "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
				return
			}
			*p.to = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			invalid(w, "limit", users.ValidationOutOfRange, "must be a whole number from 1 to 500")
			return
		}
		f.Limit = n
	}
	p, err := s.Users.Audit(r.Context(), f)
	if err != nil {
		s.fail(w, r, rename(err, map[string]string{"types": "type"}))
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: apiAuditPage{Entries: p.Entries, Next: p.Next}})
}
