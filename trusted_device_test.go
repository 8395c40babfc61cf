package users_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

// revokingStore runs revoke once, before the first GetUser or GetMFA that
// follows arm: a revocation landing in the middle of a call.
type revokingStore struct {
	users.Store
	mu     sync.Mutex
	revoke func()
}

func (s *revokingStore) arm(revoke func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoke = revoke
}

func (s *revokingStore) fire() {
	s.mu.Lock()
	r := s.revoke
	s.revoke = nil
	s.mu.Unlock()
	if r != nil {
		r()
	}
}

func (s *revokingStore) GetUser(ctx context.Context, id string) (*users.UserRecord, error) {
	s.fire()
	return s.Store.GetUser(ctx, id)
}

func (s *revokingStore) GetMFA(ctx context.Context, userID string) (*users.MFARecord, error) {
	s.fire()
	return s.Store.GetMFA(ctx, userID)
}

// TestTrustDevice_RevokedMeanwhile checks that a revocation landing while
// TrustDevice runs, after it read the session and before it stores the
// device, leaves no trusted device: LogoutAll (which moves the user's
// Generation) and new recovery codes (which change the factors) each run
// in the middle of TrustDevice. After LogoutAll the device is stored but
// dead: the next login with its token is asked for the second factor. New
// recovery codes postdate the session's proof: TrustDevice refuses with
// ErrReauthRequired.
func TestTrustDevice_RevokedMeanwhile(t *testing.T) {
	for name, tc := range map[string]struct {
		revoke func(t *testing.T, m *users.Manager, userID string)
		want   error // from TrustDevice
	}{
		"LogoutAll": {func(t *testing.T, m *users.Manager, userID string) {
			must(t, m.LogoutAll(context.Background(), userID))
		}, nil},
		"RecoveryCodesRenewed": {func(t *testing.T, m *users.Manager, userID string) {
			_, err := m.RegenerateRecoveryCodes(context.Background(), userID)
			must(t, err)
		}, users.ErrReauthRequired},
	} {
		t.Run(name, func(t *testing.T) {
			store := &revokingStore{Store: users.NewMemoryStore()}
			f := storetest.NewFixture(t, store, func(o *users.Options) {
				storetest.WithMFAKey(o)
				o.TrustDevices = true
			})
			ctx := t.Context()
			u := f.MustCreate(t, users.NewUser{Email: f.Email()})
			secret, _ := f.MustEnrolTOTP(t, u.ID)
			c := f.MustChallenge(t, u.Email)
			sess, err := f.M.CompleteLogin(ctx, c.Token, storetest.TOTPCode(t, secret, f.Clock.Now()))
			must(t, err)
			f.Clock.Advance(1) // the revocation comes after the proof
			store.arm(func() { tc.revoke(t, f.M, u.ID) })
			d, err := f.M.TrustDevice(ctx, sess.Token)
			if tc.want != nil || err != nil {
				if !errors.Is(err, tc.want) {
					t.Errorf("TrustDevice with %s landing meanwhile = %v, want %v", name, err, tc.want)
				}
				return
			}
			_, err = f.M.Login(users.WithDeviceToken(ctx, d.Token), u.Email, storetest.Password)
			if !errors.Is(err, users.ErrSecondFactorRequired) {
				t.Errorf("Login with a device trusted across %s = %v, want ErrSecondFactorRequired", name, err)
			}
		})
	}
}
