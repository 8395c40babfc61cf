package users

import (
	"bytes"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"
)

// Operations on one transaction's buckets.

// decoyLookup does the work a found user costs, a record read and decoded, for
// a lookup that found nobody, so that the time a login takes does not tell
// whether its identifier names an account (a locked account is otherwise
// answered measurably later than a locked unknown identifier). It reads the
// first user, a real record of a real size, and discards it.
func (b *boltTx) decoyLookup() {
	if k, v := b.users.Cursor().First(); v != nil {
		_, _ = decodeUser(k, v) // only its cost matters
	}
}

func (b *boltTx) getUser(id string) (*UserRecord, error) {
	k := []byte(id)
	v := b.users.Get(k)
	if v == nil {
		return nil, ErrNotFound
	}
	return decodeUser(k, v)
}

func (b *boltTx) putUser(r *UserRecord) error {
	return b.users.Put([]byte(r.ID), encodeUser(r))
}

// indexUser points r's email, username and external ID at it, replacing old's
// (nil for a new user). It returns ErrDuplicateEmail, ErrDuplicateUsername or
// ErrDuplicateExternalID, having written nothing, if another user holds one.
func (b *boltTx) indexUser(r, old *UserRecord) error {
	var oldEmail, oldUsername, oldExternal string
	if old != nil {
		oldEmail, oldUsername, oldExternal = old.Email, old.Username, old.ExternalID
	}
	if r.Email != oldEmail && r.Email != "" {
		if id := b.email.Get([]byte(r.Email)); id != nil && string(id) != r.ID {
			return ErrDuplicateEmail
		}
	}
	if r.Username != oldUsername && r.Username != "" {
		if id := b.username.Get([]byte(r.Username)); id != nil && string(id) != r.ID {
			return ErrDuplicateUsername
		}
	}
	if r.ExternalID != oldExternal && r.ExternalID != "" {
		if id := b.external.Get([]byte(r.ExternalID)); id != nil && string(id) != r.ID {
			return ErrDuplicateExternalID
		}
	}
	for _, x := range []struct {
		idx      *bbolt.Bucket
		old, new string
	}{{b.email, oldEmail, r.Email}, {b.username, oldUsername, r.Username}, {b.external, oldExternal, r.ExternalID}} {
		if x.old == x.new {
			continue
		}
		if x.old != "" {
			if err := x.idx.Delete([]byte(x.old)); err != nil {
				return err
			}
		}
		if x.new != "" {
			if err := x.idx.Put([]byte(x.new), []byte(r.ID)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *boltTx) getSession(hash []byte) (*SessionRecord, error) {
	v := b.sessions.Get(hash)
	if v == nil {
		return nil, ErrNotFound
	}
	return decodeSession(hash, v)
}

// getSessionUser returns the session with this hash and its user.
func (b *boltTx) getSessionUser(hash []byte) (*SessionRecord, *UserRecord, error) {
	sr, err := b.getSession(hash)
	if err != nil {
		return nil, nil, err
	}
	u, err := b.getUser(sr.UserID)
	if err == ErrNotFound {
		return nil, nil, fmt.Errorf("%w: session %s belongs to missing user %s", ErrCorrupt, sr.ID, sr.UserID)
	}
	if err != nil {
		return nil, nil, err
	}
	return sr, u, nil
}

func (b *boltTx) putSession(s *SessionRecord) error {
	return b.sessions.Put(s.TokenHash, encodeSession(s))
}

func (b *boltTx) indexSession(s *SessionRecord) error {
	if err := b.sessUser.Put(sessionUserKey(s.UserID, s.ID), bytes.Clone(s.TokenHash)); err != nil {
		return err
	}
	if err := b.sessID.Put([]byte(s.ID), bytes.Clone(s.TokenHash)); err != nil {
		return err
	}
	return b.sessExp.Put(expiryKey(s.ExpiresAt, s.TokenHash), present)
}

// deleteSession deletes the session with this hash and its index entries.
func (b *boltTx) deleteSession(hash []byte) error {
	s, err := b.getSession(hash)
	if err != nil {
		return err
	}
	for _, x := range []struct {
		bucket *bbolt.Bucket
		key    []byte
	}{
		{b.sessions, hash},
		{b.sessUser, sessionUserKey(s.UserID, s.ID)},
		{b.sessID, []byte(s.ID)},
		{b.sessExp, expiryKey(s.ExpiresAt, hash)},
	} {
		if err := x.bucket.Delete(x.key); err != nil {
			return err
		}
	}
	return nil
}

// keysWithPrefix returns copies of the keys and values in bucket that start with prefix.
func keysWithPrefix(bucket *bbolt.Bucket, prefix []byte) (keys, values [][]byte) {
	c := bucket.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		keys = append(keys, bytes.Clone(k))
		values = append(values, bytes.Clone(v))
	}
	return keys, values
}

func (b *boltTx) deleteUserSessions(userID string) error {
	_, hashes := keysWithPrefix(b.sessUser, lp(nil, userID))
	for _, h := range hashes {
		err := b.deleteSession(h)
		if err == ErrNotFound {
			// Not the caller's "no such user": the index is damaged, and
			// sessions before this one were deleted already.
			return fmt.Errorf("%w: session index of user %s points at a missing session", ErrCorrupt, userID)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *boltTx) getToken(hash []byte) (*TokenRecord, error) {
	v := b.tokens.Get(hash)
	if v == nil {
		return nil, ErrNotFound
	}
	return decodeToken(hash, v)
}

func (b *boltTx) indexToken(t *TokenRecord) error {
	if err := b.tokUser.Put(tokenUserKey(t.UserID, t.Purpose, t.Hash), present); err != nil {
		return err
	}
	return b.tokExp.Put(expiryKey(t.ExpiresAt, t.Hash), present)
}

func (b *boltTx) deleteToken(hash []byte) error {
	t, err := b.getToken(hash)
	if err != nil {
		return err
	}
	if err := b.tokens.Delete(hash); err != nil {
		return err
	}
	if err := b.tokUser.Delete(tokenUserKey(t.UserID, t.Purpose, hash)); err != nil {
		return err
	}
	return b.tokExp.Delete(expiryKey(t.ExpiresAt, hash))
}

// deleteUserTokens deletes the tokens whose by-user index key starts with prefix:
// lp(userID) for all the user's tokens, lp(lp(userID), purpose) for one purpose.
func (b *boltTx) deleteUserTokens(prefix []byte) error {
	keys, _ := keysWithPrefix(b.tokUser, prefix)
	for _, k := range keys {
		_, rest, _ := cutLP(k)
		_, hash, ok := cutLP(rest)
		if !ok {
			return fmt.Errorf("%w: malformed token index key %x", ErrCorrupt, k)
		}
		err := b.deleteToken(hash)
		if err == ErrNotFound {
			return fmt.Errorf("%w: token index entry %x points at a missing token", ErrCorrupt, k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *boltTx) putAttempts(key []byte, a LoginAttempts) error {
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := b.logins.Put(key, v); err != nil {
		return err
	}
	return b.loginExp.Put(expiryKey(a.ExpiresAt, key), present)
}

func (b *boltTx) deleteAttempts(key []byte) error {
	v := b.logins.Get(key)
	if v == nil {
		return ErrNotFound
	}
	a, err := decodeAttempts(v)
	if err != nil {
		return err
	}
	if err := b.logins.Delete(key); err != nil {
		return err
	}
	return b.loginExp.Delete(expiryKey(a.ExpiresAt, key))
}
