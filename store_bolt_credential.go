package users

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"
)

// The BoltStore's credentials (schema version 5): each credential in the
// credentials bucket under its key lp(Kind) + ID, and a by-user index,
// credentials.user, of lp(UserID) + that key → 1. The key is what makes a
// (Kind, ID) unique; every change runs in one write transaction, which bbolt
// serialises with every other, so a guard's view of the user and of its
// credentials holds until its delete, and an UpdateCredential's fn sees the
// credential as last written. The audit entries of each change are written in
// its transaction.
//
// A credential record (format byte, then the fields of store_bolt_encoding.go):
//
//	credential  UserID, Name (strings), CreatedAt, LastUsedAt (times),
//	            Counter (int), Data (string)
//
// Kind and ID come from the key.

// credentialKey is the key of the credential (kind, id) in the credentials
// bucket.
func credentialKey(kind CredentialKind, id string) []byte {
	return append(lp(make([]byte, 0, 2+len(kind)+len(id)), string(kind)), id...)
}

// credentialUserKey is the key of the credential under key in the by-user
// index.
func credentialUserKey(userID string, key []byte) []byte {
	return append(lp(make([]byte, 0, 2+len(userID)+len(key)), userID), key...)
}

// checkCredentialKey refuses a credential whose keys bbolt cannot hold.
func checkCredentialKey(userID string, kind CredentialKind, id string) error {
	if err := checkIDLen(userID); err != nil {
		return err
	}
	if n := 4 + len(userID) + len(kind) + len(id); n > bbolt.MaxKeySize {
		return fmt.Errorf("users: bolt store: credential key of %d bytes is too long", n)
	}
	return nil
}

func encodeCredential(c *CredentialRecord) []byte {
	b := make([]byte, 0, 40+len(c.UserID)+len(c.Name)+len(c.Data))
	b = appendString(append(b, recordFormat), c.UserID)
	b = appendString(b, c.Name)
	b = appendTime(b, c.CreatedAt)
	b = appendTime(b, c.LastUsedAt)
	b = binary.AppendVarint(b, c.Counter)
	return appendString(b, string(c.Data))
}

// decodeCredential decodes the credential record v stored under key.
func decodeCredential(key, v []byte) (*CredentialRecord, error) {
	kind, id, ok := cutLP(key)
	if !ok {
		return nil, fmt.Errorf("%w: credential key %x is malformed", ErrCorrupt, key)
	}
	d := newDecoder(v)
	c := &CredentialRecord{Kind: CredentialKind(kind), ID: string(id)}
	c.UserID = d.string()
	c.Name = d.string()
	c.CreatedAt = d.time()
	c.LastUsedAt = d.time()
	c.Counter = d.varint()
	c.Data = []byte(d.string())
	if err := d.done("credential"); err != nil {
		return nil, err
	}
	return c, nil
}

// CreateCredential stores a new credential and its index entry in one write
// transaction, checking there that its user exists and its (Kind, ID) is free.
// It returns ErrNotFound if the user does not exist and ErrConflict if the key
// is taken; it writes nothing then. See CredentialStore. It is safe for
// concurrent use.
func (s *BoltStore) CreateCredential(ctx context.Context, c *CredentialRecord, audit ...*AuditEntry) error {
	if err := checkCredentialKey(c.UserID, c.Kind, c.ID); err != nil {
		return err
	}
	if err := checkAudit(audit); err != nil {
		return err
	}
	key, v := credentialKey(c.Kind, c.ID), encodeCredential(c)
	return s.update(ctx, "create credential", func(b *boltTx) error {
		if b.users.Get([]byte(c.UserID)) == nil {
			return ErrNotFound
		}
		if b.cred.Get(key) != nil {
			return ErrConflict
		}
		if err := b.cred.Put(key, v); err != nil {
			return err
		}
		if err := b.credUser.Put(credentialUserKey(c.UserID, key), present); err != nil {
			return err
		}
		return b.putAudit(audit)
	})
}

