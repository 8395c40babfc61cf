package main

import (
	"errors"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// TestIdleTimeout checks that the API's options end a session left unused for
// defaultIdleTimeout, and keep one in use.
func TestIdleTimeout(t *testing.T) {
	clock := storetest.NewClock()
	opts := managerOptions(10, defaultIdleTimeout)
	// The cost is not what this test is about: bcrypt at cost 10 under -race
	// took most of its time.
	opts.BcryptCost, opts.InsecureLowBcryptCostForTests = 4, true
	opts.Now = clock.Now
	m, err := users.New(users.NewMemoryStore(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: storetest.Password}); err != nil {
		t.Fatal(err)
	}
	s, err := m.Login(ctx, "ada@example.com", storetest.Password)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // in use: a request every 20 minutes
		clock.Advance(20 * time.Minute)
		if _, err := m.ValidateToken(ctx, s.Token); err != nil {
			t.Fatalf("a session in use ended: %v", err)
		}
	}
	clock.Advance(defaultIdleTimeout + time.Minute) // the write of LastSeenAt may lag a minute
	if _, err := m.ValidateToken(ctx, s.Token); !errors.Is(err, users.ErrInvalidToken) {
		t.Errorf("after %v idle: %v, want ErrInvalidToken", defaultIdleTimeout+time.Minute, err)
	}
	if defaultIdleTimeout > time.Hour {
		t.Errorf("defaultIdleTimeout %v: more than an hour is not what an example should teach", defaultIdleTimeout)
	}
}
