package main

import (
	"errors"
	"testing"

	"github.com/userkit/users"
)

func TestEnsureAdmin(t *testing.T) {
	m, err := users.New(users.NewMemoryStore(), &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := ensureAdmin(ctx, m, "", ""); err == nil {
		t.Error("an empty store without an admin email started")
	}
	if _, err := ensureAdmin(ctx, m, adminEmail, "short"); !errors.Is(err, users.ErrInvalidInput) {
		t.Errorf("a weak admin password: %v", err)
	}
	u, err := ensureAdmin(ctx, m, adminEmail, adminPassword)
	if err != nil || u == nil || u.Role != users.RoleAdmin {
		t.Fatalf("ensureAdmin = %v, %v", u, err)
	}
	if u, err := ensureAdmin(ctx, m, "other@example.com", adminPassword); err != nil || u != nil {
		t.Errorf("second ensureAdmin = %v, %v; want nothing created", u, err)
	}
	if u, err := ensureAdmin(ctx, m, "", ""); err != nil || u != nil {
		t.Errorf("ensureAdmin on a store with users and no flags = %v, %v", u, err)
	}
}
