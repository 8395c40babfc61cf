package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/userkit/users"
)

// Remember me and trusted devices. POST /v1/auth/login, /v1/auth/login/mfa
// and /v1/auth/login/passkey take "remember": true for a remembered session (30
// days, ended by a week without use) instead of the ordinary one. The login
// takes the "device_token" a client was given when it trusted itself: with
// it, a user with a second factor gets the session without the second step.
// The second step takes "trust_device": true to trust the client, and then
// answers its "device_token" (keep it on the device) and
// "device_expires_at". GET /v1/me/trusted-devices lists the caller's trusted
// devices beside GET /v1/me/sessions, and DELETE /v1/me/trusted-devices/{id}
// forgets one. A password change, "log out everywhere", a suspension or a
// change of second factor forgets them all.

// signinContext is the request's context with the session a login asked for
// and the device token it presented.
func signinContext(r *http.Request, remember bool, deviceToken string) context.Context {
	ctx := users.WithSessionOptions(r.Context(), users.SessionOptions{Remember: remember})
	if deviceToken != "" {
		ctx = users.WithDeviceToken(ctx, deviceToken)
	}
	return ctx
}

// apiTrustedDevice is one of the caller's trusted devices.
type apiTrustedDevice struct {
	ID         string `json:"id"`
	IP         string `json:"ip,omitempty"`
	UserAgent  string `json:"user_agent,omitempty"`
	CreatedAt  string `json:"created_at"`
	ExpiresAt  string `json:"expires_at"`
	LastUsedAt string `json:"last_used_at,omitempty"`
}

// trustedDevices lists the caller's trusted devices, oldest first.
func (s *Server) trustedDevices(w http.ResponseWriter, r *http.Request) {
	list, err := s.Users.TrustedDevices(r.Context(), session(r).UserID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	data := make([]apiTrustedDevice, 0, len(list))
	for _, d := range list {
		a := apiTrustedDevice{ID: d.ID, IP: d.IP, UserAgent: d.UserAgent, CreatedAt: timestamp(d.CreatedAt), ExpiresAt: timestamp(d.ExpiresAt)}
		if !d.LastUsedAt.IsZero() {
			a.LastUsedAt = timestamp(d.LastUsedAt)
		}
		data = append(data, a)
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: data})
}

// forgetTrustedDevice stops trusting one of the caller's devices: 404 if the
// caller has no such device.
func (s *Server) forgetTrustedDevice(w http.ResponseWriter, r *http.Request) {
	err := s.Users.RevokeTrustedDevice(r.Context(), session(r).UserID, r.PathValue("id"))
	if errors.Is(err, users.ErrNotFound) {
		writeError(w, http.StatusNotFound, users.CodeNotFound, "No such trusted device", "")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Message: "The device is no longer trusted"})
}
