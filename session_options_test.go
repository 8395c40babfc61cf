package users_test

import (
	"errors"
	"testing"
	"time"

	"github.com/userkit/users"
)

// TestOptions_SessionLifetimes checks that New refuses a negative session
// lifetime, idle timeout or trusted-device lifetime with a *ValidationError
// naming the option.
func TestOptions_SessionLifetimes(t *testing.T) {
	for field, edit := range map[string]func(o *users.Options){
		"options.SessionTTL":          func(o *users.Options) { o.SessionTTL = -time.Nanosecond },
		"options.SessionIdleTimeout":  func(o *users.Options) { o.SessionIdleTimeout = -time.Nanosecond },
		"options.RememberSessionTTL":  func(o *users.Options) { o.RememberSessionTTL = -time.Nanosecond },
		"options.RememberIdleTimeout": func(o *users.Options) { o.RememberIdleTimeout = -time.Nanosecond },
		"options.TrustedDeviceTTL":    func(o *users.Options) { o.TrustedDeviceTTL = -time.Nanosecond },
	} {
		o := &users.Options{BcryptCost: 4, InsecureLowBcryptCostForTests: true}
		edit(o)
		_, err := users.New(users.NewMemoryStore(), o)
		var ve *users.ValidationError
		if !errors.As(err, &ve) || ve.Field != field {
			t.Errorf("New with a negative %s = %v, want a *ValidationError on it", field, err)
		}
	}
}
