package users

import (
	"bytes"
	"context"
	"fmt"
)

// The BoltStore's second factors (schema version 3): one MFA record per user in
// the mfa bucket, keyed by user ID, and the MFA challenges in the challenges
// bucket, keyed by hash, with a by-user index (to void a user's challenges) and
// an expiry index (for DeleteExpired). Every change runs in one write
// transaction, which bbolt serialises with every other: that alone makes a
// TOTP step and a recovery code single use and a challenge's attempts bounded,
// whatever the concurrency, since each read-check-write happens inside it.
// The audit entries of each change are written in its transaction.

// GetMFA returns the user's MFA record, or ErrNotFound if the user has none; see
// Store. It is safe for concurrent use.
func (s *BoltStore) GetMFA(ctx context.Context, userID string) (*MFARecord, error) {
	var r *MFARecord
	err := s.view(ctx, "get MFA", func(b *boltTx) (err error) {
		r, err = b.getMFA(userID)
		return err
	}, bucketMFA)
	return r, err
}

// UpdateMFA reads the user's MFA record, calls fn with a copy and writes what
// fn left, in one write transaction shared with concurrent writes (see
// BoltStore): calls for one user run one after the other, so a TOTP step or a
// recovery code is accepted once. A record fn leaves empty is deleted; when fn
// asks, the user's challenges are deleted in the same transaction. fn is
// called inside the transaction, once unless another write of the group failed
// on I/O, when each is run again on its own. It returns the record as written,
// ErrNotFound if there is no such user, fn's error unchanged, or ErrKeyChanged
// if fn changed UserID; it writes nothing then. See Store.
func (s *BoltStore) UpdateMFA(ctx context.Context, userID string, fn func(r *MFARecord) (bool, error), audit ...*AuditEntry) (*MFARecord, error) {
	var out *MFARecord
	var fnErr error
	err := s.update(ctx, "update MFA", func(b *boltTx) error {
		fnErr = nil
		if b.users.Get([]byte(userID)) == nil {
			return ErrNotFound
		}
		r, err := b.getMFA(userID)
		if err == ErrNotFound {
			r, err = &MFARecord{UserID: userID}, nil
		}
		if err != nil {
			return err
		}
		deleteChallenges, err := fn(r)
		if err != nil {
			fnErr = err
			return errFnFailed
		}
		if r.UserID != userID {
			return ErrKeyChanged
		}
		if err := checkAudit(audit); err != nil {
			return err // fn left an entry that cannot be stored: nothing written
		}
		if r.IsEmpty() {
			err = b.mfa.Delete([]byte(userID))
		} else {
			err = b.mfa.Put([]byte(userID), encodeMFA(r))
		}
		if err != nil {
			return err
		}
		if deleteChallenges {
			if err := b.deleteUserChallenges(userID); err != nil {
				return err
			}
		}
		out = r.Clone()
		return b.putAudit(audit)
	})
	if fnErr != nil {
		return nil, fnErr
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CreateChallenge stores a new MFA challenge and its index entries in one write
// transaction, checking there that its user exists at c.UserGeneration. It
// returns ErrNotFound if the user does not exist and ErrConflict if the
// generation differs or c.Hash is taken; it writes nothing then. See Store. It
// is safe for concurrent use.
func (s *BoltStore) CreateChallenge(ctx context.Context, c *ChallengeRecord, audit ...*AuditEntry) error {
	if err := checkIDLen(c.UserID); err != nil {
		return err
	}
	if err := checkAudit(audit); err != nil {
		return err
	}
	v := encodeChallenge(c)
	return s.update(ctx, "create challenge", func(b *boltTx) error {
		u, err := b.getUser(c.UserID)
		if err != nil {
			return err
		}
		if u.Generation != c.UserGeneration || b.chal.Get(c.Hash) != nil {
			return ErrConflict
		}
		if err := b.chal.Put(c.Hash, v); err != nil {
			return err
		}
		if err := b.indexChallenge(c); err != nil {
			return err
		}
		return b.putAudit(audit)
	})
}

// GetChallenge returns the challenge with this hash, whatever its expiry, or
// ErrNotFound; see Store. It is safe for concurrent use.
func (s *BoltStore) GetChallenge(ctx context.Context, hash []byte) (*ChallengeRecord, error) {
	var c *ChallengeRecord
	err := s.view(ctx, "get challenge", func(b *boltTx) (err error) {
		c, err = b.getChallenge(hash)
		return err
	}, bucketChal)
	return c, err
}

// CountChallengeAttempt increments the challenge's Attempts in one write
// transaction, if it is less than max, and returns it as written.
// Transactions run one after the other, so of any number of concurrent calls
// at most max get the challenge. It returns ErrNotFound, writing nothing, if
// there is no such challenge or its Attempts is max already. See Store. It is
// safe for concurrent use.
func (s *BoltStore) CountChallengeAttempt(ctx context.Context, hash []byte, max int, audit ...*AuditEntry) (*ChallengeRecord, error) {
	if err := checkAudit(audit); err != nil {
		return nil, err
	}
	var out *ChallengeRecord
	err := s.update(ctx, "count challenge attempt", func(b *boltTx) error {
		c, err := b.getChallenge(hash)
		if err != nil {
			return err
		}
		if c.Attempts >= max {
			return ErrNotFound
		}
		c.Attempts++
		if err := b.chal.Put(c.Hash, encodeChallenge(c)); err != nil {
			return err
		}
		out = c
		return b.putAudit(audit)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CompleteChallenge checks the challenge and sr, calls fn with the user's MFA
// record, and writes the record as fn left it, deletes the challenge and
// stores sr, in one write transaction: transactions run one after the other,
// so of concurrent calls for one challenge at most one succeeds. fn is called
// inside the transaction, once unless another write of the group failed on
// I/O, when each is run again on its own. It returns ErrNotFound,
// ErrConflict, fn's error or ErrKeyChanged, writing nothing. See Store. It is
// safe for concurrent use.
func (s *BoltStore) CompleteChallenge(ctx context.Context, hash []byte, fn func(r *MFARecord) error, sr *SessionRecord, audit ...*AuditEntry) error {
	if err := checkIDLen(sr.UserID); err != nil {
		return err
	}
	if err := checkAudit(audit); err != nil {
		return err
	}
	v := encodeSession(sr)
	var fnErr error
	err := s.update(ctx, "complete challenge", func(b *boltTx) error {
		fnErr = nil
		c, err := b.getChallenge(hash)
		if err != nil {
			return err
		}
		if c.UserID != sr.UserID {
			return ErrConflict
		}
		u, err := b.getUser(sr.UserID)
		if err != nil {
			return err
		}
		if u.Generation != sr.UserGeneration ||
			b.sessions.Get(sr.TokenHash) != nil ||
			b.sessID.Get([]byte(sr.ID)) != nil {
			return ErrConflict
		}
		r, err := b.getMFA(sr.UserID)
		if err == ErrNotFound {
			r, err = &MFARecord{UserID: sr.UserID}, nil
		}
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			fnErr = err
			return errFnFailed
		}
		if r.UserID != sr.UserID {
			return ErrKeyChanged
		}
		if r.IsEmpty() {
			err = b.mfa.Delete([]byte(sr.UserID))
		} else {
			err = b.mfa.Put([]byte(sr.UserID), encodeMFA(r))
		}
		if err != nil {
			return err
		}
		if err := b.deleteChallenge(hash); err != nil {
			return err
		}
		if err := b.sessions.Put(sr.TokenHash, v); err != nil {
			return err
		}
		if err := b.indexSession(sr); err != nil {
			return err
		}
		return b.putAudit(audit)
	})
	if fnErr != nil {
		return fnErr
	}
	return err
}

// ConsumeChallenge finds, deletes and returns the challenge with this hash in
// one write transaction, whatever its expiry: of any number of concurrent calls
// exactly one gets it. It returns ErrNotFound, deleting nothing, if there is
// none. See Store. It is safe for concurrent use.
func (s *BoltStore) ConsumeChallenge(ctx context.Context, hash []byte, audit ...*AuditEntry) (*ChallengeRecord, error) {
	if err := checkAudit(audit); err != nil {
		return nil, err
	}
	var out *ChallengeRecord
	err := s.update(ctx, "consume challenge", func(b *boltTx) (err error) {
		if out, err = b.getChallenge(hash); err != nil {
			return err
		}
		for _, e := range audit {
			if e != nil && e.UserID == "" {
				e.UserID = out.UserID
			}
		}
		if err := b.deleteChallenge(hash); err != nil {
			return err
		}
		return b.putAudit(audit)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Operations on one transaction's MFA buckets.

func (b *boltTx) getMFA(userID string) (*MFARecord, error) {
	k := []byte(userID)
	v := b.mfa.Get(k)
	if v == nil {
		return nil, ErrNotFound
	}
	return decodeMFA(k, v)
}

func (b *boltTx) getChallenge(hash []byte) (*ChallengeRecord, error) {
	v := b.chal.Get(hash)
	if v == nil {
		return nil, ErrNotFound
	}
	return decodeChallenge(hash, v)
}

func (b *boltTx) indexChallenge(c *ChallengeRecord) error {
	if err := b.chalUser.Put(challengeUserKey(c.UserID, c.Hash), present); err != nil {
		return err
	}
	return b.chalExp.Put(expiryKey(c.ExpiresAt, c.Hash), present)
}

// deleteChallenge deletes the challenge with this hash and its index entries,
// or returns ErrNotFound.
func (b *boltTx) deleteChallenge(hash []byte) error {
	c, err := b.getChallenge(hash)
	if err != nil {
		return err
	}
	if err := b.chal.Delete(hash); err != nil {
		return err
	}
	if err := b.chalUser.Delete(challengeUserKey(c.UserID, hash)); err != nil {
		return err
	}
	return b.chalExp.Delete(expiryKey(c.ExpiresAt, hash))
}

// deleteUserChallenges deletes every challenge of the user: a revocation of
// the user's sessions, or a change to its second factors, voids the logins
// that wait for a second factor.
func (b *boltTx) deleteUserChallenges(userID string) error {
	prefix := lp(nil, userID)
	keys, _ := keysWithPrefix(b.chalUser, prefix)
	for _, k := range keys {
		err := b.deleteChallenge(k[len(prefix):])
		if err == ErrNotFound {
			// Not the caller's "no such challenge": the index is damaged.
			return fmt.Errorf("%w: challenge index entry %x points at a missing challenge", ErrCorrupt, k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// deleteUserMFA deletes the user's MFA record and challenges, for DeleteUser.
func (b *boltTx) deleteUserMFA(userID string) error {
	if err := b.mfa.Delete([]byte(userID)); err != nil {
		return err
	}
	return b.deleteUserChallenges(userID)
}

// rebuildMFA re-encodes one record of the rebuild phase that walks the record
// bucket named phase, and indexes it.
func (b *boltTx) rebuildMFA(phase, k, v []byte) error {
	switch {
	case bytes.Equal(phase, bucketMFA):
		r, err := decodeMFA(k, v)
		if err != nil {
			return err
		}
		return b.mfa.Put(k, encodeMFA(r))
	case bytes.Equal(phase, bucketChal):
		c, err := decodeChallenge(k, v)
		if err != nil {
			return err
		}
		if err := b.chal.Put(k, encodeChallenge(c)); err != nil {
			return err
		}
		return b.indexChallenge(c)
	}
	return fmt.Errorf("%w: no rebuild for bucket %s", ErrCorrupt, phase)
}
