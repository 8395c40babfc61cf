package users

import "context"

// GetLoginAttempts returns the throttle entry for key; see Store.
func (s *BoltStore) GetLoginAttempts(ctx context.Context, key ThrottleKey) (LoginAttempts, error) {
	var a LoginAttempts
	err := s.view(ctx, "get login attempts", func(b *boltTx) (err error) {
		if v := b.logins.Get([]byte(key)); v != nil {
			a, err = decodeAttempts(v)
		}
		return err
	}, bucketLogins)
	if err != nil {
		return LoginAttempts{}, err
	}
	return a, nil
}

// UpdateLoginAttempts changes the throttle entry for key in one write
// transaction, shared with concurrent writes; fn is called inside it, as for
// UpdateUser. See Store.
func (s *BoltStore) UpdateLoginAttempts(ctx context.Context, key ThrottleKey, fn func(a *LoginAttempts) error, audit ...*AuditEntry) (LoginAttempts, error) {
	var out LoginAttempts
	var fnErr error
	err := s.update(ctx, "update login attempts", func(b *boltTx) error {
		fnErr = nil
		k := []byte(key)
		var a LoginAttempts
		v := b.logins.Get(k)
		if v != nil {
			var err error
			if a, err = decodeAttempts(v); err != nil {
				return err
			}
		}
		if err := fn(&a); err != nil {
			fnErr = err
			return errFnFailed
		}
		if err := checkAudit(audit); err != nil {
			return err // fn left an entry that cannot be stored: nothing written
		}
		if a.IsZero() && v == nil && !hasAudit(audit) {
			return errRollback // nothing was there, nothing to write
		}
		if err := b.deleteAttempts(k); err != nil && err != ErrNotFound {
			return err
		}
		if !a.IsZero() {
			if err := b.putAttempts(k, a); err != nil {
				return err
			}
			out = a
		}
		return b.putAudit(audit)
	})
	if fnErr != nil {
		return LoginAttempts{}, fnErr
	}
	if err != nil {
		return LoginAttempts{}, err
	}
	return out, nil
}
