package users_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/userkit/users"
)

// readmeRememberMe is README.md's remember-me snippet.
func readmeRememberMe(ctx context.Context, m *users.Manager, email, password string) (*users.Session, error) {
	ctx = users.WithSessionOptions(ctx, users.SessionOptions{Remember: true})
	sess, err := m.Login(ctx, email, password)
	return sess, err
}

// A sign-in asks for a remembered session ("remember me") or a short one (a
// shared computer) with SessionOptions in its context.
func ExampleWithSessionOptions() {
	m, _ := mfaExampleManager()
	ctx := context.Background()
	if _, err := m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: "correct horse battery staple"}); err != nil {
		panic(err)
	}
	remembered, err := readmeRememberMe(ctx, m, "ada@example.com", "correct horse battery staple")
	if err != nil {
		panic(err)
	}
	short, err := m.Login(users.WithSessionOptions(ctx, users.SessionOptions{MaxTTL: 2 * time.Hour}), "ada@example.com", "correct horse battery staple")
	if err != nil {
		panic(err)
	}
	fmt.Println("remembered for", remembered.ExpiresAt.Sub(remembered.CreatedAt))
	fmt.Println("short for", short.ExpiresAt.Sub(short.CreatedAt))
	// Output:
	// remembered for 720h0m0s
	// short for 2h0m0s
}

// After a second factor, the application may trust the device; the device
// token lets the next password login from it skip the second step.
func ExampleManager_TrustDevice() {
	m, clock := mfaExampleManagerWith(func(o *users.Options) { o.TrustDevices = true })
	ctx := context.Background()
	u, err := m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: "correct horse battery staple"})
	if err != nil {
		panic(err)
	}
	enrol, err := m.BeginTOTP(ctx, u.ID)
	if err != nil {
		panic(err)
	}
	app := &phone{clock: clock, secret: enrol.Secret}
	if _, err := m.ConfirmTOTP(ctx, u.ID, app.code()); err != nil {
		panic(err)
	}
	clock.Advance(30 * time.Second) // the next code

	_, err = m.Login(ctx, "ada@example.com", "correct horse battery staple")
	var c *users.Challenge
	if !errors.As(err, &c) {
		panic(err)
	}
	sess, err := m.CompleteLogin(ctx, c.Token, app.code())
	if err != nil {
		panic(err)
	}
	device, err := m.TrustDevice(ctx, sess.Token) // the user ticked "trust this device"
	if err != nil {
		panic(err)
	}

	// Later, from the same device: no second step.
	again, err := m.Login(users.WithDeviceToken(ctx, device.Token), "ada@example.com", "correct horse battery staple")
	if err != nil {
		panic(err)
	}
	fmt.Println(again.Methods, "second factor proved:", !again.SecondFactorAt.IsZero())
	// From another device: the second step.
	_, err = m.Login(ctx, "ada@example.com", "correct horse battery staple")
	fmt.Println(errors.Is(err, users.ErrSecondFactorRequired))
	// Output:
	// [password trusted_device] second factor proved: false
	// true
}