// GetCredential returns the credential (kind, id), or ErrNotFound; see
// CredentialStore. It is safe for concurrent use.
func (s *BoltStore) GetCredential(ctx context.Context, kind CredentialKind, id string) (*CredentialRecord, error) {
	var c *CredentialRecord
	err := s.view(ctx, "get credential", func(b *boltTx) (err error) {
		c, err = b.getCredential(credentialKey(kind, id))
		return err
	}, bucketCred)
	return c, err
}

// ListCredentials returns the user's credentials, read in one transaction
// through the by-user index, in ascending CreatedAt order (ties by Kind, then
// ID); see CredentialStore. It is safe for concurrent use.
func (s *BoltStore) ListCredentials(ctx context.Context, userID string) ([]*CredentialRecord, error) {
	var out []*CredentialRecord
	err := s.view(ctx, "list credentials", func(b *boltTx) (err error) {
		out, err = b.userCredentials(userID, nil)
		return err
	}, bucketCred, bucketCredUser)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateCredential reads the credential, calls fn with it and writes what fn
// left, in one write transaction shared with concurrent writes (see
// BoltStore): calls for one credential run one after the other. fn is called
// inside the transaction, once unless another write of the group failed on
// I/O, when each is run again on its own. It returns the record as written,
// ErrNotFound if there is no such credential, fn's error unchanged, or
// ErrKeyChanged if fn changed Kind, ID or UserID; it writes nothing then. See
// CredentialStore.
func (s *BoltStore) UpdateCredential(ctx context.Context, kind CredentialKind, id string, fn func(c *CredentialRecord) error, audit ...*AuditEntry) (*CredentialRecord, error) {
	var out *CredentialRecord
	var fnErr error
	key := credentialKey(kind, id)
	err := s.update(ctx, "update credential", func(b *boltTx) error {
		fnErr = nil
		old, err := b.getCredential(key)
		if err != nil {
			return err
		}
		c := old.Clone()
		if err := fn(c); err != nil {
			fnErr = err
			return errFnFailed
		}
		if c.Kind != old.Kind || c.ID != old.ID || c.UserID != old.UserID {
			return ErrKeyChanged
		}
		if err := checkAudit(audit); err != nil {
			return err // fn left an entry that cannot be stored: nothing written
		}
		if err := b.cred.Put(key, encodeCredential(c)); err != nil {
			return err
		}
		out = c.Clone()
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

// DeleteCredential deletes the user's credential (kind, id) and its index entry
// in one write transaction, in which guard, if not nil, sees the user and the
// user's other credentials first. It returns ErrNotFound if there is no such
// credential or it is another user's, and guard's error unchanged; it writes
// nothing then. See CredentialStore. It is safe for concurrent use.
func (s *BoltStore) DeleteCredential(ctx context.Context, userID string, kind CredentialKind, id string, guard CredentialGuard, audit ...*AuditEntry) error {
	if err := checkAudit(audit); err != nil {
		return err
	}
	var guardErr error
	key := credentialKey(kind, id)
	err := s.update(ctx, "delete credential", func(b *boltTx) error {
		guardErr = nil
		c, err := b.getCredential(key)
		if err != nil {
			return err
		}
		if c.UserID != userID {
			return ErrNotFound
		}
		if guard != nil {
			u, err := b.getUser(userID)
			if err == ErrNotFound {
				return fmt.Errorf("%w: credential %x belongs to missing user %q", ErrCorrupt, key, userID)
			}
			if err != nil {
				return err
			}
			rest, err := b.userCredentials(userID, key)
			if err != nil {
				return err
			}
			if err := guard(u, rest); err != nil {
				guardErr = err
				return errFnFailed
			}
		}
		if err := b.deleteCredential(c, key); err != nil {
			return err
		}
		return b.putAudit(audit)
	})
	if guardErr != nil {
		return guardErr
	}
	return err
}

// RemovePassword clears the user's password and sets UpdatedAt in one write
// transaction, in which guard, if not nil, sees the user and all the user's
// credentials first. It returns the user as written, ErrNotFound if there is
// no such user, and guard's error unchanged; it writes nothing then. See
// CredentialStore. It is safe for concurrent use.
func (s *BoltStore) RemovePassword(ctx context.Context, userID string, at time.Time, guard CredentialGuard, audit ...*AuditEntry) (*UserRecord, error) {
	if err := checkAudit(audit); err != nil {
		return nil, err
	}
	var out *UserRecord
	var guardErr error
	err := s.update(ctx, "remove password", func(b *boltTx) error {
		guardErr = nil
		r, err := b.getUser(userID)
		if err != nil {
			return err
		}
		if guard != nil {
			creds, err := b.userCredentials(userID, nil)
			if err != nil {
				return err
			}
			if err := guard(r.Clone(), creds); err != nil {
				guardErr = err
				return errFnFailed
			}
		}
		// Neither field is indexed: the record is all that changes.
		r.PasswordHash, r.UpdatedAt = "", at
		if err := b.putUser(r); err != nil {
			return err
		}
		out = r.Clone()
		return b.putAudit(audit)
	})
	if guardErr != nil {
		return nil, guardErr
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Operations on one transaction's credential buckets.

func (b *boltTx) getCredential(key []byte) (*CredentialRecord, error) {
	v := b.cred.Get(key)
	if v == nil {
		return nil, ErrNotFound
	}
	return decodeCredential(key, v)
}

// userCredentials returns the user's credentials except the one under skip,
// in ListCredentials order.
func (b *boltTx) userCredentials(userID string, skip []byte) ([]*CredentialRecord, error) {
	prefix := lp(nil, userID)
	out := []*CredentialRecord{}
	c := b.credUser.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		key := k[len(prefix):]
		if bytes.Equal(key, skip) {
			continue
		}
		cr, err := b.getCredential(key)
		if err == ErrNotFound {
			return nil, fmt.Errorf("%w: credential index entry %x points at a missing credential", ErrCorrupt, k)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, cr)
	}
	slices.SortFunc(out, compareCredentials)
	return out, nil
}

// deleteCredential deletes the credential c, stored under key, and its index
// entry.
func (b *boltTx) deleteCredential(c *CredentialRecord, key []byte) error {
	if err := b.cred.Delete(key); err != nil {
		return err
	}
	return b.credUser.Delete(credentialUserKey(c.UserID, key))
}

// deleteUserCredentials deletes every credential of the user, for DeleteUser.
func (b *boltTx) deleteUserCredentials(userID string) error {
	prefix := lp(nil, userID)
	keys, _ := keysWithPrefix(b.credUser, prefix)
	for _, k := range keys {
		if err := b.cred.Delete(k[len(prefix):]); err != nil {
			return err
		}
		if err := b.credUser.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// rebuildCredential re-encodes one credential record of a rebuild and indexes
// it.
func (b *boltTx) rebuildCredential(k, v []byte) error {
	c, err := decodeCredential(k, v)
	if err != nil {
		return err
	}
	if err := b.cred.Put(k, encodeCredential(c)); err != nil {
		return err
	}
	return b.credUser.Put(credentialUserKey(c.UserID, k), present)
}

// checkCredentials checks the credentials: each decodes, belongs to an
// existing user and is in the by-user index, and each index entry points at
// a credential of that user. generation holds every user's.
func (c *checker) checkCredentials(b *boltTx, generation map[string]int64) {
	n := 0
	_ = b.cred.ForEach(func(k, v []byte) error {
		n++
		cr, err := decodeCredential(k, v)
		if err != nil {
			c.add("credential %x: %v", k, err)
			return nil
		}
		if _, ok := generation[cr.UserID]; !ok {
			c.add("credential %x: user %q is missing", k, cr.UserID)
		}
		if b.credUser.Get(credentialUserKey(cr.UserID, k)) == nil {
			c.add("credential %x: not in the by-user index", k)
		}
		return nil
	})
	_ = b.credUser.ForEach(func(k, _ []byte) error {
		userID, key, ok := cutLP(k)
		if !ok {
			c.add("credential by-user index: malformed key %x", k)
			return nil
		}
		cr, err := b.getCredential(key)
		switch {
		case err == ErrNotFound:
			c.add("credential by-user index: %x points at a missing credential", k)
		case err != nil:
		case cr.UserID != userID:
			c.add("credential by-user index: %q points at credential %x of user %q", userID, key, cr.UserID)
		}
		return nil
	})
	if m := b.credUser.Stats().KeyN; m != n {
		c.add("credential by-user index: %d entries, want one per credential, %d", m, n)
	}
}
