package main

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/userkit/users"
)

// Support for admins: why a user cannot log in, ending a login lock, and the
// user's audit log.

// lockState shows support staff why a user cannot log in.
func (s *Server) lockState(w http.ResponseWriter, r *http.Request) {
	st, err := s.Users.LockState(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: st})
}

// unlock ends a user's login lock, a permanent one included.
func (s *Server) unlock(w http.ResponseWriter, r *http.Request) {
	if err := s.Users.Unlock(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Message: "Login lock ended"})
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
