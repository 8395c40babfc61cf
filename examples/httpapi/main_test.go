package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/userkit/users"
)

// TestLogAdminIgnored: on a file that has users, -admin-email creates nobody,
// and the log says so, so that a login with the documented admin that fails
// has its reason in the log; an admin that exists is told apart from one that
// does not.
func TestLogAdminIgnored(t *testing.T) {
	m, err := users.New(users.NewMemoryStore(), &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := ensureAdmin(ctx, m, adminEmail, adminPassword); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		email, want string
	}{
		{"other@example.com", "level=WARN msg=\"the store is not empty: -admin-email and $USERS_ADMIN_PASSWORD are ignored"},
		{adminEmail, "level=INFO msg=\"the admin already exists"},
	} {
		var buf bytes.Buffer
		logAdminIgnored(ctx, m, slog.New(slog.NewTextHandler(&buf, nil)), "httpapi.db", tc.email, 1)
		if got := buf.String(); !strings.Contains(got, tc.want) || !strings.Contains(got, "admin_email="+tc.email) {
			t.Errorf("-admin-email %s on a store with users logged %q, want it to contain %q and the email", tc.email, got, tc.want)
		}
	}
}
