package users

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// Provider flows live in the flows bucket (hash → flow record) with an
// expiry index, flows.expiry (timeKey(ExpiresAt) + hash → 1), which
// DeleteExpired walks.

func encodeFlow(f *FlowRecord) []byte {
	b := make([]byte, 0, 32+len(f.Data))
	b = appendString(append(b, recordFormat), string(f.Data))
	b = appendTime(b, f.CreatedAt)
	return appendTime(b, f.ExpiresAt)
}

// decodeFlow decodes the flow record v stored under the hash key.
func decodeFlow(key, v []byte) (*FlowRecord, error) {
	d := newDecoder(v)
	f := &FlowRecord{Hash: append([]byte(nil), key...)}
	f.Data = []byte(d.string())
	f.CreatedAt = d.time()
	f.ExpiresAt = d.time()
	if err := d.done("flow"); err != nil {
		return nil, err
	}
	return f, nil
}

// CreateFlow stores a provider flow and its expiry entry in one write
// transaction. It returns ErrConflict, writing nothing, if the hash is
// taken. See FlowStore. It is safe for concurrent use.
func (s *BoltStore) CreateFlow(ctx context.Context, f *FlowRecord, audit ...*AuditEntry) error {
	if len(f.Hash) == 0 || len(f.Hash) > bbolt.MaxKeySize-timeKeyLen {
		return fmt.Errorf("users: bolt store: flow hash of %d bytes", len(f.Hash))
	}
	if err := checkAudit(audit); err != nil {
		return err
	}
	v := encodeFlow(f)
	return s.update(ctx, "create flow", func(b *boltTx) error {
		if b.flows.Get(f.Hash) != nil {
			return ErrConflict
		}
		if err := b.flows.Put(f.Hash, v); err != nil {
			return err
		}
		if err := b.flowExp.Put(expiryKey(f.ExpiresAt, f.Hash), present); err != nil {
			return err
		}
		return b.putAudit(audit)
	})
}

// ConsumeFlow finds, deletes and returns a provider flow in one write
// transaction, whatever its expiry; see FlowStore. It is safe for concurrent
// use.
func (s *BoltStore) ConsumeFlow(ctx context.Context, hash []byte, audit ...*AuditEntry) (*FlowRecord, error) {
	if err := checkAudit(audit); err != nil {
		return nil, err
	}
	var f *FlowRecord
	err := s.update(ctx, "consume flow", func(b *boltTx) (err error) {
		v := b.flows.Get(hash)
		if v == nil {
			return ErrNotFound
		}
		if f, err = decodeFlow(hash, v); err != nil {
			return err
		}
		if err := b.deleteFlow(hash); err != nil {
			return err
		}
		return b.putAudit(audit)
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// deleteFlow deletes the flow under hash, if any, with its expiry entry.
func (b *boltTx) deleteFlow(hash []byte) error {
	v := b.flows.Get(hash)
	if v == nil {
		return nil
	}
	f, err := decodeFlow(hash, v)
	if err != nil {
		return err
	}
	if err := b.flowExp.Delete(expiryKey(f.ExpiresAt, hash)); err != nil {
		return err
	}
	return b.flows.Delete(hash)
}

// rebuildFlow re-encodes a flow and indexes its expiry, for a rebuild.
func (b *boltTx) rebuildFlow(k, v []byte) error {
	f, err := decodeFlow(k, v)
	if err != nil {
		return err
	}
	if err := b.flows.Put(k, encodeFlow(f)); err != nil {
		return err
	}
	return b.flowExp.Put(expiryKey(f.ExpiresAt, k), present)
}

// CreateUserWithCredential stores a new user, its indexes and its first
// credential in one write transaction. It returns ErrConflict if the
// credential's (Kind, ID) is taken, then what CreateUser returns; it writes
// nothing then. See CredentialStore. It is safe for concurrent use.
func (s *BoltStore) CreateUserWithCredential(ctx context.Context, u *UserRecord, c *CredentialRecord, audit ...*AuditEntry) error {
	if err := checkIDLen(u.ID); err != nil {
		return err
	}
	if err := checkCredentialKey(c.UserID, c.Kind, c.ID); err != nil {
		return err
	}
	if err := checkAudit(audit); err != nil {
		return err
	}
	key, v := credentialKey(c.Kind, c.ID), encodeCredential(c)
	return s.update(ctx, "create user with credential", func(b *boltTx) error {
		if b.cred.Get(key) != nil || c.UserID != u.ID {
			return ErrConflict
		}
		if err := b.insertUser(u, false); err != nil {
			return err
		}
		if err := indexSearch(b.search, u.ID, nil, &u.User); err != nil {
			return err
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

// checkFlows checks that every provider flow decodes and is in the expiry
// index, and that every expiry entry points at a flow of that expiry.
func (c *checker) checkFlows(b *boltTx) {
	_ = b.flows.ForEach(func(k, v []byte) error {
		f, err := decodeFlow(k, v)
		if err != nil {
			c.add("flow %x: %v", k, err)
			return nil
		}
		if b.flowExp.Get(expiryKey(f.ExpiresAt, k)) == nil {
			c.add("flow %x: not in the expiry index", k)
		}
		return nil
	})
	_ = b.flowExp.ForEach(func(k, _ []byte) error {
		if len(k) < timeKeyLen {
			c.add("flow expiry index: malformed key %x", k)
			return nil
		}
		v := b.flows.Get(k[timeKeyLen:])
		if v == nil {
			c.add("flow expiry index: %x points at a missing flow", k)
			return nil
		}
		if f, err := decodeFlow(k[timeKeyLen:], v); err == nil && !bytes.Equal(timeKey(f.ExpiresAt), k[:timeKeyLen]) {
			c.add("flow expiry index: %x has the wrong time", k)
		}
		return nil
	})
}
