package users

import (
	"bytes"
	"context"
	"time"

	"go.etcd.io/bbolt"
)

// sweep calls DeleteExpired every interval until ctx is cancelled (see
// BoltOptions.SweepInterval), logging failures.
func (s *BoltStore) sweep(ctx context.Context, every time.Duration) {
	defer close(s.sweeperDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.DeleteExpired(ctx, s.now()); err != nil && ctx.Err() == nil {
			s.logger.Error("users: bolt store: deleting expired entries", "err", err)
		}
	}
}

// expiredBatch is how many entries DeleteExpired deletes per write transaction,
// so that a large purge never holds the write lock for long.
const expiredBatch = 1000

// DeleteExpired deletes the sessions, tokens, MFA challenges, provider flows,
// ceremonies and throttle entries
// that expired at or before now, walking the expiry indexes from the oldest
// entry, so its cost grows with the number deleted. It deletes in write transactions of at most 1000
// entries; if ctx is cancelled between two it returns the count so far and the
// context's error. When nothing has expired it writes nothing. See Store.
func (s *BoltStore) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	bound := timeKey(now)
	expired := func(k []byte) bool {
		return len(k) >= timeKeyLen && bytes.Compare(k[:timeKeyLen], bound) <= 0
	}
	total := 0
	for {
		var found bool
		err := s.view(ctx, "delete expired", func(b *boltTx) error {
			for _, idx := range []*bbolt.Bucket{b.sessExp, b.tokExp, b.loginExp, b.chalExp, b.flowExp, b.cerExp} {
				if k, _ := idx.Cursor().First(); expired(k) {
					found = true
				}
			}
			return nil
		}, bucketSessExpiry, bucketTokExpiry, bucketLoginExp, bucketChalExp, bucketFlowExp, bucketCerExp)
		if err != nil || !found {
			return total, err
		}
		n := 0
		err = s.update(ctx, "delete expired", func(b *boltTx) error {
			n = 0
			for _, x := range []struct {
				idx *bbolt.Bucket
				del func(key []byte) error
			}{
				{b.sessExp, b.deleteSession},
				{b.tokExp, b.deleteToken},
				{b.loginExp, b.deleteAttempts},
				{b.chalExp, b.deleteChallenge},
				{b.flowExp, b.deleteFlow},
				{b.cerExp, b.deleteCeremony},
			} {
				d, err := purgeIndex(x.idx, expired, expiredBatch-n, x.del)
				n += d
				if err != nil {
					return err
				}
			}
			return nil
		})
		total += n
		if err != nil {
			return total, err
		}
		if n < expiredBatch {
			return total, nil
		}
	}
}

// maxCheckProblems bounds how many problems Check lists.

// purgeIndex deletes the first records of the time index idx (keys timeKey +
// record key) for which due holds, at most limit of them, with del, and their
// index entries. It returns how many records it deleted.
func purgeIndex(idx *bbolt.Bucket, due func(k []byte) bool, limit int, del func(key []byte) error) (int, error) {
	var keys [][]byte
	c := idx.Cursor()
	for k, _ := c.First(); due(k) && len(keys) < limit; k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	n := 0
	for _, k := range keys {
		switch err := del(k[timeKeyLen:]); err {
		case nil:
			n++
		case ErrNotFound:
			// An index entry without its record (Check reports such
			// damage): dropping it lets the purge go on.
		default:
			return n, err
		}
		if err := idx.Delete(k); err != nil {
			return n, err
		}
	}
	return n, nil
}
