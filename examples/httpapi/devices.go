package main

import (
	"errors"
	"net/http"

	"github.com/userkit/users"
)

// The caller's devices: the sessions signed in as the caller, and ending them.

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
