package users_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/userkit/users"
)

// ExampleOptions_onEvent sends every audit event to log/slog as a JSON line,
// after its commit. The clock and the randomness are fixed here only so that
// the output is the same every time (and slog's own time is left out).
func ExampleOptions_onEvent() {
	ctx := context.Background()
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // for a stable example only
			}
			return a
		},
	}))
	m, err := users.New(users.NewMemoryStore(), &users.Options{
		OnEvent: func(ctx context.Context, e users.AuditEntry) {
			logger.InfoContext(ctx, "audit", "event", e)
		},
		BcryptCost:                    4, // tests only; the default is 12
		InsecureLowBcryptCostForTests: true,
		Now:                           func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) },
		Rand:                          rand.NewChaCha8([32]byte{}), // tests only
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// The HTTP middleware (users.ClientMiddleware) puts the client in the
	// context; here it is done by hand.
	ctx = users.WithClient(ctx, users.Client{IP: "198.51.100.7", UserAgent: "curl/8.5"})
	m.Create(ctx, users.NewUser{Email: "ada@example.com", Password: "analytical engine 1843"})
	m.Login(ctx, "ada@example.com", "wrong password")
	m.Login(ctx, "ada@example.com", "analytical engine 1843")

	m.FlushEvents(ctx) // before exiting: hand over what is queued
	// Output:
	// {"level":"INFO","msg":"audit","event":{"id":"01KDWPVNG09MQ5CVWDVQ4EHTW7","time":"2026-01-01T12:00:00Z","type":"user.created","user_id":"01KDWPVNG09MQ5CVWDVNWF6K7M","ip":"198.51.100.7","user_agent":"curl/8.5"}}
	// {"level":"INFO","msg":"audit","event":{"id":"01KDWPVNG09MQ5CVWDVVWJ2ZVG","time":"2026-01-01T12:00:00Z","type":"login.failed","user_id":"01KDWPVNG09MQ5CVWDVNWF6K7M","ip":"198.51.100.7","user_agent":"curl/8.5","reason":"wrong_password"}}
	// {"level":"INFO","msg":"audit","event":{"id":"01KDWPVNG09MQ5CVWDW4JS6EGY","time":"2026-01-01T12:00:00Z","type":"login.succeeded","user_id":"01KDWPVNG09MQ5CVWDVNWF6K7M","session_id":"01KDWPVNG09MQ5CVWDW2GPCNN0","ip":"198.51.100.7","user_agent":"curl/8.5"}}
}
