package users

import (
	"bytes"
	"context"
)

// The BoltStore's ceremonies: the ceremonies bucket holds each one by the
// hash of its challenge, and ceremonies.expiry orders them for DeleteExpired.
// A ceremony's user is kept as given and not indexed: nothing looks
// ceremonies up by user, and they live minutes.

// CreateCeremony stores a ceremony and its expiry index entry in one write
// transaction, or returns ErrConflict, writing nothing, if c.Hash is taken;
// see Store. It is safe for concurrent use.
func (s *BoltStore) CreateCeremony(ctx context.Context, c *CeremonyRecord, audit ...*AuditEntry) error {
	if err := checkIDLen(c.UserID); err != nil {
		return err
	}
	if err := checkAudit(audit); err != nil {
		return err
	}
	v := encodeCeremony(c)
	return s.update(ctx, "create ceremony", func(b *boltTx) error {
		if b.cer.Get(c.Hash) != nil {
			return ErrConflict
		}
		if err := b.cer.Put(c.Hash, v); err != nil {
			return err
		}
		if err := b.cerExp.Put(expiryKey(c.ExpiresAt, c.Hash), present); err != nil {
			return err
		}
		return b.putAudit(audit)
	})
}

// ConsumeCeremony finds, deletes and returns the ceremony with this hash and
// kind in one write transaction, whatever its expiry: of any number of
// concurrent calls exactly one gets it. It returns ErrNotFound, deleting
// nothing, if there is none or its kind differs. See Store. It is safe for
// concurrent use.
func (s *BoltStore) ConsumeCeremony(ctx context.Context, hash []byte, kind CeremonyKind, audit ...*AuditEntry) (*CeremonyRecord, error) {
	if err := checkAudit(audit); err != nil {
		return nil, err
	}
	var out *CeremonyRecord
	err := s.update(ctx, "consume ceremony", func(b *boltTx) (err error) {
		if out, err = b.getCeremony(hash); err != nil {
			return err
		}
		if out.Kind != kind {
			return ErrNotFound
		}
		if err := b.deleteCeremony(hash); err != nil {
			return err
		}
		return b.putAudit(audit)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (b *boltTx) getCeremony(hash []byte) (*CeremonyRecord, error) {
	v := b.cer.Get(hash)
	if v == nil {
		return nil, ErrNotFound
	}
	return decodeCeremony(hash, v)
}

// deleteCeremony deletes the ceremony with this hash and its expiry index
// entry, or returns ErrNotFound.
func (b *boltTx) deleteCeremony(hash []byte) error {
	c, err := b.getCeremony(hash)
	if err != nil {
		return err
	}
	if err := b.cer.Delete(hash); err != nil {
		return err
	}
	return b.cerExp.Delete(expiryKey(c.ExpiresAt, hash))
}

// rebuildCeremony re-encodes one ceremony record of a rebuild and indexes it.
func (b *boltTx) rebuildCeremony(k, v []byte) error {
	c, err := decodeCeremony(k, v)
	if err != nil {
		return err
	}
	if err := b.cer.Put(k, encodeCeremony(c)); err != nil {
		return err
	}
	return b.cerExp.Put(expiryKey(c.ExpiresAt, k), present)
}

// encodeCeremony returns c in the binary record format, without its hash.
func encodeCeremony(c *CeremonyRecord) []byte {
	b := make([]byte, 0, 8+len(c.Kind)+len(c.UserID)+2*14)
	b = appendString(append(b, recordFormat), string(c.Kind))
	b = appendString(b, c.UserID)
	b = appendTime(b, c.CreatedAt)
	return appendTime(b, c.ExpiresAt)
}

// decodeCeremony decodes the ceremony record v stored under hash.
func decodeCeremony(hash, v []byte) (*CeremonyRecord, error) {
	d := newDecoder(v)
	c := &CeremonyRecord{Hash: bytes.Clone(hash)}
	c.Kind = CeremonyKind(d.string())
	c.UserID = d.string()
	c.CreatedAt = d.time()
	c.ExpiresAt = d.time()
	if err := d.done("ceremony"); err != nil {
		return nil, err
	}
	return c, nil
}

// checkCeremonies checks that each ceremony decodes and is in the expiry
// index, and that each index entry points at a ceremony with that expiry.
func (c *checker) checkCeremonies(b *boltTx) {
	_ = b.cer.ForEach(func(k, v []byte) error {
		cr, err := decodeCeremony(k, v)
		if err != nil {
			c.add("ceremony %x: %v", k, err)
			return nil
		}
		if b.cerExp.Get(expiryKey(cr.ExpiresAt, k)) == nil {
			c.add("ceremony %x: not in the expiry index", k)
		}
		return nil
	})
	_ = b.cerExp.ForEach(func(k, _ []byte) error {
		if len(k) < timeKeyLen {
			c.add("ceremony expiry index: malformed key %x", k)
			return nil
		}
		cr, err := b.getCeremony(k[timeKeyLen:])
		switch {
		case err == ErrNotFound:
			c.add("ceremony expiry index: %x points at a missing ceremony", k)
		case err != nil:
		case !bytes.Equal(timeKey(cr.ExpiresAt), k[:timeKeyLen]):
			c.add("ceremony expiry index: %x has the wrong time", k)
		}
		return nil
	})
}
