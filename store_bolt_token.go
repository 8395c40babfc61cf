package users

import "context"

// CreateToken stores a one-time token and its indexes in one write transaction;
// see Store.
func (s *BoltStore) CreateToken(ctx context.Context, t *TokenRecord, replace bool, audit ...*AuditEntry) error {
	if err := checkIDLen(t.UserID); err != nil {
		return err
	}
	if err := checkAudit(audit); err != nil {
		return err
	}
	v := encodeToken(t)
	return s.update(ctx, "create token", func(b *boltTx) error {
		if b.users.Get([]byte(t.UserID)) == nil {
			return ErrNotFound
		}
		if b.tokens.Get(t.Hash) != nil {
			return ErrConflict
		}
		if replace {
			if err := b.deleteUserTokens(lp(lp(nil, t.UserID), string(t.Purpose))); err != nil {
				return err
			}
		}
		if err := b.tokens.Put(t.Hash, v); err != nil {
			return err
		}
		if err := b.indexToken(t); err != nil {
			return err
		}
		return b.putAudit(audit)
	})
}

// GetToken returns a one-time token without consuming it, whatever its expiry;
// see Store.
func (s *BoltStore) GetToken(ctx context.Context, hash []byte, purpose Purpose) (*TokenRecord, error) {
	var t *TokenRecord
	err := s.view(ctx, "get token", func(b *boltTx) (err error) {
		t, err = b.getToken(hash)
		return err
	}, bucketTokens)
	if err != nil {
		return nil, err
	}
	if t.Purpose != purpose {
		return nil, ErrNotFound
	}
	return t, nil
}

// ConsumeToken finds, deletes and returns a one-time token in one write
// transaction, whatever its expiry; see Store.
func (s *BoltStore) ConsumeToken(ctx context.Context, hash []byte, purpose Purpose, audit ...*AuditEntry) (*TokenRecord, error) {
	if err := checkAudit(audit); err != nil {
		return nil, err
	}
	var t *TokenRecord
	err := s.update(ctx, "consume token", func(b *boltTx) (err error) {
		if t, err = b.getToken(hash); err != nil {
			return err
		}
		if t.Purpose != purpose {
			return ErrNotFound
		}
		for _, e := range audit {
			if e != nil && e.UserID == "" {
				e.UserID = t.UserID
			}
		}
		if err := b.deleteToken(hash); err != nil {
			return err
		}
		return b.putAudit(audit)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}
