package main

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/userkit/users"
)

// gatedStore holds every user lookup and user write while gate is locked.
type gatedStore struct {
	users.Store
	gate sync.RWMutex
}

func (g *gatedStore) GetUserByEmail(ctx context.Context, email string) (*users.UserRecord, error) {
	g.gate.RLock()
	defer g.gate.RUnlock()
	return g.Store.GetUserByEmail(ctx, email)
}

func (g *gatedStore) CreateUser(ctx context.Context, r *users.UserRecord, audit ...*users.AuditEntry) error {
	g.gate.RLock()
	defer g.gate.RUnlock()
	return g.Store.CreateUser(ctx, r, audit...)
}

func TestSignUp(t *testing.T) {
	store := &gatedStore{Store: users.NewMemoryStore()}
	e := newEnv(t, store, func(s *Server) { s.SignUp = true })
	admin := e.login(adminEmail, adminPassword)
	const path = "/v1/auth/signup"

	// With the store held, a new email and a taken one get their answers all
	// the same: nothing of the answer waits for the store.
	store.gate.Lock()
	fresh := e.call("POST", path, "", `{"email":"New@Example.com"}`, 202)
	taken := e.call("POST", path, "", `{"email":"ADMIN@example.com"}`, 202)
	if fresh.Raw != taken.Raw {
		t.Errorf("answers differ: %s vs %s", fresh.Raw, taken.Raw)
	}
	store.gate.Unlock()
	ms := e.mail()
	if len(ms) != 2 {
		t.Fatalf("mailed %+v, want a signup and an account-exists mail", ms)
	}
	var token string
	for _, m := range ms {
		switch {
		case m.Kind == "signup" && m.To == "new@example.com" && m.Token != "":
			token = m.Token
		case m.Kind == "account-exists" && m.To == adminEmail && m.Token == "":
		default:
			t.Errorf("unexpected mail %+v", m)
		}
	}
	if token == "" || strings.Contains(fresh.Raw, token) {
		t.Fatalf("no signup token mailed, or it is in the answer: %s", fresh.Raw)
	}

	// Pending: the account is invited and cannot log in; signing up again
	// mails a new link and voids the first.
	if got := e.call("GET", "/v1/users?status=invited", admin, "", 200).users(t); len(got) != 1 || got[0].Email != "new@example.com" || got[0].Role != "user" {
		t.Errorf("status=invited: %v", got)
	}
	if again := e.call("POST", path, "", `{"email":"new@example.com"}`, 202); again.Raw != fresh.Raw {
		t.Errorf("answer differs: %s", again.Raw)
	}
	second := e.mustMail("signup", "new@example.com")
	e.fail("POST", "/v1/auth/accept-invite", "", `{"token":"`+token+`","password":"my own password"}`, 401, "invalid_token", "")

	// The link leads to choosing a password: active, verified, signed in.
	s := e.call("POST", "/v1/auth/accept-invite", "", `{"token":"`+second+`","password":"my own password"}`, 200).session(t)
	if s.User.Status != "active" || !s.User.EmailVerified || s.User.Role != "user" {
		t.Errorf("signed up: %+v", s.User)
	}
	e.login("new@example.com", "my own password")
	if again := e.call("POST", path, "", `{"email":"new@example.com"}`, 202); again.Raw != fresh.Raw {
		t.Errorf("answer differs: %s", again.Raw)
	}
	if ms := e.mail(); len(ms) != 1 || ms[0].Kind != "account-exists" || ms[0].To != "new@example.com" || ms[0].Token != "" {
		t.Errorf("mailed %+v, want one account-exists mail without a token", ms)
	}

	// What the sign-up body may hold: an email, nothing else.
	e.fail("POST", path, "", `{"email":"not an email"}`, 400, "invalid_request", "email")
	e.fail("POST", path, "", `{}`, 400, "invalid_request", "email")
	e.fail("POST", path, "", `{"email":"x@example.com","password":"chosen too early"}`, 400, "invalid_request", "password")
	e.fail("POST", path, "", `{"email":"x@example.com","role":"admin"}`, 400, "invalid_request", "role")
	if ms := e.mail(); len(ms) != 0 {
		t.Errorf("refused sign-ups mailed %+v", ms)
	}
}
